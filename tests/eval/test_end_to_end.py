"""``salova eval``, ``salova synth-bench`` as a user runs them, with a real (tiny) checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salova.cli import main
from salova.eval.synth_bench import HELD_OUT_SEED_MIN


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_synth_bench_command_writes_the_benchmark(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["synth-bench", "--out", out, "--seed", "5", "--videos-per-bucket", "1", "--questions-per-video", "2"]
    args += ["--minutes", "0.3", "0.4", "0.5", "--json", "--no-progress"]
    code, stdout, _ = run_cli(args, capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["buckets"] == {b: {"videos": 1, "questions": 2} for b in ("short", "medium", "long")}
    rows = json.loads(Path(summary["annotations"]).read_text())
    assert {row["videoID"] for row in rows} == {f"synth-{HELD_OUT_SEED_MIN + 15 + b}-00000" for b in range(3)}


def test_eval_videomme_prints_the_official_table_and_resumes(synth_bench, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["eval", "videomme", "--annotations", synth_bench / "videomme.json", "--videos", synth_bench / "data"]
    args += ["--model", tiny_checkpoint, "--out", out, "--cache-dir", tmp_path / "cache", "--no-progress"]
    code, stdout, _ = run_cli(args, capsys)
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0] == "# Video-MME"
    assert "|  | Short | Medium | Long | Overall |" in lines
    assert any(line.startswith("| questions (counted / all) | 4 / 4 | 4 / 4 | 4 / 4 | 12 / 12 |") for line in lines)
    assert any(line.startswith("| router top-1 (%) |") for line in lines)
    predictions = (out / "predictions.jsonl").read_text()
    assert len(predictions.splitlines()) == 13

    code, stdout, _ = run_cli([*args, "--json"], capsys)  # resumed: nothing asked again
    assert code == 0 and (out / "predictions.jsonl").read_text() == predictions
    report = json.loads(stdout)
    assert report["convention"] == "lmms-eval" and report["interval"] == "95% Wilson score interval"
    assert set(report["buckets"]) == {"short", "medium", "long"}
    assert report["overall"]["questions"] == 12 and report["retrieval"]["questions"] == 12
    assert report["run"]["model"] == str(tiny_checkpoint)

    code, stdout, _ = run_cli([*args, "--json", "--convention", "videomme-official"], capsys)
    assert code == 0 and json.loads(stdout)["convention"] == "videomme-official"


def test_eval_errors_are_one_line(tmp_path, synth_bench, capsys):
    code, _, err = run_cli(["eval", "egoschema", "--annotations", tmp_path, "--videos", tmp_path], capsys)
    assert code == 2 and err.startswith("error: Invalid value for '{videomme|") and err.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    code, _, err = run_cli(
        ["eval", "videomme", "--annotations", bad, "--videos", synth_bench / "data", "--model", "tiny"], capsys
    )
    assert code == 2 and err == f"error: {bad}: holds no questions\n"


@pytest.mark.slow
def test_training_free_pipeline_answers_the_synthetic_benchmark(synth_bench, tmp_path, capsys):
    """The text-rag pipeline (bundled OCR, MiniLM, SmolLM2) through the same ``salova eval``."""
    args = ["eval", "videomme", "--annotations", synth_bench / "videomme.json", "--videos", synth_bench / "data"]
    args += ["--model", "text-rag", "--out", tmp_path / "run", "--limit", "2", "--json", "--no-progress"]
    code, stdout, _ = run_cli([*args, "--cache-dir", tmp_path / "cache"], capsys)
    assert code == 0
    report = json.loads(stdout)
    assert report["run"]["pipeline"] == "text-rag" and report["overall"]["questions"] == 2
    responses = [
        json.loads(line)["response"] for line in (tmp_path / "run/predictions.jsonl").read_text().splitlines()[1:]
    ]
    assert all(responses)  # SmolLM2 writes an answer to every prompt


def test_shipped_checkpoint_prints_the_official_table(synth_bench, tmp_path, capsys):
    args = ["eval", "videomme", "--annotations", synth_bench / "videomme.json", "--videos", synth_bench / "data"]
    code, stdout, _ = run_cli([*args, "--model", "salova", "--out", tmp_path / "run", "--no-progress"], capsys)
    assert code == 0 and "|  | Short | Medium | Long | Overall |" in stdout
    assert "| router top-1 (%) |" in stdout and "| router recall@5 |" in stdout
    lines = [json.loads(line) for line in (tmp_path / "run/predictions.jsonl").read_text().splitlines()]
    assert lines[0]["run"]["model"] == "salova" and lines[0]["run"]["pipeline"] == "salova"
    assert len(lines) == 13 and all(line["response"].strip() for line in lines[1:])
