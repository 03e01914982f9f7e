"""Live sources: decode a video that is still being written or arriving through a pipe.

The one-pass ingest (:class:`~salova.video.SegmentIterator`) already works incrementally; what a
live source adds is the reading. Three kinds are supported (:func:`open_live`):

* **a growing file**: a path whose writer is still appending. It is read through
  :class:`FollowFile`, which waits at the current end for more bytes instead of stopping, and ends
  once the file has not grown for ``idle_timeout`` seconds (or when told to stop). The container
  must be readable front to back without its end: MPEG-TS (``.ts``), Matroska/WebM written live,
  or fragmented MP4 (``-movflags frag_keyframe+empty_moov``). A plain MP4 being written has its
  index (``moov``) only at the end and cannot be read before it is finished.
* **a pipe**: ``-`` reads standard input; any readable binary file object (a FIFO, a socket's
  file, :class:`PushStream`) works the same way. Same container rule.
* **a URL** that FFmpeg opens itself (``udp://``, ``rtp://``, ``rtsp://``, ``srt://``, ``http://``...),
  as far as the installed PyAV's FFmpeg supports the protocol.

A live source has no stated duration, so the ingest's ``max_segments`` rule (which needs one) does
not apply and segments follow the scene cuts and ``max_segment_sec`` alone. Nothing here keeps more
than the decoder's own buffers: memory does not grow with the length of the stream.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import av.error

from salova.errors import (
    ConfigError,
    VideoDecodeError,
    VideoNotFoundError,
    VideoPermissionError,
    VideoTooLargeError,
)
from salova.video.config import IngestConfig
from salova.video.decode import VideoDecoder
from salova.video.ingest import SegmentIterator

__all__ = [
    "STDIN",
    "LiveConfig",
    "FollowFile",
    "PushStream",
    "LiveDecoder",
    "open_live",
    "iter_live_segments",
    "is_url",
]

logger = logging.getLogger(__name__)

STDIN = "-"
"""The source name that reads standard input."""


def is_url(source: str) -> bool:
    """Whether ``source`` names a URL for FFmpeg (``scheme://...``) rather than a path."""
    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.isalnum() and len(scheme) > 1


@dataclass(frozen=True)
class LiveConfig:
    """How a live source is read."""

    idle_timeout: float = 10.0
    """A growing file that has not grown for this many seconds has ended."""
    poll_seconds: float = 0.05
    """How often a growing file is checked for new bytes."""
    format: str | None = None
    """The container format for FFmpeg (``mpegts``, ``matroska``, ``mp4``...); ``None`` probes."""
    probe_bytes: int = 1 << 20
    """Bytes FFmpeg may read to identify the stream before the first frame (its ``probesize``;
    FFmpeg's default of 5 MB is minutes of a low-rate stream)."""
    analyze_seconds: float = 2.0
    """Stream time FFmpeg may read to find the stream parameters (its ``analyzeduration``)."""
    read_bytes: int = 1 << 16
    """Largest read handed to the decoder at once."""

    def __post_init__(self) -> None:
        checks = (
            ("idle_timeout", self.idle_timeout > 0, "> 0 seconds"),
            ("poll_seconds", self.poll_seconds > 0, "> 0 seconds"),
            ("probe_bytes", self.probe_bytes >= 2048, ">= 2048"),
            ("analyze_seconds", self.analyze_seconds > 0, "> 0 seconds"),
            ("read_bytes", self.read_bytes >= 1024, ">= 1024"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"live {name} must be {expected}, got {getattr(self, name)!r}")

    def ffmpeg_options(self) -> dict[str, str]:
        """FFmpeg's probing options."""
        return {
            "probesize": str(self.probe_bytes),
            "analyzeduration": str(round(self.analyze_seconds * 1_000_000)),
        }


class FollowFile:
    """A read-only, non-seekable view of a file that is still being written (``tail -f`` for bytes).

    ``read`` returns what is there; at the current end it waits for more instead of returning end of
    file, and returns ``b""`` (the end) once the file has not grown for ``idle_timeout`` seconds,
    when ``finished`` is set and everything written has been read, or when ``stop`` is set.

    Args:
        path: the file (it must exist).
        idle_timeout: seconds without growth that end the stream.
        poll_seconds: how often the end is checked for new bytes.
        finished: set by the writer when it is done (ends the stream without waiting for the timeout).
        stop: set to end the stream at once.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        idle_timeout: float = 10.0,
        poll_seconds: float = 0.05,
        finished: threading.Event | None = None,
        stop: threading.Event | None = None,
    ):
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoNotFoundError(self.path, "no such file (a growing file must exist before it is followed)")
        try:
            self._handle = open(self.path, "rb")
        except PermissionError as exc:
            raise VideoPermissionError(self.path, "permission denied (cannot read the file)") from exc
        self.idle_timeout = idle_timeout
        self.poll_seconds = poll_seconds
        self.finished = finished or threading.Event()
        self.stop = stop or threading.Event()
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        waited = 0.0
        while not self.stop.is_set():
            data = self._handle.read(size if size and size > 0 else -1)
            if data:
                self.position += len(data)
                return data
            if self.finished.is_set() and os.fstat(self._handle.fileno()).st_size <= self.position:
                return b""
            if waited >= self.idle_timeout:
                logger.info("%s: no new bytes for %.1f s; the stream has ended", self.path, waited)
                return b""
            time.sleep(self.poll_seconds)
            waited += self.poll_seconds
        return b""

    def close(self) -> None:
        self._handle.close()


class PushStream:
    """A bounded in-memory pipe: one thread :meth:`write`\\ s bytes as they arrive (an upload), the
    decoder :meth:`read`\\ s them. A writer blocks while ``max_bytes`` are waiting, so memory stays
    bounded whatever the stream's length; :meth:`end` marks the end, :meth:`cancel` drops everything.

    Args:
        max_bytes: most bytes held at once.
    """

    def __init__(self, max_bytes: int = 8 << 20):
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.max_bytes = max_bytes
        self._chunks: deque[bytes] = deque()
        self._held = 0
        self._ended = False
        self._cancelled = False
        self._changed = threading.Condition()
        self.received = 0
        """Bytes written so far."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def ended(self) -> bool:
        return self._ended or self._cancelled

    def write(self, data: bytes, timeout: float | None = None) -> int:
        """Append ``data``, waiting while the buffer is full.

        Raises:
            ValueError: the stream has ended or was cancelled.
            TimeoutError: no room within ``timeout`` seconds.
        """
        with self._changed:
            if self.ended:
                raise ValueError("the stream has ended; no more data is accepted")
            if not self._changed.wait_for(lambda: self._held < self.max_bytes or self.ended, timeout):
                raise TimeoutError(f"the stream's buffer stayed full for {timeout} s")
            if self._cancelled:
                raise ValueError("the stream was cancelled")
            self._chunks.append(bytes(data))
            self._held += len(data)
            self.received += len(data)
            self._changed.notify_all()
        return len(data)

    def end(self) -> None:
        """No more data will come: the reader gets the rest, then the end."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def cancel(self) -> None:
        """Drop what is buffered and end at once."""
        with self._changed:
            self._cancelled = True
            self._chunks.clear()
            self._held = 0
            self._changed.notify_all()

    def read(self, size: int = -1) -> bytes:
        with self._changed:
            self._changed.wait_for(lambda: self._chunks or self.ended)
            if not self._chunks:
                return b""
            chunk = self._chunks.popleft()
            if 0 < size < len(chunk):
                self._chunks.appendleft(chunk[size:])
                chunk = chunk[:size]
            self._held -= len(chunk)
            self._changed.notify_all()
            return chunk


class LiveDecoder(VideoDecoder):
    """:class:`~salova.video.VideoDecoder` over a live source (see :func:`open_live`).

    Args:
        source: a readable binary file object, or a URL FFmpeg opens itself.
        name: what messages call the source.
        config: format hint and probing limits.
        strict, threads, max_frame_pixels: as for :class:`~salova.video.VideoDecoder`.

    Raises:
        VideoDecodeError: the source cannot be opened as a video.
        NoVideoStreamError, VideoTooLargeError: as for :class:`~salova.video.VideoDecoder`.
    """

    def __init__(
        self,
        source: BinaryIO | str,
        *,
        name: str,
        config: LiveConfig | None = None,
        strict: bool = False,
        threads: int = 0,
        max_frame_pixels: int = 7680 * 4320,
    ):
        config = config or LiveConfig()
        self.path = Path(name)
        self.strict = strict
        self.damaged_frames = 0
        self.decoded_frames = 0
        self.truncated = False
        self._source = source
        try:
            self._container = av.open(
                source,
                format=config.format,
                options=config.ffmpeg_options(),
                metadata_errors="ignore",
                buffer_size=config.read_bytes,
            )
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
            raise VideoDecodeError(self.path, f"cannot be opened as a live video ({exc})") from exc
        try:
            self._stream = self._open_stream(threads)
            self.info = self._read_info()
            if self.info.num_pixels > max_frame_pixels:
                raise VideoTooLargeError(
                    self.path, f"frame size {self.info.width}x{self.info.height} exceeds max_frame_pixels"
                )
        except BaseException:
            self._container.close()
            raise

    def close(self) -> None:
        super().close()
        closer = getattr(self._source, "close", None)
        if closer is not None and self._source is not sys.stdin.buffer:
            closer()


def open_live(
    source: str | os.PathLike | BinaryIO,
    config: LiveConfig | None = None,
    *,
    stop: threading.Event | None = None,
    finished: threading.Event | None = None,
    strict: bool = False,
    threads: int = 0,
) -> LiveDecoder:
    """Open a live source for decoding.

    Args:
        source: ``-`` (standard input), a URL (``udp://...``), a path to a growing file, or a readable
            binary file object (a pipe, :class:`PushStream`).
        config: timeouts, format hint and probing limits.
        stop: set to end reading a growing file at once.
        finished: set when a growing file's writer is done (ends without the idle timeout).
        strict, threads: as for :class:`~salova.video.VideoDecoder`.

    Returns:
        A :class:`LiveDecoder`.

    Raises:
        VideoNotFoundError: a path that does not exist.
        VideoDecodeError: the source is not a readable live video.
    """
    config = config or LiveConfig()
    if not isinstance(source, str | os.PathLike):
        name = getattr(source, "name", None) or type(source).__name__
        return LiveDecoder(source, name=str(name), config=config, strict=strict, threads=threads)
    text = os.fspath(source)
    if text == STDIN:
        return LiveDecoder(sys.stdin.buffer, name="stdin", config=config, strict=strict, threads=threads)
    if is_url(text):
        return LiveDecoder(text, name=text, config=config, strict=strict, threads=threads)
    path = Path(text)
    if not path.exists():
        raise VideoNotFoundError(text, "no such file (a live source is -, a URL or a file being written)")
    if stat.S_ISFIFO(path.stat().st_mode):
        return LiveDecoder(open(path, "rb"), name=text, config=config, strict=strict, threads=threads)
    follow = FollowFile(
        text, idle_timeout=config.idle_timeout, poll_seconds=config.poll_seconds, finished=finished, stop=stop
    )
    try:
        return LiveDecoder(follow, name=text, config=config, strict=strict, threads=threads)
    except BaseException:
        follow.close()
        raise


def iter_live_segments(
    source: str | os.PathLike | BinaryIO,
    config: IngestConfig | None = None,
    live: LiveConfig | None = None,
    *,
    stop: threading.Event | None = None,
    finished: threading.Event | None = None,
) -> SegmentIterator:
    """The segments of a live source, each yielded as soon as it is final (see :func:`open_live`).

    Example:
        >>> from salova.video import iter_live_segments
        >>> for segment in iter_live_segments("-"):  # doctest: +SKIP
        ...     print(segment.start_sec, segment.end_sec)
    """
    config = config or IngestConfig()
    decoder = open_live(source, live, stop=stop, finished=finished, strict=config.strict, threads=config.decode_threads)
    return SegmentIterator(decoder.path, config, decoder=decoder)
