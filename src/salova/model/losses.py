"""Similarity loss of the SR-Router (paper section 4.1.2, Eq. 1).

``L_sim = BCE(y, s) + (1 / N_s) * sum_j max(0, delta - (s_j^p - s_j^n))``

* the point-wise BCE runs over every (query, segment) score of a video;
* the margin term runs over every (positive, negative) pair of segments *of the same query*
  (the released code paired scores across queries); ``N_s`` is the number of such pairs. Using
  every pair is the expectation of the paper's random pair sampling, without its noise.

Both terms read the same scores ``s`` (the router's logits), as in the paper and the released code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

__all__ = ["SimilarityLossOutput", "margin_ranking_loss", "similarity_loss"]


@dataclass
class SimilarityLossOutput:
    """Terms of the similarity loss of one video.

    Attributes:
        loss: ``()`` ``bce + margin``.
        bce: ``()`` mean binary cross-entropy over all scores.
        margin: ``()`` mean hinge over the within-query pairs (zero when there is no pair).
        num_pairs: number of (positive, negative) pairs ``N_s``.
    """

    loss: torch.Tensor
    bce: torch.Tensor
    margin: torch.Tensor
    num_pairs: int


def _check_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2 or labels.shape != logits.shape:
        raise ValueError(
            f"segment labels must have the scores' shape (queries, segments) = {tuple(logits.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("segment labels must be 0/1 (1: the segment is relevant to the query)")


def margin_ranking_loss(logits: torch.Tensor, labels: torch.Tensor, margin: float) -> tuple[torch.Tensor, int]:
    """Mean of ``max(0, margin - (s_p - s_n))`` over all positive/negative pairs within each query.

    Args:
        logits: ``(queries, segments)`` scores.
        labels: ``(queries, segments)`` 0/1 relevance.
        margin: ``delta``.

    Returns:
        ``(loss, num_pairs)``; the loss is a zero connected to ``logits`` when there is no pair.
    """
    _check_labels(logits, labels)
    positive = labels.bool()
    total = logits.sum() * 0.0
    num_pairs = 0
    # One query at a time: a (positives x segments) block instead of a (queries x segments^2) tensor.
    for scores, is_positive in zip(logits, positive, strict=True):
        positives = scores[is_positive]
        negatives = scores[~is_positive]
        if positives.numel() == 0 or negatives.numel() == 0:
            continue
        total = total + F.relu(margin - (positives[:, None] - negatives[None, :])).sum()
        num_pairs += positives.numel() * negatives.numel()
    return (total / num_pairs if num_pairs else total), num_pairs


def similarity_loss(logits: torch.Tensor, labels: torch.Tensor, margin: float) -> SimilarityLossOutput:
    """Similarity loss of one video (paper Eq. 1).

    Args:
        logits: ``(queries, segments)`` router scores.
        labels: ``(queries, segments)`` 0/1 relevance of each segment to each query.
        margin: ``delta`` of the margin term (``config.similarity_margin``).

    Returns:
        :class:`SimilarityLossOutput`.

    Raises:
        ValueError: shapes differ or labels are not 0/1.
    """
    labels = labels.to(logits.dtype)
    margin_term, num_pairs = margin_ranking_loss(logits, labels, margin)
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    return SimilarityLossOutput(loss=bce + margin_term, bce=bce, margin=margin_term, num_pairs=num_pairs)
