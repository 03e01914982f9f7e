"""A stage's model: assembled from parts or loaded from the previous stage, made trainable, saved.

Output folders come in two forms, both loaded by :func:`load_trained`:

* **full**: a standard ``save_pretrained`` SALOVA folder (``config.json``, ``model.safetensors``)
  plus the processor; any LoRA adapter is merged in first. Used when the LLM's own weights changed.
* **by reference**, used while the LLM's own weights are those of a known source (frozen, or tuned
  only through a LoRA adapter), so that a stage built on a 135M-parameter LLM writes a few MB:
  ``config.json``, ``salova_parts.safetensors`` (every weight but the LLM's),
  ``language_model_source.json`` (the LLM folder and GGUF file the weights come from),
  ``language_model_adapter/`` (the ``peft`` adapter, if any) and the processor.

LoRA across stages: a stage that trains the LLM with ``lora`` set continues the adapter of the
folder it starts from (the settings must match) or creates one; a stage that trains the LLM with
``lora: null`` merges an inherited adapter and tunes the LLM fully; a stage that freezes the LLM
keeps an inherited adapter frozen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedTokenizerBase

from salova.bundled import package_folder, smollm2_folder
from salova.errors import BundledModelError, CheckpointError, ConfigError
from salova.fileio import PART_SUFFIX, atomic_write_json
from salova.model import SalovaConfig, SalovaForCausalLM, SalovaProcessor, preset_config
from salova.model.loading import load_part, pretrained_part
from salova.train.config import LoraConfig, ModelSourceConfig

__all__ = [
    "PACKAGE_PREFIX",
    "PARTS_WEIGHTS_FILE",
    "LANGUAGE_MODEL_SOURCE_FILE",
    "ADAPTER_DIR",
    "LanguageModelSource",
    "StageModel",
    "resolve_location",
    "with_overrides",
    "assemble_model",
    "load_trained",
    "prepare_for_stage",
    "save_trained",
    "export_checkpoint",
    "trainable_state",
    "load_trainable_state",
]

logger = logging.getLogger(__name__)

PACKAGE_PREFIX = "package:"
"""A location ``package:<name>`` is the folder of an installed Python package (found without importing it)."""
BUNDLED_PREFIX = "bundled:"
"""A location ``bundled:<name>`` is a bundled LLM, converted once into a plain folder for fast loading."""
BUNDLED_LANGUAGE_MODELS = {"smollm2": smollm2_folder}
"""Names a ``bundled:`` location takes."""
PARTS_WEIGHTS_FILE = "salova_parts.safetensors"
"""Every weight but the LLM's, in a folder saved by reference (not ``model.safetensors``, so that
``from_pretrained`` refuses the folder instead of filling the LLM with random weights)."""
LANGUAGE_MODEL_SOURCE_FILE = "language_model_source.json"
"""Where a folder saved by reference takes its LLM weights from."""
ADAPTER_DIR = "language_model_adapter"
"""Sub-folder holding the LLM's LoRA adapter (``peft`` format)."""
LORA_PARAMETER_MARK = "lora_"
"""Substring of the names of LoRA parameters (``peft``'s ``lora_A``/``lora_B``)."""
_SUB_CONFIGS = ("vision_config", "text_tower_config", "text_config")


def _resolve(location: str) -> tuple[Path, dict[str, Any]]:
    if location.startswith(BUNDLED_PREFIX):
        name = location[len(BUNDLED_PREFIX) :]
        if name not in BUNDLED_LANGUAGE_MODELS:
            raise CheckpointError(f"{location}: unknown bundled model; choose from {sorted(BUNDLED_LANGUAGE_MODELS)}")
        try:
            return BUNDLED_LANGUAGE_MODELS[name]()
        except BundledModelError as error:
            raise CheckpointError(f"{location}: {error}") from error
    if not location.startswith(PACKAGE_PREFIX):
        return Path(location), {}
    try:
        return package_folder(location[len(PACKAGE_PREFIX) :]), {}
    except BundledModelError as error:
        raise CheckpointError(f"{location}: {error}") from error


def resolve_location(location: str) -> Path:
    """The folder of a location: a path, ``package:<name>`` for an installed package's folder, or
    ``bundled:<name>`` for a bundled model converted for fast loading (:mod:`salova.bundled`).

    Raises:
        CheckpointError: the package is not installed or the bundled name is unknown.
    """
    return _resolve(location)[0]


@dataclass(frozen=True)
class LanguageModelSource:
    """Where an LLM's own weights (and tokenizer) come from."""

    location: str
    """A folder, ``package:<name>`` or ``bundled:<name>``."""
    gguf_file: str | None = None
    """A GGUF file inside the folder, if the weights come as GGUF."""

    @property
    def folder(self) -> Path:
        return resolve_location(self.location)

    def load_kwargs(self) -> dict[str, Any]:
        options = dict(_resolve(self.location)[1])
        if self.gguf_file is not None:
            options["gguf_file"] = self.gguf_file
        return options

    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The LLM's tokenizer."""
        try:
            return AutoTokenizer.from_pretrained(self.folder, **self.load_kwargs())
        except (OSError, ValueError) as error:
            raise CheckpointError(f"{self.folder}: cannot load the language model's tokenizer: {error}") from error


@dataclass
class StageModel:
    """The model of a stage, its processor, and where the LLM's own weights come from."""

    model: SalovaForCausalLM
    processor: SalovaProcessor
    language_model_source: LanguageModelSource | None
    """The source of the LLM's own weights while they are unchanged (frozen, or adapted by LoRA);
    ``None`` once they are trained (the weights then travel with the model)."""

    @property
    def has_adapter(self) -> bool:
        return _is_peft(self.model.language_model)


def _is_peft(module: nn.Module) -> bool:
    return type(module).__module__.startswith("peft.")


def _peft() -> Any:
    try:
        import peft
    except ImportError as error:
        raise ConfigError("LoRA needs the peft package (pip install peft)") from error
    return peft


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft probes a deprecated transformers attribute when it wraps a model; not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def with_overrides(config: SalovaConfig, overrides: dict[str, Any]) -> SalovaConfig:
    """``config`` with some of its own fields changed, validated again.

    Raises:
        ConfigError: an unknown field, a sub-config, or an invalid value.
    """
    if not overrides:
        return config
    known = {f.name for f in dataclasses.fields(SalovaConfig)} - set(_SUB_CONFIGS)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"config_overrides: unknown SalovaConfig field {unknown[0]!r}")
    return SalovaConfig.from_dict({**config.to_dict(), **overrides})


def _tokenizer(folder: Path, what: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{folder}: cannot load the {what} tokenizer: {error}") from error


def assemble_model(source: ModelSourceConfig, overrides: dict[str, Any]) -> StageModel:
    """A model assembled from pretrained parts (the first SALOVA stage).

    Args:
        source: the preset and the part folders.
        overrides: ``SalovaConfig`` fields to set (token drop, loss weight...).

    Raises:
        CheckpointError: a folder is missing or does not load.
        ConfigError: an unknown preset or invalid override.
    """
    location = source.language_model
    if not location.startswith((PACKAGE_PREFIX, BUNDLED_PREFIX)):
        location = str(Path(location).resolve())
    llm = LanguageModelSource(location=location, gguf_file=source.language_model_file)
    text_tower = Path(source.text_tower or source.vision_tower)
    base = with_overrides(preset_config(source.preset), overrides)
    model = SalovaForCausalLM.from_components(
        Path(source.vision_tower),
        llm.folder,
        text_tower,
        base_config=base,
        language_model_kwargs=llm.load_kwargs(),
    )
    processor = SalovaProcessor.from_config(model.config, llm.tokenizer(), _tokenizer(text_tower, "text tower"))
    model.config.video_token_id = processor.video_token_id
    return StageModel(model=model, processor=processor, language_model_source=llm)


def load_trained(folder: str | Path, **overrides: Any) -> StageModel:
    """Load a stage's output folder (either form, see the module docstring), in eval mode.

    Args:
        folder: the output folder of ``salova train`` (or any SALOVA folder with a processor).
        **overrides: ``SalovaConfig`` fields to change (e.g. ``connector_max_token_drop``).

    Raises:
        CheckpointError: the folder is missing, unfinished or inconsistent.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: not a trained SALOVA folder (no config.json)")
    config = with_overrides(SalovaConfig.from_pretrained(folder), overrides)
    source_file = folder / LANGUAGE_MODEL_SOURCE_FILE
    processor = SalovaProcessor.from_pretrained(folder)
    if not source_file.is_file():
        try:
            model = SalovaForCausalLM.from_pretrained(folder, config=config)
        except (OSError, ValueError) as error:
            raise CheckpointError(f"{folder}: cannot load the model: {error}") from error
        return StageModel(model=model.eval(), processor=processor, language_model_source=None)
    source = LanguageModelSource(**json.loads(source_file.read_text(encoding="utf-8")))
    model = SalovaForCausalLM(config)
    parts = load_file(str(folder / PARTS_WEIGHTS_FILE))
    missing, unexpected = model.load_state_dict(parts, strict=False)
    missing = [key for key in missing if not key.startswith("language_model.")]
    if missing or unexpected:
        raise CheckpointError(
            f"{folder}: weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    pretrained = pretrained_part(AutoModelForCausalLM, source.folder, source.load_kwargs())
    load_part(model.language_model, pretrained.state_dict(), source.folder)
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    if (folder / ADAPTER_DIR).is_dir():
        peft = _peft()
        with _quiet_peft():
            model.language_model = peft.PeftModel.from_pretrained(model.language_model, folder / ADAPTER_DIR)
    return StageModel(model=model.eval(), processor=processor, language_model_source=source)


def _same_lora(existing: Any, wanted: LoraConfig) -> bool:
    return (
        existing.r == wanted.r
        and float(existing.lora_alpha) == wanted.alpha
        and float(existing.lora_dropout) == wanted.dropout
        and set(existing.target_modules) == set(wanted.target_modules)
    )


def prepare_for_stage(stage_model: StageModel, trainable: tuple[str, ...], lora: LoraConfig | None) -> None:
    """Freeze everything but ``trainable`` and set up the LLM's LoRA adapter (module docstring rules).

    Raises:
        ConfigError: ``lora`` differs from the adapter the model already has.
    """
    model = stage_model.model
    train_llm = "language_model" in trainable
    if stage_model.has_adapter:
        existing = model.language_model.peft_config["default"]
        if train_llm and lora is None:
            model.language_model = model.language_model.merge_and_unload()
            stage_model.language_model_source = None
        elif lora is not None and not _same_lora(existing, lora):
            raise ConfigError(
                f"lora: the model already has an adapter (r={existing.r}, alpha={existing.lora_alpha}, "
                f"dropout={existing.lora_dropout}, target_modules={sorted(existing.target_modules)}); "
                "set the same values to continue it, or lora: null to merge it and tune the LLM fully"
            )
    elif train_llm and lora is not None:
        peft = _peft()
        adapter = peft.LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            task_type="CAUSAL_LM",
        )
        with _quiet_peft():
            model.language_model = peft.get_peft_model(model.language_model, adapter)
    elif train_llm:
        stage_model.language_model_source = None
    adapted = stage_model.has_adapter
    model.set_trainable([name for name in trainable if not (adapted and name == "language_model")])
    if adapted and train_llm:
        for name, parameter in model.language_model.named_parameters():
            parameter.requires_grad_(LORA_PARAMETER_MARK in name)


@contextlib.contextmanager
def _named_by_source(model: SalovaForCausalLM, location: str) -> Iterator[None]:
    """While saving by reference, name the LLM by its source location (``bundled:smollm2``...) in
    ``config.json`` and the adapter's config, instead of the machine-specific folder it was read from."""
    text_config = model.config.text_config
    adapters = getattr(model.language_model, "peft_config", {})
    saved = text_config._name_or_path, {name: a.base_model_name_or_path for name, a in adapters.items()}
    text_config._name_or_path = location
    for adapter in adapters.values():
        adapter.base_model_name_or_path = location
    try:
        yield
    finally:
        text_config._name_or_path = saved[0]
        for name, adapter in adapters.items():
            adapter.base_model_name_or_path = saved[1][name]


def save_trained(stage_model: StageModel, folder: str | Path) -> None:
    """Write the model and processor to ``folder`` in the form of the module docstring.

    A full save merges a LoRA adapter into the LLM (in memory too): call it when training is over.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model, source = stage_model.model, stage_model.language_model_source
    if source is None:
        if stage_model.has_adapter:
            model.language_model = model.language_model.merge_and_unload()
        model.save_pretrained(folder)
    else:
        parts = {
            key: value.detach().cpu().contiguous()
            for key, value in model.state_dict().items()
            if not key.startswith("language_model.")
        }
        save_file(parts, str(folder / PARTS_WEIGHTS_FILE), metadata={"format": "pt"})
        with _named_by_source(model, source.location):
            model.config.save_pretrained(folder)
            if stage_model.has_adapter:
                with warnings.catch_warnings():  # peft looks for a config at the (non-folder) source name
                    warnings.filterwarnings("ignore", message="Could not find a config file in")
                    model.language_model.save_pretrained(folder / ADAPTER_DIR)
        model.generation_config.save_pretrained(folder)
        atomic_write_json(folder / LANGUAGE_MODEL_SOURCE_FILE, dataclasses.asdict(source))
    stage_model.processor.save_pretrained(folder)


def export_checkpoint(run_dir: str | Path, out: str | Path) -> Path:
    """Write a finished stage run's model as a clean checkpoint folder (what ``--model`` takes): the
    model and processor as :func:`save_trained` writes them, without the run's checkpoints, logs and
    metrics. ``out`` is replaced only once the new folder is complete.

    Raises:
        CheckpointError: ``run_dir`` is not a finished stage run.
    """
    stage_model = load_trained(run_dir)
    out = Path(out)
    temp = out.with_name(f".{out.name}.export{PART_SUFFIX}")
    shutil.rmtree(temp, ignore_errors=True)
    save_trained(stage_model, temp)
    if out.exists():
        shutil.rmtree(out)
    temp.rename(out)
    return out


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the trainable parameters (what a checkpoint needs besides the optimizer)."""
    return {
        name: parameter.detach().cpu().clone()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put saved trainable parameters back.

    Raises:
        CheckpointError: the names differ from the model's trainable parameters.
    """
    expected = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise CheckpointError(
            f"the checkpoint's trainable weights do not match the model: missing {missing[:5]}, extra {extra[:5]}"
        )
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            parameters[name].copy_(value)
