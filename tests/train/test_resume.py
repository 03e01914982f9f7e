"""A run killed mid-way resumes from its last checkpoint and ends with the weights of an uninterrupted run;
checkpoints are atomic."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import torch
from train_helpers import (
    LORA,
    components,
    max_difference,
    salova_command,
    salova_config,
    subprocess_env,
    trained_weights,
    write_yaml,
)

from salova.errors import CheckpointError
from salova.train import config_from_dict, run_stage
from salova.train.checkpoint import (
    CHECKPOINTS_DIR,
    STATE_FILE,
    TrainerState,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    read_trainer_state,
    remove_partial_checkpoints,
    save_checkpoint,
)
from salova.train.distributed import start_session
from salova.train.logs import read_metrics
from salova.train.optim import build_optimizer, build_scheduler

RESUME_TOLERANCE = 1e-6
CHECKPOINT_FILES = ("trainable.safetensors", "optimizer.pt", "scheduler.pt", "rng/rank-0.pt", STATE_FILE)


def wait_for(path, process, timeout: float = 240.0) -> None:
    """Wait until ``path`` exists (the process must still be running when it appears)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the training process ended before its first checkpoint"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.02)


def stage_config(synthetic, output, **changes):
    # Stage 2 with a LoRA adapter, token drop and dropout: weights, adapter, AdamW moments, schedule,
    # random draws and the data position must all come back.
    settings = {
        "lora": LORA,
        "max_steps": 24,
        "global_batch_size": 2,
        "micro_batch_size": 1,
        "checkpoint": {"every_steps": 4, "keep_last": 2},
        **changes,
    }
    return salova_config(2, output, synthetic.data, source=components(synthetic.stage0, synthetic.llm), **settings)


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(synthetic, tmp_path):
    killed = tmp_path / "killed"
    config_file = write_yaml(tmp_path / "stage2.yaml", stage_config(synthetic, killed))
    command = salova_command("train", "--stage", "2", "--config", str(config_file), "--no-progress")
    with (tmp_path / "killed.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env())
        try:
            wait_for(checkpoint_path(killed, 4), process)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (killed / STATE_FILE).exists()  # it did not finish
    # Whatever the moment of the kill, every checkpoint folder is complete.
    saved = list_checkpoints(killed)
    assert saved and all((c / name).is_file() for c in saved for name in CHECKPOINT_FILES)
    last_step = read_trainer_state(saved[-1] / STATE_FILE).step
    # A kill while a checkpoint is being written leaves a hidden partial folder: never read, then removed.
    partial = killed / CHECKPOINTS_DIR / ".partial-step-00000099"
    (partial / "rng").mkdir(parents=True)

    whole = tmp_path / "whole"
    run_stage(config_from_dict(stage_config(synthetic, whole)))
    summary = run_stage(config_from_dict(stage_config(synthetic, killed)), resume=True)

    assert summary.resumed_from == last_step >= 4
    assert not partial.exists()
    assert max_difference(trained_weights(whole), trained_weights(killed)) <= RESUME_TOLERANCE
    assert [m["step"] for m in read_metrics(killed)] == list(range(1, 25))
    assert [m["loss"] for m in read_metrics(killed)] == pytest.approx([m["loss"] for m in read_metrics(whole)])
    # A finished run resumes to nothing; starting it again without --resume is refused.
    assert run_stage(config_from_dict(stage_config(synthetic, killed)), resume=True).metrics == {}
    with pytest.raises(CheckpointError, match="holds a finished run"):
        run_stage(config_from_dict(stage_config(synthetic, killed)))


def test_resume_refuses_a_changed_config(synthetic, tmp_path):
    output = tmp_path / "run"
    run_stage(config_from_dict(stage_config(synthetic, output, max_steps=4)))
    (output / STATE_FILE).unlink()  # as if it had been killed after its last checkpoint
    changed = stage_config(synthetic, output, max_steps=4, optim={"lr": 1e-3, "lr_towers": 1e-4})
    with pytest.raises(CheckpointError, match=r"different config \(changed: \['optim.lr', 'optim.lr_towers'\]\)"):
        run_stage(config_from_dict(changed), resume=True)


class _Boom(RuntimeError):
    pass


def _state(step: int) -> TrainerState:
    return TrainerState(
        stage="2",
        step=step,
        total_steps=10,
        epoch=0,
        step_in_epoch=step,
        num_samples=10,
        global_batch_size=1,
        micro_batch_size=1,
        seed=0,
        world_size=1,
    )


def test_a_checkpoint_that_fails_mid_write_leaves_no_checkpoint(tmp_path, monkeypatch):
    """The optimizer file fails to write: no ``step-*`` folder appears, and the partial one is cleared."""
    import salova.train.checkpoint as checkpoint_module

    config = config_from_dict({"stage": 0, "optim": {"lr": 1e-3}, "global_batch_size": 1, "data": {"corpus": "-"}})
    session = start_session(config)
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, 10)
    real_save = checkpoint_module._torch_save

    def failing_save(obj, path):
        if path.name == "optimizer.pt":
            raise _Boom("disk full")
        real_save(obj, path)

    try:
        first = save_checkpoint(session, tmp_path, _state(1), model, optimizer, scheduler, keep_last=2)
        monkeypatch.setattr(checkpoint_module, "_torch_save", failing_save)
        with pytest.raises(_Boom):
            save_checkpoint(session, tmp_path, _state(2), model, optimizer, scheduler, keep_last=2)
    finally:
        session.close()
    assert list_checkpoints(tmp_path) == [first] == [latest_checkpoint(tmp_path)]
    assert all((first / name).is_file() for name in CHECKPOINT_FILES)
    assert [p.name for p in remove_partial_checkpoints(tmp_path)] == [".partial-step-00000002"]
    assert read_trainer_state(first / STATE_FILE).step == 1
