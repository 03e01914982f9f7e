"""Stage 0's attribute vector and loss (salova.train.clip_attributes)."""

from __future__ import annotations

import pytest
import torch

from salova.synth import SynthBackground, SynthObject, SynthScene
from salova.train.clip_attributes import ATTRIBUTE_GROUPS, NUM_ATTRIBUTES, attribute_loss, scene_attributes


def _scene(*objects: SynthObject) -> SynthScene:
    return SynthScene(0, 0, 8, 0.0, 1.0, SynthBackground("blue", "checkered"), objects, None, "caption")


def _named(vector) -> dict[str, set[str]]:
    named, start = {}, 0
    for group in ATTRIBUTE_GROUPS:
        block = vector[start : start + len(group.values)]
        named[group.name] = {value for value, on in zip(group.values, block, strict=True) if on}
        start += len(group.values)
    return named


def test_the_attribute_vector_names_the_background_and_every_object():
    star = SynthObject("star", "red", "large", "up", (0.5, 0.8), (0.5, 0.2))
    circle = SynthObject("circle", "yellow", "small", "still", (0.2, 0.5), (0.2, 0.5))
    vector = scene_attributes(_scene(star, circle))
    assert vector.shape == (NUM_ATTRIBUTES,) and vector.sum() == 2 + 2 + 2 + 2
    assert _named(vector) == {
        "background": {"blue"},
        "pattern": {"checkered"},
        "shape": {"star", "circle"},
        "color": {"red", "yellow"},
        "size": {"large", "small"},
    }


def test_the_attribute_loss_rewards_the_true_values_and_reports_accuracy_per_group():
    star = SynthObject("star", "red", "large", "up", (0.5, 0.8), (0.5, 0.2))
    targets = torch.from_numpy(scene_attributes(_scene(star))).unsqueeze(0)
    right, _ = attribute_loss(10 * (2 * targets - 1), targets)
    wrong, accuracy = attribute_loss(-10 * (2 * targets - 1), targets)
    assert right < 0.01 < 10 < wrong
    assert accuracy == {"background": 0.0, "pattern": 0.0, "shape": 0.0, "color": 0.0, "size": 0.0}
    _, accuracy = attribute_loss(targets.clone(), targets)
    assert set(accuracy.values()) == {1.0}


def test_the_attribute_loss_weighs_each_group_and_skips_the_missing_ones():
    star = SynthObject("star", "red", "large", "up", (0.5, 0.8), (0.5, 0.2))
    targets = torch.from_numpy(scene_attributes(_scene(star))).unsqueeze(0)
    logits = torch.randn(1, NUM_ATTRIBUTES, generator=torch.Generator().manual_seed(0))
    shape_only, _ = attribute_loss(logits, targets, {"shape": 2.0})
    block = slice(12 + 5, 12 + 5 + 8)  # after background (12) and pattern (5)
    expected = 2.0 * torch.nn.functional.cross_entropy(logits[:, block], targets[:, block].argmax(dim=1))
    assert torch.allclose(shape_only, expected)
    assert torch.allclose(attribute_loss(logits, targets, {})[0], torch.zeros(()))


def test_attribute_weights_are_checked_by_name_and_value():
    from salova.errors import ConfigError
    from salova.train import config_from_dict

    base = {"stage": 0, "global_batch_size": 2, "data": {"corpus": "c"}}
    with pytest.raises(ConfigError, match="attribute_weights must be keyed by"):
        config_from_dict({**base, "attribute_weights": {"texture": 1.0}})
    with pytest.raises(ConfigError, match=r"attribute_weights.shape must be a number >= 0"):
        config_from_dict({**base, "attribute_weights": {"shape": -1.0}})


def test_the_attribute_warmup_is_checked():
    from salova.errors import ConfigError
    from salova.train import config_from_dict

    base = {"stage": 0, "global_batch_size": 2, "data": {"corpus": "c"}, "epochs": 4}
    heads = {"attribute_weights": {"shape": 1.0}}
    with pytest.raises(ConfigError, match=r"attribute_warmup.weights must be a weight above 0"):
        config_from_dict({**base, **heads, "attribute_warmup": {"epochs": 1}})
    with pytest.raises(ConfigError, match=r"attribute_warmup.weights must be keyed by"):
        config_from_dict({**base, **heads, "attribute_warmup": {"epochs": 1, "weights": {"texture": 1.0}}})
    with pytest.raises(ConfigError, match=r"attribute_warmup.epochs must be fewer than epochs"):
        config_from_dict({**base, **heads, "attribute_warmup": {"epochs": 4, "weights": {"shape": 1.0}}})
    with pytest.raises(ConfigError, match=r"attribute_weights must be set when attribute_warmup.epochs is"):
        config_from_dict({**base, "attribute_warmup": {"epochs": 1, "weights": {"shape": 1.0}}})
    config = config_from_dict({**base, **heads, "attribute_warmup": {"epochs": 1, "weights": {"shape": 1.0}}})
    assert config.attribute_warmup.epochs == 1 and config.attribute_warmup.weights == {"shape": 1.0}


def test_while_warming_up_only_the_warmup_attributes_train_the_tower():
    from transformers import CLIPConfig, CLIPModel

    from salova.train.clip_attributes import AttributeClip

    torch.manual_seed(0)
    clip = CLIPModel(
        CLIPConfig(
            text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32},
            vision_config={
                "hidden_size": 16,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "intermediate_size": 32,
                "image_size": 16,
                "patch_size": 8,
            },
            projection_dim=8,
        )
    )
    model = AttributeClip(clip, {"background": 1.0, "shape": 1.0}, warmup_weights={"shape": 1.0})
    star = SynthObject("star", "red", "large", "up", (0.5, 0.8), (0.5, 0.2))
    inputs = {
        "pixel_values": torch.randn(2, 3, 16, 16),
        "input_ids": torch.tensor([[1, 2, 3], [1, 4, 3]]),
        "attention_mask": torch.ones(2, 3, dtype=torch.long),
        "attributes": torch.from_numpy(scene_attributes(_scene(star))).repeat(2, 1),
    }
    loss, out, attribute, _ = model(**inputs)
    assert torch.allclose(loss, out.loss + attribute)
    model.warming_up = True
    loss, out, attribute, _ = model(**inputs)
    features = out.vision_model_output.hidden_states[model.feature_layer][:, 1:].mean(dim=1)
    shape_only, _ = attribute_loss(model.heads(features), inputs["attributes"], {"shape": 1.0})
    assert torch.equal(loss, attribute) and torch.allclose(attribute, shape_only) and out.loss > 0
    loss.backward()
    assert all(p.grad is None for p in clip.text_model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in clip.vision_model.parameters())
