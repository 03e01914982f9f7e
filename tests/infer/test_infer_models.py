"""Resolving ``--model``: names, folders, the default and the shipped-checkpoint hook."""

from __future__ import annotations

import pytest

from salova.errors import CheckpointError, ModelSpecError
from salova.infer import models
from salova.infer.models import ModelSpec, default_model, load_pipeline, resolve_model


def test_names_resolve_to_their_pipelines():
    assert resolve_model("tiny") == ModelSpec("tiny") and resolve_model("tiny").pipeline == "salova"
    assert resolve_model("text-rag").pipeline == "text-rag"


def test_a_folder_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()
    spec = resolve_model("tiny")
    assert spec.kind == "checkpoint" and spec.path == (tmp_path / "tiny").resolve()


def test_unknown_model_names_the_choices(tmp_path):
    with pytest.raises(
        ModelSpecError, match=r"neither a checkpoint folder nor one of \['salova', 'tiny', 'text-rag'\]"
    ):
        resolve_model("llama")
    with pytest.raises(ModelSpecError, match="no such folder"):
        resolve_model(str(tmp_path / "nowhere" / "ckpt"))


def test_default_is_text_rag_until_a_checkpoint_ships(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "SHIPPED_CHECKPOINT", tmp_path / "synthetic")
    assert default_model() == ModelSpec("text-rag") and resolve_model(None) == ModelSpec("text-rag")
    with pytest.raises(ModelSpecError, match="no SALOVA checkpoint is installed"):
        resolve_model("salova")
    (tmp_path / "synthetic").mkdir()
    (tmp_path / "synthetic" / "config.json").write_text("{}")
    shipped = ModelSpec("checkpoint", tmp_path / "synthetic")
    assert default_model() == shipped and resolve_model("salova") == shipped


def test_a_folder_that_is_not_a_checkpoint_is_a_typed_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a SALOVA checkpoint folder"):
        load_pipeline(tmp_path / "empty")


def test_spec_fields_must_agree(tmp_path):
    with pytest.raises(ModelSpecError):
        ModelSpec("checkpoint")
    with pytest.raises(ModelSpecError):
        ModelSpec("tiny", tmp_path)
