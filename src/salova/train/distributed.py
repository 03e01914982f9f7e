"""One process or many: a thin layer over ``accelerate`` (DDP; gloo on CPU; DeepSpeed when configured).

Launch as you like; the training code is the same:

* one process: ``salova train ...``;
* several: ``torchrun --nproc-per-node N -m salova train ...`` or
  ``accelerate launch --config_file src/salova/train/configs/accelerate_cpu_ddp.yaml -m salova train ...``;
* DeepSpeed ZeRO-2 on GPUs: ``accelerate launch --config_file accelerate_deepspeed_zero2.yaml ...``,
  which points at ``deepspeed_zero2.json`` (``pip install deepspeed``; never needed on CPU).

Without a GPU the processes talk through gloo. Gradients are averaged over processes by DDP, so
with the same global batch a run of N processes computes the same updates as one process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs, PartialState
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DistributedType

from salova.train.config import RunConfig

__all__ = ["Session", "start_session", "resolve_precision"]

logger = logging.getLogger(__name__)

# Parts of a trainable module may sit out a step (the vision tower's last layer when features come
# from the second-to-last; segments that are not in focus), which plain DDP reports as an error.
FIND_UNUSED_PARAMETERS = True


def resolve_precision(precision: str) -> str:
    """``accelerate``'s mixed-precision mode for a config's ``precision``.

    ``auto`` is bf16 on a CUDA device that supports it and fp32 elsewhere (bf16 on a CPU is slow
    and buys no memory that matters at CPU scale).
    """
    if precision == "bf16":
        return "bf16"
    if precision == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


@dataclass
class Session:
    """The processes of a run and the ``Accelerator`` that joins them."""

    accelerator: Accelerator

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def backend(self) -> str | None:
        """``gloo``, ``nccl``... or ``None`` for one process."""
        return self.accelerator.state.backend if self.world_size > 1 else None

    @property
    def uses_deepspeed(self) -> bool:
        return self.accelerator.distributed_type == DistributedType.DEEPSPEED

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """Per-key sums over all processes (every process gets the result)."""
        if self.world_size == 1:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        total = self.accelerator.reduce(tensor, reduction="sum")
        return dict(zip(keys, total.tolist(), strict=True))

    def close(self) -> None:
        """End the run: destroy the process group and clear ``accelerate``'s process-wide state, so that
        another run in the same Python process (a notebook, a test, a chain of stages) starts afresh."""
        self.accelerator.end_training()
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def start_session(config: RunConfig) -> Session:
    """Join the processes of this run (if launched as several) and set up precision and accumulation.

    Raises:
        ConfigError: the global batch does not split over the processes.
    """
    cpu = not torch.cuda.is_available()
    # PartialState reads the launcher's environment (torchrun / accelerate launch) and joins the group;
    # on CPU it has to be told, or it would run each process alone.
    state = PartialState(cpu=cpu)
    accumulation = config.accumulation_steps(state.num_processes)
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=resolve_precision(config.precision),
        gradient_accumulation_steps=accumulation,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=FIND_UNUSED_PARAMETERS)],
    )
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # The batch order is ours (no prepared DataLoader), so DeepSpeed is told the batch sizes.
        deepspeed_config = accelerator.state.deepspeed_plugin.deepspeed_config
        deepspeed_config["train_micro_batch_size_per_gpu"] = config.micro_batch_size
        deepspeed_config["train_batch_size"] = config.global_batch_size
    session = Session(accelerator)
    logger.info(
        "process %d of %d (%s), device %s, precision %s, accumulation %d",
        session.rank,
        session.world_size,
        session.backend or "single process",
        session.device,
        accelerator.mixed_precision,
        accumulation,
    )
    return session
