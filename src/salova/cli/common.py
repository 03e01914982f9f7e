"""Helpers shared by the command modules."""

from __future__ import annotations

import json
import sys

import click

__all__ = ["echo_json", "clock", "show_progress"]


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:d}:{minutes:02d}:{secs:05.2f}"


def show_progress(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def world_options(func):
    """``--max-objects`` and ``--text-probability``: how busy a synthetic world's scenes are."""
    from salova.synth import SynthConfig

    func = click.option(
        "--text-probability",
        type=click.FloatRange(0, 1),
        default=SynthConfig.text_probability,
        show_default=True,
        help="Share of scenes that show a word on screen.",
    )(func)
    return click.option(
        "--max-objects",
        type=click.IntRange(1, 3),
        default=SynthConfig.max_objects,
        show_default=True,
        help="Objects per scene, at most.",
    )(func)


def scene_content_options(func):
    """What a synthetic video holds: ``--questions-per-video``, ``--duplicate-probability`` and the
    :func:`world_options` (``salova synth`` and ``salova synth-stream``)."""
    from salova.synth import SynthConfig

    func = world_options(func)
    func = click.option(
        "--duplicate-probability",
        type=click.FloatRange(0, 1),
        default=SynthConfig.duplicate_probability,
        show_default=True,
        help="Share of scenes that repeat an earlier one nearly exactly.",
    )(func)
    return click.option(
        "--questions-per-video", type=click.IntRange(min=0), default=SynthConfig.questions_per_video, show_default=True
    )(func)
