"""Small videos written with PyAV for tests: solid colours, variable frame rate, rotation, audio only."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def solid_frames(colors: Sequence[tuple[int, int, int]], frames_each: int, size=(64, 48)) -> list[np.ndarray]:
    """Frames of solid colour, ``frames_each`` per colour; ``size`` is (width, height)."""
    width, height = size
    return [np.full((height, width, 3), color, dtype=np.uint8) for color in colors for _ in range(frames_each)]


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: int = 25,
    times: Sequence[float] | None = None,
    rotation: int | None = None,
    faststart: bool = False,
    codec: str = "libx264",
) -> Path:
    """Encode RGB frames with PyAV. ``times`` (seconds) makes a variable-frame-rate file."""
    options = {"movflags": "faststart"} if faststart else {}
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"} if codec == "libx264" else {}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        time_base = Fraction(1, 1000) if times is not None else Fraction(1, fps)
        stream.codec_context.time_base = time_base
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round(times[i] / time_base) if times is not None else i
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    rate = 44100
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        samples = np.zeros((1, 1024), dtype=np.float32)
        for i in range(int(seconds * rate / 1024)):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
