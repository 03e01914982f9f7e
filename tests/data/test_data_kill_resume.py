"""``salova build-data`` killed with SIGKILL at random moments, then resumed: nothing finished is
lost, nothing is duplicated or half-written, and the result equals an uninterrupted build's."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from salova.data.schema import Record

psutil = pytest.importorskip("psutil")

KILLS = 3
"""Killed runs before the run that finishes."""
SEED = 20241125
"""Seed of the kill schedule (which result to wait for, how long after it to kill)."""
STEP_TIMEOUT_SEC = 240
"""Upper bound on one run, so that a hung build fails the test instead of stalling it."""


def finished_results(out: Path) -> dict[str, bytes]:
    """Every result file, each checked to be a complete, valid record set."""
    results = {}
    for path in sorted((out / "records").glob("*.json")) if (out / "records").is_dir() else []:
        data = path.read_bytes()
        document = json.loads(data)  # a torn write would fail here
        for record in document["records"].values():
            Record.from_dict(record)
        results[path.name] = data
    return results


def run_until_killed(command: list[str], out: Path, rng: random.Random) -> None:
    before = len(finished_results(out))
    wait_for = before + rng.choice([0, 1, 1, 2])  # 0: kill while it starts up
    jitter = rng.uniform(0.0, 0.6)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + STEP_TIMEOUT_SEC
    while process.poll() is None and time.monotonic() < deadline:
        if len(list((out / "records").glob("*.json")) if (out / "records").is_dir() else []) >= wait_for:
            break
        time.sleep(0.02)
    time.sleep(jitter)
    workers = []
    if process.poll() is None:
        workers = psutil.Process(process.pid).children(recursive=True)
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    # Worker processes notice their parent is gone and exit by themselves.
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"workers outlived the killed build: {[p.pid for p in alive]}"


def test_sigkill_at_random_moments_then_resume_equals_a_clean_build(tmp_path, videos_dir, tiny_clip, reference_build):
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "salova",
        "build-data",
        str(videos_dir),
        str(out),
        "--v2t-model",
        str(tiny_clip),
        "--task",
        "both",
        "--frame-size",
        "32",
        "--no-progress",
    ]
    rng = random.Random(SEED)
    seen: dict[str, bytes] = {}
    for attempt in range(KILLS):
        run_until_killed(command + (["--workers", "2"] if attempt == 1 else []), out, rng)
        now = finished_results(out)
        assert all(now.get(name) == data for name, data in seen.items()), "a finished result changed or vanished"
        seen = now

    finish = subprocess.run(command + ["--workers", "2"], capture_output=True, text=True, timeout=STEP_TIMEOUT_SEC)
    assert finish.returncode == 0, finish.stderr
    assert f"4 videos ({4 - len(seen)} built, {len(seen)} already done, 0 failed)" in finish.stdout

    produced = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    expected = {
        p.relative_to(reference_build): p.read_bytes()
        for p in reference_build.rglob("*")
        if p.is_file() and p.name != ".lock"
    }
    assert produced == expected  # records, JSONL files and manifest, byte for byte
    lines = (out / "captions.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == sorted({json.loads(line)["id"] for line in lines})
    assert not [p for p in out.rglob("*.part")]
