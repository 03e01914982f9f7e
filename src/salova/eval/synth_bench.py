"""A synthetic benchmark in Video-MME's format, built from held-out synthetic videos.

``salova synth-bench --out DIR --seed N`` writes::

    DIR/videomme.json        one row per question, Video-MME's fields (plus the evidence)
    DIR/data/<videoID>.mp4   the videos (and each one's synthetic sidecar .json)
    DIR/manifest.json        the settings, the seeds and the videos of each bucket

so that ``salova eval videomme --annotations DIR/videomme.json --videos DIR/data`` scores it
with the same code as the real Video-MME. Three duration buckets mirror Video-MME's:

=========  ========  ====================  =======================================
bucket     minutes   scenes (seconds)      segments per video (one per scene)
=========  ========  ====================  =======================================
short      1.5       3 - 6                 about 20
medium     8         6 - 20                about 37
long       30        6 - 20                about 140
=========  ========  ====================  =======================================

(Video-MME: short under 2 min, medium 4-15 min, long 30-60 min.) Rows use Video-MME's own category
names (domain "Film & Television", sub-category "Animation", the task type closest to the
synthetic question's, whose own type is kept as ``synth_type``), so that lmms-eval's Video-MME
aggregation and the official script accept them too. Each row also carries the synthetic
question's ``evidence_scenes`` and their ``evidence_seconds``, so the report adds the router's
retrieval of the evidence (top-1, recall at 5).

**Held-out seeds.** Bucket ``b`` (0 short, 1 medium, 2 long) of ``--seed N`` is the synthetic
corpus with seed ``HELD_OUT_SEED_MIN + 3 N + b``. Every seed from ``HELD_OUT_SEED_MIN``
(1,000,000) up is reserved for evaluation: training corpora must use smaller seeds
(:func:`is_held_out_seed` tells).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from salova.errors import ConfigError, CorpusError, CorpusMismatchError
from salova.fileio import atomic_write_json
from salova.synth import SynthConfig, SynthVideo, write_video

__all__ = [
    "HELD_OUT_SEED_MIN",
    "BUCKETS",
    "SYNTH_BENCH_FORMAT",
    "ANNOTATIONS_NAME",
    "VIDEOS_DIR",
    "SynthBenchConfig",
    "is_held_out_seed",
    "bucket_seed",
    "videomme_rows",
    "build_synth_bench",
]

logger = logging.getLogger(__name__)

HELD_OUT_SEED_MIN = 1_000_000
"""Synthetic corpus seeds from here up belong to the evaluation benchmark; training uses smaller ones."""
BUCKETS: tuple[str, ...] = ("short", "medium", "long")
"""Video-MME's duration buckets, in order."""
DEFAULT_MINUTES: tuple[float, float, float] = (1.5, 8.0, 30.0)
"""Length of the videos of each bucket."""
SCENE_SECONDS: tuple[tuple[float, float], ...] = ((3.0, 6.0), (6.0, 20.0), (6.0, 20.0))
"""Shortest and longest scene of each bucket: short videos get shorter scenes so that they still
have about 20 segments (the retrieval metric needs enough segments to choose from)."""
SYNTH_BENCH_FORMAT = "salova-synth-bench"
SYNTH_BENCH_VERSION = 1
ANNOTATIONS_NAME = "videomme.json"
VIDEOS_DIR = "data"
MANIFEST_NAME = "manifest.json"
DOMAIN, SUB_CATEGORY = "Film & Television", "Animation"
"""Video-MME ``domain`` and ``sub_category`` of every synthetic (drawn) video: values from Video-MME's
fixed lists, which lmms-eval's aggregation and the official script require."""
TASK_TYPES: dict[str, str] = {
    "object_color": "Attribute Perception",
    "object_shape": "Object Recognition",
    "object_position": "Spatial Perception",
    "motion": "Action Recognition",
    "text": "OCR Problems",
    "background_color": "Attribute Perception",
    "background_pattern": "Attribute Perception",
    "counting": "Counting Problem",
    "temporal_order": "Temporal Reasoning",
}
"""Video-MME ``task_type`` of each synthetic question type (the synthetic type is kept as ``synth_type``)."""


def is_held_out_seed(seed: int) -> bool:
    """Whether a synthetic corpus seed is reserved for the evaluation benchmark."""
    return seed >= HELD_OUT_SEED_MIN


def bucket_seed(seed: int, bucket: int) -> int:
    """The synthetic corpus seed of bucket ``bucket`` (0, 1, 2) of benchmark seed ``seed``."""
    return HELD_OUT_SEED_MIN + len(BUCKETS) * seed + bucket


@dataclass(frozen=True)
class SynthBenchConfig:
    """What ``salova synth-bench`` builds; equal configs give identical benchmarks."""

    seed: int = 0
    """Benchmark seed ``N`` (corpus seeds ``1,000,000 + 3 N + bucket``)."""
    videos_per_bucket: int = 6
    """Videos of each duration bucket."""
    questions_per_video: int = 10
    """Multiple-choice questions per video (fewer when a video cannot hold that many)."""
    minutes: tuple[float, float, float] = DEFAULT_MINUTES
    """Video length of the short, medium and long bucket."""
    fps: float = 8.0
    """Frame rate of the videos (the model samples 1 FPS)."""
    width: int = 320
    height: int = 240
    max_objects: int = SynthConfig.max_objects
    """Objects per scene, at most (1 to 3)."""
    text_probability: float = SynthConfig.text_probability
    """Share of scenes that show a word on screen."""

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.videos_per_bucket < 1 or self.questions_per_video < 1:
            raise ConfigError("videos_per_bucket and questions_per_video must be >= 1")
        if len(self.minutes) != len(BUCKETS) or any(m <= 0 for m in self.minutes):
            raise ConfigError(
                f"minutes must give {len(BUCKETS)} positive lengths (short, medium, long), got {self.minutes}"
            )
        object.__setattr__(self, "minutes", tuple(float(m) for m in self.minutes))

    def corpus_config(self, bucket: int) -> SynthConfig:
        """The synthetic corpus of one bucket (raises ConfigError for impossible sizes)."""
        shortest, longest = SCENE_SECONDS[bucket]
        return SynthConfig(
            seed=bucket_seed(self.seed, bucket),
            num_videos=self.videos_per_bucket,
            minutes=self.minutes[bucket],
            fps=self.fps,
            width=self.width,
            height=self.height,
            min_scene_sec=shortest,
            max_scene_sec=longest,
            questions_per_video=self.questions_per_video,
            max_objects=self.max_objects,
            text_probability=self.text_probability,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["minutes"] = list(self.minutes)
        return data


def videomme_rows(video: SynthVideo, bucket: str, number: int) -> list[dict[str, Any]]:
    """Video-MME annotation rows for the questions of one synthetic video.

    Args:
        video: the video record.
        bucket: its duration bucket.
        number: its running number in the benchmark (Video-MME's ``video_id``, ``"001"``...).
    """
    video_id = f"{number:03d}"
    rows = []
    for index, question in enumerate(video.questions):
        scenes = [video.scenes[i] for i in question.evidence_scenes]
        rows.append(
            {
                "video_id": video_id,
                "duration": bucket,
                "domain": DOMAIN,
                "sub_category": SUB_CATEGORY,
                "url": "",
                "videoID": video.id,
                "question_id": f"{video_id}-{index + 1}",
                "task_type": TASK_TYPES[question.type],
                "question": question.question,
                "options": [f"{letter}. {text}" for letter, text in question.options.items()],
                "answer": question.answer,
                "synth_type": question.type,
                "evidence_scenes": list(question.evidence_scenes),
                "evidence_seconds": [[scene.start_sec, scene.end_sec] for scene in scenes],
            }
        )
    return rows


def _check_folder(out: Path, config: SynthBenchConfig) -> None:
    manifest = out / MANIFEST_NAME
    if manifest.is_file():
        import json

        try:
            existing = json.loads(manifest.read_text(encoding="utf-8")).get("config")
        except (OSError, ValueError) as exc:
            raise CorpusError(manifest, f"unreadable: {exc}") from exc
        if existing != config.to_dict():
            raise CorpusMismatchError(out, "holds a synthetic benchmark built with other settings; use a new folder")
    elif out.exists() and any(p.name != VIDEOS_DIR for p in out.iterdir()):
        raise CorpusError(out, "is not empty and holds no synthetic benchmark; use an empty or new folder")


def build_synth_bench(
    out_dir: str | Path, config: SynthBenchConfig = SynthBenchConfig(), *, progress: bool = True
) -> list[dict[str, Any]]:
    """Write the synthetic benchmark (videos, Video-MME-format annotations, manifest).

    An interrupted build is completed by running it again with the same config: finished videos
    are kept.

    Args:
        out_dir: the benchmark folder.
        config: what to build.
        progress: a progress bar (videos) on stderr.

    Returns:
        The annotation rows.

    Raises:
        CorpusMismatchError: ``out_dir`` holds a benchmark of another config.
        CorpusError: ``out_dir`` is not usable.
    """
    out = Path(out_dir)
    _check_folder(out, config)
    videos_dir = out / VIDEOS_DIR
    videos_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / MANIFEST_NAME, _manifest(config, {}, complete=False))
    rows: list[dict[str, Any]] = []
    buckets: dict[str, dict[str, Any]] = {}
    total = len(BUCKETS) * config.videos_per_bucket
    number = 0
    with tqdm(total=total, unit="video", desc="synth-bench", disable=not progress, file=sys.stderr) as bar:
        for bucket_index, bucket in enumerate(BUCKETS):
            corpus = config.corpus_config(bucket_index)
            ids: list[str] = []
            for index in range(corpus.num_videos):
                video = write_video(videos_dir, corpus, index)
                number += 1
                rows += videomme_rows(video, bucket, number)
                ids.append(video.id)
                bar.update(1)
            buckets[bucket] = {"seed": corpus.seed, "minutes": corpus.minutes, "videos": ids}
    atomic_write_json(out / ANNOTATIONS_NAME, rows)
    atomic_write_json(out / MANIFEST_NAME, _manifest(config, buckets, complete=True))
    logger.info("wrote a synthetic benchmark of %d questions to %s", len(rows), out)
    return rows


def _manifest(config: SynthBenchConfig, buckets: dict[str, Any], complete: bool) -> dict[str, Any]:
    return {
        "format": SYNTH_BENCH_FORMAT,
        "version": SYNTH_BENCH_VERSION,
        "complete": complete,
        "config": config.to_dict(),
        "held_out_seed_min": HELD_OUT_SEED_MIN,
        "annotations": ANNOTATIONS_NAME,
        "videos": VIDEOS_DIR,
        "buckets": buckets,
    }


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Videos and questions per bucket."""
    summary: dict[str, dict[str, int]] = {}
    for bucket in BUCKETS:
        chosen = [row for row in rows if row["duration"] == bucket]
        summary[bucket] = {"videos": len({row["videoID"] for row in chosen}), "questions": len(chosen)}
    return summary
