"""Data-build throughput: videos per minute with 1 worker and with 2 workers, in one run.

Builds once (cached) a synthetic corpus and a randomly initialised CLIP of ViT-B/32's shape
(its compute is a trained model's; its scores are noise), then runs
``salova build-data VIDEOS OUT --workers N`` in a fresh process for each N, with the
synthetic captioner, V2T on that CLIP (8 frames per segment at 224 px) and T2T on the bundled
MiniLM. Reports, per run:

- ``end to end``: videos / wall time of the whole command (start-up and model loading included);
- ``steady``: videos finished per minute between the first and the last finished video
  (from the result files' times), which leaves out start-up.

and the 2-worker / 1-worker ratios, with the 1-minute load average before each run. These
machines are shared and noisy: compare ratios, and only between runs on a quiet machine.

    python bench/build_data.py [--videos 8] [--minutes 2] [--engine local] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "salova" / "bench"


def prepare(cache: Path, videos: int, minutes: float) -> tuple[Path, Path]:
    """The corpus's videos folder and the random CLIP folder (made once)."""
    from salova.data.random_clip import BASE_CLIP, save_random_clip
    from salova.synth import SynthConfig, write_corpus

    corpus = cache / f"build-data-corpus-{videos}x{minutes:g}min"
    write_corpus(corpus, SynthConfig(seed=7, num_videos=videos, minutes=minutes), progress=False)
    clip = cache / "random-clip-b32"
    if not (clip / "config.json").is_file():
        partial = clip.with_name(clip.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        save_random_clip(partial, BASE_CLIP)
        partial.rename(clip)
    return corpus / "videos", clip


def run(videos_dir: Path, clip: Path, workers: int, engine: str) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix=f"salova-bench-w{workers}-"))
    command = [
        sys.executable,
        "-m",
        "salova",
        "build-data",
        str(videos_dir),
        str(out / "data"),
        "--v2t-model",
        str(clip),
        "--frame-size",
        "224",
        "--engine",
        engine,
        "--workers",
        str(workers),
        "--no-progress",
    ]
    load = os.getloadavg()[0]
    start = time.time()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - start
    finished = sorted(p.stat().st_mtime for p in (out / "data" / "records").glob("*.json"))
    shutil.rmtree(out)
    count = len(finished)
    span = finished[-1] - finished[0]
    return {
        "videos": count,
        "load": load,
        "wall": wall,
        "end_to_end": count / wall * 60.0,
        "steady": (count - 1) / span * 60.0 if count > 1 and span > 0 else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    args = parser.parse_args()
    videos_dir, clip = prepare(args.cache_dir, args.videos, args.minutes)
    print(
        f"corpus: {args.videos} synthetic videos x {args.minutes:g} min; V2T: random CLIP ViT-B/32 shape; "
        f"T2T: all-MiniLM-L6-v2; engine: {args.engine}; {os.cpu_count()} CPUs"
    )
    results = {workers: run(videos_dir, clip, workers, args.engine) for workers in (1, 2)}
    header = f"{'workers':>7}  {'wall (s)':>8}  {'videos/min end to end':>21}  {'videos/min steady':>17}"
    print(f"{header}  {'load before':>11}")
    for workers, r in results.items():
        print(f"{workers:>7}  {r['wall']:>8.1f}  {r['end_to_end']:>21.2f}  {r['steady']:>17.2f}  {r['load']:>11.2f}")
    one, two = results[1], results[2]
    print(
        f"2 workers / 1 worker: {two['end_to_end'] / one['end_to_end']:.2f}x end to end, "
        f"{two['steady'] / one['steady']:.2f}x steady"
    )


if __name__ == "__main__":
    main()
