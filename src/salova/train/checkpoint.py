"""Resumable checkpoints, written atomically.

Layout of a run folder (``output_dir``)::

    OUT/train_config.yaml             the validated config of the run
    OUT/metrics.jsonl                 one line of metrics per optimizer step
    OUT/logs/                         TensorBoard event files
    OUT/checkpoints/step-00000500/    a complete checkpoint:
        trainable.safetensors         the trainable weights (frozen ones come from the run's sources)
        optimizer.pt, scheduler.pt    AdamW moments, schedule position (DeepSpeed: engine/)
        rng/rank-<r>.pt               python, numpy and torch random states of every process
        trainer_state.json            step, epoch, position in the epoch, batch sizes, seed
    OUT/trainer_state.json            written last, when the run is finished
    OUT/<the trained model>           see :mod:`salova.train.weights`

A checkpoint is assembled in ``checkpoints/.partial-step-...`` and renamed to ``step-...`` when every
process has written its part, so a run killed at any moment leaves complete checkpoints and, at
most, one partial folder that the next start deletes. ``--resume`` continues from the newest
checkpoint: weights, optimizer, schedule, random states and the position in the data, so the
resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from salova.errors import CheckpointError
from salova.fileio import atomic_path, atomic_write_json
from salova.train.distributed import Session
from salova.train.weights import load_trainable_state, trainable_state

__all__ = [
    "CHECKPOINTS_DIR",
    "STATE_FILE",
    "TrainerState",
    "checkpoint_path",
    "list_checkpoints",
    "latest_checkpoint",
    "remove_partial_checkpoints",
    "save_checkpoint",
    "load_checkpoint",
    "read_trainer_state",
    "write_trainer_state",
]

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
"""Sub-folder of a run holding its checkpoints."""
STEP_PREFIX = "step-"
PARTIAL_PREFIX = ".partial-"
STEP_DIGITS = 8
TRAINABLE_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
ENGINE_DIR = "engine"
RNG_DIR = "rng"
STATE_FILE = "trainer_state.json"
"""Progress of a run: in each checkpoint, and in the run folder once the run is finished."""
_STEP_NAME = re.compile(rf"^{STEP_PREFIX}(\d{{{STEP_DIGITS}}})$")


@dataclass(frozen=True)
class TrainerState:
    """Where a run is, and the settings that must not change when it resumes."""

    stage: str
    step: int
    """Optimizer steps done."""
    total_steps: int
    epoch: int
    """Epoch of the next step."""
    step_in_epoch: int
    """Step of the next micro-batches within their epoch (the data position)."""
    num_samples: int
    global_batch_size: int
    micro_batch_size: int
    seed: int
    world_size: int
    """Processes that wrote it (a run may resume on another count with the same global batch)."""
    complete: bool = False
    """The run finished and wrote its model."""

    RESUME_KEYS = ("stage", "total_steps", "num_samples", "global_batch_size", "micro_batch_size", "seed")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: Path) -> TrainerState:
        try:
            return cls(**data)
        except TypeError as error:
            raise CheckpointError(f"{where}: not a trainer state: {error}") from None

    def check_resumable(self, other: TrainerState, where: Path) -> None:
        """Refuse to resume when the run's settings differ from the checkpoint's.

        Raises:
            CheckpointError: naming the first differing setting.
        """
        for key in self.RESUME_KEYS:
            if getattr(self, key) != getattr(other, key):
                raise CheckpointError(
                    f"{where}: cannot resume: the checkpoint has {key}={getattr(self, key)!r}, "
                    f"this run {getattr(other, key)!r}"
                )


def checkpoint_path(output_dir: Path, step: int) -> Path:
    return output_dir / CHECKPOINTS_DIR / f"{STEP_PREFIX}{step:0{STEP_DIGITS}d}"


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = output_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _STEP_NAME.match(p.name)]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def remove_partial_checkpoints(output_dir: Path) -> list[Path]:
    """Delete the partial folders that killed runs left behind; returns them."""
    folder = output_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.name.startswith(PARTIAL_PREFIX)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def read_trainer_state(path: Path) -> TrainerState:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable trainer state: {error}") from None
    return TrainerState.from_dict(data, path)


def write_trainer_state(path: Path, state: TrainerState) -> None:
    atomic_write_json(path, state.to_dict())


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as temp:
        torch.save(obj, temp)


def save_checkpoint(
    session: Session,
    output_dir: Path,
    state: TrainerState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    keep_last: int,
) -> Path:
    """Write a checkpoint of every process atomically (collective: every process calls it).

    Args:
        session: the processes.
        output_dir: the run folder.
        state: progress after the step just finished.
        model: the unwrapped model.
        optimizer, scheduler: as prepared by the session.
        keep_last: complete checkpoints to keep; older ones are deleted.

    Returns:
        The checkpoint folder.
    """
    final = checkpoint_path(output_dir, state.step)
    partial = final.with_name(PARTIAL_PREFIX + final.name)
    if session.is_main:
        shutil.rmtree(partial, ignore_errors=True)
        (partial / RNG_DIR).mkdir(parents=True)
    session.barrier()
    _torch_save(_rng_state(), partial / RNG_DIR / f"rank-{session.rank}.pt")
    if session.uses_deepspeed:  # optimizer states are sharded over the processes
        session.accelerator.save_state(str(partial / ENGINE_DIR))
    if session.is_main:
        with atomic_path(partial / TRAINABLE_FILE) as temp:
            save_file(trainable_state(model), str(temp), metadata={"format": "pt"})
        if not session.uses_deepspeed:
            _torch_save(optimizer.state_dict(), partial / OPTIMIZER_FILE)
        _torch_save(scheduler.state_dict(), partial / SCHEDULER_FILE)
        write_trainer_state(partial / STATE_FILE, state)
    session.barrier()
    if session.is_main:
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for old in list_checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    session.barrier()
    return final


def load_checkpoint(
    session: Session,
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainerState:
    """Restore a checkpoint into a run set up exactly as the one that wrote it.

    Args:
        session: the processes.
        folder: a complete checkpoint folder.
        model: the unwrapped model (trainable parameters as in the run that wrote it).
        optimizer, scheduler: as prepared by the session.

    Returns:
        The run's progress at the checkpoint.

    Raises:
        CheckpointError: a file is missing or does not fit.
    """
    state = read_trainer_state(folder / STATE_FILE)
    try:
        load_trainable_state(model, load_file(str(folder / TRAINABLE_FILE)))
        if session.uses_deepspeed:
            session.accelerator.load_state(str(folder / ENGINE_DIR))
        else:
            optimizer.load_state_dict(torch.load(folder / OPTIMIZER_FILE, weights_only=True))
        scheduler.load_state_dict(torch.load(folder / SCHEDULER_FILE, weights_only=True))
        # Random states are python/numpy objects written by this module, not weights from elsewhere.
        rng = folder / RNG_DIR / f"rank-{session.rank}.pt"
        if rng.is_file():
            _set_rng_state(torch.load(rng, weights_only=False))
        else:
            logger.warning("%s: no random state for process %d (fewer processes wrote it)", folder, session.rank)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"{folder}: cannot restore the checkpoint: {error}") from error
    return state
