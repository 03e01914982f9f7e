"""Which model answers: resolving ``--model`` and loading the pipeline it names.

``--model`` accepts

* a folder: a SALOVA checkpoint written by ``model.save_pretrained(folder)`` and
  ``processor.save_pretrained(folder)`` (the shipped synthetic-world checkpoint, or a user's);
* ``salova``: the shipped checkpoint (:data:`SHIPPED_CHECKPOINT`), trained on the synthetic world only;
* ``tiny``: the ``tiny`` preset with seeded random weights, so that every SALOVA code path runs
  without a checkpoint (its answers are noise);
* ``text-rag``: the training-free pipeline (bundled OCR, MiniLM and SmolLM2-135M-Instruct);
* nothing: ``text-rag`` (:func:`default_model`), which works on any footage with text on screen.

The bundled models are found inside their installed packages by path; nothing is downloaded.
SmolLM2 ships as a GGUF file whose de-quantisation takes tens of seconds, so the first load
converts it once into a ``safetensors`` folder under the cache directory.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import salova
from salova.bundled import DISTRIBUTIONS, MINILM_PACKAGE, OCR_PACKAGE, minilm_folder, package_version, smollm2_folder
from salova.errors import CheckpointError, ModelSpecError
from salova.infer.config import AssistantConfig
from salova.infer.index import Pipeline
from salova.model import SalovaConfig, SalovaForCausalLM, SalovaProcessor, tiny_config
from salova.model.tiny_tokenizers import tiny_llm_tokenizer, tiny_text_tokenizer

__all__ = [
    "SHIPPED_CHECKPOINT",
    "MODEL_NAMES",
    "ModelSpec",
    "default_model",
    "resolve_model",
    "load_pipeline",
    "tiny_processor",
]

logger = logging.getLogger(__name__)

SHIPPED_CHECKPOINT = Path(salova.__file__).parent / "checkpoints" / "synthetic"
"""The SALOVA checkpoint trained on the synthetic world (``make train-synthetic``), installed with the
package and named ``salova``; while the folder holds no ``config.json``, ``salova`` is refused."""
MODEL_NAMES = ("salova", "tiny", "text-rag")
"""Names ``--model`` accepts besides a folder path."""
TINY_SEED = 0
"""Seed of the ``tiny`` model's random weights: the same weights, and cache entries, in every process."""


@dataclass(frozen=True)
class ModelSpec:
    """A resolved ``--model``: ``kind`` is ``checkpoint`` (with ``path``), ``tiny`` or ``text-rag``."""

    kind: str
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("checkpoint", "tiny", "text-rag"):
            raise ModelSpecError(f"unknown model kind {self.kind!r}")
        if (self.kind == "checkpoint") != (self.path is not None):
            raise ModelSpecError("a checkpoint model needs a path, and only a checkpoint has one")

    @property
    def pipeline(self) -> str:
        """``salova`` or ``text-rag``."""
        return "text-rag" if self.kind == "text-rag" else "salova"

    @property
    def is_shipped(self) -> bool:
        """Whether this is the checkpoint installed with the package (:data:`SHIPPED_CHECKPOINT`)."""
        return self.path is not None and self.path.resolve() == SHIPPED_CHECKPOINT.resolve()

    def describe(self) -> str:
        """The folder, or a name: ``salova`` for the shipped checkpoint (so that reports do not hold a
        machine-specific path)."""
        if self.path is None:
            return self.kind
        return "salova" if self.is_shipped else str(self.path)


def shipped_checkpoint() -> Path | None:
    """The shipped synthetic-world checkpoint folder, or ``None`` while none is installed."""
    return SHIPPED_CHECKPOINT if (SHIPPED_CHECKPOINT / "config.json").is_file() else None


def default_model() -> ModelSpec:
    """The training-free ``text-rag`` pipeline. The shipped checkpoint (``salova``) knows only the
    synthetic world's shapes and colours, so it answers only when asked for by name."""
    return ModelSpec("text-rag")


def resolve_model(model: str | os.PathLike | ModelSpec | None = None) -> ModelSpec:
    """Turn a ``--model`` value into a :class:`ModelSpec`.

    An existing folder wins over a name, so a folder called ``tiny`` is a folder.

    Args:
        model: a folder, one of :data:`MODEL_NAMES`, a spec, or ``None`` for :func:`default_model`.

    Raises:
        ModelSpecError: neither an existing folder nor a known name, or ``salova`` while no
            checkpoint is shipped.

    Example:
        >>> resolve_model("tiny")
        ModelSpec(kind='tiny', path=None)
    """
    if isinstance(model, ModelSpec):
        return model
    if model is None:
        return default_model()
    path = Path(model).expanduser()
    if path.is_dir():
        return ModelSpec("checkpoint", path.resolve())
    name = str(model)
    if name == "salova":
        shipped = shipped_checkpoint()
        if shipped is None:
            raise ModelSpecError(
                f"no SALOVA checkpoint is installed at {SHIPPED_CHECKPOINT}; pass a checkpoint folder, "
                "'tiny' (random weights) or 'text-rag'"
            )
        return ModelSpec("checkpoint", shipped)
    if name in ("tiny", "text-rag"):
        return ModelSpec(name)
    raise ModelSpecError(
        f"model {name!r} is neither a checkpoint folder nor one of {list(MODEL_NAMES)}"
        + (" (no such folder)" if os.sep in name else "")
    )


def tiny_processor(config: SalovaConfig) -> SalovaProcessor:
    """A processor for the ``tiny`` preset (see :mod:`salova.model.tiny_tokenizers`)."""
    llm = tiny_llm_tokenizer()
    # Give every id of the random LLM's vocabulary a visible token, so that its noise decodes to text.
    llm.add_tokens([f"<t{i}>" for i in range(len(llm), config.text_config.vocab_size)])
    return SalovaProcessor.from_config(config, llm, tiny_text_tokenizer())


def _tiny() -> tuple[SalovaForCausalLM, SalovaProcessor]:
    config = tiny_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = SalovaForCausalLM(config)
    return model.eval(), tiny_processor(config)


def _checkpoint(path: Path) -> tuple[SalovaForCausalLM, SalovaProcessor]:
    """A SALOVA folder in either form ``salova train`` writes: complete weights, or the trained parts
    with a reference to the LLM they were trained on (plus its LoRA adapter)."""
    from salova.train.weights import load_trained

    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: not a SALOVA checkpoint folder (no config.json)")
    trained = load_trained(path)
    return trained.model, trained.processor


def _bundled_identity() -> dict[str, Any]:
    return {
        "ocr_models": f"{DISTRIBUTIONS[OCR_PACKAGE]}=={package_version(OCR_PACKAGE)}",
        "embedder": f"{DISTRIBUTIONS[MINILM_PACKAGE]}=={package_version(MINILM_PACKAGE)}",
    }


def load_pipeline(
    model: str | os.PathLike | ModelSpec | None,
    config: AssistantConfig | None = None,
    *,
    answering: bool = True,
) -> Pipeline:
    """Load the pipeline a ``--model`` value names.

    Args:
        model: see :func:`resolve_model`.
        config: the assistant settings (OCR, aux text, batch sizes, cache folder); defaults when omitted.
        answering: ``False`` builds an indexing-only pipeline (the text pipeline then skips its LLM).

    Returns:
        A :class:`~salova.infer.index.Pipeline`.

    Raises:
        ModelSpecError, CheckpointError, BundledModelError, MissingDependencyError: the model cannot be loaded.
    """
    from salova.infer.salova_pipeline import SalovaPipeline
    from salova.infer.text_pipeline import ChatLLM, OcrReader, TextEmbedder, TextRagPipeline

    config = config or AssistantConfig()
    spec = resolve_model(model)
    if spec.kind == "text-rag":
        reader = OcrReader(config.ocr)
        embedder = TextEmbedder(minilm_folder())
        llm = None
        if answering:
            folder, options = smollm2_folder(config.models_root)
            llm = ChatLLM(folder, **options)
        return TextRagPipeline(reader, embedder, llm, config.text_rag, _bundled_identity())
    ocr = OcrReader(config.ocr) if config.aux_text else None
    if spec.kind == "tiny":
        model_, processor = _tiny()
        source = "tiny (random weights)"
    else:
        model_, processor = _checkpoint(spec.path)
        source = "the shipped synthetic checkpoint" if spec.is_shipped else str(spec.path)
    return SalovaPipeline(model_, processor, source, ocr=ocr, batch_frames=config.encode_batch_frames)
