"""The command line as a user meets it: version, help, usage errors, the demo."""

from __future__ import annotations

import subprocess
import sys

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


def test_demo_prints_the_segments_of_bikes(capsys):
    code, out, _ = run_cli(["demo"], capsys)
    assert code == 0
    assert "bikes.mp4: 640x272, 25 fps, 10.00 s; 4 segments (5 detector cuts)" in out
    assert "bikes.mp4: 640x272, 25 fps, 10.00 s; 6 segments (5 detector cuts)" in out
    assert "242-250" in out
