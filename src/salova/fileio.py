"""Atomic file writes: a reader sees the old file or the complete new one, never a part.

A write goes to ``.<name>.<pid>.<random>.part`` beside the target and is moved into place
with ``os.replace``. A process killed mid-write leaves only such a ``.part`` file, which
:func:`remove_stale_parts` clears before the next attempt.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["PART_SUFFIX", "atomic_path", "atomic_write_text", "atomic_write_json", "remove_stale_parts", "dotted_keys"]

PART_SUFFIX = ".part"
"""Suffix of temporary files written by :func:`atomic_path`."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on success it replaces ``path``.

    The caller creates the temporary file (with the process's usual permissions). On any
    exception it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}")
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def remove_stale_parts(path: str | Path) -> None:
    """Delete temporary files that an interrupted write of ``path`` left behind."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*{PART_SUFFIX}"):
        stale.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def dotted_keys(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``), to name
    the settings in which a saved run and a new one differ."""
    if not isinstance(data, dict):
        return {prefix: data}
    flat = {}
    for key, value in data.items():
        flat.update(dotted_keys(value, f"{prefix}.{key}" if prefix else key))
    return flat
