"""AdamW with per-module learning rates and the warmup + cosine schedule (paper Table 5).

Parameter groups: the vision and text towers learn at ``lr_towers`` (Table 5: lr_{vision, text}),
everything else at ``lr`` (lr_{LLM, others}); within each, matrices decay and 1-D parameters
(biases, norms, scales) do not.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from salova.errors import ConfigError
from salova.train.config import TOWER_MODULES, OptimizerConfig

__all__ = ["parameter_groups", "build_optimizer", "warmup_steps", "lr_factor", "build_scheduler"]


def parameter_groups(model: nn.Module, config: OptimizerConfig) -> list[dict]:
    """The trainable parameters of ``model`` in AdamW groups, in a fixed order.

    Groups carry a ``name`` (``towers``/``others``, ``+decay``/``+no_decay``) for logging.

    Raises:
        ConfigError: nothing is trainable, or a tower trains without ``lr_towers``.
    """
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        tower = name.split(".", 1)[0] in TOWER_MODULES
        decays = parameter.ndim >= 2
        buckets.setdefault((tower, decays), []).append(parameter)
    if not buckets:
        raise ConfigError("the model has no trainable parameter; check `trainable`")
    if any(tower for tower, _ in buckets) and config.lr_towers is None:
        raise ConfigError("optim.lr_towers must be set when a tower trains")
    groups = []
    for tower in (False, True):
        for decays in (True, False):
            params = buckets.get((tower, decays))
            if not params:
                continue
            groups.append(
                {
                    "name": f"{'towers' if tower else 'others'}+{'decay' if decays else 'no_decay'}",
                    "params": params,
                    "lr": config.lr_towers if tower else config.lr,
                    "weight_decay": config.weight_decay if decays else 0.0,
                }
            )
    return groups


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups` (Table 5: betas 0.9, 0.999)."""
    return torch.optim.AdamW(parameter_groups(model, config), betas=config.betas, eps=config.eps)


def warmup_steps(config: OptimizerConfig, total_steps: int) -> int:
    """Optimizer steps of linear warmup: ``warmup_ratio`` of the run, rounded up."""
    return math.ceil(config.warmup_ratio * total_steps)


def lr_factor(step: int, *, warmup: int, total: int, schedule: str, min_lr_ratio: float) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Linear warmup reaches 1 at the last warmup step (so no step runs at lr 0), then a cosine from
    1 down to ``min_lr_ratio`` at the end of the run (or a constant 1).
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimizerConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule of :func:`lr_factor` as a ``LambdaLR`` stepped once per optimizer step."""
    warmup = warmup_steps(config, total_steps)

    def factor(step: int) -> float:
        return lr_factor(
            step, warmup=warmup, total=total_steps, schedule=config.schedule, min_lr_ratio=config.min_lr_ratio
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
