"""``salova index``, ``ask``, ``chat`` and ``demo`` as a user runs them."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest

from salova.cli import main


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_ask_json_prints_exactly_the_documented_object_then_index_hits_the_cache(bikes_path, tmp_path, capsys):
    base = ["--model", "tiny", "--cache-dir", str(tmp_path), "--threads", "1", "--no-progress"]
    code, out, _ = run_cli(["ask", str(bikes_path), "What happens?", *base, "--top-k", "3", "--json"], capsys)
    assert code == 0
    body = json.loads(out)
    assert list(body) == ["answer", "pipeline", "segments", "timings"]
    assert body["pipeline"] == "salova" and isinstance(body["answer"], str)
    assert len(body["segments"]) == 3 and all(list(s) == ["start", "end", "score"] for s in body["segments"])
    assert list(body["timings"]) == ["index", "route", "generate", "total"]
    timings = body["timings"]
    assert timings["index"] > 0 and timings["total"] >= timings["index"] + timings["generate"]

    code, out, _ = run_cli(["index", str(bikes_path), *base, "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["pipeline"] == "salova" and summary["from_cache"] and len(summary["segments"]) == 4
    starts = [row["start"] for row in summary["segments"]]
    assert all(s["start"] in starts for s in body["segments"])
    code, out, _ = run_cli(["index", str(bikes_path), *base], capsys)
    assert code == 0 and "loaded from the cache" in out and "[salova]" in out


def test_chat_reads_questions_from_piped_stdin(bikes_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("What is shown first?\nAnd then?\n\nNever asked\n"))
    args = ["chat", str(bikes_path), "--model", "tiny", "--cache-dir", str(tmp_path), "--threads", "1", "--top-k", "2"]
    code, out, _ = run_cli([*args, "--no-progress"], capsys)
    assert code == 0
    assert out.count("[salova] read 2 segment(s):") == 2  # the empty line ends the chat
    assert out.startswith("bikes.mp4: 4 segments, salova: tiny (random weights)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "{missing}", "What?", "--model", "tiny"], r"error: .*missing\.mp4: no such file"),
        (["ask", "{bikes}", "What?", "--model", "gpt-9"], r"error: model 'gpt-9' is neither a checkpoint folder"),
        (["ask", "{bikes}", "   ", "--model", "tiny"], r"error: Invalid value for 'QUESTION': the question is empty"),
        (["ask", "{bikes}", "What?", "--top-k", "0"], r"error: Invalid value for '--top-k'"),
        (["index", "{junk}", "--model", "tiny"], r"error: .*junk\.mp4: .*not a video"),
    ],
    ids=["missing-file", "unknown-model", "empty-question", "bad-top-k", "not-a-video"],
)
def test_bad_input_is_one_error_line_and_exit_2(args, message, bikes_path, tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 4096)
    paths = {"missing": tmp_path / "missing.mp4", "bikes": bikes_path, "junk": junk}
    args = [a.format(**paths) for a in args] + ["--cache-dir", str(tmp_path / "cache")]
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and re.match(message, err.strip()), err
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_demo_answers_two_questions_with_time_ranges_from_a_cached_video(tmp_path, capsys):
    args = ["demo", "--minutes", "1", "--cache-dir", str(tmp_path), "--threads", "1", "--no-progress"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    # First the ingest on the real sample clip: the segments of bikes.mp4 under the default rules.
    assert "bikes.mp4: 640x272, 25 fps, 10.00 s; 4 segments (5 detector cuts)" in out
    assert re.search(r"\n\s+3\s+0:00:07\.48\s+0:00:10\.00\s+187-250\s+2\n", out), out
    assert "model: text-rag" in out and "index: " in out and "built" in out
    questions = out.split("\nQ: ")[1:]
    assert len(questions) == 2
    for block in questions:
        truth = re.search(r"the word is on screen (\S+ - \S+);", block).group(1)
        assert f"    {truth}  score" in block  # the scene with the word is among the segments read
        assert "[text-rag] read" in block
    video = re.search(r"video: (\S+\.mp4)", out).group(1)
    assert video.startswith(str(tmp_path / "demo"))  # kept for the next run, as is its index
    assert len(list((tmp_path / "index").rglob("*.safetensors"))) == 1
