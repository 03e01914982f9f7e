"""SEAL commands: ``salova synth-stream`` (a synthetic live stream), ``salova tokens`` (semantic
tokens of a video, drawn) and ``salova seal-eval`` (the selection and streaming experiments)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from salova.cli.common import clock, echo_json, scene_content_options, world_options
from salova.synth import SynthConfig
from salova.synth.live import LIVE_FORMATS

__all__ = ["synth_stream", "tokens", "seal_eval"]


@click.command("synth-stream")
@click.option(
    "--out",
    default="-",
    show_default=True,
    help="Where the stream goes: '-' (standard output, for a pipe) or a file that grows as it is written.",
)
@click.option("--sidecar", type=click.Path(dir_okay=False, path_type=Path), help="Also write the ground truth JSON.")
@click.option("--seed", type=int, default=SynthConfig.seed, show_default=True)
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=SynthConfig.minutes, show_default=True)
@click.option("--fps", type=click.FloatRange(min=1), default=SynthConfig.fps, show_default=True)
@click.option("--width", type=click.IntRange(min=16), default=SynthConfig.width, show_default=True)
@click.option("--height", type=click.IntRange(min=16), default=SynthConfig.height, show_default=True)
@click.option("--min-scene-sec", type=click.FloatRange(min=0), default=SynthConfig.min_scene_sec, show_default=True)
@click.option("--max-scene-sec", type=click.FloatRange(min=0), default=SynthConfig.max_scene_sec, show_default=True)
@scene_content_options
@click.option("--format", "container", type=click.Choice(sorted(LIVE_FORMATS)), default="mpegts", show_default=True)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Pace the stream at this multiple of real time (1: live) [default: as fast as possible].",
)
def synth_stream(out, sidecar, container, speed, **fields):
    """Write a synthetic long video as a live stream (MPEG-TS, Matroska or fragmented MP4), frame by frame.

    For example: salova synth-stream --minutes 120 --fps 2 --width 64 --height 64 --min-scene-sec 8 |
    salova ask --stream - "Which word is written on screen?" --model tiny --at 600 --at 3600
    """
    from salova.fileio import atomic_write_json
    from salova.synth.live import write_live_stream

    config = SynthConfig(**fields)
    target = sys.stdout.buffer if out == "-" else Path(out)
    progress = {"frames": 0}
    video = write_live_stream(
        target, config, format=container, speed=speed, on_frame=lambda frames: progress.update(frames=frames)
    )
    if out == "-":
        # The reader may have closed the pipe early: nothing more goes to it, not even at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if sidecar is not None:
        atomic_write_json(sidecar, video.to_dict())
    played = progress["frames"] / config.fps
    click.echo(
        f"streamed {clock(played)} of {clock(video.duration_sec)} ({len(video.scenes)} scenes) to {out}", err=True
    )


@click.command("tokens")
@click.argument("video", type=click.Path(path_type=Path, readable=False))
@click.option(
    "--draw", type=click.Path(dir_okay=False, path_type=Path), help="Draw the action tracklets into this PNG."
)
@click.option("--frames", type=click.IntRange(min=1), default=12, show_default=True, help="Frames drawn.")
@click.option("--columns", type=click.IntRange(min=1), default=4, show_default=True, help="Frames per row.")
@click.option("--tile-width", type=click.IntRange(min=64), default=320, show_default=True, help="Width of a frame.")
@click.option("--motion", default="motion", show_default=True, help="Motion proposal source (motion, mog2).")
@click.option("--json", "as_json", is_flag=True, help="Print every token (kind, time span, box) as JSON.")
def tokens(video, draw, frames, columns, tile_width, motion, as_json):
    """SEAL's semantic tokens of VIDEO: scene frames, action tracklets and object regions."""
    import cv2

    from salova.video.tokens import SemanticConfig, draw_tracklets, semantic_tokens

    result = semantic_tokens(video, SemanticConfig(motion_source=motion))
    if draw is not None:
        image = draw_tracklets(video, result, frames=frames, columns=columns, tile_width=tile_width)
        draw.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(draw), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise click.ClickException(f"cannot write {draw}")
    if as_json:
        echo_json({"counts": result.counts(), "tokens": [t.to_dict() for t in result.all()]})
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in result.counts().items())
    click.echo(
        f"{Path(video).name}: {counts} tokens; {result.dropped_tracklets} tracklets under L_min dropped, "
        f"{result.split_tracks} splits at L_max, {result.cuts} cuts"
    )
    for token in result.action:
        track = token.tracklet
        click.echo(
            f"  action {f'#{track.track_id}.{track.piece}':>8s}  {token.start:6.2f}-{token.end:6.2f} s  "
            f"{len(track.boxes):3d} boxes  union {token.box.to_list()}"
        )
    if draw is not None:
        click.echo(f"drawn: {draw}")


@click.command("seal-eval")
@click.option("--model", default=None, help="A SALOVA checkpoint folder, 'salova' (shipped) or 'tiny'.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Figure and reports (coverage.png, report.md, report.json).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/seal"),
    show_default=True,
    help="Corpus and predictions (reused, resumable).",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Corpus seed [default: 0].")
@click.option("--videos", type=click.IntRange(min=1), default=None, help="Videos [default: see docs/seal.md].")
@click.option(
    "--minutes", type=click.FloatRange(min=0.5), default=None, help="Video length [default: see docs/seal.md]."
)
@world_options
@click.option("--alpha", type=click.FloatRange(0, 1), default=None, help="SEAL's relevance weight [default: 0.9].")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N questions.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Feature cache of the assistant [default: its own].",
)
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True, help="Torch threads (0: torch's).")
def seal_eval(
    model, out_dir, work_dir, seed, videos, minutes, max_objects, text_probability, alpha, limit, cache_dir, threads
):
    """Coverage of distinct relevant scenes (topk vs seal), accuracy with each selector, streaming vs global."""
    import torch

    from salova.eval.seal_eval import SealEvalConfig, run_seal_eval

    if threads:
        torch.set_num_threads(threads)
    given = {"seed": seed, "videos": videos, "minutes": minutes, "alpha": alpha, "limit": limit}
    given |= {"max_objects": max_objects, "text_probability": text_probability}
    config = SealEvalConfig(**{key: value for key, value in given.items() if value is not None})
    report = run_seal_eval(model, work_dir, out_dir, config, cache_dir=cache_dir)
    accuracy = report["accuracy"]
    click.echo(f"{out_dir}/report.md, coverage.png; model {report['model']}")
    for name, row in accuracy.items():
        click.echo(f"  {name:6s} accuracy {row['accuracy']:5.1f}%  ({row['correct']}/{row['counted']})")
