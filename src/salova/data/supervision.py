"""From correspondence scores to the router's supervision (paper, Appendix A.2).

Each score matrix is ``[num_queries][num_segments]``. A score *exceeding* its threshold is a
positive (strictly greater, as the released code compares); the paper's supervision is the
union of the two thresholded matrices, ``y = Y_V2T ∪ Y_T2T``. Question-answer records also
know the segments that hold each answer (the *evidence*); a label rule says how evidence and
scores combine. This module needs only numpy, so records can be checked without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from salova.errors import ConfigError

__all__ = [
    "DEFAULT_T2T_THRESHOLD",
    "DEFAULT_V2T_THRESHOLD",
    "LABEL_RULES",
    "CAPTION_LABEL_RULE",
    "DEFAULT_QA_LABEL_RULE",
    "threshold_union",
    "evidence_matrix",
    "supervise",
]

DEFAULT_V2T_THRESHOLD = 0.18
"""τ_V2T: a video-text cosine above this is a positive (paper, Appendix A.2)."""
DEFAULT_T2T_THRESHOLD = 0.8
"""τ_T2T: a text-text cosine above this is a positive (paper, Appendix A.2)."""

Matrix = Sequence[Sequence[float]]


def _intersection_or_evidence(evidence: np.ndarray, scores: np.ndarray) -> np.ndarray:
    both = evidence & scores
    empty = ~both.any(axis=1, keepdims=True)
    return np.where(empty, evidence, both)


LABEL_RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "scores": lambda evidence, scores: scores,
    "evidence": lambda evidence, scores: evidence,
    "evidence_and_scores": _intersection_or_evidence,
    "evidence_or_scores": lambda evidence, scores: evidence | scores,
}
"""How a record's labels are made from the evidence mask and the thresholded scores.

- ``scores``: the union of the thresholded V2T and T2T matrices (the paper's rule; the only
  rule for caption records, which have no evidence).
- ``evidence``: the segments that hold the answer, whatever the scores say.
- ``evidence_and_scores``: the evidence segments that also score as positives; a query whose
  intersection is empty keeps all its evidence segments, so every question has a positive.
- ``evidence_or_scores``: evidence segments plus every scored positive.
"""
CAPTION_LABEL_RULE = "scores"
"""Label rule of caption records."""
DEFAULT_QA_LABEL_RULE = "evidence_and_scores"
"""Default label rule of question-answer records."""


def _matrix(values: Matrix | np.ndarray | None, name: str) -> np.ndarray | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a [num_queries][num_segments] matrix, got shape {array.shape}")
    return array


def threshold_union(
    sen_sim: Matrix | np.ndarray | None,
    lb_sim: Matrix | np.ndarray | None,
    *,
    t2t_threshold: float = DEFAULT_T2T_THRESHOLD,
    v2t_threshold: float = DEFAULT_V2T_THRESHOLD,
) -> np.ndarray:
    """``(sen_sim > τ_T2T) | (lb_sim > τ_V2T)`` over the matrices that are present.

    Args:
        sen_sim: T2T scores ``[num_queries][num_segments]``, or ``None`` when not scored.
        lb_sim: V2T scores of the same shape, or ``None``.
        t2t_threshold: τ_T2T.
        v2t_threshold: τ_V2T.

    Returns:
        A boolean ``(num_queries, num_segments)`` array.

    Raises:
        ValueError: both matrices are missing, or their shapes differ.

    Example:
        >>> threshold_union([[0.9, 0.1]], [[0.0, 0.3]]).tolist()
        [[True, True]]
    """
    text = _matrix(sen_sim, "sen_sim")
    video = _matrix(lb_sim, "lb_sim")
    if text is None and video is None:
        raise ValueError("at least one of sen_sim (T2T) and lb_sim (V2T) is needed")
    if text is not None and video is not None and text.shape != video.shape:
        raise ValueError(f"sen_sim has shape {text.shape}, lb_sim {video.shape}; they must match")
    shape = (text if text is not None else video).shape
    positive = np.zeros(shape, dtype=bool)
    if text is not None:
        positive |= text > t2t_threshold
    if video is not None:
        positive |= video > v2t_threshold
    return positive


def evidence_matrix(evidence: Sequence[Sequence[int]], num_segments: int) -> np.ndarray:
    """Boolean ``(num_queries, num_segments)`` mask with ``True`` at each query's evidence segments.

    Raises:
        ValueError: an index lies outside ``0 .. num_segments - 1``.
    """
    mask = np.zeros((len(evidence), num_segments), dtype=bool)
    for query, segments in enumerate(evidence):
        for segment in segments:
            if not 0 <= segment < num_segments:
                raise ValueError(f"evidence of query {query} names segment {segment}, outside 0..{num_segments - 1}")
            mask[query, segment] = True
    return mask


def supervise(
    sen_sim: Matrix | np.ndarray | None,
    lb_sim: Matrix | np.ndarray | None,
    *,
    t2t_threshold: float = DEFAULT_T2T_THRESHOLD,
    v2t_threshold: float = DEFAULT_V2T_THRESHOLD,
    evidence: Sequence[Sequence[int]] | None = None,
    rule: str = CAPTION_LABEL_RULE,
    num_segments: int | None = None,
) -> np.ndarray:
    """The 0/1 supervision matrix of one record.

    Args:
        sen_sim: T2T scores or ``None``.
        lb_sim: V2T scores or ``None``.
        t2t_threshold: τ_T2T.
        v2t_threshold: τ_V2T.
        evidence: per query, the indices of the segments that hold its answer (QA records).
        rule: a name in :data:`LABEL_RULES`.
        num_segments: needed only when neither score matrix is given (rule ``evidence``).

    Returns:
        An ``int8`` array ``(num_queries, num_segments)`` of 0 and 1.

    Raises:
        ConfigError: ``rule`` is unknown, or it needs evidence or scores that are missing.
        ValueError: the shapes disagree.

    Example:
        >>> supervise([[0.9, 0.2], [0.1, 0.3]], None, evidence=[[1], [0]], rule="evidence_and_scores").tolist()
        [[0, 1], [1, 0]]
    """
    if rule not in LABEL_RULES:
        raise ConfigError(f"unknown label rule {rule!r}; choose from {sorted(LABEL_RULES)}")
    has_scores = sen_sim is not None or lb_sim is not None
    if rule != "evidence" and not has_scores:
        raise ConfigError(f"label rule {rule!r} needs T2T or V2T scores, and neither was computed")
    scores = (
        threshold_union(sen_sim, lb_sim, t2t_threshold=t2t_threshold, v2t_threshold=v2t_threshold)
        if has_scores
        else None
    )
    if rule == "scores":
        return scores.astype(np.int8)
    if evidence is None:
        raise ConfigError(f"label rule {rule!r} needs the evidence segments of each query")
    width = scores.shape[1] if scores is not None else num_segments
    if width is None:
        raise ValueError("num_segments is needed when no score matrix is given")
    mask = evidence_matrix(evidence, width)
    if scores is None:
        scores = np.zeros_like(mask)
    if scores.shape != mask.shape:
        raise ValueError(f"scores have shape {scores.shape}, evidence {mask.shape}; they must match")
    return LABEL_RULES[rule](mask, scores).astype(np.int8)
