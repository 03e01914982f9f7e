"""Training curves: start and end values of each run, the plot, and the ``train-curves`` command."""

from __future__ import annotations

import json

import pytest

from salova.cli import main
from salova.errors import ConfigError
from salova.train import plot_training_curves
from salova.train.curves import stage_curve


def _run(folder, losses, accuracies=None):
    folder.mkdir()
    lines = []
    for step, loss in enumerate(losses, start=1):
        row = {"step": step, "loss": loss, "lm_loss": loss / 2}
        if accuracies is not None:
            row["retrieval_acc"] = accuracies[step - 1]
        lines.append(json.dumps(row))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_start_and_end_are_means_over_the_first_and_last_steps(tmp_path):
    run = _run(tmp_path / "stage1", [4.0] * 10 + [3.0] * 20 + [1.0] * 10, accuracies=[0.1] * 30 + [0.9] * 10)
    curve = stage_curve(run)
    assert curve.name == "stage1" and curve.steps == 40
    assert curve.start == pytest.approx({"loss": 4.0, "lm_loss": 2.0, "retrieval_acc": 0.1})
    assert curve.end == pytest.approx({"loss": 1.0, "lm_loss": 0.5, "retrieval_acc": 0.9})
    assert stage_curve(run, window=20).end["loss"] == pytest.approx(2.0)


def test_the_plot_has_one_column_per_run_and_the_command_prints_the_table(tmp_path, capsys):
    first = _run(tmp_path / "stage0", [5.0 - 0.1 * i for i in range(30)])
    second = _run(tmp_path / "stage2", [3.0 - 0.05 * i for i in range(20)], accuracies=[0.5] * 20)
    curves = plot_training_curves([first, second], tmp_path / "curves.png")
    assert [c.name for c in curves] == ["stage0", "stage2"] and "retrieval_acc" not in curves[0].end
    plot_training_curves([first], tmp_path / "one.png")
    from PIL import Image

    with Image.open(tmp_path / "curves.png") as two, Image.open(tmp_path / "one.png") as one:
        assert two.height == one.height and two.width == pytest.approx(2 * one.width, rel=0.05)
    with pytest.raises(SystemExit) as exit_info:
        main(["train-curves", str(first), str(second), "--out", str(tmp_path / "again.png")])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("| stage0 | 30 | 4.550 -> 2.550 | 2.275 -> 1.275 | - | - |")
    assert out[-1].endswith("| 0.500 -> 0.500 |")


def test_a_folder_without_metrics_is_refused(tmp_path, capsys):
    with pytest.raises(ConfigError, match="holds no training metrics"):
        plot_training_curves([tmp_path], tmp_path / "c.png")
    with pytest.raises(SystemExit) as exit_info:
        main(["train-curves", str(tmp_path), "--out", str(tmp_path / "c.png")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path} holds no training metrics (metrics.jsonl)"
    assert not (tmp_path / "c.png").exists()
