"""Assistant latency and memory: index once, ask fast, whatever the video's length.

Builds once (cached) synthetic videos of the project's synthetic world (320x240, 8 fps, scenes of
6-20 s with hard cuts) of 10, 60 and 120 minutes, then reports in one run:

- **first vs second ask** on the 10-minute video, in a fresh process with an empty index cache:
  the first ask decodes, encodes and stores the index, then answers; the second (another
  question) answers from the index in memory. Also the first ask of a *new* process on the same
  video, which finds the index in the on-disk cache (hash the file, load the entry, answer).
  Target: second >= 20x faster than first.
- **ask latency, 120-minute vs 10-minute video**, both indexed, medians of interleaved asks.
  Target: ratio <= 1.3.
- **peak RSS of indexing, 60 vs 10 minutes**, each in a fresh process with an empty cache that
  reads its own ``VmHWM``. Target: ratio <= 1.3.

    python bench/ask.py [--model tiny] [--asks 15] [--threads 1] [--cache-dir DIR]

``--model`` takes what ``salova ask --model`` takes; the default ``tiny`` runs the SALOVA path
(decode, vision tower, connector; router, FocusFast, LLM) with random weights, which costs what
the real thing costs per token and per frame at its width.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTIONS = ("What is written on screen?", "Which shape moves to the left?", "What colour is the background?")
SYNTH_SEED = 21


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "salova" / "bench"


def synthetic_video(cache_dir: Path, minutes: float) -> Path:
    """The cached synthetic video of ``minutes`` (written on first use)."""
    from salova.synth import SynthConfig, write_corpus

    config = SynthConfig(seed=SYNTH_SEED, minutes=minutes, questions_per_video=0)
    folder = cache_dir / f"ask-synth-{minutes:g}min"
    if not (folder / "manifest.json").exists():
        print(f"building {folder} ...", file=sys.stderr)
    corpus = write_corpus(folder, config, progress=sys.stderr.isatty())
    return corpus.video_path(corpus.videos[0])


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (needs Linux)")


def _assistant(model: str, cache: Path, threads: int):
    import torch

    from salova.infer import AssistantConfig, VideoAssistant

    torch.set_num_threads(threads)
    return VideoAssistant.from_model(model, AssistantConfig(cache_dir=cache))


def _timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def worker_first_second(model: str, path: Path, cache: Path, threads: int) -> dict:
    assistant = _assistant(model, cache, threads)
    first, answer = _timed(assistant.ask, QUESTIONS[0], video=path)
    second, _ = _timed(assistant.ask, QUESTIONS[1], video=path)
    return {"first_s": first, "second_s": second, "index_s": answer.timings["index"], "segments": len(answer.timeline)}


def worker_cached(model: str, path: Path, cache: Path, threads: int) -> dict:
    assistant = _assistant(model, cache, threads)
    seconds, answer = _timed(assistant.ask, QUESTIONS[1], video=path)
    return {"cached_s": seconds, "from_cache_index_s": answer.timings["index"]}


def worker_rss(model: str, path: Path, cache: Path, threads: int) -> dict:
    assistant = _assistant(model, cache, threads)
    before = peak_rss_mib()
    seconds, index = _timed(assistant.index, path)
    return {
        "index_s": seconds,
        "segments": index.num_segments,
        "peak_rss_mib": peak_rss_mib(),
        "loaded_rss_mib": before,
    }


WORKERS = {"first-second": worker_first_second, "cached": worker_cached, "rss": worker_rss}


def run_worker(kind: str, model: str, path: Path, cache: Path, threads: int) -> dict:
    command = [sys.executable, __file__, "--worker", kind, str(path), str(cache), "--model", model]
    proc = subprocess.run([*command, "--threads", str(threads)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"worker {kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--short-minutes", type=float, default=10.0)
    parser.add_argument("--long-minutes", type=float, default=120.0)
    parser.add_argument("--rss-minutes", type=float, default=60.0)
    parser.add_argument("--asks", type=int, default=15, help="timed asks per video for the length ratio")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "PATH", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, path, cache = args.worker
        print(json.dumps(WORKERS[kind](args.model, Path(path), Path(cache), args.threads)))
        return

    short = synthetic_video(args.cache_dir, args.short_minutes)
    long = synthetic_video(args.cache_dir, args.long_minutes)
    rss_video = synthetic_video(args.cache_dir, args.rss_minutes)
    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}; model: {args.model}; ")
    print(f"videos: synthetic 320x240 8 fps, {args.short_minutes:g} / {args.rss_minutes:g} / {args.long_minutes:g} min")

    with tempfile.TemporaryDirectory(prefix="salova-bench-ask-") as tmp:
        cache = Path(tmp) / "first"
        first = run_worker("first-second", args.model, short, cache, args.threads)
        cached = run_worker("cached", args.model, short, cache, args.threads)
        rss_short = run_worker("rss", args.model, short, Path(tmp) / "rss-short", args.threads)
        rss_long = run_worker("rss", args.model, rss_video, Path(tmp) / "rss-long", args.threads)

        assistant = _assistant(args.model, Path(tmp) / "lengths", args.threads)
        short_index = assistant.index(short)
        long_index = assistant.index(long)
        latencies: dict[str, list[float]] = {"short": [], "long": []}
        for i in range(args.asks):
            for name, index in (("short", short_index), ("long", long_index)):
                latencies[name].append(_timed(assistant.ask, QUESTIONS[i % len(QUESTIONS)], video=index)[0])

    short_ms = statistics.median(latencies["short"]) * 1e3
    long_ms = statistics.median(latencies["long"]) * 1e3
    short_name, long_name, rss_name = (f"{m:g} min" for m in (args.short_minutes, args.long_minutes, args.rss_minutes))
    rows = [
        (
            f"first ask, {short_name} ({first['segments']} segments)",
            f"{first['first_s']:.2f} s (index {first['index_s']:.2f} s)",
        ),
        ("second ask, same process", f"{first['second_s'] * 1e3:.1f} ms"),
        (
            "first ask of a new process",
            f"{cached['cached_s'] * 1e3:.1f} ms (hash + load {cached['from_cache_index_s'] * 1e3:.1f} ms)",
        ),
        (f"ask, {short_name} ({short_index.num_segments} segments)", f"{short_ms:.1f} ms (median of {args.asks})"),
        (f"ask, {long_name} ({long_index.num_segments} segments)", f"{long_ms:.1f} ms (median of {args.asks})"),
    ]
    for name, run in ((short_name, rss_short), (rss_name, rss_long)):
        rows.append(
            (
                f"index {name} ({run['segments']} segments)",
                f"{run['index_s']:.1f} s, peak RSS {run['peak_rss_mib']:.0f} MiB "
                f"(after loading: {run['loaded_rss_mib']:.0f} MiB)",
            )
        )
    ratios = [
        ("first / second ask", f"{first['first_s'] / first['second_s']:.0f}x  (target >= 20x)"),
        ("first / new-process ask", f"{first['first_s'] / cached['cached_s']:.0f}x"),
        (f"ask {long_name} / {short_name}", f"{long_ms / short_ms:.2f}x  (target <= 1.3x)"),
        (
            f"indexing peak RSS {rss_name} / {short_name}",
            f"{rss_long['peak_rss_mib'] / rss_short['peak_rss_mib']:.2f}x  (target <= 1.3x)",
        ),
    ]
    for block in (rows, ratios):
        print()
        for name, value in block:
            print(f"{name + ':':<40} {value}")


if __name__ == "__main__":
    main()
