"""The training-free pipeline: answer from text found in the video (in the spirit of Video-RAG).

Indexing reads on-screen text in every segment with the PP-OCRv4 models bundled in
``rapidocr-onnxruntime`` and embeds it with the bundled all-MiniLM-L6-v2. Asking embeds the
question, scores each segment by cosine similarity plus a bonus for words of its text that the
question contains, and hands the text of the top-K segments, each with its time range, to a small
instruction-tuned LLM (the bundled SmolLM2-135M-Instruct) that answers.

The OCR part also serves SALOVA's auxiliary text channel (``AssistantConfig.aux_text``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from salova.errors import BundledModelError, MissingDependencyError
from salova.infer.config import AssistantConfig, OcrConfig, TextRagConfig
from salova.infer.index import IndexPayload, Pipeline, Reply, SegmentIndexer, VideoIndex
from salova.model.selection import SelectorConfig, select_subset
from salova.video import SamplingConfig, Segment

__all__ = [
    "NO_TEXT_ANSWER",
    "OcrReader",
    "TextEmbedder",
    "ChatLLM",
    "OcrIndexer",
    "TextRagPipeline",
    "format_time",
    "ocr_identity",
    "text_context",
]

logger = logging.getLogger(__name__)

NO_TEXT_ANSWER = "No on-screen text was found in this video, so the text pipeline has nothing to answer from."
"""The text pipeline's answer when OCR found no text anywhere in the video."""
THUMBNAIL_SIDE = 64
"""Side of the grey thumbnail that detects repeated frames."""
_WORD = re.compile(r"\w+", re.UNICODE)


def format_time(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for prompts and listings."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def text_context(index: VideoIndex, selected: Sequence[int]) -> str:
    """Lines ``[start-end] text`` of the selected segments that hold text, in temporal order."""
    texts = index.texts or ()
    lines = []
    for i in sorted(selected):
        if i < len(texts) and texts[i]:
            start, end = index.spans[i]
            lines.append(f"[{format_time(start)}-{format_time(end)}] {texts[i]}")
    return "\n".join(lines)


class OcrReader:
    """Reads the on-screen text of a segment's frames with the bundled PP-OCRv4 models.

    Args:
        config: frame choice, filters and threads.

    Raises:
        MissingDependencyError: ``rapidocr-onnxruntime`` is not installed.
    """

    def __init__(self, config: OcrConfig):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise MissingDependencyError(
                "on-screen text needs the bundled OCR models: pip install 'rapidocr-onnxruntime==1.4.4'"
            ) from exc
        self.config = config
        options: dict[str, Any] = {
            "det_limit_type": "max",  # never upscale: frames are already at config.frame_size
            "det_limit_side_len": config.frame_size,
            "use_cls": config.detect_rotated_text,
        }
        if config.threads:
            options["intra_op_num_threads"] = config.threads
            options["inter_op_num_threads"] = 1
        self._options = options
        self._make_engine = RapidOCR
        self._engine = None  # made on the first frame: answering from an index never reads frames

    def read_frame(self, frame: np.ndarray) -> list[str]:
        """Text lines of one RGB frame that pass the confidence and length filters, top to bottom."""
        if self._engine is None:
            self._engine = self._make_engine(**self._options)
        result, _ = self._engine(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        lines = []
        for _box, text, confidence in result or ():
            text = text.strip()
            if (
                float(confidence) >= self.config.min_confidence
                and sum(c.isalnum() for c in text) >= self.config.min_chars
            ):
                lines.append(text)
        return lines

    def read_segment(self, frames: np.ndarray) -> str:
        """The distinct text lines of a segment (``(T, H, W, 3)`` uint8 RGB), joined by spaces.

        Reads at most ``frames_per_segment`` frames at the centres of equal parts of the segment and
        skips a frame that repeats the last one read.
        """
        count = min(len(frames), self.config.frames_per_segment)
        picks = sorted({int((i + 0.5) * len(frames) / count) for i in range(count)})
        seen: dict[str, None] = {}
        last: np.ndarray | None = None
        for pick in picks:
            thumbnail = cv2.resize(
                cv2.cvtColor(frames[pick], cv2.COLOR_RGB2GRAY),
                (THUMBNAIL_SIDE, THUMBNAIL_SIDE),
                interpolation=cv2.INTER_AREA,
            ).astype(np.float32)
            if last is not None and float(np.abs(thumbnail - last).mean()) < self.config.skip_difference:
                continue
            last = thumbnail
            seen.update(dict.fromkeys(self.read_frame(frames[pick])))
        return " ".join(seen)


class TextEmbedder:
    """Sentence embeddings with a local sentence-transformers folder (the bundled all-MiniLM-L6-v2).

    Raises:
        MissingDependencyError: ``sentence-transformers`` is not installed.
        BundledModelError: the folder cannot be loaded.
    """

    def __init__(self, folder: Path):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError("text retrieval needs: pip install sentence-transformers") from exc
        try:
            self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise BundledModelError(f"{folder}: cannot load the sentence embedding model: {exc}") from exc
        # sentence-transformers 6 renamed get_sentence_embedding_dimension; both are accepted
        dimension = (
            getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        )
        self.dimension = int(dimension())

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """``(len(texts), dimension)`` unit-length float32 embeddings; empty texts get zero vectors."""
        out = torch.zeros(len(texts), self.dimension)
        present = [i for i, text in enumerate(texts) if text.strip()]
        if present:
            vectors = self._model.encode(
                [texts[i] for i in present], normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False
            )
            out[present] = vectors.float().cpu()
        return out


class ChatLLM:
    """A local instruction-tuned causal LM with a chat template, answering greedily.

    Args:
        folder: a ``transformers`` folder with tokenizer (and chat template) and weights.
        **load_kwargs: passed to ``from_pretrained`` (``gguf_file=...``).

    Raises:
        BundledModelError: the folder cannot be loaded or has no chat template.
    """

    def __init__(self, folder: Path, **load_kwargs: Any):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, **load_kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(folder, **load_kwargs).eval()
        except (OSError, ValueError) as exc:
            raise BundledModelError(f"{folder}: cannot load the answering LLM: {exc}") from exc
        if not self.tokenizer.chat_template:
            raise BundledModelError(f"{folder}: the LLM's tokenizer has no chat template")
        self.folder = folder

    @torch.no_grad()
    def chat(self, messages: Sequence[dict[str, str]], max_new_tokens: int) -> str:
        """The assistant's reply to ``messages`` (``role``/``content`` dicts)."""
        inputs = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        output = self.model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.eos_token_id
        )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


class OcrIndexer(SegmentIndexer):
    """Reads each segment's text; with an embedder, also stores ``text_embeddings``."""

    def __init__(self, reader: OcrReader, embedder: TextEmbedder | None = None):
        self.reader = reader
        self.embedder = embedder
        self.texts: list[str] = []

    def add(self, segment: Segment) -> None:
        self.texts.append(self.reader.read_segment(segment.frames) if segment.frames is not None else "")

    def finish(self) -> IndexPayload:
        tensors = {} if self.embedder is None else {"text_embeddings": self.embedder.encode(self.texts)}
        return IndexPayload(tensors=tensors, texts=list(self.texts))


def _words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(text)}


class TextRagPipeline(Pipeline):
    """OCR text + MiniLM retrieval + a small chat LLM; no SALOVA weights needed.

    Args:
        reader: the OCR reader.
        embedder: sentence embeddings for retrieval.
        llm: the answering LLM; ``None`` for an indexing-only pipeline.
        config: retrieval settings and the system prompt.
        identity: JSON-ready description of the OCR and embedding models (see :mod:`salova.infer.models`).
    """

    name = "text-rag"

    def __init__(
        self,
        reader: OcrReader,
        embedder: TextEmbedder,
        llm: ChatLLM | None,
        config: TextRagConfig,
        identity: dict[str, Any],
    ):
        self.reader = reader
        self.embedder = embedder
        self.llm = llm
        self.config = config
        self._identity = identity

    def describe(self) -> str:
        llm = "no answering LLM" if self.llm is None else f"answers with {self.llm.folder.name}"
        return f"text-rag: PP-OCRv4 on-screen text, MiniLM retrieval, {llm}"

    def identity(self) -> dict[str, Any]:
        return {"pipeline": self.name, **self._identity, "ocr_config": ocr_identity(self.reader.config)}

    def sampling(self, config: AssistantConfig) -> SamplingConfig:
        return SamplingConfig(fps=config.sample_fps, frame_size=config.ocr.frame_size, resize="pad")

    def new_indexer(self) -> SegmentIndexer:
        return OcrIndexer(self.reader, self.embedder)

    def scores(self, index: VideoIndex, question: str) -> torch.Tensor:
        """``(num_segments,)`` retrieval scores: cosine similarity plus the lexical bonus; 0 without text."""
        texts = index.texts or ("",) * index.num_segments
        query = self.embedder.encode([question])[0]
        dense = index.tensors["text_embeddings"] @ query
        asked = _words(question)
        lexical = torch.tensor([len(_words(t) & asked) / max(1, len(_words(t))) for t in texts])
        has_text = torch.tensor([bool(t.strip()) for t in texts])
        return torch.where(has_text, dense + self.config.lexical_weight * lexical, torch.zeros(()))

    def features(self, index: VideoIndex) -> torch.Tensor:
        """The MiniLM embeddings of the segments' on-screen text."""
        return index.tensors["text_embeddings"]

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
        if self.llm is None:
            raise RuntimeError("this text-rag pipeline was built for indexing only (no answering LLM)")
        started = time.perf_counter()
        scores = self.scores(index, question)
        with_text = [i for i, text in enumerate(index.texts or ()) if text.strip()]
        ranked = sorted(with_text, key=lambda i: (-float(scores[i]), i))[:top_k]
        if selector is not None and selector.name != "topk" and len(with_text) > top_k:
            # Relevant and not redundant among the segments with text: S between their text embeddings.
            rows = torch.tensor(with_text)
            chosen = select_subset(index.tensors["text_embeddings"][rows], scores[rows], top_k, selector).order
            ranked = sorted((with_text[i] for i in chosen), key=lambda i: (-float(scores[i]), i))
        best = float(scores[ranked[0]]) if ranked else 0.0
        if best > 0:
            ranked = [i for i in ranked if float(scores[i]) >= self.config.relative_score * best]
        selected = tuple(sorted(ranked))
        routed = time.perf_counter()
        if not selected:
            text = NO_TEXT_ANSWER
        else:
            messages = [{"role": "system", "content": self.config.system_prompt}]
            for asked, answered in history:
                messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
            prompt = f"Text on screen:\n{text_context(index, selected)}\n\nQuestion: {question}"
            messages.append({"role": "user", "content": prompt})
            text = self.llm.chat(messages, max_new_tokens)
        return Reply(
            text=text,
            scores=tuple(float(s) for s in scores),
            selected=selected,
            route_seconds=routed - started,
            generate_seconds=time.perf_counter() - routed,
        )


def ocr_identity(config: OcrConfig) -> dict[str, Any]:
    """The OCR settings that change what is read (threads do not)."""
    return {
        "frame_size": config.frame_size,
        "frames_per_segment": config.frames_per_segment,
        "skip_difference": config.skip_difference,
        "min_confidence": config.min_confidence,
        "min_chars": config.min_chars,
        "detect_rotated_text": config.detect_rotated_text,
    }
