"""Presets: the paper's three models build on the meta device with the expected parameter counts."""

from __future__ import annotations

import pytest
import torch

from salova.errors import ConfigError
from salova.model import SalovaConfig, build_preset, count_parameters, list_presets, preset_config

PAPER_PRESETS = ["paper-llama3b", "paper-phi3.8b", "paper-qwen7b"]
# Published sizes of the three language models (their checkpoints' parameter totals).
LLM_PARAMETERS = {"paper-llama3b": 3_212_749_824, "paper-phi3.8b": 3_821_079_552, "paper-qwen7b": 7_615_616_512}


def connector_parameters(config: SalovaConfig, vision_hidden: int) -> int:
    """Perceiver resampler (paper Appendix C) from the configured sizes."""
    d = config.connector_hidden_size
    inner = config.connector_num_heads * config.connector_head_dim
    per_layer = (
        2 * 2 * d  # layer norms of the media and latent streams
        + 4 * d * inner  # q, k, v, o projections, no bias
        + 2 * d  # feed-forward layer norm
        + 2 * config.connector_ff_mult * d * d  # feed-forward, no bias
    )
    projection = 0 if vision_hidden == d else vision_hidden * d + d
    return (
        (config.connector_num_latents + 1) * d  # latents + the routing latent
        + config.tokens_per_frame * vision_hidden  # spatial embedding
        + config.connector_max_frames * vision_hidden  # temporal embedding
        + projection
        + config.connector_num_layers * per_layer
        + 2 * d  # final norm
    )


def router_parameters(config: SalovaConfig, text_hidden: int) -> int:
    """SR-Router (paper Appendix C) from the configured sizes."""
    d, f = config.router_hidden_size, config.router_intermediate_size
    per_layer = (
        4 * d * d
        + 4 * d  # cross-attention q, k, v, o with biases
        + 2 * 2 * d  # two layer norms
        + d * f
        + f
        + f * d
        + d  # feed-forward
        + 1  # PReLU slope
    )
    return (
        text_hidden * d
        + d  # text projection
        + config.router_max_segments * d  # segment-position table
        + 1  # logit scale
        + config.router_num_layers * per_layer
    )


def test_list_and_unknown_name():
    assert list_presets() == [*PAPER_PRESETS, "tiny"]
    with pytest.raises(ConfigError, match=r"Unknown preset 'paper-13b'; choose from \['paper-llama3b'"):
        preset_config("paper-13b")


@pytest.mark.parametrize("name", PAPER_PRESETS)
def test_paper_preset_builds_on_meta_with_formula_parameter_counts(name):
    model = build_preset(name, device="meta")
    config = model.config
    assert {p.device for p in model.parameters()} == {torch.device("meta")}
    counts = count_parameters(model)
    assert config.tokens_per_frame == 144
    assert counts["connector"] == connector_parameters(config, config.vision_config.hidden_size)
    assert counts["router"] == router_parameters(config, config.text_tower_config.hidden_size)
    llm_hidden = config.text_config.hidden_size
    assert counts["projector"] == 1024 * llm_hidden + llm_hidden + llm_hidden * llm_hidden + llm_hidden
    assert counts["language_model"] == LLM_PARAMETERS[name]


def test_tiny_preset_takes_overrides():
    config = preset_config("tiny", language_model="phi3", towers="siglip", focus_top_k=3)
    assert config.text_config.model_type == "phi3"
    assert config.vision_config.model_type == "siglip_vision_model"
    assert config.focus_top_k == 3
    with pytest.raises(ConfigError, match="Unknown tiny language model 'gpt2'"):
        preset_config("tiny", language_model="gpt2")
