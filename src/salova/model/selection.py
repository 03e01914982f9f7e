"""Query-aware subset selection (SEAL, arXiv 2412.01798, "attention learning") and the registry of
selectors that choose FocusFast's focus segments.

SEAL picks a fixed-size subset ``T`` of ``n`` candidate tokens that is relevant to the query and
not redundant, maximising

    F(T) = alpha * sum_{t in T} R(t, q) + (1 - alpha) * sum_{i != j in T} 1 / S(t_i, t_j)

over subsets of size ``k`` (``alpha = 0.9`` in the paper). Here

* ``R`` is the candidates' relevance to the query (router logits, or a text-visual cosine),
  brought to ``[0, 1]`` so that it is on the scale of the redundancy term
  (:data:`RELEVANCE_NORMS`; min-max over the candidates by default);
* ``S`` is the cosine similarity of two candidates' features, taken after centring the features on
  the candidates' mean (``SelectorConfig.center``) and clipped to ``[similarity_floor, 1]``. A cosine
  can be zero or negative, where ``1 / S`` is undefined or negative; with the default floor of 0.25
  every pair with cosine <= 0.25 counts as unrelated, so ``1 / S`` runs from 1 (identical) to 4
  (unrelated). Centring removes the direction that all features of one network share: under the
  ``tiny`` model the routing tokens of unrelated scenes of a synthetic video have raw cosine
  0.74 +- 0.16, which would leave ``1 / S`` nearly constant; centred, -0.15 +- 0.50, while
  near-duplicate scenes stay at 0.998.

The sum runs over ordered pairs, as the paper writes it (each unordered pair counts twice). The
rest is the objective exactly as stated.

Maximising ``F`` is NP-hard (it contains max-sum dispersion). :func:`greedy_subset` adds, ``k``
times, the candidate of largest marginal gain ``alpha R(j) + 2 (1 - alpha) sum_{i in T} 1 / S(i, j)``,
keeping the pair sums of every candidate up to date (``O(n d)`` per pick for one new row of
similarities), then improves the subset by single swaps (one member out, one candidate in) while
one raises ``F``, best swap first, at most ``max_swaps`` times (``O(k n + n d)`` each). In all
``O((k + s) n d + s k n)`` time for ``s`` swaps and ``O(k n)`` memory: no ``n x n`` matrix.
:func:`exact_subset` enumerates every subset (``n <= EXACT_MAX_CANDIDATES``) to check it; the
worst ratio measured is in ``docs/seal.md``.

:data:`SELECTORS` names the selectors that :meth:`~salova.model.SalovaForCausalLM.select_segments`
and the assistant accept: ``topk`` (SALOVA's own rule, highest relevance first) and ``seal``.
Both take any ``(n, d)`` candidate features with a relevance vector, so they serve segments
(routing tokens), semantic tokens or frames alike (:func:`select_subset`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from salova.errors import ConfigError

__all__ = [
    "SEAL_ALPHA",
    "EXACT_MAX_CANDIDATES",
    "RELEVANCE_NORMS",
    "SELECTORS",
    "SelectorConfig",
    "SubsetSelection",
    "normalize_relevance",
    "inverse_similarity",
    "subset_objective",
    "greedy_subset",
    "topk_subset",
    "exact_subset",
    "select_subset",
    "resolve_selector",
]

SEAL_ALPHA = 0.9
"""Weight of relevance against redundancy (SEAL, arXiv 2412.01798, section 3.2)."""
SIMILARITY_FLOOR = 0.25
"""Default lower clip of ``S``: a cosine <= 0.25 counts as unrelated (``1 / S = 4``)."""
MAX_SWAPS = 64
"""Default bound on the local search's swaps after the greedy picks."""
EXACT_MAX_CANDIDATES = 20
"""Largest candidate set :func:`exact_subset` enumerates (C(20, 10) = 184,756 subsets)."""
_EXACT_CHUNK = 1 << 15
"""Subsets scored per vectorised step of the exact solver (bounds its memory)."""
_IMPROVEMENT = 1e-12
"""A swap must raise ``F`` by more than this (guards against cycling on rounding)."""

Features = torch.Tensor | np.ndarray
Relevance = torch.Tensor | np.ndarray | Sequence[float]


def _minmax(scores: torch.Tensor) -> torch.Tensor:
    low, high = scores.min(), scores.max()
    if float(high - low) <= 0.0:
        return torch.ones_like(scores)  # all equally relevant: the choice is left to diversity
    return (scores - low) / (high - low)


RELEVANCE_NORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "minmax": _minmax,
    "sigmoid": torch.sigmoid,
    "none": lambda scores: scores,
}
"""How raw relevance scores become ``R`` in ``[0, 1]``: ``minmax`` over the candidates (any scale;
equal scores all become 1), ``sigmoid`` (router logits: SALOVA trains them with a binary
cross-entropy, so the sigmoid is the model's probability of relevance), ``none`` (already in ``[0, 1]``)."""


@dataclass(frozen=True)
class SelectorConfig:
    """Which selector chooses a subset, and SEAL's settings."""

    name: str = "topk"
    """A key of :data:`SELECTORS`: ``topk`` (highest relevance first) or ``seal``."""
    alpha: float = SEAL_ALPHA
    """SEAL's weight of relevance; ``1 - alpha`` weighs redundancy (paper: 0.9)."""
    similarity_floor: float = SIMILARITY_FLOOR
    """``S`` is clipped below at this cosine. 0.25: a repeat (``1 / S = 1``) is worth 3 less than an
    unrelated candidate (``1 / S = 4``) per member of the subset, and the redundancy term stays bounded,
    which keeps the greedy search close to the optimum (``docs/seal.md`` compares other floors)."""
    center: bool = True
    """Centre the candidates' features on their mean before the cosine (see the module notes)."""
    relevance: str = "minmax"
    """A key of :data:`RELEVANCE_NORMS`: how raw scores are brought to ``[0, 1]``."""
    max_swaps: int = MAX_SWAPS
    """Most single swaps of SEAL's local search after the greedy picks; 0 keeps the greedy subset."""

    def __post_init__(self) -> None:
        if self.name not in SELECTORS:
            raise ConfigError(f"Unknown selector {self.name!r}; choose from {sorted(SELECTORS)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"selector alpha must be in [0, 1], got {self.alpha!r}")
        if not 0.0 < self.similarity_floor <= 1.0:
            raise ConfigError(f"similarity_floor must be in (0, 1], got {self.similarity_floor!r}")
        if self.relevance not in RELEVANCE_NORMS:
            raise ConfigError(
                f"Unknown relevance normalisation {self.relevance!r}; choose from {sorted(RELEVANCE_NORMS)}"
            )
        if self.max_swaps < 0:
            raise ConfigError(f"max_swaps must be >= 0, got {self.max_swaps!r}")

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "alpha": self.alpha,
            "similarity_floor": self.similarity_floor,
            "center": self.center,
            "relevance": self.relevance,
            "max_swaps": self.max_swaps,
        }


@dataclass(frozen=True)
class SubsetSelection:
    """A chosen subset of candidates."""

    order: tuple[int, ...]
    """Candidate indices in the order they were picked (``topk``: by relevance; a swap replaces a
    member in place)."""
    objective: float
    """SEAL's ``F`` of the subset, with the relevance and settings it was chosen under."""
    swaps: int = 0
    """Swaps made by the local search."""

    @property
    def indices(self) -> tuple[int, ...]:
        """The chosen candidates, ascending (temporal order for segments)."""
        return tuple(sorted(self.order))

    def __len__(self) -> int:
        return len(self.order)


def normalize_relevance(scores: Relevance, mode: str = "minmax") -> torch.Tensor:
    """``R`` in ``[0, 1]`` from raw scores (see :data:`RELEVANCE_NORMS`), as float64.

    Raises:
        ConfigError: an unknown ``mode``.
        ValueError: scores that are not a finite vector.
    """
    if mode not in RELEVANCE_NORMS:
        raise ConfigError(f"Unknown relevance normalisation {mode!r}; choose from {sorted(RELEVANCE_NORMS)}")
    scores = _vector(scores)
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("relevance scores must be finite")
    return RELEVANCE_NORMS[mode](scores) if scores.numel() else scores


def _vector(values: Relevance) -> torch.Tensor:
    tensor = values if isinstance(values, torch.Tensor) else torch.from_numpy(np.asarray(values, dtype=np.float64))
    tensor = tensor.detach().to(device="cpu", dtype=torch.float64)
    if tensor.ndim != 1:
        raise ValueError(f"relevance must be a vector, got shape {tuple(tensor.shape)}")
    return tensor


def _unit_rows(features: Features, center: bool) -> torch.Tensor:
    """``(n, d)`` float32 rows, centred on their mean if asked, scaled to unit length (a zero row stays
    zero: cosine 0 with everything)."""
    tensor = features if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features))
    tensor = tensor.detach().to(device="cpu", dtype=torch.float32)
    if tensor.ndim != 2:
        raise ValueError(f"candidate features must have shape (n, d), got {tuple(tensor.shape)}")
    if center and tensor.shape[0] > 1:
        tensor = tensor - tensor.mean(dim=0, keepdim=True)
    return F.normalize(tensor, dim=1)


def _inverse_rows(unit: torch.Tensor, rows: torch.Tensor, floor: float) -> torch.Tensor:
    """``1 / S`` between ``unit[rows]`` and every candidate: ``(len(rows), n)`` float64."""
    similarity = (unit[rows] @ unit.T).to(torch.float64)
    return 1.0 / similarity.clamp(min=floor, max=1.0)


def inverse_similarity(
    features: Features, similarity_floor: float = SIMILARITY_FLOOR, center: bool = True
) -> torch.Tensor:
    """The ``(n, n)`` matrix of ``1 / S`` with a zero diagonal (for small ``n``: checks and the exact solver)."""
    unit = _unit_rows(features, center)
    return _inverse_rows(unit, torch.arange(unit.shape[0]), similarity_floor).fill_diagonal_(0.0)


def subset_objective(
    features: Features,
    relevance: Relevance,
    subset: Sequence[int],
    *,
    alpha: float = SEAL_ALPHA,
    similarity_floor: float = SIMILARITY_FLOOR,
    center: bool = True,
) -> float:
    """SEAL's ``F`` of ``subset`` of all ``features`` (centred on all of them) for already normalised
    ``relevance``; ``O(n d + k^2 d)``."""
    chosen = torch.as_tensor(list(subset), dtype=torch.long)
    if chosen.numel() == 0:
        return 0.0
    unit = _unit_rows(features, center)[chosen]
    pairs = _inverse_rows(unit, torch.arange(len(chosen)), similarity_floor).fill_diagonal_(0.0)
    return float(alpha * _vector(relevance)[chosen].sum() + (1.0 - alpha) * pairs.sum())


def _prepare(features: Features, relevance: Relevance, budget: int, center: bool) -> tuple[torch.Tensor, torch.Tensor]:
    unit, relevance = _unit_rows(features, center), _vector(relevance)
    if relevance.shape != (unit.shape[0],):
        raise ValueError(f"relevance must have one value per candidate ({unit.shape[0]}), got {tuple(relevance.shape)}")
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    return unit, relevance


def greedy_subset(
    features: Features,
    relevance: Relevance,
    budget: int,
    *,
    alpha: float = SEAL_ALPHA,
    similarity_floor: float = SIMILARITY_FLOOR,
    center: bool = True,
    max_swaps: int = MAX_SWAPS,
) -> SubsetSelection:
    """Greedy maximisation of SEAL's objective, then a swap local search.

    Each of the ``k = min(budget, n)`` greedy steps adds the candidate with the largest marginal gain
    ``alpha R(j) + 2 (1 - alpha) sum_{i in T} 1 / S(i, j)`` (first index on ties); the pair sums of
    all candidates are kept up to date with one new row of similarities per pick. Then, up to
    ``max_swaps`` times, the single swap (member ``i`` out, candidate ``j`` in) that raises ``F`` most
    is made, its gain being ``alpha (R(j) - R(i)) + 2 (1 - alpha) (P(j) - 1/S(i, j) - P(i))`` with
    ``P`` the pair sums over the subset; it stops when no swap improves ``F``.

    Cost: ``O(n d)`` per pick and ``O(k n + n d)`` per swap, so ``O((k + s) n d + s k n)`` time for
    ``s`` swaps, and ``O(k n)`` memory beyond the features; no ``n x n`` matrix is formed (10,000
    candidates of width 1,024: see ``docs/benchmarks.md``).

    Args:
        features: ``(n, d)`` candidate features (routing tokens, latents, embeddings...).
        relevance: ``(n,)`` relevance, already in ``[0, 1]`` (see :func:`normalize_relevance`).
        budget: subset size ``k``; all candidates when ``budget >= n``.
        alpha: weight of relevance.
        similarity_floor: lower clip of ``S``.
        center: centre the features on their mean before the cosine.
        max_swaps: bound on the local search (0: the greedy subset as is).

    Returns:
        :class:`SubsetSelection`.

    Example:
        >>> import torch
        >>> features = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]])  # 0 and 1 are near-duplicates
        >>> greedy_subset(features, torch.tensor([1.0, 0.95, 0.7]), 2, alpha=0.5, center=False).indices
        (0, 2)
    """
    unit, relevance = _prepare(features, relevance, budget, center)
    n, k = unit.shape[0], min(budget, unit.shape[0])
    base = alpha * relevance
    pair_sums = torch.zeros(n, dtype=torch.float64)  # P(j) = sum_{i in T} 1/S(i, j), self included for members
    rows = torch.empty(k, n, dtype=torch.float64)  # 1/S of each member with every candidate
    taken = torch.zeros(n, dtype=torch.bool)
    order: list[int] = []
    for slot in range(k):
        gains = base + 2.0 * (1.0 - alpha) * pair_sums
        gains[taken] = -math.inf
        pick = int(torch.argmax(gains))
        order.append(pick)
        taken[pick] = True
        rows[slot] = _inverse_rows(unit, torch.tensor([pick]), similarity_floor)[0]
        pair_sums += rows[slot]
    swaps = 0
    slots = torch.arange(k)
    while swaps < max_swaps and k < n:
        members = torch.tensor(order)
        own = pair_sums[members] - rows[slots, members]  # P(i) without 1/S(i, i)
        delta = alpha * (relevance[None, :] - relevance[members][:, None])
        delta += 2.0 * (1.0 - alpha) * ((pair_sums[None, :] - rows) - own[:, None])
        delta[:, taken] = -math.inf
        best = int(torch.argmax(delta))
        slot, pick = divmod(best, n)
        if float(delta[slot, pick]) <= _IMPROVEMENT:
            break
        taken[order[slot]], taken[pick] = False, True
        order[slot] = pick
        pair_sums -= rows[slot]
        rows[slot] = _inverse_rows(unit, torch.tensor([pick]), similarity_floor)[0]
        pair_sums += rows[slot]
        swaps += 1
    members = torch.tensor(order)
    pairs = rows[:, members].sum() - rows[slots, members].sum()
    value = float(alpha * relevance[members].sum() + (1.0 - alpha) * pairs)
    return SubsetSelection(order=tuple(order), objective=value, swaps=swaps)


def topk_subset(
    features: Features,
    relevance: Relevance,
    budget: int,
    *,
    alpha: float = SEAL_ALPHA,
    similarity_floor: float = SIMILARITY_FLOOR,
    center: bool = True,
) -> SubsetSelection:
    """The ``min(budget, n)`` most relevant candidates (earlier index on ties): SALOVA's rule.

    ``features``, ``alpha``, ``similarity_floor`` and ``center`` only serve the reported objective.
    """
    _, relevance = _prepare(features, relevance, budget, center)
    order = tuple(int(i) for i in relevance.argsort(descending=True, stable=True)[:budget])
    value = subset_objective(features, relevance, order, alpha=alpha, similarity_floor=similarity_floor, center=center)
    return SubsetSelection(order=order, objective=value)


def exact_subset(
    features: Features,
    relevance: Relevance,
    budget: int,
    *,
    alpha: float = SEAL_ALPHA,
    similarity_floor: float = SIMILARITY_FLOOR,
    center: bool = True,
) -> SubsetSelection:
    """The optimum of SEAL's objective by enumerating all ``C(n, k)`` subsets (``n <= 20``).

    Returns:
        :class:`SubsetSelection` (``order`` ascending; the first optimum in lexicographic order).

    Raises:
        ValueError: more than :data:`EXACT_MAX_CANDIDATES` candidates.
    """
    unit, relevance = _prepare(features, relevance, budget, center)
    n = unit.shape[0]
    if n > EXACT_MAX_CANDIDATES:
        raise ValueError(f"exact_subset enumerates subsets of at most {EXACT_MAX_CANDIDATES} candidates, got {n}")
    pairs = _inverse_rows(unit, torch.arange(n), similarity_floor).fill_diagonal_(0.0).numpy()
    weights = relevance.numpy()
    combos = itertools.combinations(range(n), min(budget, n))
    best_value, best = -math.inf, ()
    while chunk := list(itertools.islice(combos, _EXACT_CHUNK)):
        subsets = np.asarray(chunk, dtype=np.int64)  # (m, k)
        values = alpha * weights[subsets].sum(axis=1)
        values += (1.0 - alpha) * pairs[subsets[:, :, None], subsets[:, None, :]].sum(axis=(1, 2))
        top = int(np.argmax(values))
        if values[top] > best_value:
            best_value, best = float(values[top]), tuple(int(i) for i in subsets[top])
    return SubsetSelection(order=best, objective=best_value)


def _objective_settings(config: SelectorConfig) -> dict[str, Any]:
    return {"alpha": config.alpha, "similarity_floor": config.similarity_floor, "center": config.center}


SELECTORS: dict[str, Callable[[Features, torch.Tensor, int, SelectorConfig], SubsetSelection]] = {
    "topk": lambda features, relevance, budget, config: topk_subset(
        features, relevance, budget, **_objective_settings(config)
    ),
    "seal": lambda features, relevance, budget, config: greedy_subset(
        features, relevance, budget, **_objective_settings(config), max_swaps=config.max_swaps
    ),
}
"""Selector name -> function ``(features, relevance in [0, 1], budget, config) -> SubsetSelection``."""


def resolve_selector(selector: str | SelectorConfig | None) -> SelectorConfig:
    """A :class:`SelectorConfig` from a registry name, a config or ``None`` (``topk``).

    Raises:
        ConfigError: an unknown name.
    """
    if selector is None:
        return SelectorConfig()
    if isinstance(selector, SelectorConfig):
        return selector
    return SelectorConfig(name=selector)


def select_subset(
    features: Features,
    scores: Relevance,
    budget: int,
    selector: str | SelectorConfig | None = None,
) -> SubsetSelection:
    """Choose ``min(budget, n)`` of ``n`` candidates with a registered selector.

    The one entry point for any candidate set: segments (routing tokens and router logits), latent
    tokens, semantic tokens or frames.

    Args:
        features: ``(n, d)`` candidate features; ``S`` is their cosine similarity.
        scores: ``(n,)`` raw relevance to the query (normalised by ``selector.relevance``).
        budget: how many to keep.
        selector: a name from :data:`SELECTORS` or a :class:`SelectorConfig`; ``topk`` when omitted.

    Returns:
        :class:`SubsetSelection`.

    Raises:
        ConfigError: an unknown selector.
        ValueError: mismatched shapes or a budget below 1.

    Example:
        >>> import numpy as np
        >>> rows = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [-0.7, 0.7]])
        >>> select_subset(rows, [3.0, 2.9, 2.8, 0.5], 2, "topk").indices  # 0 and 1 are near-duplicates
        (0, 1)
        >>> select_subset(rows, [3.0, 2.9, 2.8, 0.5], 2, "seal").indices
        (0, 2)
    """
    config = resolve_selector(selector)
    return SELECTORS[config.name](features, normalize_relevance(scores, config.relevance), budget, config)
