"""Stage YAMLs: the shipped ones hold Table 5, the stage table fills gaps, and bad values fail naming the key."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from train_helpers import write_yaml

from salova.cli import main
from salova.errors import ConfigError
from salova.train import STAGES, ClipPretrainConfig, TrainConfig, config_from_dict, config_path, load_config

PAPER_YAMLS = {"1": "stage1.yaml", "1.5": "stage1_5.yaml", "2": "stage2.yaml"}

# Paper Appendix B, Table 5 (and section 5.1 for top-K and the absence of LoRA).
TABLE_5 = {
    "1": {"lr": 1e-3, "lr_towers": None, "global_batch_size": 256, "max_token_drop": 0.0},
    "1.5": {"lr": 2e-5, "lr_towers": 2e-6, "global_batch_size": 8, "max_token_drop": 0.7},
    "2": {"lr": 2e-5, "lr_towers": 2e-6, "global_batch_size": 64, "max_token_drop": 0.4},
}


@pytest.mark.parametrize("stage", sorted(PAPER_YAMLS))
def test_paper_yamls_hold_table_5_and_agree_with_the_stage_table(stage):
    config = load_config(config_path(PAPER_YAMLS[stage]), stage=stage)
    expected = TABLE_5[stage]
    assert isinstance(config, TrainConfig) and config.stage == stage
    assert (config.optim.lr, config.optim.lr_towers) == (expected["lr"], expected["lr_towers"])
    assert (config.global_batch_size, config.max_token_drop) == (
        expected["global_batch_size"],
        expected["max_token_drop"],
    )
    assert config.optim.betas == (0.9, 0.999) and config.optim.warmup_ratio == 0.03
    assert config.optim.schedule == "cosine" and config.precision == "bf16" and config.epochs == 1
    assert config.lora is None and config.top_k == 5 and config.gradient_checkpointing
    row = STAGES[stage]
    assert config.trainable == row.trainable and config.data.task == row.task
    assert (row.lr, row.lr_towers, row.global_batch_size, row.max_token_drop) == tuple(expected.values())
    # Every number of the table carries its citation in the file.
    text = config_path(PAPER_YAMLS[stage]).read_text()
    for key in ("lr:", "lr_towers:", "betas:", "warmup_ratio:", "schedule:", "global_batch_size:", "max_token_drop:"):
        (line,) = [line for line in text.splitlines() if line.strip().startswith(key)]
        assert "Table 5" in line, line


@pytest.mark.parametrize(
    "name",
    [
        "stage0-synthetic.yaml",
        "stage0-synthetic-shapes.yaml",
        "synthetic-stage1.yaml",
        "synthetic-stage1-align.yaml",
        "synthetic-stage1_5.yaml",
        "synthetic-stage2.yaml",
    ],
)
def test_synthetic_yamls_load(name):
    config = load_config(config_path(name))
    assert isinstance(config, ClipPretrainConfig if name.startswith("stage0") else TrainConfig)


def test_shipped_launcher_configs_parse():
    deepspeed = json.loads(config_path("deepspeed_zero2.json").read_text())
    assert deepspeed["zero_optimization"]["stage"] == 2
    cpu_ddp = yaml.safe_load(config_path("accelerate_cpu_ddp.yaml").read_text())
    assert (cpu_ddp["distributed_type"], cpu_ddp["num_processes"]) == ("MULTI_GPU", 2)  # its torchrun launcher
    zero2 = yaml.safe_load(config_path("accelerate_deepspeed_zero2.yaml").read_text())
    assert zero2["deepspeed_config"]["deepspeed_config_file"].endswith("deepspeed_zero2.json")


def minimal(**changes):
    return {"stage": "1.5", "init_from": "runs/stage1", "data": {"records": "data"}, **changes}


def test_the_stage_table_fills_what_a_yaml_leaves_out():
    config = config_from_dict(minimal())
    assert config.trainable == STAGES["1.5"].trainable and config.max_token_drop == 0.7
    assert config.optim.lr == 2e-5 and config.optim.lr_towers == 2e-6 and config.global_batch_size == 8
    assert config.data.task == "captions"
    assert config_from_dict({**minimal(), "stage": 2}).data.task == "qa"
    assert config_from_dict({**minimal(), "stage": "1_5"}).stage == "1.5"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optim": {"lrr": 1}}, "unknown key 'optim.lrr'"),
        ({"optim": {"lr": "fast"}}, "optim.lr: expected a number, got 'fast'"),
        ({"optim": {"lr": -1}}, "optim.lr must be > 0, got -1.0"),
        ({"optim": {"betas": [0.9]}}, "optim.betas: expected a list of 2 values"),
        ({"trainable": ["connector", "llm"]}, "trainable must list modules of"),
        ({"trainable": ["vision_tower"], "optim": {"lr_towers": None}}, "optim.lr_towers must be set"),
        ({"global_batch_size": 6, "micro_batch_size": 4}, "global_batch_size must be a multiple of micro_batch_size"),
        ({"data": {"records": "d", "task": "ocr"}}, "data.task must be one of ['captions', 'qa']"),
        ({"data": {"task": "qa"}}, "missing key 'data.records'"),
        ({"model": {"vision_tower": "c", "language_model": "l"}}, "exactly one of init_from"),
        ({"init_from": None}, "exactly one of init_from"),
        ({"stage": "3"}, "stage must be one of ['0', '1', '1.5', '2']"),
        ({"lora": {"r": 0}}, "lora.r must be an integer >= 1, got 0"),
        ({"precision": "fp8"}, "precision must be one of ['auto', 'bf16', 'fp32']"),
        ({"max_token_drop": 1.0}, "max_token_drop must be in [0, 1)"),
        ({"objective": "lm"}, "objective must be one of ['full', 'retrieval', 'alignment']"),
        ({"objective": "alignment", "trainable": ["projector", "language_model"]}, "cannot list language_model"),
        (
            {"objective": "alignment", "trainable": ["projector"], "data": {"records": "d", "task": "qa"}},
            "objective: alignment reads caption records (data.task: captions), got 'qa'",
        ),
        ({"alignment": {"margin": 1.0}}, "alignment.margin must be in [-1, 1)"),
        ({"alignment": {"weight": 2.0}}, "alignment settings are read by objective: alignment only, got objective"),
        ({"alignment": {"max_document_frequency": 0}}, "alignment.max_document_frequency must be in (0, 1]"),
        ({"objective": "retrieval", "similarity_loss_weight": 0}, "similarity_loss_weight must be > 0 with objective"),
        ({"objective": "retrieval", "trainable": ["router", "projector"]}, "trainable cannot list ['projector']"),
        ({"data": {"records": "d", "query_source": "x"}}, "data.query_source must be one of"),
        ({"tower_cache_mb": -1}, "tower_cache_mb must be an integer >= 0, got -1"),
        ({"tower_cache_mb": 64, "trainable": ["vision_tower", "connector"]}, "but trainable lists vision_tower"),
    ],
)
def test_invalid_configs_name_the_key(changes, message):
    with pytest.raises(ConfigError) as error:
        config_from_dict(minimal(**changes))
    assert message in str(error.value)


def test_stage0_texts_must_include_captions_and_known_kinds():
    base = {"stage": 0, "optim": {"lr": 1e-3}, "data": {"corpus": "c"}}
    assert config_from_dict(base).data.texts == ("captions", "questions")
    for texts, message in ((["captions", "ocr"], "got ['captions', 'ocr']"), (["questions"], "must list captions")):
        with pytest.raises(ConfigError, match=re.escape(message)) as error:
            config_from_dict({**base, "data": {"corpus": "c", "texts": texts}})
        assert str(error.value).startswith("data.texts must list captions")  # the key named once


def test_accumulation_comes_from_the_world_size():
    config = config_from_dict(minimal(global_batch_size=8, micro_batch_size=2))
    assert [config.accumulation_steps(n) for n in (1, 2, 4)] == [4, 2, 1]
    with pytest.raises(ConfigError, match=r"multiple of micro_batch_size x processes \(2 x 3 = 6\)"):
        config.accumulation_steps(3)


def test_overrides_and_stage_checks_of_a_yaml_file(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", minimal())
    config = load_config(path, stage="1.5", overrides=["optim.lr=1e-4", "data.max_samples=8", ("init_from", "x/1.5")])
    assert (config.optim.lr, config.data.max_samples, config.init_from) == (1e-4, 8, "x/1.5")
    with pytest.raises(ConfigError, match="s.yaml: the file is for stage 1.5, not stage 2"):
        load_config(path, stage=2)
    with pytest.raises(ConfigError, match="key=value"):
        load_config(path, overrides=["optim.lr"])
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "missing.yaml")


def test_the_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    path = write_yaml(tmp_path / "s.yaml", minimal(optim={"lr": 0}))
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--stage", "1.5", "--config", str(path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip().splitlines() == [f"error: {path}: optim.lr must be > 0, got 0.0"]


def test_the_cli_refuses_init_from_for_stage_0(tmp_path, capsys):
    path = write_yaml(tmp_path / "s.yaml", {"stage": 0, "data": {"corpus": "c"}})
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--stage", "0", "--config", str(path), "--init-from", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: stage 0 starts from a synthetic corpus")
