"""Named model configurations.

* ``paper-llama3b``, ``paper-phi3.8b``, ``paper-qwen7b``: the paper's three models (section 5.1):
  CLIP ViT-L/14-336 vision and text towers, the connector and router of Appendix C, and the sizes of
  Llama-3.2-3B, Phi-3.5-mini and Qwen2.5-7B. They carry sizes only; build them on the ``meta``
  device to inspect shapes and parameter counts without memory, or load real weights with
  :meth:`~salova.model.SalovaForCausalLM.from_components`. Long-context RoPE variants of the
  checkpoints (Phi-3.5's LongRoPE factors) are not reproduced; they add no parameters.
* ``tiny``: random, a few hundred thousand parameters, seconds on a CPU; for tests and the
  synthetic world. :func:`tiny_config` picks its language model (``llama``, ``qwen2``, ``phi3``)
  and towers (``clip``, ``siglip``). Its special token ids follow a byte-level tokenizer: the 256
  bytes, then ``<s>`` (256), ``</s>`` (257), ``<pad>`` (258) and ``<video>`` (259).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import (
    CLIPTextConfig,
    CLIPVisionConfig,
    LlamaConfig,
    Phi3Config,
    PreTrainedConfig,
    Qwen2Config,
    SiglipTextConfig,
    SiglipVisionConfig,
)

from salova.errors import ConfigError
from salova.model.configuration_salova import SalovaConfig
from salova.model.modeling_salova import MODULE_NAMES, SalovaForCausalLM

__all__ = [
    "list_presets",
    "preset_config",
    "build_preset",
    "tiny_config",
    "count_parameters",
    "TINY_LANGUAGE_MODELS",
    "TINY_TOWERS",
    "TINY_BOS_ID",
    "TINY_EOS_ID",
    "TINY_PAD_ID",
    "TINY_VIDEO_TOKEN_ID",
]

# Phi-3.5-mini(-instruct) sizes (paper section 5.1: "3.8B: Phi-3.5-mini").
PHI_35_MINI = {
    "vocab_size": 32064,
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 131072,
    "original_max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 32000,
    "pad_token_id": 32000,
}
# Qwen2.5-7B(-Instruct) sizes (paper section 5.1: "7B: Qwen2.5-7B").
QWEN_25_7B = {
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "tie_word_embeddings": False,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}

TINY_BOS_ID, TINY_EOS_ID, TINY_PAD_ID, TINY_VIDEO_TOKEN_ID = 256, 257, 258, 259
TINY_VOCAB_SIZE = 300
TINY_WIDTH = 32
_TINY_TOKENS = {"bos_token_id": TINY_BOS_ID, "eos_token_id": TINY_EOS_ID, "pad_token_id": TINY_PAD_ID}
_TINY_LM = {
    "vocab_size": TINY_VOCAB_SIZE,
    "hidden_size": TINY_WIDTH,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 8192,
    **_TINY_TOKENS,
}
_TINY_ENCODER = {"hidden_size": TINY_WIDTH, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
_TINY_TEXT_ENCODER = {**_TINY_ENCODER, "vocab_size": TINY_VOCAB_SIZE, "max_position_embeddings": 64, **_TINY_TOKENS}

TINY_LANGUAGE_MODELS: dict[str, Callable[[], PreTrainedConfig]] = {
    "llama": lambda: LlamaConfig(**_TINY_LM, num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2": lambda: Qwen2Config(**_TINY_LM, num_key_value_heads=2, tie_word_embeddings=False),
    "phi3": lambda: Phi3Config(**_TINY_LM, num_key_value_heads=4, original_max_position_embeddings=8192),
}
# Vision 16 px / 4 px patches -> 4x4 grid -> 2x2 = 4 tokens per frame (CLIP); 12 px -> 3x3 grid ->
# 2x2 with a partial edge window (SigLIP), which exercises odd grids.
TINY_TOWERS: dict[str, Callable[[], tuple[PreTrainedConfig, PreTrainedConfig]]] = {
    "clip": lambda: (
        CLIPVisionConfig(**_TINY_ENCODER, image_size=16, patch_size=4, projection_dim=TINY_WIDTH),
        CLIPTextConfig(**_TINY_TEXT_ENCODER, projection_dim=TINY_WIDTH),
    ),
    "siglip": lambda: (
        SiglipVisionConfig(**_TINY_ENCODER, image_size=12, patch_size=4),
        SiglipTextConfig(**_TINY_TEXT_ENCODER),
    ),
}


def tiny_config(language_model: str = "llama", towers: str = "clip", **overrides: Any) -> SalovaConfig:
    """A tiny random SALOVA config (width 32, 4 latents, top-2, small position tables).

    The temporal table (8 frames) and segment table (8 segments) are deliberately small so that
    longer segments and videos exercise the resampled-table path.

    Args:
        language_model: one of :data:`TINY_LANGUAGE_MODELS`.
        towers: one of :data:`TINY_TOWERS`.
        **overrides: other :class:`SalovaConfig` fields.

    Raises:
        ConfigError: an unknown language model or tower family.
    """
    if language_model not in TINY_LANGUAGE_MODELS:
        raise ConfigError(f"Unknown tiny language model {language_model!r}; choose from {sorted(TINY_LANGUAGE_MODELS)}")
    if towers not in TINY_TOWERS:
        raise ConfigError(f"Unknown tiny towers {towers!r}; choose from {sorted(TINY_TOWERS)}")
    vision, text = TINY_TOWERS[towers]()
    fields: dict[str, Any] = {
        "vision_config": vision,
        "text_tower_config": text,
        "text_config": TINY_LANGUAGE_MODELS[language_model](),
        "vision_feature_layer": -2,
        "connector_hidden_size": TINY_WIDTH,
        "connector_num_heads": 2,
        "connector_head_dim": 8,
        "connector_num_latents": 4,
        "connector_ff_mult": 2,
        "connector_max_frames": 8,
        "connector_full_drop_frames": 8,
        "connector_chunk_tokens": 4096,
        "vision_chunk_frames": 64,
        "router_hidden_size": TINY_WIDTH,
        "router_intermediate_size": TINY_WIDTH,
        "router_max_segments": 8,
        "focus_top_k": 2,
        "video_token_id": TINY_VIDEO_TOKEN_ID,
    }
    fields.update(overrides)
    return SalovaConfig(**fields)


PRESETS: dict[str, Callable[..., SalovaConfig]] = {
    # SalovaConfig's defaults are the paper's 3B model.
    "paper-llama3b": lambda **overrides: SalovaConfig(**overrides),
    "paper-phi3.8b": lambda **overrides: SalovaConfig(text_config=Phi3Config(**PHI_35_MINI), **overrides),
    "paper-qwen7b": lambda **overrides: SalovaConfig(text_config=Qwen2Config(**QWEN_25_7B), **overrides),
    "tiny": lambda **overrides: tiny_config(**overrides),
}


def list_presets() -> list[str]:
    """Names accepted by :func:`preset_config` and :func:`build_preset`."""
    return sorted(PRESETS)


def preset_config(name: str, **overrides: Any) -> SalovaConfig:
    """The config of a named preset, with optional field overrides.

    Raises:
        ConfigError: unknown preset name.
    """
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}; choose from {list_presets()}")
    return PRESETS[name](**overrides)


def build_preset(name: str, device: str | torch.device | None = None, **overrides: Any) -> SalovaForCausalLM:
    """Build a preset model; ``device="meta"`` gives shapes without allocating weights.

    Args:
        name: a preset from :func:`list_presets`.
        device: device to build on (default: the current default device).
        **overrides: :class:`SalovaConfig` field overrides.
    """
    config = preset_config(name, **overrides)
    if device is None:
        return SalovaForCausalLM(config)
    with torch.device(device):
        return SalovaForCausalLM(config)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level SALOVA module (:data:`MODULE_NAMES`) and ``total``.

    Tied parameters (a language model sharing its input and output embeddings) count once.
    """
    counts = {}
    for name in MODULE_NAMES:
        counts[name] = sum(p.numel() for p in getattr(model, name).parameters())
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
