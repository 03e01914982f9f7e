"""Video commands: ``salova segment`` and ``salova synth``."""

from __future__ import annotations

from pathlib import Path

import click

from salova.cli.common import clock, echo_json, scene_content_options, show_progress
from salova.fileio import atomic_write_json
from salova.synth import SynthConfig, write_corpus
from salova.video import IngestConfig, SamplingConfig, SceneConfig, segment_video


def print_segments(result) -> None:
    """Print an ingest result as a table: one row per segment with its times, frames and samples."""
    info = result.info
    click.echo(
        f"{info.path.name}: {info.width}x{info.height}, {float(info.fps):g} fps, "
        f"{info.duration_sec or 0:.2f} s; {len(result.segments)} segments "
        f"({len(result.cut_frames)} detector cuts)"
    )
    click.echo(f"{'#':>4}  {'start':>10}  {'end':>10}  {'frames (end excl.)':>18}  {'sampled':>7}")
    for seg in result.segments:
        span = f"{seg.start_frame}-{seg.end_frame}"
        click.echo(
            f"{seg.index:>4}  {clock(seg.start_sec):>10}  {clock(seg.end_sec):>10}  {span:>18}  {seg.num_frames:>7}"
        )


def _warn_damage(result) -> None:
    if result.damaged_frames:
        click.echo(f"warning: {result.path}: skipped {result.damaged_frames} damaged frames", err=True)
    if result.truncated:
        click.echo(f"warning: {result.path}: stream ends before its stated duration (truncated)", err=True)


def scene_options(func):
    """The segment-rule and detector options shared by ``segment`` and ``build-data``."""
    options = [
        click.option(
            "--min-segment-sec",
            type=click.FloatRange(min=0),
            default=SceneConfig.min_segment_sec,
            show_default=True,
            help="Merge segments shorter than this (0: off).",
        ),
        click.option(
            "--max-segment-sec",
            type=click.FloatRange(min=0),
            default=SceneConfig.max_segment_sec,
            show_default=True,
            help="Split segments longer than this (0: off).",
        ),
        click.option(
            "--max-segments",
            type=click.IntRange(min=0),
            default=SceneConfig.max_segments,
            show_default=True,
            help="Cap on segments per video (0: off).",
        ),
        click.option(
            "--threshold",
            type=click.FloatRange(min=0, min_open=True),
            default=SceneConfig.adaptive_threshold,
            show_default=True,
            help="AdaptiveDetector adaptive_threshold.",
        ),
        click.option(
            "--fps",
            "sample_fps",
            type=click.FloatRange(min=0, min_open=True),
            default=SamplingConfig.fps,
            show_default=True,
            help="Frames sampled per second.",
        ),
        click.option("--strict", is_flag=True, help="Fail on damaged frames instead of skipping them."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def ingest_config(
    min_segment_sec, max_segment_sec, max_segments, threshold, sample_fps, strict, keep_frames=False
) -> IngestConfig:
    """The :class:`IngestConfig` of the options added by :func:`scene_options`."""
    return IngestConfig(
        scenes=SceneConfig(
            adaptive_threshold=threshold,
            min_segment_sec=min_segment_sec,
            max_segment_sec=max_segment_sec,
            max_segments=max_segments,
        ),
        sampling=SamplingConfig(fps=sample_fps),
        keep_frames=keep_frames,
        strict=strict,
    )


@click.command()
@click.argument("video", type=click.Path(path_type=Path, readable=False))
@scene_options
@click.option("--json", "as_json", is_flag=True, help="Print the segments as a JSON list.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the JSON list to this file (atomically).",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
def segment(video, as_json, output, progress, **options):
    """Cut VIDEO into segments (one decode pass) and print them."""
    result = segment_video(video, ingest_config(**options), progress=show_progress(progress))
    rows = [s.to_dict() for s in result.segments]
    if output is not None:
        atomic_write_json(output, rows)
    _warn_damage(result)
    if as_json:
        echo_json(rows)
    else:
        print_segments(result)


@click.command()
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Corpus folder (created; an unfinished corpus of the same settings is completed).",
)
@click.option("--seed", type=int, default=SynthConfig.seed, show_default=True)
@click.option("--videos", "num_videos", type=click.IntRange(min=1), default=SynthConfig.num_videos, show_default=True)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=SynthConfig.minutes,
    show_default=True,
    help="Length of each video.",
)
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=SynthConfig.fps, show_default=True)
@click.option("--width", type=click.IntRange(min=16), default=SynthConfig.width, show_default=True)
@click.option("--height", type=click.IntRange(min=16), default=SynthConfig.height, show_default=True)
@scene_content_options
@click.option("--json", "as_json", is_flag=True, help="Print the corpus summary as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
def synth(out_dir, as_json, progress, **fields):
    """Write a deterministic corpus of synthetic long videos with captions and questions."""
    corpus = write_corpus(out_dir, SynthConfig(**fields), progress=show_progress(progress))
    rows = [
        {
            "id": v.id,
            "video": str(corpus.video_path(v)),
            "seconds": v.duration_sec,
            "scenes": len(v.scenes),
            "questions": len(v.questions),
        }
        for v in corpus.videos
    ]
    if as_json:
        echo_json({"out_dir": str(corpus.root), "videos": rows})
        return
    click.echo(f"{corpus.root}: {len(rows)} videos")
    for row in rows:
        click.echo(
            f"  {row['id']}  {clock(row['seconds'])}  {row['scenes']:>4} scenes  "
            f"{row['questions']:>3} questions  {row['video']}"
        )
