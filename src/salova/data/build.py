"""The resumable data build: ``salova build-data VIDEOS OUT``.

Layout of an output folder::

    OUT/manifest.json        format, version, settings, videos folder, complete flag,
                             counts and every video's status (no times: reruns are byte-equal)
    OUT/records/<id>.json    one finished video: {"id", "video", "records": {task: record}}
    OUT/errors/<id>.json     one failed video: its error type, message and traceback
    OUT/captions.jsonl       caption records of every finished video, sorted by id
    OUT/qa.jsonl             question-answer records, likewise (task qa or both)

Safety: every file is written to a temporary name and moved into place, so a build killed
at any moment leaves finished videos intact and never a half-written file. A re-run with the
same settings skips every video whose result is present and valid, retries failed ones and
builds the rest, then writes the JSONL files and the manifest again from all results.
A re-run with different settings (anything in :meth:`BuildConfig.settings`) or another
videos folder is refused with :class:`~salova.errors.BuildMismatchError`: use a new folder.
Engine, worker count and progress display are not settings; they may change between runs.
One build writes to a folder at a time (an OS lock on ``OUT/.lock``, released by the kernel
when a build dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from salova.data.engines import build_engine
from salova.data.pipeline import ERRORS_DIR, RECORDS_DIR, BuildConfig, read_error, read_result
from salova.data.schema import Record, record_line
from salova.data.scoring import BUNDLED_T2T_MODEL, bundled_t2t_path
from salova.data.sources import VideoInput, discover_videos
from salova.errors import BuildMismatchError, BuildOutputError, ConfigError, ModelFolderError
from salova.fileio import PART_SUFFIX, atomic_write_json, atomic_write_text, dotted_keys

__all__ = ["DATA_FORMAT", "DATA_FORMAT_VERSION", "MANIFEST_NAME", "OUTPUT_FILES", "BuildSummary", "build_dataset"]

logger = logging.getLogger(__name__)

DATA_FORMAT = "salova-data"
"""Format tag of a build's manifest."""
DATA_FORMAT_VERSION = 1
"""Bumped whenever the same settings would write different records."""
MANIFEST_NAME = "manifest.json"
"""File name of a build's manifest."""
LOCK_NAME = ".lock"
"""Lock file that keeps two builds from writing one folder."""
OUTPUT_FILES = {"captions": "captions.jsonl", "qa": "qa.jsonl"}
"""Task -> JSONL file that collects its records."""


@dataclass(frozen=True)
class BuildSummary:
    """What a call of :func:`build_dataset` did and where the results are."""

    out_dir: Path
    videos: int
    """Videos in the input."""
    built: int
    """Videos built by this call."""
    skipped: int
    """Videos already finished by an earlier call."""
    failed: dict[str, str] = field(default_factory=dict)
    """Video id -> error, for every video without a result."""
    records: dict[str, int] = field(default_factory=dict)
    """Task -> records written to its JSONL file."""

    @property
    def complete(self) -> bool:
        return not self.failed

    def outputs(self) -> dict[str, Path]:
        """Task -> JSONL file."""
        return {task: self.out_dir / OUTPUT_FILES[task] for task in self.records}


def _manifest(config: BuildConfig, videos_root: str, statuses: list[dict] | None, counts: dict) -> dict[str, Any]:
    return {
        "format": DATA_FORMAT,
        "version": DATA_FORMAT_VERSION,
        "complete": statuses is not None and not counts.get("failed"),
        "videos_root": videos_root,
        "settings": config.settings(),
        "counts": counts,
        "videos": statuses or [],
    }


def _prepare(out_dir: Path, config: BuildConfig, videos_root: str) -> None:
    """Create the folder or check that it holds a build of the same settings."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BuildOutputError(out_dir, "exists and is not a folder")
    manifest_path = out_dir / MANIFEST_NAME
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BuildOutputError(manifest_path, f"unreadable manifest: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != DATA_FORMAT:
            raise BuildOutputError(manifest_path, f"not a {DATA_FORMAT} manifest")
        if manifest.get("version") != DATA_FORMAT_VERSION:
            raise BuildOutputError(
                manifest_path, f"format version {manifest.get('version')!r}; expected {DATA_FORMAT_VERSION}"
            )
        old, new = dotted_keys(manifest.get("settings")), dotted_keys(config.settings())
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if manifest.get("videos_root") != videos_root:
            changed.insert(0, f"videos folder (was {manifest.get('videos_root')})")
        if changed:
            raise BuildMismatchError(
                out_dir, f"holds a data build with other settings (differs in {changed}); use a new folder"
            )
    elif out_dir.is_dir() and any(p.name != LOCK_NAME for p in out_dir.iterdir()):
        raise BuildOutputError(out_dir, "is not empty and holds no data build; use an empty or new folder")
    try:
        for sub in (RECORDS_DIR, ERRORS_DIR):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildOutputError(out_dir, f"cannot create the output folder: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle = (out_dir / LOCK_NAME).open("a")
    except OSError as exc:
        raise BuildOutputError(out_dir, f"cannot create the output folder: {exc.strerror or exc}") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BuildOutputError(out_dir, "another build is writing to this folder") from exc
        yield


def _remove_parts(out_dir: Path) -> None:
    """Delete temporary files of writes that a killed build left (we hold the lock)."""
    for folder in (out_dir, out_dir / RECORDS_DIR, out_dir / ERRORS_DIR):
        for stale in folder.glob(f".*{PART_SUFFIX}"):
            stale.unlink(missing_ok=True)


def check_models(config: BuildConfig) -> None:
    """Fail early, with a typed error, on model folders that do not exist.

    Raises:
        ModelFolderError: a V2T, T2T or ``hf`` captioner folder is missing.
    """
    scoring = config.scoring
    folders = {"V2T model": scoring.v2t_model}
    if config.captioner.name == "hf":
        folders["captioning model"] = config.captioner.model
    if scoring.t2t_model == BUNDLED_T2T_MODEL:
        bundled_t2t_path()
    else:
        folders["T2T model"] = scoring.t2t_model
    for what, folder in folders.items():
        if folder is not None and not Path(folder).is_dir():
            raise ModelFolderError(folder, f"no such {what} folder")


def _assemble(out_dir: Path, config: BuildConfig, videos: Sequence[VideoInput]) -> tuple[list[dict], dict, dict]:
    by_task: dict[str, list[Record]] = {task: [] for task in config.tasks}
    statuses, failed = [], {}
    for video in sorted(videos, key=lambda v: v.id):
        records = read_result(out_dir, video, config.tasks)
        if records is None:
            failed[video.id] = read_error(out_dir, video.id) or "no result was written"
            statuses.append({"id": video.id, "video": video.relative, "status": "failed"})
            continue
        for task, record in records.items():
            by_task[task].append(record)
        statuses.append({"id": video.id, "video": video.relative, "status": "built"})
    for task, records in by_task.items():
        atomic_write_text(out_dir / OUTPUT_FILES[task], "".join(record_line(r) + "\n" for r in records))
    return statuses, failed, {task: len(records) for task, records in by_task.items()}


def _common_root(inputs: Sequence[VideoInput]) -> str:
    roots = {str(v.path)[: -len(v.relative)].rstrip("/") for v in inputs}
    if len(roots) > 1:
        raise ConfigError(f"the videos' relative paths point to more than one folder: {sorted(roots)}")
    return roots.pop() if roots else ""


def build_dataset(
    videos: str | Path | Sequence[VideoInput],
    out_dir: str | Path,
    config: BuildConfig | None = None,
    *,
    engine: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    progress: bool = False,
) -> BuildSummary:
    """Build (or resume building) training records for a folder of videos.

    Args:
        videos: a folder of videos (searched recursively), one video file, or a list of
            :class:`VideoInput` (all relative to one folder).
        out_dir: the output folder (created; a folder holding a build of the same settings
            is resumed).
        config: segmentation, captioner, scoring and task settings.
        engine: ``local`` or ``ray``.
        workers: worker processes (local) or Ray actors.
        ray_address: Ray cluster address; ``None`` starts a local Ray instance.
        progress: show a progress bar (videos) on stderr.

    Returns:
        A :class:`BuildSummary`. Failed videos are listed there and in ``OUT/errors``; they
        do not stop the build.

    Raises:
        BuildMismatchError: ``out_dir`` holds a build with other settings.
        BuildOutputError: ``out_dir`` is unusable or another build is writing to it.
        ModelFolderError: a model folder is missing or cannot be loaded.
        PathError: ``videos`` does not exist or holds no video.
        EngineError: the engine cannot start or lost its workers.

    Example:
        >>> from salova.data import BuildConfig, ScoringConfig, build_dataset
        >>> config = BuildConfig(scoring=ScoringConfig(v2t_model=None))
        >>> summary = build_dataset("out/synth/videos", "out/data", config)  # doctest: +SKIP
        >>> summary.outputs()["captions"]  # doctest: +SKIP
        PosixPath('out/data/captions.jsonl')
    """
    config = config or BuildConfig()
    out_dir = Path(out_dir)
    if isinstance(videos, str | Path):
        root = Path(videos).resolve()
        inputs = discover_videos(videos)
        videos_root = str(root if root.is_dir() else root.parent)
    else:
        inputs = list(videos)
        videos_root = _common_root(inputs)
    runner = build_engine(engine, workers=workers, address=ray_address, progress=progress)
    check_models(config)
    with _locked(out_dir):
        _prepare(out_dir, config, videos_root)
        _remove_parts(out_dir)
        atomic_write_json(out_dir / MANIFEST_NAME, _manifest(config, videos_root, None, {}))
        todo = [video for video in inputs if read_result(out_dir, video, config.tasks) is None]
        logger.info("%d videos: %d finished earlier, %d to build", len(inputs), len(inputs) - len(todo), len(todo))
        built = 0
        bar = tqdm(total=len(todo), unit="video", desc="build-data", disable=not progress, file=sys.stderr)
        with bar:
            for outcome in runner.run(config, todo, out_dir):
                built += outcome.status == "built"
                bar.update(1)
        statuses, failed, records = _assemble(out_dir, config, inputs)
        counts = {"videos": len(inputs), "built": len(inputs) - len(failed), "failed": len(failed), "records": records}
        atomic_write_json(out_dir / MANIFEST_NAME, _manifest(config, videos_root, statuses, counts))
    summary = BuildSummary(
        out_dir=out_dir,
        videos=len(inputs),
        built=built,
        skipped=len(inputs) - len(todo),
        failed=failed,
        records=records,
    )
    logger.info("built %d, skipped %d, failed %d", summary.built, summary.skipped, len(summary.failed))
    return summary
