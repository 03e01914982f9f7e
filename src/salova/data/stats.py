"""The statistics the paper reports for SceneWalk (section 3.1, Appendix A.1), for any build.

Videos, hours, segments, mean video and segment length, words per caption and the split of
video durations into the paper's three ranges: short (0-240 s), long (240-600 s) and
extreme-long (600 s and more; SceneWalk's longest video runs 2,280 s). :func:`plot_stats`
draws the distributions with matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from salova.data.schema import Record, read_records
from salova.errors import PathError
from salova.fileio import atomic_path

__all__ = ["DURATION_BUCKETS", "DataStats", "compute_stats", "load_build_records", "format_stats", "plot_stats"]

DURATION_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("short", 0.0, 240.0),
    ("long", 240.0, 600.0),
    ("extreme-long", 600.0, math.inf),
)
"""Video duration ranges of the paper's Appendix A.1: (name, from seconds, to seconds)."""
RECORD_FILES = ("captions.jsonl", "qa.jsonl")
"""Files of a build folder that :func:`load_build_records` reads, when present."""
HISTOGRAM_BINS = 30
"""Bins of each histogram in the plot."""
HISTOGRAM_HEADROOM = 1.05
"""Each histogram spans 0 to this multiple of its largest value."""
PLOT_DPI = 120
"""Resolution of the saved plot."""
PLOT_SIZE_INCHES = (10, 7)
"""Width and height of the plot."""


@dataclass(frozen=True)
class DataStats:
    """Statistics of a set of records; the lists at the end feed the plot."""

    videos: int
    hours: float
    segments: int
    mean_video_sec: float
    mean_segment_sec: float
    mean_segments_per_video: float
    captions: int
    mean_caption_words: float
    questions: int
    mean_positives_per_query: float
    """Mean number of segments labelled positive per query (captions and questions)."""
    buckets: tuple[dict[str, Any], ...]
    """Per duration range: name, seconds, videos and segments with their shares."""
    video_seconds: tuple[float, ...] = field(repr=False, default=())
    segment_seconds: tuple[float, ...] = field(repr=False, default=())
    caption_words: tuple[int, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON form without the per-item lists."""
        keys = (
            "videos",
            "hours",
            "segments",
            "mean_video_sec",
            "mean_segment_sec",
            "mean_segments_per_video",
            "captions",
            "mean_caption_words",
            "questions",
            "mean_positives_per_query",
        )
        return {**{key: getattr(self, key) for key in keys}, "duration_buckets": [dict(b) for b in self.buckets]}


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(np.mean(values)) if values else 0.0


def compute_stats(records: Iterable[Record]) -> DataStats:
    """Statistics of ``records``; a video with both a caption and a QA record counts once.

    Example:
        >>> compute_stats([]).videos
        0
    """
    videos: dict[str, Record] = {}
    captions: list[int] = []
    questions = 0
    positives: list[int] = []
    for record in records:
        # The caption record of a video defines its segments when both kinds are present.
        if record.id not in videos or record.task == "captions":
            videos[record.id] = record
        if record.task == "captions":
            captions.extend(len(text.split()) for text in record.answers())
        else:
            questions += record.num_queries
        positives.extend(sum(row) for row in record.labels)
    durations = [r.duration_sec for r in videos.values()]
    segment_seconds = [s.duration_sec for r in videos.values() for s in r.scenes]
    total_segments = len(segment_seconds)
    buckets = []
    for name, low, high in DURATION_BUCKETS:
        inside = [r for r in videos.values() if low <= r.duration_sec < high]
        count = sum(r.num_segments for r in inside)
        buckets.append(
            {
                "name": name,
                "from_sec": low,
                "to_sec": None if math.isinf(high) else high,
                "videos": len(inside),
                "video_share": len(inside) / len(videos) if videos else 0.0,
                "segments": count,
                "segment_share": count / total_segments if total_segments else 0.0,
            }
        )
    return DataStats(
        videos=len(videos),
        hours=sum(durations) / 3600.0,
        segments=total_segments,
        mean_video_sec=_mean(durations),
        mean_segment_sec=_mean(segment_seconds),
        mean_segments_per_video=total_segments / len(videos) if videos else 0.0,
        captions=len(captions),
        mean_caption_words=_mean(captions),
        questions=questions,
        mean_positives_per_query=_mean(positives),
        buckets=tuple(buckets),
        video_seconds=tuple(durations),
        segment_seconds=tuple(segment_seconds),
        caption_words=tuple(captions),
    )


def load_build_records(path: str | Path) -> list[Record]:
    """Records of a build folder (its ``captions.jsonl`` and ``qa.jsonl``) or of one record file.

    Raises:
        PathError: nothing to read at ``path``.
        RecordError: a record is malformed.
    """
    path = Path(path)
    if path.is_file():
        return read_records(path)
    files = [path / name for name in RECORD_FILES if (path / name).is_file()]
    if not files:
        raise PathError(path, f"holds no {' or '.join(RECORD_FILES)}; is it a finished build-data folder?")
    return [record for file in files for record in read_records(file)]


def format_stats(stats: DataStats) -> str:
    """The statistics as the lines ``salova data-stats`` prints."""
    lines = [
        f"videos            {stats.videos:,}",
        f"hours             {stats.hours:,.2f}  (mean video {stats.mean_video_sec:,.1f} s)",
        f"segments          {stats.segments:,}  ({stats.mean_segments_per_video:.1f} per video)",
        f"mean segment      {stats.mean_segment_sec:.2f} s",
        f"captions          {stats.captions:,}  ({stats.mean_caption_words:.1f} words on average)",
        f"questions         {stats.questions:,}",
        f"positives/query   {stats.mean_positives_per_query:.2f} segments",
        "duration buckets  range           videos   share  segments   share",
    ]
    for b in stats.buckets:
        span = f"{b['from_sec']:g}-{b['to_sec']:g} s" if b["to_sec"] is not None else f">= {b['from_sec']:g} s"
        lines.append(
            f"  {b['name']:<15} {span:<14} {b['videos']:>7,} {b['video_share']:>7.1%} "
            f"{b['segments']:>9,} {b['segment_share']:>7.1%}"
        )
    return "\n".join(lines)


def plot_stats(stats: DataStats, path: str | Path) -> Path:
    """Draw video durations, segment lengths, words per caption and the duration buckets (PNG).

    Returns:
        ``path``, written atomically.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    figure = Figure(figsize=PLOT_SIZE_INCHES)
    axes = figure.subplots(2, 2)
    panels = [
        (axes[0, 0], stats.video_seconds, "video duration (s)", "videos"),
        (axes[0, 1], stats.segment_seconds, "segment length (s)", "segments"),
        (axes[1, 0], stats.caption_words, "words per caption", "captions"),
    ]
    for axis, values, label, unit in panels:
        if values:
            # From 0, so that equal values (all videos of one length) still make a visible bar.
            axis.hist(values, bins=HISTOGRAM_BINS, range=(0, max(values) * HISTOGRAM_HEADROOM), color="#4c72b0")
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel(label)
        axis.set_ylabel(unit)
    for _, low, _high in DURATION_BUCKETS[1:]:
        axes[0, 0].axvline(low, color="#c44e52", linestyle="--", linewidth=1)
    names = [b["name"] for b in stats.buckets]
    axes[1, 1].bar(names, [b["video_share"] * 100 for b in stats.buckets], color="#55a868")
    axes[1, 1].set_ylabel("% of videos")
    axes[1, 1].set_title("duration buckets")
    figure.suptitle(f"{stats.videos} videos, {stats.hours:.2f} h, {stats.segments} segments")
    figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=PLOT_DPI)
    return path
