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
