"""SEAL selection: greedy (with its swap search) against the exact optimum, and speed on 10,000 candidates.

- **worst ratio**: on ``--trials`` small random inputs (4-14 candidates, budgets 2-7, widths 2-32,
  alpha 0.5-0.99; Gaussian, clustered near-duplicate and positive features), the lowest
  ``F(greedy) / F(optimum)``, with and without the swap search, and how often greedy is optimal.
- **speed**: ``greedy_subset`` on 10,000 candidates of width 1,024 (the paper's routing-token width)
  for several budgets; medians of ``--repeats`` runs, with the swaps made.

    python bench/seal.py [--trials 10000] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from salova.model.selection import exact_subset, greedy_subset, topk_subset

CANDIDATES = 10_000
WIDTH = 1_024
BUDGETS = (5, 16, 64, 256)
WIDE = 8
"""Widths from here up stand for real features (routing tokens are 32 to 1,024 wide)."""
NEAR = 0.95
"""Ratios below this are counted."""


def random_instance(rng: np.random.Generator, trial: int):
    n = int(rng.integers(4, 15))
    k = int(rng.integers(2, min(7, n) + 1))
    d = int(rng.choice([2, 3, 4, 8, 16, 32]))
    alpha = float(rng.choice([0.5, 0.7, 0.9, 0.99]))
    if trial % 3 == 0:
        features = rng.normal(size=(n, d))
    elif trial % 3 == 1:
        centres = rng.normal(size=(max(1, n // 3), d))
        features = centres[rng.integers(len(centres), size=n)] + 0.05 * rng.normal(size=(n, d))
    else:
        features = np.abs(rng.normal(size=(n, d)))
    return features, rng.random(n), k, alpha


def worst_ratios(trials: int, seed: int = 0) -> dict[str, float]:
    """Worst ``F(selection) / F(optimum)`` per method, the worst at widths >= ``WIDE``, and shares."""
    rng = np.random.default_rng(seed)
    worst = {"greedy + swaps": 1.0, "greedy alone": 1.0, "top-K": 1.0, f"greedy + swaps, width >= {WIDE}": 1.0}
    optimal = below = 0
    for trial in range(trials):
        features, relevance, k, alpha = random_instance(rng, trial)
        best = exact_subset(features, relevance, k, alpha=alpha).objective
        found = greedy_subset(features, relevance, k, alpha=alpha).objective
        worst["greedy + swaps"] = min(worst["greedy + swaps"], found / best)
        if features.shape[1] >= WIDE:
            worst[f"greedy + swaps, width >= {WIDE}"] = min(worst[f"greedy + swaps, width >= {WIDE}"], found / best)
        plain = greedy_subset(features, relevance, k, alpha=alpha, max_swaps=0).objective
        worst["greedy alone"] = min(worst["greedy alone"], plain / best)
        worst["top-K"] = min(worst["top-K"], topk_subset(features, relevance, k, alpha=alpha).objective / best)
        optimal += found >= best * (1 - 1e-9)
        below += found < NEAR * best
    return {
        **worst,
        "greedy + swaps optimal (share)": optimal / trials,
        f"greedy + swaps below {NEAR} (share)": below / trials,
    }


def speed(repeats: int) -> list[tuple[int, float, float, int]]:
    """``(budget, median seconds with swaps, median seconds greedy alone, swaps)`` per budget."""
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(CANDIDATES, WIDTH, generator=generator)
    relevance = torch.rand(CANDIDATES, generator=generator, dtype=torch.float64)
    rows = []
    for budget in BUDGETS:
        full, plain, swaps = [], [], 0
        for _ in range(repeats):
            start = time.perf_counter()
            swaps = greedy_subset(features, relevance, budget).swaps
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            greedy_subset(features, relevance, budget, max_swaps=0)
            plain.append(time.perf_counter() - start)
        rows.append((budget, statistics.median(full), statistics.median(plain), swaps))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)")
    started = time.perf_counter()
    ratios = worst_ratios(args.trials)
    print(f"\nF(selection) / F(optimum) on {args.trials} random inputs ({time.perf_counter() - started:.0f} s):")
    for name, value in ratios.items():
        print(f"  {name:34s} {value:.4f}")
    print(f"\ngreedy_subset on {CANDIDATES:,} candidates of width {WIDTH:,} (median of {args.repeats}):")
    print("  budget  with swaps (s)  greedy alone (s)  swaps")
    for budget, full, plain, swaps in speed(args.repeats):
        print(f"  {budget:6d}  {full:14.3f}  {plain:16.3f}  {swaps:5d}")


if __name__ == "__main__":
    main()
