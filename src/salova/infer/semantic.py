"""SEAL's selection over semantic tokens: a fixed-size subset of a video's scene, action and object
tokens that is relevant to a question and not redundant (arXiv 2412.01798, section 3.2).

Each token's image (a frame or a crop, see :mod:`salova.video.tokens`) is encoded by the SALOVA
model as a one-frame segment: vision tower and ST-Connector give it a routing token and latents.
The SR-Router scores the routing tokens against the question (``R``), their cosine similarity is
``S``, and :func:`~salova.model.selection.select_subset` keeps ``budget`` of them. This is the
selector working on a finer set than segments: tokens, not scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from salova.errors import ConfigError
from salova.infer.salova_pipeline import SalovaPipeline
from salova.model import SegmentEncoding
from salova.model.selection import SelectorConfig, select_subset
from salova.video.tokens import SemanticToken

__all__ = ["ENCODE_BATCH_TOKENS", "TokenSelection", "square_image", "encode_tokens", "select_tokens"]

ENCODE_BATCH_TOKENS = 64
"""Tokens encoded per vision-tower call."""


@dataclass(frozen=True)
class TokenSelection:
    """The tokens chosen for a question."""

    tokens: tuple[SemanticToken, ...]
    """The chosen tokens, in the order of the candidates."""
    indices: tuple[int, ...]
    """Their positions among the candidates, ascending."""
    scores: tuple[float, ...]
    """Router logit of every candidate for the question."""
    objective: float
    """SEAL's objective of the chosen subset."""


def square_image(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` fitted inside a ``size`` x ``size`` square (aspect kept, black padding): crops of any
    shape become vision-tower frames without distortion."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    canvas = np.zeros((size, size, 3), np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


@torch.no_grad()
def encode_tokens(pipeline: SalovaPipeline, tokens: list[SemanticToken] | tuple[SemanticToken, ...]) -> SegmentEncoding:
    """Encode each token's image as a one-frame segment (routing token and latents), as one video.

    Raises:
        ConfigError: the pipeline is not SALOVA's.
        ValueError: no tokens.
    """
    if not isinstance(pipeline, SalovaPipeline):
        raise ConfigError(f"semantic tokens are encoded by a SALOVA model, not by the {pipeline.name} pipeline")
    if not tokens:
        raise ValueError("no tokens to encode")
    model, processor = pipeline.model, pipeline.processor
    parts = []
    for start in range(0, len(tokens), ENCODE_BATCH_TOKENS):
        batch = tokens[start : start + ENCODE_BATCH_TOKENS]
        frames = np.stack([square_image(token.image, processor.image_size) for token in batch])
        pixels = processor.preprocess_frames(frames).to(device=model.device, dtype=model.dtype)
        counts = torch.ones(len(batch), dtype=torch.long)
        parts.append(model.encode_segments(pixels, counts, token_drop=False))
    return SegmentEncoding.cat(parts, as_one_video=True)


@torch.no_grad()
def select_tokens(
    pipeline: SalovaPipeline,
    tokens: list[SemanticToken] | tuple[SemanticToken, ...],
    question: str,
    budget: int,
    selector: str | SelectorConfig = "seal",
    encoding: SegmentEncoding | None = None,
) -> TokenSelection:
    """Choose ``budget`` of ``tokens`` for ``question``: router relevance, routing-token similarity.

    Args:
        pipeline: a SALOVA pipeline (its model encodes and scores).
        tokens: the candidates (e.g. ``semantic_tokens(video).all()``).
        question: the query.
        budget: how many tokens to keep.
        selector: ``seal`` (default) or ``topk``, or a :class:`~salova.model.selection.SelectorConfig`.
        encoding: the tokens' encoding from :func:`encode_tokens`, to reuse it across questions.

    Returns:
        :class:`TokenSelection`.

    Raises:
        ConfigError: not a SALOVA pipeline, or an unknown selector.
        ValueError: no tokens, or an encoding of another length.

    Example:
        >>> from salova.infer import load_pipeline
        >>> from salova.video import sample_video_path
        >>> from salova.video.tokens import semantic_tokens
        >>> tokens = semantic_tokens(sample_video_path("bikes")).all()  # doctest: +SKIP
        >>> chosen = select_tokens(load_pipeline("tiny"), tokens, "Who rides a bike?", 8)  # doctest: +SKIP
        >>> [t.kind for t in chosen.tokens]  # doctest: +SKIP
    """
    encoding = encoding if encoding is not None else encode_tokens(pipeline, tokens)
    if encoding.routing_tokens.shape[0] != len(tokens):
        raise ValueError(f"the encoding holds {encoding.routing_tokens.shape[0]} tokens, {len(tokens)} were given")
    queries = pipeline.processor.tokenize_queries([[question]])
    scores = pipeline.model.score_segments(encoding, queries["query_input_ids"], queries["query_attention_mask"])
    logits = scores.logits[0][0]
    chosen = select_subset(encoding.routing_tokens, logits, budget, selector)
    indices = chosen.indices
    return TokenSelection(
        tokens=tuple(tokens[i] for i in indices),
        indices=indices,
        scores=tuple(float(s) for s in logits),
        objective=chosen.objective,
    )
