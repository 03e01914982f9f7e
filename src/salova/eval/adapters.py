"""Models as the evaluation sees them: ``answer(video, prompt, query=...) -> EvalResponse``.

:class:`EvalModel` is the whole contract. :class:`AssistantEvalModel` implements it over
:class:`salova.infer.VideoAssistant`, so that every video is indexed once, through the
assistant's on-disk feature cache, and all its questions (and all variants that read the same
frames) reuse the index. For a SALOVA checkpoint the answer is then generated from the index with
the benchmark's prompt while the router reads the bare question (``query``); the prompt's
instructions and options would otherwise fill the text tower's 77-token context. The
training-free ``text-rag`` pipeline answers through :meth:`VideoAssistant.ask` itself.

:class:`ModelVariant` holds the paper's ablation axes (Tables 3 and 7): 1 FPS scene segments or
N uniformly spaced frames read as one segment, routing on or off, the FocusFast pathways, top-K;
and ours, the focus forced onto the question's evidence (where the annotations know it), which
tells the errors of reading from those of retrieval.
Variants that sample frames differently from the index (``uniform``) decode the video themselves
(:class:`VariantEvalModel`, which can also run any variant without an assistant).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from salova.errors import CheckpointError, ConfigError, EvalError
from salova.eval.report import evidence_segments
from salova.model.choices import parse_options
from salova.model.configuration_salova import FOCUSFAST_PATHWAYS
from salova.model.selection import SelectorConfig

__all__ = [
    "SAMPLINGS",
    "FOCUS_SOURCES",
    "RoutedSegment",
    "EvalResponse",
    "EvalModel",
    "ModelVariant",
    "VariantEvalModel",
    "AssistantEvalModel",
    "load_checkpoint",
    "answer_from_encoding",
    "assistant_eval_model",
]

logger = logging.getLogger(__name__)

SAMPLINGS = ("scenes", "uniform")
"""``scenes``: the ingest's scene segments, 1 FPS inside each (SALOVA); ``uniform``: N frames spaced
evenly over the whole video, read as one segment (the paper's "8 / 16 frm" rows)."""
FOCUS_SOURCES = ("router", "evidence")
"""``router``: the router's top-K are read (SALOVA); ``evidence``: the question's evidence segments
are read first and the router's best fill the rest of the K (the oracle-retrieval diagnostic)."""
ENCODE_CHUNK_SEGMENTS = 16
"""Segments encoded per vision/connector call; bounds memory on long videos."""
ENCODING_CACHE_SIZE = 4
"""Videos x samplings kept encoded in memory by :class:`VariantEvalModel` (questions come video by video)."""


@dataclass(frozen=True)
class RoutedSegment:
    """One segment of the video the answer came from."""

    start: float
    end: float
    score: float | None
    """The router's score for the question (best over queries); ``None`` when nothing was routed."""
    selected: bool
    """Whether the language model read its latents (focus pathway)."""
    frame_times: tuple[float, ...] = ()
    """Seconds of the frames the segment was encoded from, when known."""


@dataclass(frozen=True)
class EvalResponse:
    """A model's answer to one prompt about one video."""

    text: str
    segments: tuple[RoutedSegment, ...] = ()


@runtime_checkable
class EvalModel(Protocol):
    """What the evaluation needs of a model."""

    def describe(self) -> dict[str, Any]:
        """Settings that identify the model and variant (recorded in results files; a resumed run
        must match them)."""
        ...

    def answer(
        self,
        video: Path,
        prompt: str,
        *,
        query: str | None = None,
        top_k: int | None = None,
        max_new_tokens: int = 16,
        evidence: Sequence[tuple[float, float]] = (),
    ) -> EvalResponse:
        """Answer ``prompt`` about ``video``; ``query`` (default: the prompt) is what the router reads;
        ``evidence``, the ``(start_sec, end_sec)`` spans that hold the answer where the annotations
        know them, is read only by variants with ``focus="evidence"``."""
        ...


@dataclass(frozen=True)
class ModelVariant:
    """How a SALOVA checkpoint is run: the paper's ablation axes (Tables 3 and 7), and the focus."""

    name: str = "salova"
    """Label in reports."""
    sampling: str = "scenes"
    """One of :data:`SAMPLINGS`."""
    num_frames: int = 0
    """Frames of ``uniform`` sampling."""
    routing: bool = True
    """Route with the question and read the top-K segments; ``False`` reads every segment."""
    pathways: tuple[str, ...] | None = None
    """FocusFast pathways (``("focus",)``, ``("fast",)``, ``("fast", "focus")``); the checkpoint's
    ``focusfast_pathways`` when ``None``."""
    top_k: int | None = None
    """Focus segments; the checkpoint's (or assistant's) default when ``None``."""
    selector: SelectorConfig | None = None
    """How the router's scores choose the focus segments (``seal``...); ``None``: top-K, the paper's
    rule. Recorded in results only when set, so runs made before the option existed still resume."""
    focus: str = "router"
    """One of :data:`FOCUS_SOURCES`. Recorded in results only when not ``router``."""

    def __post_init__(self) -> None:
        if self.selector is not None and not isinstance(self.selector, SelectorConfig):
            raise ConfigError(f"selector must be a SelectorConfig or None, got {self.selector!r}")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.sampling == "uniform" and self.num_frames < 1:
            raise ConfigError(f"uniform sampling needs num_frames >= 1, got {self.num_frames}")
        if self.sampling == "uniform" and self.routing:
            raise ConfigError("uniform sampling reads one segment: there is nothing to route (set routing=False)")
        if self.sampling == "scenes" and self.num_frames:
            raise ConfigError("num_frames applies to uniform sampling only")
        if self.pathways is not None:
            pathways = tuple(self.pathways)
            if not pathways or len(set(pathways)) != len(pathways) or not set(pathways) <= set(FOCUSFAST_PATHWAYS):
                raise ConfigError(
                    f"pathways must be a non-empty ordering without repeats of {FOCUSFAST_PATHWAYS}, got {pathways!r}"
                )
            object.__setattr__(self, "pathways", pathways)
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")
        if self.focus not in FOCUS_SOURCES:
            raise ConfigError(f"focus must be one of {FOCUS_SOURCES}, got {self.focus!r}")
        if self.focus == "evidence" and not (self.routing and self.sampling == "scenes"):
            raise ConfigError("focus 'evidence' chooses among scene segments: it needs scene sampling and routing")

    @property
    def is_default(self) -> bool:
        """SALOVA as published: scene segments, routing, the checkpoint's pathways."""
        return self.sampling == "scenes" and self.routing and self.pathways is None and self.focus == "router"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pathways"] = None if self.pathways is None else list(self.pathways)
        if self.selector is None:
            del data["selector"]
        else:
            data["selector"] = self.selector.to_dict()
        if self.focus == "router":
            del data["focus"]
        return data


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """A SALOVA checkpoint folder (model and processor saved together), in eval mode.

    Returns:
        ``(model, processor)``.

    Raises:
        CheckpointError: the folder is missing or incomplete.
    """
    from salova.model import SalovaForCausalLM, SalovaProcessor

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: not a SALOVA checkpoint folder (no config.json)")
    try:
        model = SalovaForCausalLM.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}: cannot load the model: {exc}") from exc
    processor = SalovaProcessor.from_pretrained(folder)
    return model.to(device).eval(), processor


@torch.no_grad()
def answer_from_encoding(
    model,
    processor,
    encoding,
    spans: tuple[tuple[float, float], ...],
    prompt: str,
    *,
    query: str | None,
    variant: ModelVariant,
    top_k: int,
    max_new_tokens: int,
    frame_times: tuple[tuple[float, ...], ...] | None = None,
    evidence: Sequence[tuple[float, float]] = (),
) -> EvalResponse:
    """Route (or not), assemble FocusFast under ``variant`` and generate greedily; or, for a checkpoint
    with ``choice_answer = "option"`` and a multiple-choice prompt, reply with the letter of the
    option whose text is the likeliest answer to the bare question (the router's ``query``).

    Args:
        model, processor: the checkpoint.
        encoding: the video's :class:`~salova.model.SegmentEncoding`.
        spans: ``(start, end)`` of each encoded segment.
        prompt: what the language model reads (after the visual block).
        query: what the router reads; the prompt when ``None``.
        variant: routing and pathways.
        top_k: focus segments when routing.
        max_new_tokens: longest answer.
        frame_times: per segment, the seconds of its frames (recorded in the response).
        evidence: the question's evidence spans (read under ``focus="evidence"``).

    Raises:
        EvalError: ``focus="evidence"`` and no evidence span overlaps a segment.
    """
    device = next(model.parameters()).device
    encoding = type(encoding)(**{key: value.to(device) for key, value in encoding.items()})
    kwargs: dict[str, Any] = {}
    if variant.routing:
        queries = processor.tokenize_queries([[query or prompt]])
        kwargs["query_input_ids"] = queries["query_input_ids"].to(device)
        kwargs["query_attention_mask"] = queries["query_attention_mask"].to(device)
    else:
        top_k = len(spans)  # every segment is read; nothing is chosen
    if variant.focus == "evidence":
        wanted = sorted(evidence_segments(evidence, spans))
        if not wanted:
            raise EvalError(
                "focus 'evidence' needs the question's evidence spans (evidence_seconds in the annotations) "
                "overlapping a segment of the video"
            )
        labels = torch.zeros(1, len(spans), dtype=torch.long, device=device)
        labels[0, wanted] = 1
        kwargs["segment_labels"] = [labels]
    if model.config.focusfast_timestamps:
        stamps = processor.tokenize_timestamps([list(spans)])
        kwargs["segment_timestamp_ids"] = stamps["segment_timestamp_ids"].to(device)
        kwargs["segment_timestamp_mask"] = stamps["segment_timestamp_mask"].to(device)
    pathways = None if variant.pathways is None else list(variant.pathways)
    options = parse_options(prompt) if model.config.choice_answer == "option" else {}
    if options:
        text, out = _likeliest_option(
            model, processor, encoding, query or prompt, options, top_k, pathways, variant.selector, kwargs
        )
    else:
        ids, _ = processor.tokenize_conversation(processor.build_conversation(prompt))
        input_ids = torch.tensor([ids], device=device)
        out = model.generate(
            input_ids,
            torch.ones_like(input_ids),
            segment_encodings=encoding,
            top_k=top_k,
            pathways=pathways,
            selector=variant.selector,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=processor.pad_token_id,
            **kwargs,
        )
        text = processor.batch_decode(out.sequences)[0].strip()
    selected = set(out.selected_segments[0].tolist())
    scores = None if out.segment_scores is None else out.segment_scores[0].max(dim=0).values.tolist()
    times = frame_times or ((),) * len(spans)
    segments = tuple(
        RoutedSegment(start, end, None if scores is None else float(scores[i]), i in selected, tuple(times[i]))
        for i, (start, end) in enumerate(spans)
    )
    return EvalResponse(text, segments)


def _likeliest_option(model, processor, encoding, question, options, top_k, pathways, selector, routing):
    """The letter of the option whose text is the likeliest answer to ``question``, and the scores.

    One row per option, each with the same video and the same ``routing`` inputs (queries, labels,
    timestamps of one video), so every option is scored on the same segments.
    """
    device = encoding.latents.device
    count = len(options)
    candidates = processor.tokenize_answers(question, list(options.values()))
    # Queries are one row per video and timestamps one row per segment: both repeat per option.
    repeated = {key: value.repeat(count, 1) for key, value in routing.items() if key != "segment_labels"}
    if "segment_labels" in routing:
        repeated["segment_labels"] = routing["segment_labels"] * count
    if "query_input_ids" in routing:
        repeated["queries_per_video"] = torch.ones(count, dtype=torch.long, device=device)
    out = model.score_answers(
        candidates["input_ids"].to(device),
        candidates["attention_mask"].to(device),
        candidates["answer_lengths"],
        segment_encodings=type(encoding).cat([encoding] * count),
        top_k=top_k,
        pathways=pathways,
        selector=selector,
        **repeated,
    )
    return list(options)[int(out.log_likelihoods.argmax())], out


@dataclass(frozen=True)
class _Encoded:
    encoding: Any  # SegmentEncoding
    spans: tuple[tuple[float, float], ...]
    frame_times: tuple[tuple[float, ...], ...]


class VariantEvalModel:
    """A checkpoint run through its public pieces under a :class:`ModelVariant`, decoding videos itself.

    Args:
        model: a :class:`~salova.model.SalovaForCausalLM` (put in eval mode here).
        processor: its :class:`~salova.model.SalovaProcessor`.
        variant: how to run it.
        source: a label for the checkpoint recorded in results.
        scenes: the ingest's scene rules (defaults: the paper's).
    """

    def __init__(self, model, processor, variant: ModelVariant = ModelVariant(), *, source: str = "", scenes=None):
        from salova.video import SceneConfig

        self.model = model.eval()
        self.processor = processor
        self.variant = variant
        self.source = source
        self.scenes = scenes or SceneConfig()
        self._cache: OrderedDict[tuple, _Encoded] = OrderedDict()

    def with_variant(self, variant: ModelVariant) -> VariantEvalModel:
        """The same checkpoint, sharing the encoding cache, under another variant."""
        other = VariantEvalModel(self.model, self.processor, variant, source=self.source, scenes=self.scenes)
        other._cache = self._cache
        return other

    def describe(self) -> dict[str, Any]:
        return {"model": self.source, "runner": "direct", "variant": self.variant.to_dict()}

    def _ingest(self, video: Path) -> tuple[list[np.ndarray], tuple, tuple]:
        from salova.video import IngestConfig, SamplingConfig, probe_video, segment_video

        size = self.processor.image_size
        if self.variant.sampling == "scenes":
            config = IngestConfig(scenes=self.scenes, sampling=SamplingConfig(fps=1.0, frame_size=size))
            segments = segment_video(video, config).segments
            return (
                [s.frames for s in segments],
                tuple((s.start_sec, s.end_sec) for s in segments),
                tuple(tuple(float(t) for t in s.frame_times) for s in segments),
            )
        info = probe_video(video)
        if not info.duration_sec:
            raise EvalError(f"{video}: uniform sampling needs the video's duration, which the container lacks")
        # One segment, whatever the cuts: the first frame of each of num_frames equal intervals.
        rules_off = replace(self.scenes, min_segment_sec=0.0, max_segment_sec=0.0, max_segments=0)
        fps = self.variant.num_frames / info.duration_sec
        segments = segment_video(
            video, IngestConfig(scenes=rules_off, sampling=SamplingConfig(fps=fps, frame_size=size))
        )
        frames = [frame for s in segments.segments for frame in s.frames][: self.variant.num_frames]
        times = [float(t) for s in segments.segments for t in s.frame_times][: self.variant.num_frames]
        return [np.stack(frames)], ((0.0, float(info.duration_sec)),), (tuple(times),)

    @torch.no_grad()
    def encode(self, video: Path) -> _Encoded:
        """The video's segment encodings under this variant's sampling (cached in memory)."""
        from salova.model import SegmentEncoding

        stat = video.stat()
        key = (str(video.resolve()), stat.st_mtime_ns, stat.st_size, self.variant.sampling, self.variant.num_frames)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        frames, spans, times = self._ingest(video)
        device = next(self.model.parameters()).device
        parts = []
        for start in range(0, len(frames), ENCODE_CHUNK_SEGMENTS):
            packed = self.processor.pack_videos([frames[start : start + ENCODE_CHUNK_SEGMENTS]])
            pixels = packed["pixel_values"].to(device=device, dtype=self.model.dtype)
            parts.append(self.model.encode_segments(pixels, packed["frames_per_segment"].to(device), token_drop=False))
        encoded = _Encoded(SegmentEncoding.cat(parts, as_one_video=True), spans, times)
        self._cache[key] = encoded
        while len(self._cache) > ENCODING_CACHE_SIZE:
            self._cache.popitem(last=False)
        return encoded

    def answer(
        self,
        video: Path,
        prompt: str,
        *,
        query: str | None = None,
        top_k: int | None = None,
        max_new_tokens: int = 16,
        evidence: Sequence[tuple[float, float]] = (),
    ) -> EvalResponse:
        encoded = self.encode(Path(video))
        return answer_from_encoding(
            self.model,
            self.processor,
            encoded.encoding,
            encoded.spans,
            prompt,
            query=query,
            variant=self.variant,
            top_k=top_k or self.variant.top_k or self.model.config.focus_top_k,
            max_new_tokens=max_new_tokens,
            frame_times=encoded.frame_times,
            evidence=evidence,
        )


class AssistantEvalModel:
    """A model run through :class:`salova.infer.VideoAssistant` (index once, ask many times).

    Args:
        assistant: the assistant (its pipeline is the model: a SALOVA checkpoint, ``tiny`` or ``text-rag``).
        variant: how a SALOVA pipeline is run; ``text-rag`` runs only the default.
        source: a label for the model recorded in results (defaults to the pipeline's description).

    Raises:
        ConfigError: an ablation variant for the ``text-rag`` pipeline.
    """

    def __init__(self, assistant, variant: ModelVariant = ModelVariant(), *, source: str = ""):
        self.assistant = assistant
        self.variant = variant
        self.source = source or assistant.pipeline.describe()
        self._salova = assistant.pipeline.name == "salova"
        self._check(variant)
        self._direct: VariantEvalModel | None = None
        if self._salova:
            pipeline = assistant.pipeline
            self._direct = VariantEvalModel(
                pipeline.model, pipeline.processor, variant, source=self.source, scenes=assistant.config.scenes
            )

    def _check(self, variant: ModelVariant) -> None:
        if not self._salova and variant != ModelVariant(
            name=variant.name, top_k=variant.top_k, selector=variant.selector
        ):
            raise ConfigError(f"the {self.assistant.pipeline.name} pipeline runs only SALOVA's default variant")

    def with_variant(self, variant: ModelVariant) -> AssistantEvalModel:
        """The same assistant (and caches) under another variant.

        Raises:
            ConfigError: an ablation variant for the ``text-rag`` pipeline.
        """
        self._check(variant)
        other = AssistantEvalModel.__new__(AssistantEvalModel)
        other.assistant, other.variant, other.source, other._salova = self.assistant, variant, self.source, self._salova
        other._direct = None if self._direct is None else self._direct.with_variant(variant)
        return other

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.source,
            "pipeline": self.assistant.pipeline.name,
            "runner": "assistant",
            "variant": self.variant.to_dict(),
        }

    def answer(
        self,
        video: Path,
        prompt: str,
        *,
        query: str | None = None,
        top_k: int | None = None,
        max_new_tokens: int = 16,
        evidence: Sequence[tuple[float, float]] = (),
    ) -> EvalResponse:
        top_k = top_k or self.variant.top_k or self.assistant.config.top_k
        if not self._salova:
            answer = self.assistant.ask(prompt, video=video, top_k=top_k, selector=self.variant.selector)
            chosen = {s.index for s in answer.segments}
            segments = tuple(RoutedSegment(s.start, s.end, s.score, s.index in chosen) for s in answer.timeline)
            return EvalResponse(answer.text.strip(), segments)
        if self.variant.sampling != "scenes":
            return self._direct.answer(
                video, prompt, query=query, top_k=top_k, max_new_tokens=max_new_tokens, evidence=evidence
            )
        from salova.infer.salova_pipeline import SalovaPipeline

        index = self.assistant.index(video)
        pipeline = self.assistant.pipeline
        return answer_from_encoding(
            pipeline.model,
            pipeline.processor,
            SalovaPipeline.encoding(index),
            index.spans,
            prompt,
            query=query,
            variant=self.variant,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            evidence=evidence,
        )


def assistant_eval_model(
    model: str | os.PathLike | None,
    *,
    variant: ModelVariant = ModelVariant(),
    max_new_tokens: int = 16,
    cache_dir: str | os.PathLike | None = None,
) -> AssistantEvalModel:
    """An :class:`AssistantEvalModel` for a ``--model`` value (a checkpoint folder, ``salova``,
    ``tiny`` or ``text-rag``; see :func:`salova.infer.resolve_model`).

    Args:
        model: the model; the assistant's default when ``None``.
        variant: how a SALOVA checkpoint is run (its ``top_k`` also sets the assistant's).
        max_new_tokens: longest answer of the ``text-rag`` pipeline (SALOVA's is set per question).
        cache_dir: the assistant's feature cache folder (default: its own).

    Raises:
        ModelSpecError, CheckpointError, BundledModelError: see :func:`salova.infer.load_pipeline`.
    """
    from salova.infer import AssistantConfig, VideoAssistant, resolve_model

    spec = resolve_model(model)
    options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "cache_dir": cache_dir}
    if variant.top_k is not None:
        options["top_k"] = variant.top_k
    assistant = VideoAssistant.from_model(spec, AssistantConfig(**options))
    return AssistantEvalModel(assistant, variant, source=spec.describe())
