"""Uploaded videos on disk: server-made ids, streamed size limit, atomic placement.

Layout under the server's data folder::

    videos/<id>/video<.ext>     the uploaded bytes (extension kept only from a known list)
    videos/<id>/meta.json       id, original file name, size, upload time
    videos/.<id>.part/          an upload in progress (moved to videos/<id>/ once checked)

Ids are ``v_`` and 32 hex digits made by the server; any other string is refused before it
gets near a path, so no request can name a file outside ``videos/``. An upload is written into
its ``.part`` folder while it streams in, counted against the size limit as it arrives, opened
as a video (the ingest's typed errors refuse anything else), and only then moved into place; a
refused upload leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio

from salova.errors import UploadError, UploadTooLargeError
from salova.fileio import atomic_write_json
from salova.video import probe_video

__all__ = ["VIDEO_ID_PATTERN", "MEDIA_TYPES", "StoredVideo", "VideoStore", "is_video_id"]

logger = logging.getLogger(__name__)

VIDEO_ID_PATTERN = re.compile(r"v_[0-9a-f]{32}")
"""The only shape a video id can take."""
MEDIA_TYPES: dict[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".ogv": "video/ogg",
}
"""Extensions kept from an upload's name, and the media type the file is served with."""
FALLBACK_MEDIA_TYPE = "application/octet-stream"
MAX_FILENAME_CHARS = 200
"""An upload's original name is kept (for display only) up to this length."""
_FILE_STEM = "video"
_META_NAME = "meta.json"
_STAGING_SUFFIX = ".part"
_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")


def is_video_id(value: str) -> bool:
    return VIDEO_ID_PATTERN.fullmatch(value) is not None


def _display_name(filename: str | None) -> str:
    name = _UNSAFE_NAME_CHARS.sub("", (filename or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:MAX_FILENAME_CHARS] or "upload"


@dataclass(frozen=True)
class StoredVideo:
    """An accepted upload."""

    id: str
    filename: str
    """The name it was uploaded under (display only)."""
    size: int
    created: float
    path: Path

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(self.path.suffix.lower(), FALLBACK_MEDIA_TYPE)


class VideoStore:
    """The ``videos/`` folder of a server.

    Args:
        data_dir: the server's data folder (created).
    """

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "videos"
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f".*{_STAGING_SUFFIX}"):
            shutil.rmtree(stale, ignore_errors=True)

    def get(self, video_id: str) -> StoredVideo | None:
        """The stored video with this id, or ``None`` (also for any string that is not an id)."""
        if not is_video_id(video_id):
            return None
        folder = self.root / video_id
        try:
            meta = json.loads((folder / _META_NAME).read_text(encoding="utf-8"))
            path = folder / meta["file"]
            if path.parent != folder or not path.is_file():
                return None
            return StoredVideo(video_id, str(meta["filename"]), int(meta["size"]), float(meta["created"]), path)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def all(self) -> list[StoredVideo]:
        """Every stored video, oldest first."""
        found = [self.get(p.name) for p in self.root.iterdir() if is_video_id(p.name)]
        return sorted((v for v in found if v is not None), key=lambda v: v.created)

    async def save(self, chunks: AsyncIterator[bytes], filename: str | None, max_bytes: int) -> StoredVideo:
        """Write an upload as it streams in, check that it is a video, and store it under a new id.

        Args:
            chunks: the upload's bytes.
            filename: its original name (display only; its extension is kept if known).
            max_bytes: the size limit, enforced while reading.

        Returns:
            The stored video.

        Raises:
            UploadTooLargeError: more than ``max_bytes`` arrived.
            UploadError: the upload is empty.
            VideoError: the bytes are not a video the ingest can open (typed as the ingest reports it).
        """
        display = _display_name(filename)
        suffix = Path(display).suffix.lower()
        video_id = f"v_{uuid.uuid4().hex}"
        staging = self.root / f".{video_id}{_STAGING_SUFFIX}"
        staging.mkdir()
        try:
            target = staging / (_FILE_STEM + (suffix if suffix in MEDIA_TYPES else ""))
            size = 0
            with open(target, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise UploadTooLargeError(max_bytes)
                    out.write(chunk)
            if size == 0:
                raise UploadError("the upload is empty")
            await anyio.to_thread.run_sync(probe_video, target)
            meta = {"id": video_id, "filename": display, "size": size, "created": time.time(), "file": target.name}
            atomic_write_json(staging / _META_NAME, meta)
            os.rename(staging, self.root / video_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("stored upload %s (%s, %d bytes)", video_id, display, size)
        stored = self.get(video_id)
        assert stored is not None
        return stored
