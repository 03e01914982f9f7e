"""Evaluation commands: ``salova eval``, ``salova synth-bench``, ``salova niah`` and ``salova ablate``."""

from __future__ import annotations

from pathlib import Path

import click

from salova.cli.common import echo_json, show_progress, world_options
from salova.eval.extract import CONVENTIONS, DEFAULT_CONVENTION

_MODEL_HELP = "A SALOVA checkpoint folder, 'salova' (the shipped checkpoint), 'tiny' or 'text-rag'."
_BENCHMARKS = ("videomme", "videomme_w_subtitle", "longvideobench", "mlvu", "mvbench", "activitynetqa")


def _bar(enabled: bool, label: str):
    """A ``(done, total)`` progress callback drawing a click progress bar on stderr, or ``None``."""
    if not enabled:
        return None
    state: dict = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = click.progressbar(length=total, label=label, file=click.get_text_stream("stderr"))
            state["bar"].__enter__()
            state["done"] = 0
        state["bar"].update(done - state["done"])
        state["done"] = done
        if done >= total:
            state.pop("bar").__exit__(None, None, None)

    return update


def _output_options(what: str):
    """``--json`` (print ``what`` as JSON) and ``--progress/--no-progress``."""

    def decorate(func):
        func = click.option(
            "--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal]."
        )(func)
        return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")(func)

    return decorate


def _model_option(func):
    return click.option("--model", "model", default=None, help=_MODEL_HELP + " [default: the assistant's default]")(
        func
    )


def _cache_option(func):
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Feature cache folder of the assistant [default: its own].",
    )(func)


@click.command("eval")
@click.argument("benchmark", type=click.Choice(_BENCHMARKS))
@click.option(
    "--annotations",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The benchmark's official annotation file (or folder, for MLVU and MVBench).",
)
@click.option("--videos", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@_model_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Results folder (predictions.jsonl, report.json, report.md); a run resumes from it "
    "[default: runs/eval/<benchmark>-<model>].",
)
@click.option(
    "--convention",
    type=click.Choice(sorted(CONVENTIONS)),
    default=DEFAULT_CONVENTION,
    show_default=True,
    help="Answer extraction: lmms-eval's, or the official Video-MME script's (unanswered questions left out).",
)
@click.option(
    "--subtitles",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Subtitle (.srt) folder for videomme_w_subtitle [default: a 'subtitle' folder in or beside --videos].",
)
@click.option(
    "--prompt-variant",
    default="default",
    show_default=True,
    help="lmms-eval's lmms_eval_specific_kwargs entry (Video-MME also has 'llava_vid').",
)
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Segments read per answer.")
@click.option(
    "--selector",
    type=click.Choice(["topk", "seal"]),
    default="topk",
    show_default=True,
    help="How the segments read are chosen: topk (best scored) or seal (relevant and not redundant).",
)
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.9, show_default=True, help="seal: relevance weight.")
@click.option(
    "--stream",
    "stream_memory",
    type=(click.IntRange(min=1), click.IntRange(min=1)),
    default=None,
    metavar="WINDOW BUDGET",
    help="Answer from SEAL's streaming memory (the last WINDOW segments and BUDGET kept by SEAL), built "
    "segment by segment over each video with the question as standing query, instead of the whole video.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N questions.")
@click.option("--skip-missing-videos", is_flag=True, help="Drop questions whose video is missing.")
@_cache_option
@_output_options("the report (overall, per bucket, per category)")
def evaluate_command(
    benchmark,
    annotations,
    videos,
    model,
    out_dir,
    convention,
    subtitles,
    prompt_variant,
    top_k,
    selector,
    alpha,
    stream_memory,
    limit,
    skip_missing_videos,
    cache_dir,
    as_json,
    progress,
):
    """Score a model on BENCHMARK with lmms-eval's prompts and answer extraction."""
    from salova.eval import LoadOptions, evaluate, get_task
    from salova.eval.adapters import ModelVariant, assistant_eval_model
    from salova.eval.report import report_markdown
    from salova.model.selection import SelectorConfig

    spec = get_task(benchmark)
    chooser = None if selector == "topk" else SelectorConfig(name=selector, alpha=alpha)
    eval_model = assistant_eval_model(
        model,
        variant=ModelVariant(top_k=top_k, selector=chooser),
        max_new_tokens=spec.max_new_tokens,
        cache_dir=cache_dir,
    )
    if stream_memory is not None:
        from salova.eval.seal_eval import StreamReplayEvalModel
        from salova.infer.stream import StreamConfig

        window, budget = stream_memory
        eval_model = StreamReplayEvalModel(eval_model, StreamConfig(window=window, budget=budget))
    if out_dir is None:
        out_dir = Path("runs") / "eval" / f"{benchmark}-{Path(str(model or 'default')).name}"
    options = LoadOptions(
        videos=videos, subtitles=subtitles, prompt_variant=prompt_variant, skip_missing_videos=skip_missing_videos
    )
    report = evaluate(
        benchmark,
        annotations,
        eval_model,
        out_dir,
        options,
        convention=convention,
        limit=limit,
        progress=_bar(show_progress(progress), benchmark),
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(report_markdown(report), nl=False)
        click.echo(f"\nwritten to {out_dir}")


@click.command("synth-bench")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--videos-per-bucket", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--questions-per-video", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    nargs=3,
    default=(1.5, 8.0, 30.0),
    show_default=True,
    help="Video length of the short, medium and long bucket.",
)
@world_options
@_output_options("the summary")
def synth_bench(out_dir, as_json, progress, **fields):
    """Write a Video-MME-format benchmark of held-out synthetic videos (short / medium / long)."""
    from salova.eval.synth_bench import ANNOTATIONS_NAME, VIDEOS_DIR, SynthBenchConfig, build_synth_bench, summarize

    config = SynthBenchConfig(**fields)
    rows = build_synth_bench(out_dir, config, progress=show_progress(progress))
    summary = {
        "out_dir": str(out_dir),
        "annotations": str(out_dir / ANNOTATIONS_NAME),
        "videos": str(out_dir / VIDEOS_DIR),
        "buckets": summarize(rows),
    }
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{out_dir}: {len(rows)} questions")
    for bucket, counts in summary["buckets"].items():
        click.echo(f"  {bucket:<7} {counts['videos']:>3} videos  {counts['questions']:>4} questions")
    click.echo(f"score it: salova eval videomme --annotations {summary['annotations']} --videos {summary['videos']}")


def _numbers(ctx: click.Context, param: click.Parameter, text: str) -> tuple[float, ...]:
    """A comma-separated list of numbers (click callback)."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise click.BadParameter("expected at least one number")
    return values


@click.command("niah")
@_model_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--lengths",
    default="300,600,1200,1800,2400,3000",
    show_default=True,
    callback=_numbers,
    help="Haystack lengths, comma-separated, in frames at 1 FPS (seconds of footage).",
)
@click.option(
    "--depths", default="0,0.25,0.5,0.75,1", show_default=True, callback=_numbers, help="Needle depths in [0, 1]."
)
@click.option("--needles-per-cell", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--haystack",
    multiple=True,
    help="Footage file or sample name (bikes, bigbuckbunny, carphone); repeatable [default: the sample clips].",
)
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Segments SALOVA reads.")
@click.option(
    "--videos-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the needle videos are written and reused [default: OUT/videos].",
)
@_cache_option
@_output_options("the summary")
def niah(
    model, out_dir, lengths, depths, needles_per_cell, seed, haystack, top_k, videos_dir, cache_dir, as_json, progress
):
    """Visual needle in a haystack: SALOVA (1 FPS + router) against 16 uniform frames without it."""
    from salova.eval.adapters import ModelVariant, assistant_eval_model
    from salova.eval.niah import BASELINE_VARIANT, SALOVA_VARIANT, NiahConfig, niah_markdown, run_niah

    salova = ModelVariant(SALOVA_VARIANT.name, top_k=top_k)
    config = NiahConfig(
        lengths=tuple(int(n) for n in lengths),
        depths=depths,
        needles_per_cell=needles_per_cell,
        seed=seed,
        haystack=tuple(haystack) or None,
        variants=(BASELINE_VARIANT, salova),
    )
    eval_model = assistant_eval_model(model, variant=salova, cache_dir=cache_dir)
    summary = run_niah(
        eval_model, out_dir, config, videos_dir=videos_dir, progress=_bar(show_progress(progress), "niah")
    )
    if as_json:
        echo_json(summary)
    else:
        click.echo(niah_markdown(summary), nl=False)
        click.echo(f"\nheatmap: {Path(out_dir) / 'niah.png'}")


@click.command("ablate")
@click.option(
    "--bench",
    "bench_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder written by 'salova synth-bench'.",
)
@_model_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--rows",
    default="frames,pathways,top-k",
    show_default=True,
    help="Row groups: frames (Table 3 sampling), pathways (Table 3 FocusFast), top-k (Table 7), "
    "focus (router top-K against the evidence forced in).",
)
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="K of the rows that do not vary it.")
@click.option("--convention", type=click.Choice(sorted(CONVENTIONS)), default=DEFAULT_CONVENTION, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N questions.")
@click.option(
    "--predictions-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where each run keeps its predictions (resumable) [default: OUT].",
)
@_cache_option
@_output_options("the summary")
def ablate(bench_dir, model, out_dir, rows, top_k, convention, limit, predictions_dir, cache_dir, as_json, progress):
    """Re-run the paper's Table 3 and Table 7 ablations on the synthetic benchmark."""
    from salova.eval.ablate import AblationConfig, ablation_markdown, run_ablation
    from salova.eval.adapters import assistant_eval_model

    config = AblationConfig(
        groups=tuple(r.strip() for r in rows.split(",") if r.strip()), top_k=top_k, convention=convention, limit=limit
    )
    eval_model = assistant_eval_model(model, cache_dir=cache_dir)
    summary = run_ablation(
        eval_model,
        bench_dir,
        out_dir,
        config,
        predictions_dir=predictions_dir,
        progress=_bar(show_progress(progress), "ablate"),
    )
    if as_json:
        echo_json(summary)
    else:
        click.echo(ablation_markdown(summary), nl=False)
        click.echo(f"\nwritten to {Path(out_dir) / 'ablation.md'}")
