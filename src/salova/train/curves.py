"""Training curves of a chain of stage runs: each run's ``metrics.jsonl`` plotted side by side, and
the losses at the start and end of each run.

>>> curves = plot_training_curves(["runs/stage0", "runs/stage1"], "losses.png")  # doctest: +SKIP
>>> curves[0].start["loss"], curves[0].end["loss"]  # doctest: +SKIP
(4.31, 0.62)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from salova.errors import ConfigError
from salova.fileio import atomic_path
from salova.train.logs import METRICS_FILE, read_metrics

__all__ = ["LOSS_KEYS", "ACCURACY_KEY", "SMOOTHING_STEPS", "StageCurve", "stage_curve", "plot_training_curves"]

LOSS_KEYS = ("loss", "lm_loss", "similarity_loss")
"""Losses drawn in the upper row (those a run logged)."""
ACCURACY_KEY = "retrieval_acc"
"""Drawn in the lower row: the router's (or, in stage 0, the CLIP pair's) in-batch retrieval accuracy."""
SMOOTHING_STEPS = 10
"""Steps averaged for the start and end values and for the drawn running mean."""


@dataclass(frozen=True)
class StageCurve:
    """One run's curve: its steps and each metric averaged over its first and last steps."""

    name: str
    steps: int
    start: dict[str, float]
    end: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "steps": self.steps, "start": self.start, "end": self.end}


def _series(metrics: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = np.array([(m["step"], m[key]) for m in metrics if isinstance(m.get(key), int | float)], dtype=float)
    rows = rows.reshape(-1, 2)
    return rows[:, 0], rows[:, 1]


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def stage_curve(run_dir: str | Path, window: int = SMOOTHING_STEPS) -> StageCurve:
    """The start and end values of a run's metrics (means over ``window`` steps).

    Raises:
        ConfigError: the folder holds no ``metrics.jsonl`` lines.
    """
    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir)
    if not metrics:
        raise ConfigError(f"{run_dir} holds no training metrics ({METRICS_FILE})")
    start, end = {}, {}
    for key in (*LOSS_KEYS, ACCURACY_KEY):
        _, values = _series(metrics, key)
        if len(values):
            start[key], end[key] = float(values[:window].mean()), float(values[-window:].mean())
    return StageCurve(run_dir.name, int(metrics[-1]["step"]), start, end)


def plot_training_curves(
    run_dirs: Sequence[str | Path], out_png: str | Path, window: int = SMOOTHING_STEPS
) -> list[StageCurve]:
    """Draw the losses (upper row) and retrieval accuracy (lower row) of each run, one column per
    run in the order given, as raw values with their running mean; write ``out_png`` atomically.

    Raises:
        ConfigError: no runs, or a run without metrics.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not run_dirs:
        raise ConfigError("no run folders given")
    curves = [stage_curve(run_dir, window) for run_dir in run_dirs]
    fig, axes = plt.subplots(2, len(run_dirs), figsize=(3.6 * len(run_dirs), 5.6), squeeze=False)
    for column, (run_dir, curve) in enumerate(zip(run_dirs, curves, strict=True)):
        metrics = read_metrics(run_dir)
        for row, keys in enumerate((LOSS_KEYS, (ACCURACY_KEY,))):
            ax = axes[row][column]
            for key, color in zip(keys, ("tab:blue", "tab:orange", "tab:green"), strict=False):
                steps, values = _series(metrics, key)
                if len(values):
                    ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
                    ax.plot(steps, _running_mean(values, window), color=color, label=key)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
        axes[0][column].set_title(f"{curve.name} ({curve.steps} steps)")
        axes[1][column].set_ylim(0, 1)
    axes[0][0].set_ylabel("loss")
    axes[1][0].set_ylabel("retrieval accuracy (in batch)")
    fig.tight_layout()
    with atomic_path(out_png) as temp:
        fig.savefig(temp, format="png", dpi=110)
    plt.close(fig)
    return curves
