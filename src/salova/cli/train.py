"""Training command: ``salova train --stage {0,1,1.5,2} --config FILE``."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from salova.cli.common import echo_json, show_progress
from salova.errors import ConfigError
from salova.train import load_config, run_stage
from salova.train.stages import STAGES

SUMMARY_METRICS = ("loss", "lm_loss", "similarity_loss", "retrieval_acc")
"""Metrics of every stage's curves (``salova train-curves``)."""
CLOSING_METRICS = SUMMARY_METRICS + ("alignment_loss", "word_recall")
"""Metrics of the last step printed after a run (those the stage logs)."""


@click.command("train")
@click.option("--stage", type=click.Choice(list(STAGES)), required=True, help="Stage to run (0 trains the CLIP pair).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The stage YAML (see src/salova/train/configs/).",
)
@click.option("--output", type=click.Path(path_type=Path, file_okay=False), help="Run folder (YAML: output_dir).")
@click.option(
    "--init-from",
    type=click.Path(path_type=Path, file_okay=False),
    help="Start from this stage output instead of the YAML's init_from or model parts.",
)
@click.option("--resume", is_flag=True, help="Continue the run in the output folder from its newest checkpoint.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Optimizer steps to run (overrides epochs).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. --set optim.lr=1e-4 --set data.max_samples=64 (repeatable).",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train(config_file, stage, output, init_from, resume, max_steps, overrides, progress, as_json):
    """Run one training stage; each stage starts from the previous stage's output folder.

    Works in one process or in each process of `torchrun --nproc-per-node N -m salova train ...`
    or `accelerate launch ... -m salova train ...`.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    changes: list = list(overrides)
    if output is not None:
        changes.append(("output_dir", str(output)))
    if init_from is not None:
        if stage == "0":
            raise ConfigError("stage 0 starts from a synthetic corpus (data.corpus), not from --init-from")
        changes += [("init_from", str(init_from)), ("model", None)]
    if max_steps is not None:
        changes.append(("max_steps", max_steps))
    config = load_config(config_file, stage=stage, overrides=changes)
    summary = run_stage(config, resume=resume, progress=show_progress(progress))
    if summary.rank != 0:
        return
    metrics = {key: summary.metrics[key] for key in CLOSING_METRICS if key in summary.metrics}
    if as_json:
        echo_json(
            {
                "stage": summary.stage,
                "output_dir": str(summary.output_dir),
                "steps": summary.steps,
                "resumed_from": summary.resumed_from,
                "world_size": summary.world_size,
                "metrics": metrics,
            }
        )
        return
    if not summary.metrics:
        click.echo(
            f"stage {summary.stage}: {summary.output_dir} already holds the finished run ({summary.steps} steps)"
        )
        return
    shown = ", ".join(f"{key} {value:.4g}" for key, value in metrics.items())
    click.echo(f"stage {summary.stage}: {summary.steps} steps -> {summary.output_dir} ({shown})")


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Checkpoint folder.")
def export(run_dir, out):
    """Write a finished stage run's model as a checkpoint folder, without its training state."""
    from salova.train import export_checkpoint

    export_checkpoint(run_dir, out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    click.echo(f"{run_dir} -> {out} ({size / 2**20:.1f} MiB)")


@click.command("train-curves")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The PNG to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the start and end values as JSON.")
def train_curves(run_dirs, out, as_json):
    """Plot the loss and retrieval-accuracy curves of stage runs, one column per run in the order given."""
    from salova.train import plot_training_curves

    curves = plot_training_curves(run_dirs, out)
    if as_json:
        echo_json([curve.to_dict() for curve in curves])
        return
    click.echo(f"{out}")
    click.echo("| run | steps | " + " | ".join(f"{key} (start -> end)" for key in SUMMARY_METRICS) + " |")
    click.echo("|---|---:|" + "---:|" * len(SUMMARY_METRICS))
    for curve in curves:
        cells = [
            f"{curve.start[key]:.3f} -> {curve.end[key]:.3f}" if key in curve.end else "-" for key in SUMMARY_METRICS
        ]
        click.echo(f"| {curve.name} | {curve.steps} | " + " | ".join(cells) + " |")
