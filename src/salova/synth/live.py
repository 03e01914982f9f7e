"""Synthetic live streams: a synthetic video encoded frame by frame into a pipe or a growing file.

The frames of :func:`~salova.synth.generate_video` are drawn and encoded one at a time in a
streamable container, so a reader can decode the video while it is being produced and memory stays
flat whatever its length: a 2-hour stream at 2 fps and 64x64 costs what a 1-minute one costs. With
``speed`` the stream is paced against the wall clock (1.0: real time), as a camera would deliver it.

Example:
    >>> import sys
    >>> from salova.synth import SynthConfig
    >>> from salova.synth.live import write_live_stream
    >>> write_live_stream(sys.stdout.buffer, SynthConfig(minutes=120, fps=2, width=64, height=64))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import cv2
import numpy as np

from salova.errors import ConfigError, CorpusError
from salova.synth.render import render_scene_frames
from salova.synth.schema import SynthConfig, SynthVideo
from salova.synth.world import generate_video

__all__ = ["LIVE_FORMATS", "write_live_stream"]

LIVE_FORMATS: dict[str, dict[str, str]] = {
    "mpegts": {},
    "matroska": {"live": "1"},
    "mp4": {"movflags": "frag_keyframe+empty_moov+default_base_moof"},
}
"""Containers that a reader can decode while they are written, with the muxer options that make
them so (fragmented MP4 for ``mp4``)."""
FLUSH_EVERY_PACKET = {"flush_packets": "1"}
"""Hand every packet to the output at once, so a reader is never behind by a buffer's worth."""
X264_PRESET = "ultrafast"
"""Live encoding favours speed; the stream is not meant to be byte-reproducible."""
FPS_DENOMINATOR_LIMIT = 1001
"""Frame rates are stored as fractions with at most this denominator."""


class _PipeOutput:
    """A writable file object that notes when its reader has gone (a closed pipe) instead of failing."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.reader_gone = False
        self.name = getattr(handle, "name", "stream")

    def write(self, data: bytes) -> int:
        if not self.reader_gone:
            try:
                self.handle.write(data)
            except BrokenPipeError:
                self.reader_gone = True
        return len(data)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.handle.flush()
            except BrokenPipeError:
                self.reader_gone = True


def write_live_stream(
    out: BinaryIO | str | os.PathLike,
    config: SynthConfig,
    index: int = 0,
    *,
    format: str = "mpegts",
    speed: float | None = None,
    stop: threading.Event | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> SynthVideo:
    """Encode synthetic video ``index`` of ``config`` into a streamable container, frame by frame.

    Args:
        out: a writable binary file object (a pipe, standard output) or a path (a growing file,
            flushed after every packet so that a reader can follow it).
        config: the synthetic world's settings (length, frame rate, size, duplicates...).
        index: which video of the corpus ``config`` describes.
        format: a key of :data:`LIVE_FORMATS`.
        speed: pace the stream at this multiple of real time (1.0: live); ``None``: as fast as possible.
        stop: set to end the stream early (the container is closed properly).
        on_frame: called with the number of frames written so far, after each frame.

    Returns:
        The video's record (scenes, captions, questions), the ground truth of the stream. A reader that
        closes its end of a pipe ends the stream early, as ``stop`` does.

    Raises:
        ConfigError: an unknown format or a speed <= 0.
        CorpusError: the output cannot be written (a closed pipe, a full disk).
    """
    if format not in LIVE_FORMATS:
        raise ConfigError(f"Unknown live format {format!r}; choose from {sorted(LIVE_FORMATS)}")
    if speed is not None and speed <= 0:
        raise ConfigError(f"speed must be > 0 (or None for as fast as possible), got {speed!r}")
    video = generate_video(config, index)
    target = str(out) if isinstance(out, str | os.PathLike) else _PipeOutput(out)
    rgb = np.empty((video.height, video.width, 3), np.uint8)
    yuv = np.empty((video.height * 3 // 2, video.width), np.uint8)
    started = time.perf_counter()
    count = 0
    try:
        with av.open(
            target, mode="w", format=format, container_options={**FLUSH_EVERY_PACKET, **LIVE_FORMATS[format]}
        ) as container:
            stream = container.add_stream("libx264", rate=Fraction(config.fps).limit_denominator(FPS_DENOMINATOR_LIMIT))
            stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
            stream.codec_context.thread_count = 1
            stream.codec_context.gop_size = max(1, round(config.keyframe_sec * config.fps))
            stream.options = {"preset": X264_PRESET, "tune": "zerolatency", "crf": str(config.crf)}
            handle = target if isinstance(target, _PipeOutput) else None
            for scene in video.scenes:
                for frame in render_scene_frames(scene, video.width, video.height, out=rgb):
                    if (stop is not None and stop.is_set()) or (handle is not None and handle.reader_gone):
                        break
                    cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420, dst=yuv)
                    encoded = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                    encoded.pts = count
                    container.mux(stream.encode(encoded))
                    count += 1
                    _flush(handle)
                    if on_frame is not None:
                        on_frame(count)
                    if speed is not None:
                        ahead = count / (config.fps * speed) - (time.perf_counter() - started)
                        if ahead > 0:
                            time.sleep(ahead)
                else:
                    continue
                break
            container.mux(stream.encode(None))
    except (OSError, av.error.FFmpegError) as exc:
        raise CorpusError(Path(str(getattr(out, "name", out))), f"cannot write the live stream: {exc}") from exc
    return video


def _flush(handle: BinaryIO | None) -> None:
    flush = getattr(handle, "flush", None)
    if flush is not None:
        flush()
