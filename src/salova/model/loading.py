"""Building a SALOVA model's parts from local folders (used by ``SalovaForCausalLM.from_components``).

A part is a config (random weights) or a folder: a CLIP/SigLIP vision or text model, a full
CLIP/SigLIP model (both towers; the unused one is ignored), or anything ``AutoModelForCausalLM``
loads. Weights missing from a folder are an error, never a silent random initialisation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, PreTrainedConfig, PreTrainedModel
from transformers.utils import logging as transformers_logging

from salova.errors import CheckpointError, ConfigError
from salova.model.configuration_salova import TEXT_TOWER_TYPES, VISION_TOWER_TYPES

__all__ = ["DUAL_TOWER_TYPES", "component_config", "pretrained_part", "load_part"]

# model_type of a two-tower checkpoint folder (CLIPModel, SiglipModel) -> its sub-config attributes.
DUAL_TOWER_TYPES = {"clip": ("vision_config", "text_config"), "siglip": ("vision_config", "text_config")}


def component_config(
    source: str | os.PathLike | PreTrainedConfig, kind: str, load_kwargs: Mapping[str, Any]
) -> tuple[PreTrainedConfig, Path | None]:
    """The config of one part, and its folder when it is loaded from one."""
    if isinstance(source, PreTrainedConfig):
        return source, None
    path = Path(source)
    if not path.is_dir():
        raise CheckpointError(f"{path}: the {kind} folder does not exist")
    try:
        config = AutoConfig.from_pretrained(path, **load_kwargs)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot read the {kind} config: {error}") from error
    if kind == "language_model":
        return config, path
    if config.model_type in DUAL_TOWER_TYPES:
        vision_key, text_key = DUAL_TOWER_TYPES[config.model_type]
        config = getattr(config, vision_key if kind == "vision" else text_key)
    supported = VISION_TOWER_TYPES if kind == "vision" else TEXT_TOWER_TYPES
    if config.model_type not in supported:
        raise ConfigError(
            f"{path}: a {kind} tower must be one of {sorted(supported)} (or a full "
            f"{sorted(DUAL_TOWER_TYPES)} model), got model_type {config.model_type!r}"
        )
    return config, path


def pretrained_part(model_class: Any, path: Path, load_kwargs: Mapping[str, Any]) -> PreTrainedModel:
    """Load one part from its folder; every weight of the part must be there.

    Weights of the folder that the part does not use (the other tower of a CLIP/SigLIP checkpoint)
    are expected and not reported.
    """
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        part, info = model_class.from_pretrained(path, output_loading_info=True, **load_kwargs)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot load weights: {error}") from error
    finally:
        transformers_logging.set_verbosity(verbosity)
    incomplete = sorted(info["missing_keys"]) + sorted(str(key) for key in info["mismatched_keys"])
    if incomplete:
        raise CheckpointError(f"{path}: weights missing or of the wrong shape: {incomplete[:5]}")
    return part


def load_part(module: nn.Module, state_dict: Mapping[str, torch.Tensor], path: Path) -> None:
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the configured model: {error}") from error
