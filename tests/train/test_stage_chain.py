"""Every stage runs on tiny configs, each from the previous stage's output, and its loss falls."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import LORA, components, losses, salova_config, stage0_config, trained_weights

from salova.errors import ConfigError
from salova.train import config_from_dict, load_trained, run_stage
from salova.train.logs import read_metrics
from salova.train.weights import ADAPTER_DIR, LANGUAGE_MODEL_SOURCE_FILE, PARTS_WEIGHTS_FILE


def falls(values: list[float], ratio: float) -> bool:
    """The mean of the last four steps is below ``ratio`` times the mean of the first four."""
    return sum(values[-4:]) / 4 < ratio * sum(values[:4]) / 4


def module_weights(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights.items() if k.startswith(prefix)}


def same(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_stage_0_to_2_chain_and_every_loss_falls(synthetic, tmp_path):
    from transformers import AutoProcessor, CLIPModel

    # Stage 0: a CLIP pair from the corpus, saved as a standard transformers CLIP folder.
    stage0 = tmp_path / "stage0"
    run_stage(config_from_dict(stage0_config(synthetic.corpus, stage0, max_steps=24)))
    assert falls(losses(stage0), 0.5)
    model = CLIPModel.from_pretrained(stage0)
    inputs = AutoProcessor.from_pretrained(stage0)(text=["a red star on a plain blue background"], return_tensors="pt")
    assert model.get_text_features(**inputs).pooler_output.shape == (1, 32)

    # Stage 1: assembled from the stage 0 towers and the tiny LLM; connector, router, projector learn.
    stage1 = tmp_path / "stage1"
    run_stage(config_from_dict(salova_config(1, stage1, synthetic.data, source=components(stage0, synthetic.llm))))
    assert falls(losses(stage1), 0.95)
    assert falls(losses(stage1, "similarity_loss"), 0.95)
    assert (stage1 / LANGUAGE_MODEL_SOURCE_FILE).is_file() and not (stage1 / "model.safetensors").exists()
    after1 = trained_weights(stage1)
    clip = load_file(str(stage0 / "model.safetensors"))
    clip_vision = {k.replace("vision_model.", "vision_tower.backbone.", 1): v for k, v in clip.items()}
    assert same(module_weights(after1, "vision_tower."), module_weights(clip_vision, "vision_tower."))

    # Stage 1.5: from stage 1; everything but the vision tower, the LLM through a new LoRA adapter.
    stage1_5 = tmp_path / "stage1_5"
    source = {"init_from": str(stage1)}
    run_stage(config_from_dict(salova_config(1.5, stage1_5, synthetic.data, source=source, lora=LORA)))
    assert falls(losses(stage1_5), 0.95)
    after1_5 = trained_weights(stage1_5)
    assert (stage1_5 / ADAPTER_DIR).is_dir()
    assert same(module_weights(after1_5, "vision_tower."), module_weights(after1, "vision_tower."))
    assert not same(module_weights(after1_5, "text_tower."), module_weights(after1, "text_tower."))

    # Stage 2: from stage 1.5, on questions (the stage's record task); everything trains, the adapter goes on.
    stage2 = tmp_path / "stage2"
    source = {"init_from": str(stage1_5)}
    run_stage(config_from_dict(salova_config(2, stage2, synthetic.data, source=source, lora=LORA)))
    assert falls(losses(stage2), 0.95)
    after2 = trained_weights(stage2)
    assert not same(module_weights(after2, "vision_tower."), module_weights(after1_5, "vision_tower."))
    assert not same(module_weights(after2, "adapter."), module_weights(after1_5, "adapter."))

    # The output loads with its stage settings and the adapter, from a few MB on disk.
    loaded = load_trained(stage2)
    assert loaded.has_adapter and loaded.model.config.connector_max_token_drop == 0.4
    assert sum(f.stat().st_size for f in stage2.rglob("*") if f.is_file()) < 8_000_000
    assert (stage2 / PARTS_WEIGHTS_FILE).is_file()
    assert loaded.model.config.choice_answer == "letter"

    # Taught the options' text instead of their letters, the checkpoint says it answers by the options.
    options = tmp_path / "stage2-options"
    data = {"records": str(synthetic.data), "max_samples": 4, "answer_format": "option"}
    config = salova_config(2, options, synthetic.data, source={"init_from": str(stage2)}, max_steps=1, data=data)
    run_stage(config_from_dict(config))
    assert load_trained(options).model.config.choice_answer == "option"


def test_stage_0_with_world_groups_and_the_attribute_loss_saves_a_plain_clip(synthetic, tmp_path):
    """Fresh world scenes plus the attribute heads: both losses fall, the metrics name each
    attribute group, and the saved folder is a plain CLIP without the heads. (Single-scene
    groups keep every micro-batch at 8 pairs, so that InfoNCE losses compare across steps.)"""
    from transformers import CLIPModel

    output = tmp_path / "stage0"
    data = {"corpus": str(synthetic.corpus), "world_scenes": 8, "world_group": 1}
    weights = {"background": 1.0, "pattern": 1.0, "shape": 2.0, "color": 1.0, "size": 1.0}
    config = stage0_config(synthetic.corpus, output, max_steps=48, data=data, attribute_weights=weights)
    run_stage(config_from_dict(config))
    assert falls(losses(output, "clip_loss"), 0.8) and falls(losses(output, "attribute_loss"), 0.8)
    assert {"background_acc", "pattern_acc", "shape_acc", "color_acc", "size_acc"} <= set(read_metrics(output)[-1])
    saved = load_file(str(output / "model.safetensors"))
    assert not any("heads" in key for key in saved)
    CLIPModel.from_pretrained(output)  # loads with no missing or unexpected weights


def test_stage_0_warms_up_on_the_attribute_loss_alone_then_adds_infonce(synthetic, tmp_path):
    """The first epoch (attribute_warmup) trains on the shape head alone; the second on InfoNCE
    plus every head."""
    output = tmp_path / "stage0"
    data = {"corpus": str(synthetic.corpus), "world_scenes": 8, "world_group": 1}
    weights = {"background": 1.0, "pattern": 1.0, "shape": 2.0, "color": 1.0, "size": 1.0}
    warmup = {"epochs": 1, "weights": {"shape": 1.0}}
    config = stage0_config(
        synthetic.corpus,
        output,
        max_steps=None,
        epochs=2,
        data=data,
        attribute_weights=weights,
        attribute_warmup=warmup,
    )
    run_stage(config_from_dict(config))
    rows = read_metrics(output)
    warming = [row for row in rows if row["epoch"] <= 1]
    after = [row for row in rows if row["epoch"] > 1]
    assert warming and after
    assert all(row["loss"] == pytest.approx(row["attribute_loss"]) for row in warming)
    assert all(row["loss"] == pytest.approx(row["clip_loss"] + row["attribute_loss"]) for row in after)
    assert all(row["clip_loss"] > 0.1 for row in after)
    # the warm-up weighs shape only; the heads' loss jumps when the other groups join
    assert after[0]["attribute_loss"] > 2 * warming[-1]["attribute_loss"]


def test_a_warm_up_as_long_as_a_max_steps_run_is_refused_once_the_data_is_counted(synthetic, tmp_path):
    # 11 corpus scenes + 8 world scenes in global batches of 8: 2 steps per epoch.
    output = tmp_path / "stage0"
    config = stage0_config(
        synthetic.corpus,
        output,
        max_steps=2,
        data={"corpus": str(synthetic.corpus), "world_scenes": 8, "world_group": 1},
        attribute_weights={"shape": 1.0},
        attribute_warmup={"epochs": 1, "weights": {"shape": 1.0}},
    )
    message = r"attribute_warmup.epochs must be fewer than the run's epochs \(max_steps 2 of 2 steps per epoch\), got 1"
    with pytest.raises(ConfigError, match=message):
        run_stage(config_from_dict(config))
    assert not output.exists()


def test_a_retrieval_stage_trains_connector_and_router_without_running_the_llm(synthetic, tmp_path, monkeypatch):
    from salova.model import SalovaForCausalLM

    stage0 = synthetic.stage0
    warm = tmp_path / "warm"
    config = salova_config(
        1,
        warm,
        synthetic.data,
        source=components(stage0, synthetic.llm),
        objective="retrieval",
        trainable=["connector", "router"],
        data={"records": str(synthetic.data), "task": "qa", "sample_unit": "video"},
        global_batch_size=2,
        micro_batch_size=1,
    )
    calls = []
    original = SalovaForCausalLM.forward

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("retrieval_only", False))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SalovaForCausalLM, "forward", spy)
    run_stage(config_from_dict(config))
    assert calls and all(calls)  # every step skipped the LLM
    assert falls(losses(warm, "similarity_loss"), 0.95)
    assert losses(warm) == losses(warm, "similarity_loss")  # no LM term
    assert "lm_loss" not in (warm / "metrics.jsonl").read_text()
