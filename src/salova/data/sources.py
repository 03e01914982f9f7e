"""Where the videos of a data build come from, and the ids they get.

A build reads a folder of videos (searched recursively) or a single file. A video's id is
its path relative to that folder, in POSIX form, without the file suffix: ``clips/a.mp4``
has the id ``clips/a``. Ids therefore stay the same from run to run and from machine to
machine, whatever else the folder holds; two files that differ only in their suffix
(``a.mp4`` and ``a.mkv``) would share an id, and the build refuses them with an error
naming both. Hidden files and folders (names starting with ``.``, which includes the
temporary files of interrupted writes) are skipped.

A synthetic video carries a JSON *sidecar* beside it (``videos/<id>.json``, see
:mod:`salova.synth`) with its true scenes, captions and questions; :func:`load_sidecar`
reads it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from salova.errors import DataError, ModelFolderError, PathError
from salova.synth.schema import SynthScene, SynthVideo

__all__ = [
    "VIDEO_SUFFIXES",
    "VideoInput",
    "video_id",
    "discover_videos",
    "result_file_name",
    "load_sidecar",
    "true_scene_index",
    "pick_indices",
    "pick_frames",
    "load_model_folder",
]

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts")
"""File suffixes (any case) taken for videos when a folder is searched."""
SIDECAR_SUFFIX = ".json"
"""Suffix of a synthetic video's sidecar, which sits beside the video under the same stem."""


@dataclass(frozen=True)
class VideoInput:
    """One video to build: its id, its file and its path relative to the videos folder."""

    id: str
    path: Path
    """Absolute path of the file."""
    relative: str
    """POSIX path relative to the videos folder; the record's ``video`` field."""

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "path": str(self.path), "relative": self.relative}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> VideoInput:
        return cls(id=data["id"], path=Path(data["path"]), relative=data["relative"])


def video_id(relative: str) -> str:
    """The id of the video at POSIX path ``relative`` (relative to the videos folder).

    Example:
        >>> video_id("clips/day 1/a.mp4")
        'clips/day 1/a'
    """
    head, _, name = relative.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return f"{head}/{stem}" if head else stem


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def discover_videos(source: str | Path) -> list[VideoInput]:
    """List the videos of a folder (recursively, sorted by path) or a single video file.

    Args:
        source: a folder of videos or one video file.

    Returns:
        One :class:`VideoInput` per video, sorted by relative path.

    Raises:
        PathError: ``source`` does not exist, holds no video, or two videos share an id.

    Example:
        >>> [v.id for v in discover_videos("out/synth/videos")]  # doctest: +SKIP
        ['synth-0-00000', 'synth-0-00001']
    """
    source = Path(source)
    if source.is_file():
        path = source.resolve()
        return [VideoInput(id=video_id(path.name), path=path, relative=path.name)]
    if not source.is_dir():
        raise PathError(source, "no such video file or folder")
    root = source.resolve()
    found: dict[str, VideoInput] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if _is_hidden(relative) or path.suffix.lower() not in VIDEO_SUFFIXES or not path.is_file():
            continue
        item = VideoInput(id=video_id(relative.as_posix()), path=path, relative=relative.as_posix())
        if item.id in found:
            raise PathError(
                root,
                f"videos {found[item.id].relative!r} and {item.relative!r} would share the id {item.id!r}; rename one",
            )
        found[item.id] = item
    if not found:
        raise PathError(root, f"holds no video files (looked for {', '.join(VIDEO_SUFFIXES)})")
    return sorted(found.values(), key=lambda v: v.relative)


def result_file_name(video: str) -> str:
    """File name of a video's result: its id with ``/`` and other unsafe characters escaped.

    Example:
        >>> result_file_name("clips/a b")
        'clips%2Fa%20b.json'
    """
    return quote(video, safe="") + ".json"


def load_sidecar(video: VideoInput) -> SynthVideo | None:
    """The synthetic sidecar beside ``video`` (same stem, ``.json``), or ``None`` if there is none.

    Raises:
        DataError: the sidecar exists but cannot be read or is malformed.
    """
    path = video.path.with_suffix(SIDECAR_SUFFIX)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable sidecar: {exc}") from exc
    return SynthVideo.from_dict(data, where=str(path))


def true_scene_index(scenes: Sequence[SynthScene], start_sec: float, end_sec: float) -> int:
    """The true scene that overlaps ``[start_sec, end_sec)`` the most (the earliest on a tie).

    This is how a detected segment is matched to the synthetic world's ground truth.

    Raises:
        ValueError: ``scenes`` is empty.
    """
    if not scenes:
        raise ValueError("no scenes to match")
    overlaps = [min(end_sec, s.end_sec) - max(start_sec, s.start_sec) for s in scenes]
    return int(np.argmax(overlaps))


def pick_indices(total: int, count: int) -> np.ndarray:
    """Indices of up to ``count`` of ``total`` items spread evenly (first and last included); 0 = all.

    Example:
        >>> pick_indices(10, 3).tolist()
        [0, 4, 9]
    """
    if count <= 0 or total <= count:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, count).round().astype(int))


def pick_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` frames spread evenly over ``frames`` (see :func:`pick_indices`)."""
    return frames[pick_indices(len(frames), count)]


def load_model_folder(folder: str | Path, what: str, *loaders: Any) -> list[Any]:
    """Load a local model folder with each of ``loaders`` (``from_pretrained`` classes), offline.

    Args:
        folder: the model folder.
        what: what the folder should hold, for error messages ("V2T model", ...).
        loaders: classes such as ``AutoModel`` and ``AutoProcessor``.

    Returns:
        One loaded object per loader, in order.

    Raises:
        ModelFolderError: the folder does not exist or a loader fails on it.
    """
    path = Path(folder)
    if not path.is_dir():
        raise ModelFolderError(path, f"no such {what} folder")
    try:
        return [loader.from_pretrained(path, local_files_only=True) for loader in loaders]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFolderError(path, f"cannot load a {what}: {exc}") from exc
