"""Helpers of the training tests: tiny stage configs, a tiny LLM folder, subprocess runs, weight reading.

(A module with a unique name rather than ``conftest``, so that tests can import it whatever other
test folders hold.)
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from model.model_helpers import make_llm_tokenizer
from salova.model.presets import TINY_LANGUAGE_MODELS
from salova.train.logs import read_metrics
from salova.train.weights import ADAPTER_DIR, PARTS_WEIGHTS_FILE

TINY_CLIP = {
    "image_size": 16,
    "patch_size": 4,
    "max_text_length": 64,
    "projection_dim": 32,
    "vision": {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64},
    "text": {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64},
}
"""Stage 0 model sizes: 16 px frames, 4 px patches (4 x 4 grid, 2 x 2 = 4 tokens per frame after pooling)."""

LORA = {
    "r": 8,
    "alpha": 16.0,
    "dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
"""An adapter on every linear layer of the tiny LLM."""


TINY_LLM_INIT_RANGE = 0.2
"""Init std of the tiny LLM: large enough that its (tied, frozen) output embedding gives peaked
predictions which a LoRA adapter can move; at 0.02 every logit is near zero and LoRA learns nothing."""


def write_tiny_llm(folder: Path) -> Path:
    """The tiny preset's Llama (random, seeded) with a byte-level chat tokenizer, as a model folder."""
    torch.manual_seed(0)
    config = TINY_LANGUAGE_MODELS["llama"]()
    config.initializer_range = TINY_LLM_INIT_RANGE
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    make_llm_tokenizer().save_pretrained(folder)
    return folder


def stage0_config(corpus: Path, output: Path, **changes: Any) -> dict[str, Any]:
    config = {
        "stage": 0,
        "output_dir": str(output),
        "model": copy.deepcopy(TINY_CLIP),
        "optim": {"lr": 2e-3},
        "max_steps": 20,
        "global_batch_size": 8,
        "micro_batch_size": 8,
        "logging": {"tensorboard": False},
        "data": {"corpus": str(corpus)},
    }
    config.update(changes)
    return config


def salova_config(
    stage: float, output: Path, records: Path, *, source: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    """A tiny SALOVA stage: 4 samples, global batch 4 of micro-batches of 2; ``source`` is
    ``{"init_from": ...}`` or ``{"model": {...}}``."""
    config = {
        "stage": stage,
        "output_dir": str(output),
        **source,
        "config_overrides": {"router_dropout": 0.1},
        "optim": {"lr": 1e-2, "lr_towers": 1e-3},
        "max_steps": 16,
        "global_batch_size": 4,
        "micro_batch_size": 2,
        "top_k": 2,
        "logging": {"tensorboard": False},
        "data": {"records": str(records), "max_samples": 4},
    }
    config.update(changes)
    return config


def components(stage0: Path, llm: Path) -> dict[str, Any]:
    return {"model": {"preset": "tiny", "vision_tower": str(stage0), "language_model": str(llm)}}


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def subprocess_env() -> dict[str, str]:
    """One intra-op thread, as in the test process, so that both compute in the same order."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def salova_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "salova", *args]


def run_salova(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(salova_command(*args), capture_output=True, text=True, timeout=timeout, env=subprocess_env())


def losses(output: Path, key: str = "loss") -> list[float]:
    return [m[key] for m in read_metrics(output)]


def trained_weights(output: Path) -> dict[str, torch.Tensor]:
    """Every weight a stage output holds: the SALOVA parts and LoRA adapter, or the full model."""
    if (output / PARTS_WEIGHTS_FILE).is_file():
        weights = load_file(str(output / PARTS_WEIGHTS_FILE))
        adapter = output / ADAPTER_DIR / "adapter_model.safetensors"
        if adapter.is_file():
            weights.update({f"adapter.{k}": v for k, v in load_file(str(adapter)).items()})
        return weights
    return load_file(str(output / "model.safetensors"))


def max_difference(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> float:
    assert left.keys() == right.keys()
    return max(float((left[k].float() - right[k].float()).abs().max()) for k in left)
