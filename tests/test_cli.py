"""The command line as a user meets it: version, help, usage errors, synth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import salova
from salova.cli import main


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_version_through_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "salova", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"salova, version {salova.__version__}"


def test_unknown_command_is_a_one_line_error(capsys):
    code, out, err = run_cli(["frobnicate"], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["error: No such command 'frobnicate'."]


def test_bad_option_value_is_a_one_line_error(capsys, bikes_path):
    code, _, err = run_cli(["segment", str(bikes_path), "--max-segments", "-3"], capsys)
    assert code == 2
    assert err.startswith("error: Invalid value for '--max-segments'") and len(err.strip().splitlines()) == 1


def test_inconsistent_segment_rules_are_a_config_error(capsys, bikes_path):
    code, _, err = run_cli(["segment", str(bikes_path), "--min-segment-sec", "5", "--max-segment-sec", "6"], capsys)
    assert code == 2
    assert err.strip() == "error: max_segment_sec must be >= 2 * min_segment_sec = 10 (or 0), got 6.0"


def test_synth_writes_a_corpus_and_refuses_to_mix_settings(tmp_path, capsys):
    out = tmp_path / "corpus"
    args = ["synth", "--out", str(out), "--seed", "7", "--videos", "2", "--minutes", "0.5", "--json"]
    code, stdout, _ = run_cli(args, capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert [v["id"] for v in summary["videos"]] == ["synth-7-00000", "synth-7-00001"]
    assert all(Path(v["video"]).is_file() and v["seconds"] == 30.0 for v in summary["videos"])
    first_bytes = (out / "videos" / "synth-7-00000.mp4").read_bytes()

    code, stdout, _ = run_cli(args, capsys)  # same settings: finished videos are kept
    assert code == 0 and json.loads(stdout) == summary
    assert (out / "videos" / "synth-7-00000.mp4").read_bytes() == first_bytes

    code, stdout, err = run_cli([*args[:-1], "--fps", "4"], capsys)
    assert code == 2 and stdout == ""
    assert err.startswith(f"error: {out}: holds a corpus made with another config") and err.count("\n") == 1


def test_synth_makes_quieter_worlds_on_request(tmp_path, capsys):
    from salova.synth import load_corpus

    out = tmp_path / "quiet"
    args = ["synth", "--out", str(out), "--seed", "3", "--minutes", "2"]
    args += ["--max-objects", "1", "--text-probability", "0"]
    code, _, _ = run_cli(args, capsys)
    assert code == 0
    (video,) = load_corpus(out).videos
    assert len(video.scenes) > 3
    assert all(len(scene.objects) == 1 and scene.text is None for scene in video.scenes)
    code, _, err = run_cli([*args[:-1], "1.5"], capsys)
    assert code == 2 and "1.5" in err and err.count("\n") == 1
