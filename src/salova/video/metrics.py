"""How well found scene boundaries match true ones."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["boundary_f1"]


def boundary_f1(true: Sequence[float], found: Sequence[float], tolerance: float) -> float:
    """F1 of found cut times against true ones; each true cut matches at most one found cut.

    Args:
        true: true cut times (seconds).
        found: detected cut times (seconds).
        tolerance: a found cut within this many seconds of a true one is a hit.

    Returns:
        The F1 score in [0, 1]; 1.0 when both lists are empty.

    Example:
        >>> boundary_f1([1.0, 2.0], [1.2], tolerance=0.5)
        0.6666666666666666
    """
    if not true and not found:
        return 1.0
    unmatched = sorted(found)
    hits = 0
    for cut in sorted(true):
        near = [f for f in unmatched if abs(f - cut) <= tolerance]
        if near:
            unmatched.remove(min(near, key=lambda f: abs(f - cut)))
            hits += 1
    if not hits:
        return 0.0
    precision, recall = hits / len(found), hits / len(true)
    return 2 * precision * recall / (precision + recall)
