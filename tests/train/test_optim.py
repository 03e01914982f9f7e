"""AdamW parameter groups and the warmup + cosine schedule (paper Table 5)."""

from __future__ import annotations

import pytest
from torch import nn

from salova.errors import ConfigError
from salova.train.config import OptimizerConfig
from salova.train.optim import build_optimizer, build_scheduler, lr_factor, parameter_groups, warmup_steps


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.vision_tower = nn.Linear(3, 3)
        self.text_tower = nn.LayerNorm(3)
        self.connector = nn.Linear(3, 3)
        self.language_model = nn.Linear(3, 3)
        self.language_model.requires_grad_(False)


def test_towers_learn_at_their_own_rate_and_only_matrices_decay():
    config = OptimizerConfig(lr=2e-5, lr_towers=2e-6, weight_decay=0.1)
    model = _Model()
    groups = {g["name"]: g for g in parameter_groups(model, config)}
    assert set(groups) == {"others+decay", "others+no_decay", "towers+decay", "towers+no_decay"}
    assert groups["towers+decay"]["params"] == [model.vision_tower.weight]
    assert groups["towers+no_decay"]["params"] == [
        model.vision_tower.bias,
        model.text_tower.weight,
        model.text_tower.bias,
    ]
    assert groups["others+decay"]["params"] == [model.connector.weight]  # the frozen LLM is left out
    assert (groups["towers+decay"]["lr"], groups["others+decay"]["lr"]) == (2e-6, 2e-5)
    assert (groups["others+decay"]["weight_decay"], groups["others+no_decay"]["weight_decay"]) == (0.1, 0.0)
    optimizer = build_optimizer(model, config)
    assert optimizer.defaults["betas"] == (0.9, 0.999)


def test_a_trainable_tower_needs_a_tower_rate_and_something_must_train():
    with pytest.raises(ConfigError, match="lr_towers"):
        parameter_groups(_Model(), OptimizerConfig(lr=1e-3))
    frozen = _Model().requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameter"):
        parameter_groups(frozen, OptimizerConfig(lr=1e-3))


def test_warmup_then_cosine_to_the_floor():
    total = 100
    warmup = warmup_steps(OptimizerConfig(lr=1.0), total)
    assert warmup == 3  # Table 5: 0.03 of the run
    factors = [lr_factor(s, warmup=warmup, total=total, schedule="cosine", min_lr_ratio=0.1) for s in range(total)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1.0]) and factors[3] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)
    assert lr_factor(50, warmup=3, total=total, schedule="constant", min_lr_ratio=0.0) == 1.0


def test_the_scheduler_steps_the_groups_together_and_restores_its_position():
    model = _Model().requires_grad_(True)
    config = OptimizerConfig(lr=1e-3, lr_towers=1e-4, warmup_ratio=0.1)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, 20)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    lrs = [g["lr"] for g in optimizer.param_groups]
    assert lrs[0] / lrs[-1] == pytest.approx(10.0)
    restored_optimizer = build_optimizer(_Model().requires_grad_(True), config)
    restored = build_scheduler(restored_optimizer, config, 20)
    restored.load_state_dict(scheduler.state_dict())
    restored_optimizer.load_state_dict(optimizer.state_dict())
    assert [g["lr"] for g in restored_optimizer.param_groups] == lrs
    for opt, sched in ((optimizer, scheduler), (restored_optimizer, restored)):
        opt.step()
        sched.step()
    assert [g["lr"] for g in restored_optimizer.param_groups] == [g["lr"] for g in optimizer.param_groups]
