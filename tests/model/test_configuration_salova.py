"""SalovaConfig: paper defaults, validation with helpful errors, serialisation."""

from __future__ import annotations

import pytest
from transformers import AutoConfig, SiglipVisionConfig

from salova.errors import ConfigError
from salova.model import SalovaConfig, tiny_config


def test_defaults_are_the_papers_3b_model():
    config = SalovaConfig()
    assert config.vision_config.model_type == "clip_vision_model"
    assert (config.vision_config.image_size, config.vision_config.patch_size) == (336, 14)
    assert config.patch_grid_size == 24
    assert config.tokens_per_frame == 144  # paper section 4: 576 patches, 2x2 pooling
    assert config.text_tower_config.model_type == "clip_text_model"
    assert config.text_config.model_type == "llama"
    assert config.text_config.hidden_size == 3072
    assert (config.connector_num_latents, config.connector_num_layers, config.connector_num_heads) == (256, 2, 2)
    assert (config.router_num_layers, config.router_num_heads, config.router_hidden_size) == (2, 1, 1024)
    assert config.similarity_margin == 0.2
    assert config.focus_top_k == 5
    assert config.focusfast_pathways == ["fast", "focus"]


def test_siglip_vision_pairs_with_siglip_text_and_pools_its_own_grid():
    config = SalovaConfig(vision_config=SiglipVisionConfig(image_size=384, patch_size=14))
    assert config.text_tower_config.model_type == "siglip_text_model"
    assert config.vision_has_class_token is False
    # 384 / 14 -> 27 patches per side; 2x2 pooling with a partial last window -> 14 x 14.
    assert config.patch_grid_size == 27
    assert config.tokens_per_frame == 14 * 14


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("focus_top_k", 0, "focus_top_k must be >= 1, got 0"),
        ("connector_num_latents", 0, "connector_num_latents must be >= 1"),
        ("connector_max_token_drop", 1.0, "connector_max_token_drop must be in [0, 1), got 1.0"),
        ("router_dropout", -0.1, "router_dropout must be in [0, 1)"),
        ("similarity_margin", -1.0, "similarity_margin must be >= 0"),
        ("focusfast_pathways", ["fast", "slow"], "focusfast_pathways must be"),
        ("focusfast_pathways", ["fast", "fast"], "focusfast_pathways must be"),
        ("focusfast_pathways", [], "focusfast_pathways must be"),
        ("router_hidden_size", 48, "router_hidden_size (48) must equal connector_hidden_size (32)"),
        ("projector_hidden_act", "nope", "projector_hidden_act must be one of"),
        ("vision_feature_layer", 7, "vision_feature_layer must index"),
    ],
)
def test_invalid_values_name_the_field_and_value(field, value, fragment):
    with pytest.raises(ConfigError) as error:
        tiny_config(**{field: value})
    assert fragment in str(error.value)


def test_unknown_tower_type_lists_the_supported_ones():
    with pytest.raises(ConfigError, match=r"vision_config.model_type must be one of \['clip_vision_model'"):
        tiny_config(vision_config={"model_type": "vit"})


def test_round_trip_through_auto_config(tmp_path):
    config = tiny_config("qwen2", "siglip", focus_top_k=3, focusfast_pathways=["focus", "fast"])
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, SalovaConfig)
    assert loaded.to_diff_dict() == config.to_diff_dict()
    assert loaded.text_config.model_type == "qwen2"
    assert loaded.focusfast_pathways == ["focus", "fast"]


@pytest.mark.parametrize(
    ("pathways", "segments", "top_k", "expected"),
    [
        (["fast", "focus"], 30, 5, 30 + 5 * 4),
        (["fast", "focus"], 3, 5, 3 + 3 * 4),  # K is capped by the number of segments
        (["focus"], 30, 5, 5 * 4),
        (["fast"], 30, 5, 30),
    ],
)
def test_visual_token_count_follows_pathways(pathways, segments, top_k, expected):
    config = tiny_config(focusfast_pathways=pathways)
    assert config.visual_tokens_per_video(segments, top_k) == expected
