"""Where a run's metrics go: ``metrics.jsonl`` (every step), TensorBoard (default), wandb (optional),
and a progress bar with the loss, the router's retrieval accuracy and the throughput.

Only the main process logs; the metrics it receives are already summed over the processes.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from salova.errors import ConfigError
from salova.fileio import atomic_write_text
from salova.train.config import LoggingConfig

__all__ = ["METRICS_FILE", "LOGS_DIR", "RunLogger", "read_metrics"]

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
"""One JSON object per optimizer step, in the run folder."""
LOGS_DIR = "logs"
"""TensorBoard event files, in the run folder."""
BAR_KEYS = {
    "loss": "loss",
    "retrieval_acc": "acc",
    "tokens_per_sec": "tok/s",
    "samples_per_sec": "samples/s",
}
"""Metrics shown on the progress bar, and their short names."""


def read_metrics(output_dir: str | Path) -> list[dict[str, Any]]:
    """The per-step metrics of a run, in step order."""
    path = Path(output_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _short(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.4g}"


class RunLogger:
    """Metrics sinks of one run.

    Args:
        output_dir: the run folder.
        config: the ``logging`` section.
        enabled: this process logs (the main process).
        start_step: steps already done (a resumed run drops later lines of ``metrics.jsonl``).
        total_steps: steps of the whole run (the bar's length).
        progress: show the progress bar.
        run_config: the run's config, for wandb.
    """

    def __init__(
        self,
        output_dir: Path,
        config: LoggingConfig,
        *,
        enabled: bool,
        start_step: int,
        total_steps: int,
        progress: bool,
        run_config: dict[str, Any],
    ):
        self.config = config
        self.enabled = enabled
        self.metrics_path = output_dir / METRICS_FILE
        self.writer = None
        self.wandb = None
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            unit="step",
            desc="train",
            disable=not (enabled and progress),
            dynamic_ncols=True,
        )
        if not enabled:
            return
        kept = [m for m in read_metrics(output_dir) if m["step"] <= start_step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(m) + "\n" for m in kept))
        if config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as error:
                raise ConfigError(
                    "logging.tensorboard needs the tensorboard package (pip install tensorboard), "
                    "or set logging.tensorboard: false"
                ) from error
            self.writer = SummaryWriter(str(output_dir / LOGS_DIR), purge_step=start_step + 1 if start_step else None)
        if config.wandb:
            try:
                import wandb
            except ImportError as error:
                raise ConfigError("logging.wandb needs the wandb package (pip install wandb)") from error
            self.wandb = wandb.init(
                project=config.wandb_project,
                name=config.run_name or output_dir.name,
                config=run_config,
                dir=str(output_dir),
            )

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record the metrics of optimizer step ``step`` (1-based)."""
        if not self.enabled:
            return
        with self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")
        if step % self.config.every_steps == 0 or step == self.bar.total:
            if self.writer is not None:
                for key, value in metrics.items():
                    self.writer.add_scalar(f"train/{key}", value, step)
            if self.wandb is not None:
                self.wandb.log({f"train/{key}": value for key, value in metrics.items()}, step=step)
        self.bar.set_postfix({short: _short(metrics[key]) for key, short in BAR_KEYS.items() if key in metrics})
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()
