"""Open, validate and decode a video file once with PyAV.

Every way a file can be unusable becomes a typed :mod:`salova.errors` exception whose
message names the file and the problem. Damaged frames in the middle of a file are
skipped and counted, or raise :class:`~salova.errors.CorruptVideoError` in strict mode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from salova.errors import (
    CorruptVideoError,
    NoVideoStreamError,
    VideoDecodeError,
    VideoNotFoundError,
    VideoPermissionError,
    VideoTooLargeError,
)

__all__ = ["VideoInfo", "DecodedFrame", "VideoDecoder", "probe_video", "check_video_path"]

logger = logging.getLogger(__name__)

TRUNCATION_TOLERANCE_SEC = 1.0
"""A decode that ends this much before the container's stated duration means a truncated file."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video stream."""

    path: Path
    width: int
    """Coded width in pixels (before rotation)."""
    height: int
    """Coded height in pixels (before rotation)."""
    fps: Fraction
    """Average frame rate; frame numbers are CFR-equivalent (``round(seconds * fps)``)."""
    duration_sec: float | None
    """Stated duration, or ``None`` when the container does not know it (streams)."""
    num_frames: int | None
    """Stated or estimated frame count, or ``None``."""
    codec: str

    @property
    def num_pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame and where it sits in the video."""

    frame: av.VideoFrame
    time: float
    """Presentation time in seconds from the start of the stream."""
    index: int
    """CFR-equivalent frame number, 0-based (PySceneDetect counts the same way)."""
    pts: int
    """Presentation timestamp relative to the stream start, in ``time_base`` units."""
    time_base: Fraction
    rotation: int
    """Counter-clockwise rotation in degrees (0, 90, 180, 270) that shows the frame upright."""


def check_video_path(path: str | Path) -> Path:
    """Check that ``path`` is a readable, non-empty regular file and return it.

    Raises:
        VideoNotFoundError: missing, a directory, or not a regular file.
        VideoPermissionError: the file cannot be read.
        VideoDecodeError: the file is empty.
    """
    path = Path(path)
    if not path.exists():
        raise VideoNotFoundError(path, "no such file")
    if path.is_dir():
        raise VideoNotFoundError(path, "is a directory, not a video file")
    if not path.is_file():
        raise VideoNotFoundError(path, "is not a regular file")
    try:
        with open(path, "rb") as handle:
            first = handle.read(1)
    except PermissionError as exc:
        raise VideoPermissionError(path, "permission denied (cannot read the file)") from exc
    except OSError as exc:
        raise VideoDecodeError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not first:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    return path


def _ffmpeg_reason(exc: BaseException) -> str:
    """The FFmpeg explanation of an error, without PyAV's errno and path decorations."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc).strip().rstrip(".")


class VideoDecoder:
    """Decode the first video stream of a file, frame by frame, exactly once.

    Use as a context manager::

        with VideoDecoder("movie.mp4") as decoder:
            for decoded in decoder:
                ...
        print(decoder.damaged_frames)

    Args:
        path: the video file.
        strict: raise on the first damaged frame instead of skipping it.
        threads: decoder threads, 0 lets FFmpeg choose.
        max_frame_pixels: refuse frames larger than this many pixels.

    Raises:
        VideoNotFoundError, VideoPermissionError, VideoDecodeError, NoVideoStreamError,
        VideoTooLargeError: the file cannot be used (raised by the constructor).
        CorruptVideoError: while iterating, with ``strict=True``, on a damaged frame or a
            truncated stream.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        strict: bool = False,
        threads: int = 0,
        max_frame_pixels: int = 7680 * 4320,
    ):
        self.path = check_video_path(path)
        self.strict = strict
        self.damaged_frames = 0
        self.decoded_frames = 0
        self.truncated = False
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except PermissionError as exc:
            raise VideoPermissionError(self.path, "permission denied (cannot read the file)") from exc
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise VideoDecodeError(
                self.path, f"cannot be opened as a video ({_ffmpeg_reason(exc)}); truncated or not a video file"
            ) from exc
        try:
            self._stream = self._open_stream(threads)
            self.info = self._read_info()
            if self.info.num_pixels > max_frame_pixels:
                raise VideoTooLargeError(
                    self.path,
                    f"frame size {self.info.width}x{self.info.height} ({self.info.num_pixels} pixels) "
                    f"exceeds max_frame_pixels={max_frame_pixels}",
                )
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self, threads: int):
        if not self._container.streams.video:
            kinds = sorted({s.type for s in self._container.streams}) or ["none"]
            raise NoVideoStreamError(self.path, f"has no video stream (streams: {', '.join(kinds)})")
        stream = self._container.streams.video[0]
        if stream.codec_context is None or not stream.codec_context.width:
            raise VideoDecodeError(self.path, "video stream has no decodable codec or frame size")
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        return stream

    def _read_info(self) -> VideoInfo:
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise VideoDecodeError(self.path, "frame rate unavailable")
        duration = None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / av.time_base
        num_frames = stream.frames or (round(duration * float(rate)) if duration else None)
        return VideoInfo(
            path=self.path,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=Fraction(rate),
            duration_sec=duration,
            num_frames=num_frames,
            codec=stream.codec_context.name,
        )

    # -- iteration -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[DecodedFrame]:
        stream = self._stream
        start = stream.start_time or 0
        fps = float(self.info.fps)
        last_time = None
        for frame in self._decoded_frames():
            if frame.pts is None:
                # No timestamp: continue the CFR grid from the previous frame.
                time = 0.0 if last_time is None else last_time + 1.0 / fps
                time_base = Fraction(1, 1_000_000)
                pts = round(time / time_base)
            else:
                time_base = Fraction(frame.time_base)
                pts = frame.pts - start
                time = float(pts * time_base)
            if last_time is not None and time <= last_time:
                # Out-of-order or duplicate timestamps: keep time strictly increasing.
                time = last_time + 1e-6
            last_time = time
            self.decoded_frames += 1
            yield DecodedFrame(
                frame=frame,
                time=time,
                index=round(time * fps),
                pts=pts,
                time_base=time_base,
                rotation=(int(frame.rotation) // 90 % 4) * 90,
            )
        if self.decoded_frames == 0:
            raise VideoDecodeError(self.path, "no decodable video frames")
        self._check_truncation(last_time)

    def _decoded_frames(self) -> Iterator[av.VideoFrame]:
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.EOFError:
                break
            except av.error.FFmpegError as exc:
                self._damaged(f"undecodable packet at pts {packet.pts} ({_ffmpeg_reason(exc)})")
                continue
            for frame in frames:
                if frame.is_corrupt:
                    self._damaged(f"corrupt frame at pts {frame.pts}")
                    continue
                yield frame

    def _damaged(self, what: str) -> None:
        self.damaged_frames += 1
        if self.strict:
            raise CorruptVideoError(self.path, f"damaged video data: {what} (strict decoding)")
        logger.debug("%s: skipping %s", self.path, what)

    def _check_truncation(self, last_time: float | None) -> None:
        duration = self.info.duration_sec
        if duration is None or last_time is None:
            return
        frame_sec = 1.0 / float(self.info.fps)
        if last_time + frame_sec < duration - TRUNCATION_TOLERANCE_SEC:
            self.truncated = True
            message = f"stream ends at {last_time + frame_sec:.2f} s of a stated {duration:.2f} s (truncated)"
            if self.strict:
                raise CorruptVideoError(self.path, message + " (strict decoding)")
            logger.warning("%s: %s", self.path, message)

    # -- resource handling -----------------------------------------------------------------

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoDecoder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's stream information without decoding it.

    Raises:
        VideoNotFoundError, VideoPermissionError, VideoDecodeError, NoVideoStreamError:
            the file cannot be used.

    Example:
        >>> from salova.video import probe_video, sample_video_path
        >>> probe_video(sample_video_path("bikes")).width
        640
    """
    with VideoDecoder(path, max_frame_pixels=2**62) as decoder:
        return decoder.info
