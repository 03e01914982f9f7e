"""Streaming mode: the bounded memory, a session over a growing file, and ``salova ask --stream`` on a pipe."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import torch

from salova.errors import ConfigError, NotIndexedError
from salova.infer.stream import MemoryItem, StreamConfig, StreamMemory, StreamSession
from salova.model.selection import SelectorConfig
from salova.synth import SynthConfig
from salova.synth.live import write_live_stream

STREAM = SynthConfig(
    seed=6, minutes=4, fps=2, width=64, height=64, min_scene_sec=8, questions_per_video=0, duplicate_probability=0.3
)
"""About 18 scenes of 8-20 s (2 fps, so scenes need 8 s for PySceneDetect's 15-frame minimum)."""


def item(index: int, feature: torch.Tensor, relevance: float = 0.0) -> MemoryItem:
    return MemoryItem(index, float(index), float(index + 1), {}, None, feature, relevance)


def test_memory_is_bounded_by_window_and_budget():
    config = StreamConfig(window=3, budget=4)
    memory = StreamMemory(config)
    generator = torch.Generator().manual_seed(0)
    for i in range(200):
        before = {m.index for m in memory.kept}
        memory.add(item(i, torch.randn(8, generator=generator)))
        held = memory.candidates()
        assert len(held) <= config.capacity
        window = [m.index for m in memory.window]
        assert window == list(range(max(0, i - 2), i + 1))
        # SEAL's recurrence: the new subset is chosen from the window and the previous subset only.
        assert {m.index for m in memory.kept} <= before | set(window)
        assert [m.index for m in held] == sorted(m.index for m in held)
    assert memory.seen == 200 and memory.seen_until == 200.0
    assert len(memory.kept) == config.budget


def test_kept_subset_follows_the_standing_query_and_drops_repeats():
    config = StreamConfig(window=2, budget=2, selector=SelectorConfig("seal"))
    memory = StreamMemory(config)
    scene_a, scene_b, other = torch.eye(3)
    memory.add(item(0, scene_a, relevance=5.0))
    for i in range(1, 20):
        memory.add(item(i, other + 0.01 * i, relevance=0.0))
    memory.add(item(20, scene_a.clone(), relevance=5.0))  # a repeat of the relevant scene
    memory.add(item(21, scene_b, relevance=4.8))  # another relevant scene
    for i in range(22, 40):
        memory.add(item(i, other + 0.01 * i, relevance=0.0))
    kept = {m.index for m in memory.kept}
    # The relevant scenes survive the 40-segment stream; of the two copies of scene A only one is kept.
    assert 21 in kept and len(kept & {0, 20}) == 1


def test_stream_config_validation():
    with pytest.raises(ConfigError, match="step"):
        StreamConfig(window=2, step=3)
    with pytest.raises(ConfigError, match="window and budget"):
        StreamConfig(budget=0)


def test_a_session_answers_while_a_file_is_still_being_written(tiny_assistant, tmp_path):
    path = tmp_path / "live.ts"
    finished = threading.Event()
    truth = {}

    def writer():
        truth["video"] = write_live_stream(path, STREAM, speed=40.0)
        finished.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not path.exists():
        time.sleep(0.01)
    session = StreamSession(tiny_assistant, StreamConfig(window=2, budget=3), queries=["Where is the star?"])
    with pytest.raises(NotIndexedError):
        session.ask("anything yet?")
    reader = session.start(path, finished=finished)
    answers = []
    while reader.is_alive():
        time.sleep(1.0)
        try:
            answers.append(session.ask("Where is the star?"))
        except NotIndexedError:
            continue
    reader.join()
    thread.join()
    final = session.ask("Where is the star?")
    assert session.state().finished and session.error is None
    assert final.seen_until == pytest.approx(STREAM.minutes * 60, abs=0.6)
    mid = [a for a in answers if a.seen_until < final.seen_until]
    assert mid, "no answer was given while the stream was still playing"
    for answer in [*mid, final]:
        assert 0 < len(answer.timeline) <= 5  # window + budget
        assert all(s.end <= answer.seen_until + 1e-6 for s in answer.timeline)
        assert {s.index for s in answer.segments} <= {s.index for s in answer.timeline}
        assert answer.pipeline == "salova" and answer.to_dict()["seen_until"] == round(answer.seen_until, 3)
    assert final.segments_seen > len(final.timeline)  # older segments were dropped from memory


def test_ask_stream_on_a_pipe_answers_at_the_requested_times(tmp_path):
    producer = subprocess.Popen(
        [sys.executable, "-m", "salova", "synth-stream", "--minutes", "4", "--fps", "2", "--width", "64",
         "--height", "64", "--min-scene-sec", "8", "--questions-per-video", "0", "--seed", "6"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    consumer = subprocess.run(
        [sys.executable, "-m", "salova", "ask", "--stream", "-", "Which word is on screen?", "--model", "tiny",
         "--threads", "1", "--at", "60", "--at", "150", "--json", "--max-new-tokens", "4", "--selector", "seal",
         "--window", "2", "--budget", "3", "--cache-dir", str(tmp_path)],
        stdin=producer.stdout,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    producer.stdout.close()
    producer.wait(timeout=60)
    assert consumer.returncode == 0, consumer.stderr
    answers = [json.loads(line) for line in consumer.stdout.splitlines()]
    assert [a["seen_until"] >= at for a, at in zip(answers, (60, 150), strict=True)] == [True, True]
    assert answers[0]["seen_until"] < answers[1]["seen_until"] < 240  # it stopped after the last --at
    for answer in answers:
        assert answer["pipeline"] == "salova" and 1 <= len(answer["segments"]) <= 5
        assert all(s["end"] <= answer["seen_until"] + 1e-3 for s in answer["segments"])


def test_stream_options_need_stream(capsys):
    from salova.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "x.mp4", "q", "--at", "3", "--model", "tiny"])
    assert exit_info.value.code == 2 and "--stream" in capsys.readouterr().err
