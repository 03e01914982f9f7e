"""Configuration of the assistant: answering, indexing, OCR and text retrieval.

Every number the assistant uses is a field here with its reason; nothing in
:mod:`salova.infer` uses a literal where one of these belongs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from salova.errors import ConfigError
from salova.infer.cache import default_cache_dir
from salova.model.selection import SelectorConfig
from salova.video import SceneConfig

__all__ = ["OcrConfig", "TextRagConfig", "AssistantConfig"]


def _require(condition: bool, name: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"{name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class OcrConfig:
    """Reading on-screen text with the bundled PP-OCRv4 models (``rapidocr-onnxruntime``)."""

    frame_size: int = 448
    """Side of the square frame the text pipeline decodes (the whole frame fitted inside and
    padded, so text near the edges survives). Synthetic on-screen text is then about 40 px high."""
    frames_per_segment: int = 4
    """Most frames read per segment, spread evenly over it: bounds OCR time for long segments."""
    skip_difference: float = 1.0
    """A frame whose 64x64 grey thumbnail differs from the last frame read in its segment by less
    than this mean absolute level (0-255) is skipped as a repeat. Kept low: a changed subtitle
    line moves the level by about 2, camera motion by 5 or more, a static shot by under 0.2."""
    min_confidence: float = 0.8
    """Recognised lines scored lower are dropped (shapes misread as letters score 0.5-0.8)."""
    min_chars: int = 2
    """Recognised lines with fewer letters or digits are dropped (a circle read as ``O``)."""
    detect_rotated_text: bool = False
    """Run the 180-degree text-direction classifier; overlays in video are upright, and skipping it
    saves a third of the time."""
    threads: int = 0
    """ONNX Runtime threads per model; 0 lets it choose (all cores)."""

    def __post_init__(self) -> None:
        _require(self.frame_size >= 32, "ocr.frame_size", self.frame_size, ">= 32 pixels")
        _require(self.frames_per_segment >= 1, "ocr.frames_per_segment", self.frames_per_segment, ">= 1")
        _require(self.skip_difference >= 0, "ocr.skip_difference", self.skip_difference, ">= 0")
        _require(0 <= self.min_confidence <= 1, "ocr.min_confidence", self.min_confidence, "in [0, 1]")
        _require(self.min_chars >= 1, "ocr.min_chars", self.min_chars, ">= 1")
        _require(self.threads >= 0, "ocr.threads", self.threads, ">= 0 (0 = automatic)")


@dataclass(frozen=True)
class TextRagConfig:
    """The training-free pipeline: retrieve segments by their on-screen text, answer with a small LLM."""

    lexical_weight: float = 0.5
    """Added to a segment's score times the share of its words that the question contains: an
    exact word from the screen in the question is the strongest evidence there is, and sentence
    embeddings of single words are noisy."""
    relative_score: float = 0.5
    """Of the top-K retrieved segments, only those scoring at least this share of the best score
    are read (Video-RAG likewise keeps only retrieved text above a similarity threshold): a small
    LLM answers better from one matching line than from five loosely related ones. 0 reads all."""
    system_prompt: str = (
        "You answer questions about a video. You cannot see it; you are given the text shown on "
        "screen in some of its segments, each line starting with the segment's time range. "
        "Answer briefly and name the time range your answer comes from."
    )
    """System message of the answering LLM."""

    def __post_init__(self) -> None:
        _require(self.lexical_weight >= 0, "text_rag.lexical_weight", self.lexical_weight, ">= 0")
        _require(0 <= self.relative_score <= 1, "text_rag.relative_score", self.relative_score, "in [0, 1]")
        _require(bool(self.system_prompt.strip()), "text_rag.system_prompt", self.system_prompt, "non-empty")


@dataclass(frozen=True)
class AssistantConfig:
    """Everything :class:`~salova.infer.VideoAssistant` needs besides the model."""

    top_k: int = 5
    """Segments read per answer (paper section 5.1: K = 5; its ablation found K = 9 best on
    Video-MME). The text pipeline retrieves as many."""
    max_new_tokens: int = 64
    """Longest answer, in LLM tokens (greedy decoding)."""
    aux_text: bool = False
    """SALOVA only: read on-screen text while indexing and add the text of the selected segments to
    the prompt as an auxiliary channel."""
    scenes: SceneConfig = field(default_factory=SceneConfig)
    """Scene detection and segment rules of the ingest (paper defaults)."""
    sample_fps: float = 1.0
    """Frames sampled per second (paper: 1 FPS, no drop at inference)."""
    encode_batch_frames: int = 256
    """Frames gathered before one call of the vision tower and connector while indexing: bounds
    memory whatever the video's length."""
    decode_threads: int = 0
    """Decoder threads; 0 lets FFmpeg choose."""
    memory_indexes: int = 16
    """Indexes an assistant keeps in memory (least recently used dropped first)."""
    cache_dir: Path | None = None
    """Cache folder of video indexes (under ``index/``); ``None``:
    :func:`~salova.infer.cache.default_cache_dir` (``$SALOVA_CACHE_DIR`` or ``~/.cache/salova``)."""
    models_dir: Path | None = None
    """Where bundled models converted for fast loading are kept (machine-wide, whatever ``cache_dir``
    says); ``None``: ``models/`` in :func:`~salova.infer.cache.default_cache_dir`."""
    ocr: OcrConfig = field(default_factory=OcrConfig)
    text_rag: TextRagConfig = field(default_factory=TextRagConfig)
    selector: SelectorConfig = field(default_factory=SelectorConfig)
    """How the ``top_k`` segments are chosen from their scores: ``topk`` (the best scored, the paper's
    rule) or ``seal`` (relevant and not redundant; see :mod:`salova.model.selection`)."""

    def __post_init__(self) -> None:
        _require(isinstance(self.selector, SelectorConfig), "selector", self.selector, "a SelectorConfig")
        _require(self.top_k >= 1, "top_k", self.top_k, ">= 1")
        _require(self.max_new_tokens >= 1, "max_new_tokens", self.max_new_tokens, ">= 1")
        _require(self.sample_fps > 0, "sample_fps", self.sample_fps, "> 0")
        _require(self.encode_batch_frames >= 1, "encode_batch_frames", self.encode_batch_frames, ">= 1")
        _require(self.decode_threads >= 0, "decode_threads", self.decode_threads, ">= 0 (0 = automatic)")
        _require(self.memory_indexes >= 1, "memory_indexes", self.memory_indexes, ">= 1")
        for name in ("cache_dir", "models_dir"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)).expanduser())

    @property
    def cache_root(self) -> Path:
        """The cache folder in use."""
        return self.cache_dir or default_cache_dir()

    @property
    def models_root(self) -> Path:
        """The folder of converted bundled models in use."""
        return self.models_dir or default_cache_dir() / "models"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        data = asdict(self)
        for name in ("cache_dir", "models_dir"):
            data[name] = None if data[name] is None else str(data[name])
        return data
