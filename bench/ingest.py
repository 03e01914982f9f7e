"""Ingest throughput and memory: one pass vs decode-only vs the usual two passes.

Builds once (cached) a 720p test video from the real sample clips, 10 and 60 minutes long,
then measures, each in a fresh process so that peak RSS is its own:

- ``decode``: PyAV decodes every frame and nothing else (the physical floor);
- ``salova``: :func:`salova.video.iter_segments` — scene cuts and 1 FPS frames at 336 px
  from one decode;
- ``two-pass``: ``scenedetect.detect(path, AdaptiveDetector())`` and then a second decode
  that samples 1 FPS frames at 336 px, as other projects do it.

Prints throughput in video seconds per wall second and the ratios the targets are about.

    python bench/ingest.py [--minutes 10] [--long-minutes 60] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, FPS = 1280, 720, 25
FRAME_SIZE = 336


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "salova" / "bench"


# -- building the test videos -------------------------------------------------------------------


def _fit_720p(image: np.ndarray) -> np.ndarray:
    """Letterbox an RGB image into 1280x720."""
    import cv2

    height, width = image.shape[:2]
    scale = min(WIDTH / width, HEIGHT / height)
    resized = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    top, left = (HEIGHT - resized.shape[0]) // 2, (WIDTH - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def build_base(path: Path, seconds: float = 60.0) -> Path:
    """About a minute of real footage at 720p: the sample clips in turn, hard cuts between."""
    from salova.video import sample_video_path

    clips = []
    for name in ("bigbuckbunny", "bikes", "carphone"):
        with av.open(str(sample_video_path(name))) as container:
            clips.append([_fit_720p(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)])
    total = int(seconds * FPS)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": "250"}
        written, turn = 0, 0
        while written < total:
            for image in clips[turn % len(clips)][: total - written]:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = written
                for packet in stream.encode(frame):
                    out.mux(packet)
                written += 1
            turn += 1
        for packet in stream.encode():
            out.mux(packet)
    os.replace(tmp, path)
    return path


def build_repeated(base: Path, path: Path, minutes: float) -> Path:
    """Concatenate the base video's packets until ``minutes`` long (a remux, no re-encode)."""
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(base)) as probe:
        template = probe.streams.video[0]
        base_ticks = int(template.duration)
        copies = math.ceil(minutes * 60 / float(template.duration * template.time_base))
        with av.open(str(tmp), "w") as out:
            out_stream = out.add_stream_from_template(template)
            for copy in range(copies):
                # Muxing consumes a packet, so every copy demuxes the base afresh.
                with av.open(str(base)) as source:
                    for packet in source.demux(video=0):
                        if packet.dts is None:
                            continue
                        packet.pts += copy * base_ticks
                        packet.dts += copy * base_ticks
                        packet.stream = out_stream
                        out.mux(packet)
    os.replace(tmp, path)
    return path


def test_videos(cache_dir: Path, minutes: float, long_minutes: float) -> tuple[Path, Path]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    base = cache_dir / "base-720p-60s.mp4"
    if not base.exists():
        print(f"building {base} from the sample clips ...", file=sys.stderr)
        build_base(base)
    videos = []
    for length in (minutes, long_minutes):
        path = cache_dir / f"real-720p-{length:g}min.mp4"
        if not path.exists():
            print(f"building {path} ...", file=sys.stderr)
            build_repeated(base, path, length)
        videos.append(path)
    return videos[0], videos[1]


# -- the three ways to ingest ----------------------------------------------------------------


def run_decode(path: Path) -> int:
    frames = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            frames += 1
    return frames


def run_salova(path: Path) -> int:
    from salova.video import IngestConfig, SamplingConfig, iter_segments

    kept = 0
    config = IngestConfig(sampling=SamplingConfig(frame_size=FRAME_SIZE))
    for segment in iter_segments(path, config):
        kept += segment.num_frames  # frames are consumed and released segment by segment
    return kept


def run_two_pass(path: Path) -> int:
    from scenedetect import AdaptiveDetector, detect

    scenes = detect(str(path), AdaptiveDetector())
    kept, next_second = 0, 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        scale = FRAME_SIZE / min(stream.codec_context.width, stream.codec_context.height)
        width = round(stream.codec_context.width * scale)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= next_second:
                image = frame.to_ndarray(format="rgb24", width=width, height=FRAME_SIZE)
                left = (image.shape[1] - FRAME_SIZE) // 2
                _ = image[:, left : left + FRAME_SIZE].copy()
                kept += 1
                next_second = math.floor(frame.time) + 1
    assert scenes is not None
    return kept


MODES = {"decode": run_decode, "salova": run_salova, "two-pass": run_two_pass}


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM); unlike ru_maxrss it starts afresh at exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(mode: str, path: Path) -> None:
    start = time.perf_counter()
    count = MODES[mode](path)
    wall = time.perf_counter() - start
    with av.open(str(path)) as container:
        duration = float(container.duration / av.time_base)
    peak_mib = peak_rss_mib()
    print(json.dumps({"mode": mode, "wall_s": wall, "video_s": duration, "count": count, "peak_rss_mib": peak_mib}))


def measure(mode: str, path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(path)], capture_output=True, text=True, check=True
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["speed"] = result["video_s"] / result["wall_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--repeat", type=int, default=2, help="rounds over the three modes")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]))
        return

    short, long = test_videos(args.cache_dir, args.minutes, args.long_minutes)
    print(f"machine: {os.cpu_count()} CPU cores; video: 1280x720 {FPS} fps real footage (sample clips)")
    results: dict[str, dict] = {}
    for _ in range(args.repeat):  # rounds interleave the modes; the fastest round counts
        for mode in ("decode", "salova", "two-pass"):
            r = measure(mode, short)
            if mode not in results or r["wall_s"] < results[mode]["wall_s"]:
                results[mode] = r
    for mode, r in results.items():
        print(
            f"{mode:>9} {args.minutes:g} min: {r['wall_s']:7.1f} s wall, {r['speed']:6.1f} video-s/s, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    long_run = measure("salova", long)
    print(
        f"{'salova':>9} {args.long_minutes:g} min: {long_run['wall_s']:7.1f} s wall, "
        f"{long_run['speed']:6.1f} video-s/s, peak RSS {long_run['peak_rss_mib']:.0f} MiB"
    )

    ours = results["salova"]["speed"]
    print()
    print(f"one-pass / decode-only throughput: {ours / results['decode']['speed']:.2f}x  (target >= 0.6x)")
    print(f"one-pass / two-pass throughput:    {ours / results['two-pass']['speed']:.2f}x  (target >= 1.5x)")
    ratio = long_run["peak_rss_mib"] / results["salova"]["peak_rss_mib"]
    print(f"peak RSS {args.long_minutes:g} min / {args.minutes:g} min:     {ratio:.2f}x  (target <= 1.3x)")


if __name__ == "__main__":
    main()
