"""Data commands: ``salova build-data``, ``salova data-stats`` and ``salova convert-data``."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import click

from salova.cli.common import echo_json, show_progress
from salova.cli.video import ingest_config, scene_options
from salova.data.build import build_dataset
from salova.data.captioners import CAPTIONERS, CaptionerConfig
from salova.data.convert import FORMATS, convert_file
from salova.data.engines import ENGINES
from salova.data.instructions import CAPTION_INSTRUCTIONS
from salova.data.pipeline import QA_QUERIES, TASK_CHOICES, BuildConfig
from salova.data.scoring import BUNDLED_T2T_MODEL, ScoringConfig
from salova.data.stats import compute_stats, format_stats, load_build_records, plot_stats
from salova.data.supervision import DEFAULT_QA_LABEL_RULE, LABEL_RULES
from salova.errors import PathError
from salova.video import SamplingConfig

NONE = "none"
"""Option value that turns a scorer off."""
BUNDLED = "bundled"
"""``--t2t-model`` value for the bundled all-MiniLM-L6-v2."""


def _model_option(value: str | None) -> str | None:
    if value is None or value.lower() == NONE:
        return None
    return BUNDLED_T2T_MODEL if value == BUNDLED else value


def _quiet_model_loading() -> None:
    """Without --progress, model-loading bars stay off too (in worker processes as well)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def _read_instructions(path: Path | None) -> tuple[str, ...]:
    if path is None:
        return CAPTION_INSTRUCTIONS
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise PathError(path, f"cannot read: {exc.strerror or exc}") from exc
    return tuple(line for line in lines if line)


_CAPTIONER = CaptionerConfig()
_SCORING = ScoringConfig()


@click.command("build-data")
@click.argument("videos", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--task",
    type=click.Choice(TASK_CHOICES),
    default="captions",
    show_default=True,
    help="captions: one caption per segment (stage 1.5); qa: the synthetic sidecars' questions (stage 2); both.",
)
@click.option("--captioner", type=click.Choice(sorted(CAPTIONERS)), default="synthetic", show_default=True)
@click.option("--captioner-model", help="hf: local model folder; openai: the served model's name.")
@click.option("--base-url", help="openai: API root, e.g. http://127.0.0.1:8000/v1.")
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="openai: environment variable holding the API key (sent as a bearer token if set).",
)
@click.option(
    "--caption-frames",
    type=click.IntRange(min=0),
    default=_CAPTIONER.frames_per_segment,
    show_default=True,
    help="Frames per segment shown to the captioner (0: all).",
)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=_CAPTIONER.max_new_tokens, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0), default=_CAPTIONER.temperature, show_default=True)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=_CAPTIONER.timeout_sec,
    show_default=True,
    help="openai: seconds per request.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=_CAPTIONER.max_retries,
    show_default=True,
    help="openai: retries after timeouts, connection errors and 5xx.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=_CAPTIONER.concurrency,
    show_default=True,
    help="openai: requests in flight per worker.",
)
@click.option(
    "--instructions",
    "instructions_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File with one captioning instruction per line [default: the built-in list].",
)
@click.option("--v2t-model", required=True, help="CLIP-family model folder for V2T scores, or 'none' to skip V2T.")
@click.option(
    "--t2t-model",
    default=BUNDLED,
    show_default=True,
    help="sentence-transformers folder for T2T scores, 'bundled' (all-MiniLM-L6-v2) or 'none'.",
)
@click.option("--v2t-threshold", type=float, default=_SCORING.v2t_threshold, show_default=True)
@click.option("--t2t-threshold", type=float, default=_SCORING.t2t_threshold, show_default=True)
@click.option(
    "--v2t-frames",
    type=click.IntRange(min=0),
    default=_SCORING.v2t_frames_per_segment,
    show_default=True,
    help="Frames per segment embedded for V2T (0: all).",
)
@click.option(
    "--qa-labels",
    type=click.Choice(sorted(LABEL_RULES)),
    default=DEFAULT_QA_LABEL_RULE,
    show_default=True,
    help="How evidence and scores make QA labels.",
)
@click.option(
    "--qa-query",
    type=click.Choice(QA_QUERIES),
    default="question_answer",
    show_default=True,
    help="Text scored for a question.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the instruction draws.")
@click.option("--device", default=_SCORING.device, show_default=True, help="torch device of the models.")
@click.option("--batch-size", type=click.IntRange(min=1), default=_SCORING.batch_size, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="torch threads per worker (a setting: it can change the last bits of scores).",
)
@click.option(
    "--frame-size",
    type=click.IntRange(min=8),
    default=SamplingConfig.frame_size,
    show_default=True,
    help="Side of the square frames kept for captioning and V2T.",
)
@scene_options
@click.option("--engine", type=click.Choice(sorted(ENGINES)), default="local", show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (local) or Ray actors.",
)
@click.option("--ray-address", help="Ray cluster address [default: start a local Ray].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
@click.pass_context
def build_data(
    ctx, videos, out, task, instructions_file, api_key_env, engine, workers, ray_address, as_json, progress, **options
):
    """Segment, caption and score the videos under VIDEOS into training records in OUT.

    OUT gets records/<id>.json per video, captions.jsonl and/or qa.jsonl and a manifest. Run
    the same command again to resume after an interruption or to retry failed videos.
    """
    o = options
    captioner = CaptionerConfig(
        name=o["captioner"],
        model=o["captioner_model"],
        base_url=o["base_url"],
        api_key=os.environ.get(api_key_env),
        frames_per_segment=o["caption_frames"],
        max_new_tokens=o["max_new_tokens"],
        temperature=o["temperature"],
        device=o["device"],
        timeout_sec=o["timeout"],
        max_retries=o["retries"],
        concurrency=o["concurrency"],
    )
    scoring = ScoringConfig(
        v2t_model=_model_option(o["v2t_model"]),
        t2t_model=_model_option(o["t2t_model"]),
        v2t_threshold=o["v2t_threshold"],
        t2t_threshold=o["t2t_threshold"],
        v2t_frames_per_segment=o["v2t_frames"],
        batch_size=o["batch_size"],
        device=o["device"],
    )
    scene_keys = ("min_segment_sec", "max_segment_sec", "max_segments", "threshold", "sample_fps", "strict")
    ingest = ingest_config(**{key: o[key] for key in scene_keys})
    ingest = replace(ingest, sampling=replace(ingest.sampling, frame_size=o["frame_size"]))
    config = BuildConfig(
        task=task,
        ingest=ingest,
        captioner=captioner,
        scoring=scoring,
        qa_labels=o["qa_labels"],
        qa_query=o["qa_query"],
        seed=o["seed"],
        instructions=_read_instructions(instructions_file),
        torch_threads=o["threads"],
    )
    progress = show_progress(progress)
    if not progress:
        _quiet_model_loading()
    summary = build_dataset(
        videos, out, config, engine=engine, workers=workers, ray_address=ray_address, progress=progress
    )
    if as_json:
        echo_json(
            {
                "out_dir": str(summary.out_dir),
                "videos": summary.videos,
                "built": summary.built,
                "skipped": summary.skipped,
                "failed": summary.failed,
                "records": summary.records,
                "outputs": {task: str(path) for task, path in summary.outputs().items()},
            }
        )
    else:
        click.echo(
            f"{summary.out_dir}: {summary.videos} videos ({summary.built} built, {summary.skipped} already done, "
            f"{len(summary.failed)} failed)"
        )
        for name, path in summary.outputs().items():
            click.echo(f"  {name:<9} {summary.records[name]:>6} records  {path}")
    for video_id, error in summary.failed.items():
        click.echo(f"failed: {video_id}: {error}", err=True)
    if summary.failed:
        click.echo(
            f"error: {len(summary.failed)} videos failed (see {summary.out_dir / 'errors'}); "
            "run the same command again to retry them",
            err=True,
        )
        ctx.exit(1)


@click.command("data-stats")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the plot [default: PATH/stats.png, or beside a record file].",
)
@click.option("--no-plot", is_flag=True, help="Do not draw the plot.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def data_stats(path, plot_path, no_plot, as_json):
    """Print the SceneWalk statistics (videos, hours, segments, words per caption, duration
    buckets) of a build-data folder or record file, and draw them."""
    stats = compute_stats(load_build_records(path))
    if not no_plot:
        plot_path = plot_path or (path / "stats.png" if path.is_dir() else path.with_suffix(".stats.png"))
        plot_stats(stats, plot_path)
    if as_json:
        echo_json({**stats.to_dict(), "plot": None if no_plot else str(plot_path)})
        return
    click.echo(format_stats(stats))
    if not no_plot:
        click.echo(f"plot              {plot_path}")


@click.command("convert-data")
@click.argument("source", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--to", "target_format", type=click.Choice(FORMATS), required=True, help="Format to write.")
@click.option("--from", "source_format", type=click.Choice(("auto", *FORMATS)), default="auto", show_default=True)
@click.option(
    "--salova-fields", is_flag=True, help="released: keep labels, queries and provenance under a 'salova' key."
)
@click.option(
    "--v2t-threshold",
    type=float,
    default=_SCORING.v2t_threshold,
    show_default=True,
    help="τ_V2T for labels of imported records.",
)
@click.option(
    "--t2t-threshold",
    type=float,
    default=_SCORING.t2t_threshold,
    show_default=True,
    help="τ_T2T for labels of imported records.",
)
def convert_data(source, target, target_format, source_format, salova_fields, v2t_threshold, t2t_threshold):
    """Convert records between salova JSONL, the released code's JSON and SceneWalk rows
    (.jsonl, .json or .parquet, by suffix)."""
    count = convert_file(
        source,
        target,
        target_format,
        source=source_format,
        salova_fields=salova_fields,
        t2t_threshold=t2t_threshold,
        v2t_threshold=v2t_threshold,
    )
    click.echo(f"{target}: {count} videos as {target_format}")
