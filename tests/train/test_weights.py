"""Stage models: assembled or loaded, LoRA kept across stages or merged, saved by reference or in full."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import LORA, components, salova_config

from salova.cli import main
from salova.errors import CheckpointError, ConfigError
from salova.model import SalovaForCausalLM
from salova.train import config_from_dict, load_trained, run_stage
from salova.train.config import LoraConfig
from salova.train.loop import build_stage_model
from salova.train.weights import (
    ADAPTER_DIR,
    LANGUAGE_MODEL_SOURCE_FILE,
    prepare_for_stage,
    resolve_location,
    save_trained,
    with_overrides,
)

EVERYTHING = ("vision_tower", "text_tower", "connector", "router", "projector", "language_model")


@pytest.fixture(scope="module")
def adapted(synthetic, tmp_path_factory):
    """A stage 1.5 output with a LoRA adapter (two steps are enough)."""
    output = tmp_path_factory.mktemp("adapted") / "stage1_5"
    source = components(synthetic.stage0, synthetic.llm)
    run_stage(config_from_dict(salova_config(1.5, output, synthetic.data, source=source, lora=LORA, max_steps=2)))
    return output


def test_an_inherited_adapter_goes_on_training(adapted):
    saved = load_file(str(adapted / ADAPTER_DIR / "adapter_model.safetensors"))
    stage_model = load_trained(adapted)
    prepare_for_stage(stage_model, EVERYTHING, LoraConfig(**LORA))
    assert stage_model.has_adapter and stage_model.language_model_source is not None
    lora = {n: p for n, p in stage_model.model.language_model.named_parameters() if "lora_" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    assert not any(p.requires_grad for n, p in stage_model.model.language_model.named_parameters() if "lora_" not in n)
    assert all(p.requires_grad for p in stage_model.model.vision_tower.parameters())
    # The trained adapter, not a fresh one (a fresh lora_B is zero).
    trained_b = [v for k, v in saved.items() if "lora_B" in k]
    assert trained_b and all(v.abs().sum() > 0 for v in trained_b)
    loaded_b = [p for n, p in lora.items() if "lora_B" in n]
    loaded_sums = sorted(float(p.detach().abs().sum()) for p in loaded_b)
    assert sorted(float(v.abs().sum()) for v in trained_b) == pytest.approx(loaded_sums)


def test_a_different_adapter_is_refused_and_lora_null_merges(adapted):
    with pytest.raises(ConfigError, match="already has an adapter"):
        prepare_for_stage(load_trained(adapted), EVERYTHING, LoraConfig(**{**LORA, "r": 2}))
    stage_model = load_trained(adapted)
    prepare_for_stage(stage_model, EVERYTHING, None)  # full tuning from here on
    assert not stage_model.has_adapter and stage_model.language_model_source is None
    assert all(p.requires_grad for p in stage_model.model.language_model.parameters())
    # A frozen LLM keeps its adapter frozen.
    frozen = load_trained(adapted)
    prepare_for_stage(frozen, ("connector", "router", "projector"), None)
    assert frozen.has_adapter and not any(p.requires_grad for p in frozen.model.language_model.parameters())


def test_a_folder_saved_by_reference_is_not_mistaken_for_a_full_model(adapted):
    with pytest.raises(OSError):
        SalovaForCausalLM.from_pretrained(adapted)
    assert isinstance(load_trained(adapted).model, SalovaForCausalLM)


def test_a_folder_saved_by_reference_names_its_llm_by_source_not_by_folder(adapted, tmp_path):
    stage_model = load_trained(adapted)
    loaded_from = stage_model.model.config.text_config._name_or_path
    stage_model.language_model_source = dataclasses.replace(stage_model.language_model_source, location="bundled:x")
    save_trained(stage_model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    adapter = json.loads((tmp_path / ADAPTER_DIR / "adapter_config.json").read_text())
    assert config["text_config"]["_name_or_path"] == adapter["base_model_name_or_path"] == "bundled:x"
    assert json.loads((tmp_path / LANGUAGE_MODEL_SOURCE_FILE).read_text())["location"] == "bundled:x"
    assert stage_model.model.config.text_config._name_or_path == loaded_from  # the model itself is not renamed


def test_export_writes_the_model_without_the_training_state(adapted, tmp_path, capsys):
    out = tmp_path / "checkpoint"
    (out / "stale").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(adapted), "--out", str(out)])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith(f"{adapted} -> {out} (")
    assert (adapted / "metrics.jsonl").is_file()
    assert not {"stale", "checkpoints", "logs", "metrics.jsonl", "trainer_state.json"} & {p.name for p in out.iterdir()}
    exported, trained = load_trained(out).model.state_dict(), load_trained(adapted).model.state_dict()
    assert exported.keys() == trained.keys() and all(torch.equal(exported[k], trained[k]) for k in trained)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path / "checkpoint" / "language_model_adapter"), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2 and "not a trained SALOVA folder" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))


def test_an_unfinished_run_cannot_start_the_next_stage(synthetic, tmp_path):
    unfinished = tmp_path / "stage1"
    (unfinished / "checkpoints").mkdir(parents=True)
    config = config_from_dict(
        salova_config(1.5, tmp_path / "next", synthetic.data, source={"init_from": str(unfinished)})
    )
    with pytest.raises(CheckpointError, match="did not finish; resume it first"):
        build_stage_model(config)
    with pytest.raises(CheckpointError, match="not a trained SALOVA folder"):
        load_trained(tmp_path)


def test_stage_settings_reach_the_model_and_unknown_fields_are_refused(synthetic, tmp_path):
    source = components(synthetic.stage0, synthetic.llm)
    config = config_from_dict(salova_config(2, tmp_path / "s2", synthetic.data, source=source))
    model = build_stage_model(config).model
    assert model.config.connector_max_token_drop == 0.4 and model.connector.max_token_drop == 0.4
    assert model.config.router_dropout == 0.1
    with pytest.raises(ConfigError, match="unknown SalovaConfig field 'router_droupout'"):
        with_overrides(model.config, {"router_droupout": 0.0})
    with pytest.raises(ConfigError, match="connector_max_token_drop must be in"):
        with_overrides(model.config, {"connector_max_token_drop": 1.5})


def test_package_locations_resolve_without_importing():
    assert (resolve_location("package:salova") / "__init__.py").is_file()
    with pytest.raises(CheckpointError, match="package:no_such_package_here: .*is not installed"):
        resolve_location("package:no_such_package_here")
    with pytest.raises(CheckpointError, match=r"unknown bundled model; choose from \['smollm2'\]"):
        resolve_location("bundled:gpt5")
