"""SALOVA as an assistant pipeline: index with the vision tower and ST-Connector, answer with the
SR-Router, FocusFast and the LLM.

Indexing stores, per segment, the routing token and the ``L`` latents
(:meth:`~salova.model.SalovaForCausalLM.encode_segments`), encoding a few segments at a time as
they stream out of the decoder. Asking uses only those: the router scores the stored routing
tokens against the question, the top-K latents and all routing tokens go to the LLM. The video
is never decoded again, so an ask costs the same on a 10-minute and a 2-hour video, up to the
routing tokens (one per segment) in the LLM's prompt.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from salova.infer.cache import tensors_digest
from salova.infer.config import AssistantConfig
from salova.infer.index import IndexPayload, Pipeline, Reply, SegmentIndexer, VideoIndex
from salova.infer.text_pipeline import OcrIndexer, OcrReader, ocr_identity, text_context
from salova.model import SalovaForCausalLM, SalovaProcessor, SegmentEncoding, SelectorConfig
from salova.video import SamplingConfig, Segment

__all__ = ["SalovaIndexer", "SalovaPipeline", "INDEXED_MODULES"]

INDEXED_MODULES = ("vision_tower", "connector")
"""Modules whose weights shape the stored features (the cache identity hashes them)."""
_CONFIG_PREFIXES = ("vision_", "connector_")
_UNSTABLE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "architectures", "dtype", "torch_dtype")


class SalovaIndexer(SegmentIndexer):
    """Encodes segments into routing tokens and latents, ``batch_frames`` frames per model call."""

    def __init__(
        self,
        model: SalovaForCausalLM,
        processor: SalovaProcessor,
        batch_frames: int,
        ocr: OcrIndexer | None = None,
    ):
        self.model = model
        self.processor = processor
        self.batch_frames = batch_frames
        self.ocr = ocr
        self._pending: list[torch.Tensor] = []
        self._parts: list[SegmentEncoding] = []

    def add(self, segment: Segment) -> None:
        if segment.frames is None:
            raise ValueError(f"segment {segment.index} holds no frames; ingest with keep_frames=True")
        size = self.processor.image_size
        frames = segment.frames
        if frames.shape[1:3] != (size, size):
            frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
        self._pending.append(self.processor.preprocess_frames(frames))
        if self.ocr is not None:
            self.ocr.add(segment)
        if sum(len(p) for p in self._pending) >= self.batch_frames:
            self._flush()

    @torch.no_grad()
    def _flush(self) -> None:
        if not self._pending:
            return
        counts = torch.tensor([len(p) for p in self._pending], dtype=torch.long)
        pixels = torch.cat(self._pending).to(device=self.model.device, dtype=self.model.dtype)
        self._pending = []
        self._parts.append(self.model.encode_segments(pixels, counts, token_drop=False))

    def finish(self) -> IndexPayload:
        self._flush()
        if not self._parts:
            raise ValueError("no segments were added")
        encoding = SegmentEncoding.cat(self._parts, as_one_video=True)
        texts = self.ocr.finish().texts if self.ocr is not None else None
        return IndexPayload(
            tensors={"routing_tokens": encoding.routing_tokens, "latents": encoding.latents}, texts=texts
        )


def _stable(config: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _stable(value) if isinstance(value, dict) else value
        for key, value in config.items()
        if key not in _UNSTABLE_CONFIG_KEYS
    }


class SalovaPipeline(Pipeline):
    """Answers with a :class:`~salova.model.SalovaForCausalLM` and its processor.

    Args:
        model: the model (put in eval mode here).
        processor: its processor (tokenizers, frame size and normalisation).
        source: what the model was loaded from, for :meth:`describe` (a folder or ``tiny``).
        ocr: a reader for the auxiliary text channel, or ``None``.
        batch_frames: frames per encoding call while indexing.
    """

    name = "salova"

    def __init__(
        self,
        model: SalovaForCausalLM,
        processor: SalovaProcessor,
        source: str,
        ocr: OcrReader | None = None,
        batch_frames: int = AssistantConfig.encode_batch_frames,
    ):
        self.model = model.eval()
        self.processor = processor
        self.source = source
        self.ocr = ocr
        self.batch_frames = batch_frames
        self._weights_digest: str | None = None

    def describe(self) -> str:
        aux = ", with on-screen text (OCR) as an auxiliary channel" if self.ocr is not None else ""
        return f"salova: {self.source}{aux}"

    def weights_digest(self) -> str:
        """SHA-256 of the vision tower's and connector's weights (computed once)."""
        if self._weights_digest is None:
            state = {
                f"{name}.{key}": value
                for name in INDEXED_MODULES
                for key, value in getattr(self.model, name).state_dict().items()
            }
            self._weights_digest = tensors_digest(state)
        return self._weights_digest

    def identity(self) -> dict[str, Any]:
        config = self.model.config.to_dict()
        return {
            "pipeline": self.name,
            "weights": self.weights_digest(),
            "dtype": str(self.model.dtype),
            "model_config": _stable({k: v for k, v in config.items() if k.startswith(_CONFIG_PREFIXES)}),
            "frames": {
                "image_size": self.processor.image_size,
                "mean": self.processor.image_mean,
                "std": self.processor.image_std,
            },
            "aux_text": None if self.ocr is None else ocr_identity(self.ocr.config),
        }

    def sampling(self, config: AssistantConfig) -> SamplingConfig:
        size = self.processor.image_size
        if self.ocr is not None:
            size = max(size, config.ocr.frame_size)  # decoded once; the tower's frames are scaled down
        return SamplingConfig(fps=config.sample_fps, frame_size=size, resize="center_crop")

    def new_indexer(self) -> SegmentIndexer:
        ocr = None if self.ocr is None else OcrIndexer(self.ocr)
        return SalovaIndexer(self.model, self.processor, self.batch_frames, ocr)

    @staticmethod
    def encoding(index: VideoIndex) -> SegmentEncoding:
        """The stored encodings of an indexed video as one :class:`~salova.model.SegmentEncoding`."""
        return SegmentEncoding(
            routing_tokens=index.tensors["routing_tokens"],
            latents=index.tensors["latents"],
            segments_per_video=torch.tensor([index.num_segments], dtype=torch.long),
        )

    @torch.no_grad()
    def scores(self, index: VideoIndex, question: str) -> torch.Tensor:
        """``(num_segments,)`` router logits of the segments for ``question``."""
        queries = self.processor.tokenize_queries([[question]])
        scores = self.model.score_segments(
            self.encoding(index), queries["query_input_ids"], queries["query_attention_mask"]
        )
        return scores.logits[0][0]

    def features(self, index: VideoIndex) -> torch.Tensor:
        """The routing tokens: the segment summaries the router scores (and the fast pathway reads)."""
        return index.tensors["routing_tokens"]

    @torch.no_grad()
    def answer(
        self,
        index: VideoIndex,
        question: str,
        history: Sequence[tuple[str, str]],
        top_k: int,
        max_new_tokens: int,
        *,
        selector: SelectorConfig | None = None,
    ) -> Reply:
        model, processor = self.model, self.processor
        started = time.perf_counter()
        encoding = self.encoding(index)
        queries = processor.tokenize_queries([[question]])
        scores = model.score_segments(encoding, queries["query_input_ids"], queries["query_attention_mask"])
        selected = model.select_segments(encoding, scores, top_k=top_k, selector=selector)[0]
        routed = time.perf_counter()

        prompt = question
        if self.ocr is not None and index.texts is not None:
            context = text_context(index, selected.tolist())
            if context:
                prompt = f"On-screen text:\n{context}\n\n{question}"
        conversation = []
        for asked, answered in history:
            conversation += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
        conversation.append({"role": "user", "content": prompt})
        input_ids, _ = processor.tokenize_conversation(conversation)
        timestamps: dict[str, torch.Tensor] = {}
        if model.config.focusfast_timestamps:
            timestamps = processor.tokenize_timestamps([index.spans])
        inputs = model.prepare_llm_inputs(
            torch.tensor([input_ids], dtype=torch.long),
            None,
            encoding,
            (selected,),
            segment_timestamp_ids=timestamps.get("segment_timestamp_ids"),
            segment_timestamp_mask=timestamps.get("segment_timestamp_mask"),
        )
        generation_config = copy.deepcopy(model.generation_config)
        extra = generation_config.update(max_new_tokens=max_new_tokens, do_sample=False)
        output = model.language_model.generate(
            inputs_embeds=inputs.inputs_embeds,
            attention_mask=inputs.attention_mask,
            generation_config=generation_config,
            **extra,
        )
        text = processor.batch_decode(output)[0].strip()
        return Reply(
            text=text,
            scores=tuple(float(s) for s in scores.logits[0][0]),
            selected=tuple(int(i) for i in selected),
            route_seconds=routed - started,
            generate_seconds=time.perf_counter() - routed,
        )
