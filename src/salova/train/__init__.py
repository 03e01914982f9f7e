"""Training SALOVA in stages: 0 (our CLIP pair) -> 1 (alignment) -> 1.5 (long-video knowledge) -> 2 (instructions).

Public entry points:

- :func:`load_config` — read and validate a stage YAML (``src/salova/train/configs/``).
- :func:`run_stage` — run the stage a config describes (what ``salova train`` calls).
- :func:`train` (stages 1-2) and :func:`pretrain_clip` (stage 0).
- :func:`load_trained` — load a stage's output folder (model and processor).
- :func:`export_checkpoint` — a finished run's model as a clean checkpoint folder.
- :func:`plot_training_curves` — the loss and retrieval curves of a chain of runs.
- :data:`STAGES` — the stage table.

Example:
    >>> from salova.train import load_config, run_stage
    >>> config = load_config("stage0-synthetic.yaml", stage=0, overrides=["output_dir=runs/stage0"])  # doctest: +SKIP
    >>> run_stage(config).output_dir  # doctest: +SKIP
    PosixPath('runs/stage0')
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from salova.train.clip_pretrain import pretrain_clip
from salova.train.config import (
    ClipPretrainConfig,
    LoraConfig,
    OptimizerConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)
from salova.train.curves import plot_training_curves
from salova.train.loop import TrainSummary, train
from salova.train.stages import STAGES, StageConfig, get_stage
from salova.train.weights import StageModel, export_checkpoint, load_trained

__all__ = [
    "STAGES",
    "StageConfig",
    "get_stage",
    "TrainConfig",
    "ClipPretrainConfig",
    "OptimizerConfig",
    "LoraConfig",
    "config_from_dict",
    "load_config",
    "config_path",
    "TrainSummary",
    "train",
    "pretrain_clip",
    "run_stage",
    "StageModel",
    "load_trained",
    "export_checkpoint",
    "plot_training_curves",
]


def config_path(name: str) -> Path:
    """Path of a shipped config file (``stage1_5.yaml``, ``deepspeed_zero2.json``...)."""
    return Path(str(resources.files("salova.train") / "configs" / name))


def run_stage(
    config: TrainConfig | ClipPretrainConfig, *, resume: bool = False, progress: bool = False
) -> TrainSummary:
    """Run the stage ``config`` describes: stage 0 trains a CLIP pair, stages 1-2 SALOVA.

    Args:
        config: from :func:`load_config`.
        resume: continue the run in ``output_dir`` from its newest checkpoint.
        progress: show a progress bar.
    """
    if isinstance(config, ClipPretrainConfig):
        return pretrain_clip(config, resume=resume, progress=progress)
    return train(config, resume=resume, progress=progress)
