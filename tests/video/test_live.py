"""Live sources: a growing file, a pushed stream and a FIFO decode into the same segments as the finished file."""

from __future__ import annotations

import os
import threading
import time

import pytest

from salova.errors import VideoDecodeError, VideoNotFoundError
from salova.synth import SynthConfig
from salova.synth.live import LIVE_FORMATS, write_live_stream
from salova.video import IngestConfig, SamplingConfig, segment_video
from salova.video.live import FollowFile, LiveConfig, PushStream, is_url, iter_live_segments

STREAM = SynthConfig(seed=4, minutes=1.5, fps=4, width=64, height=64, questions_per_video=0)
"""About eight scenes with hard cuts, tiny frames."""
INGEST = IngestConfig(sampling=SamplingConfig(frame_size=32))


def spans(segments) -> list[tuple[float, float, int]]:
    return [(round(s.start_sec, 3), round(s.end_sec, 3), s.num_frames) for s in segments]


def test_a_growing_file_is_read_while_it_is_written(tmp_path):
    path = tmp_path / "live.ts"
    finished = threading.Event()
    progress: list[int] = []

    def writer():
        write_live_stream(path, STREAM, speed=30.0, on_frame=progress.append)
        finished.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not path.exists():
        time.sleep(0.01)
    first_segment_at = None
    live = []
    for segment in iter_live_segments(path, INGEST, LiveConfig(idle_timeout=5.0), finished=finished):
        if first_segment_at is None:
            first_segment_at = len(progress)
        live.append(segment)
    thread.join()
    # Segments came out while the writer was still writing...
    assert first_segment_at < 0.5 * STREAM.num_frames
    # ... and they are the segments of the finished file.
    assert spans(live) == spans(segment_video(path, INGEST).segments)
    assert len(live) >= 5


@pytest.mark.parametrize("container", sorted(LIVE_FORMATS))
def test_pushed_bytes_of_every_live_format_decode(tmp_path, container):
    path = tmp_path / f"stream.{container}"
    write_live_stream(path, STREAM, format=container)
    pipe = PushStream(max_bytes=4096)  # far smaller than the stream: the writer must wait for the reader

    def push():
        data = path.read_bytes()
        for start in range(0, len(data), 1000):
            pipe.write(data[start : start + 1000], timeout=30)
        pipe.end()

    thread = threading.Thread(target=push)
    thread.start()
    live = list(iter_live_segments(pipe, INGEST))
    thread.join()
    assert spans(live) == spans(segment_video(path, INGEST).segments)


def test_a_fifo_is_read_as_a_pipe(tmp_path):
    fifo = tmp_path / "camera"
    os.mkfifo(fifo)
    thread = threading.Thread(target=write_live_stream, args=(fifo, STREAM))
    thread.start()
    live = list(iter_live_segments(fifo, INGEST))
    thread.join()
    assert live[-1].end_sec == pytest.approx(STREAM.minutes * 60, abs=0.5)


def test_follow_file_ends_after_the_idle_timeout(tmp_path):
    path = tmp_path / "slow.bin"
    path.write_bytes(b"abc")
    follow = FollowFile(path, idle_timeout=0.2, poll_seconds=0.02)
    assert follow.read(10) == b"abc"
    started = time.monotonic()
    assert follow.read(10) == b""
    assert 0.15 <= time.monotonic() - started < 2.0
    stop = threading.Event()
    stop.set()
    assert FollowFile(path, stop=stop).read() == b""


def test_push_stream_cancel_and_refusals():
    pipe = PushStream(max_bytes=4)
    pipe.write(b"abcd")
    with pytest.raises(TimeoutError):
        pipe.write(b"e", timeout=0.05)
    assert pipe.read(2) == b"ab" and pipe.read() == b"cd"
    pipe.cancel()
    assert pipe.read() == b""
    with pytest.raises(ValueError, match="ended"):
        pipe.write(b"x")


def test_bad_live_sources(tmp_path):
    with pytest.raises(VideoNotFoundError):
        iter_live_segments(tmp_path / "missing.ts")
    junk = tmp_path / "junk.ts"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoDecodeError):
        iter_live_segments(junk, live=LiveConfig(idle_timeout=0.2))
    assert is_url("udp://127.0.0.1:1234") and not is_url("/videos/a.ts") and not is_url("C://x")
