"""Metrics sinks: metrics.jsonl, TensorBoard event files and the progress bar."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from salova.train.config import LoggingConfig
from salova.train.logs import LOGS_DIR, RunLogger, read_metrics


def run_logger(tmp_path, start_step=0, progress=False):
    return RunLogger(
        tmp_path,
        LoggingConfig(every_steps=2),
        enabled=True,
        start_step=start_step,
        total_steps=4,
        progress=progress,
        run_config={},
    )


def test_metrics_go_to_jsonl_tensorboard_and_the_bar(tmp_path, capsys):
    logger = run_logger(tmp_path, progress=True)
    for step in range(1, 5):
        logger.log(step, {"loss": 5.0 - step, "retrieval_acc": step / 4, "tokens_per_sec": 1234.5})
    logger.close()
    assert [m["loss"] for m in read_metrics(tmp_path)] == [4.0, 3.0, 2.0, 1.0]
    events = EventAccumulator(str(tmp_path / LOGS_DIR))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(2, 3.0), (4, 1.0)]
    bar = capsys.readouterr().err
    assert "4/4" in bar and "loss=1" in bar and "acc=1" in bar and "tok/s=1234" in bar


def test_a_resumed_run_drops_the_lines_after_its_checkpoint(tmp_path):
    logger = run_logger(tmp_path)
    for step in range(1, 4):
        logger.log(step, {"loss": float(step)})
    logger.close()
    resumed = run_logger(tmp_path, start_step=2)
    resumed.log(3, {"loss": 30.0})
    resumed.close()
    assert [(m["step"], m["loss"]) for m in read_metrics(tmp_path)] == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_only_the_main_process_logs(tmp_path):
    logger = RunLogger(
        tmp_path, LoggingConfig(), enabled=False, start_step=0, total_steps=1, progress=True, run_config={}
    )
    logger.log(1, {"loss": 1.0})
    logger.close()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        LoggingConfig(every_steps=0)
