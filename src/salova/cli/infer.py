"""Assistant commands: ``salova index``, ``salova ask``, ``salova chat`` and ``salova demo``."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click

from salova.cli.common import clock, echo_json, show_progress

__all__ = [
    "index",
    "ask",
    "chat",
    "demo",
    "stack",
    "MODEL_OPTION",
    "AUX_TEXT_OPTION",
    "CACHE_DIR_OPTION",
    "THREADS_OPTION",
]

DEMO_SYNTH_SEED = 7
"""Seed of the demo's synthetic video."""
DEMO_MINUTES = 10.0
"""Length of the demo's synthetic video."""
DEMO_TEXT_PROBABILITY = 0.5
"""Share of the demo video's scenes that show a word (what the text pipeline can read)."""
CHAT_EXIT_WORDS = ("exit", "quit")


MODEL_OPTION = click.option(
    "--model",
    default=None,
    metavar="PATH|NAME",
    help="A SALOVA checkpoint folder, 'salova' (the shipped checkpoint), 'tiny' (random weights) or "
    "'text-rag' (training-free OCR pipeline). Default: text-rag.",
)
AUX_TEXT_OPTION = click.option(
    "--aux-text", is_flag=True, help="SALOVA: add on-screen text (OCR) of the selected segments to the prompt."
)
CACHE_DIR_OPTION = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache folder of video indexes [default: $SALOVA_CACHE_DIR or ~/.cache/salova].",
)
THREADS_OPTION = click.option(
    "--threads", type=click.IntRange(min=0), default=0, show_default=True, help="Torch threads (0: torch's choice)."
)
PROGRESS_OPTION = click.option(
    "--progress/--no-progress", default=None, help="Progress bars on stderr [default: when a terminal]."
)


def stack(*options):
    """One decorator applying click options in the order listed."""

    def apply(func):
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def _answer_options(func):
    from salova.infer import AssistantConfig
    from salova.model.selection import SEAL_ALPHA, SELECTORS

    return stack(
        click.option(
            "--top-k",
            type=click.IntRange(min=1),
            default=AssistantConfig.top_k,
            show_default=True,
            help="Segments read per answer.",
        ),
        click.option(
            "--max-new-tokens",
            type=click.IntRange(min=1),
            default=AssistantConfig.max_new_tokens,
            show_default=True,
            help="Longest answer in tokens.",
        ),
        click.option(
            "--selector",
            type=click.Choice(sorted(SELECTORS)),
            default="topk",
            show_default=True,
            help="How the segments read are chosen: topk (best scored) or seal (relevant and not redundant).",
        ),
        click.option(
            "--alpha",
            type=click.FloatRange(0.0, 1.0),
            default=SEAL_ALPHA,
            show_default=True,
            help="seal: weight of relevance against redundancy.",
        ),
    )(func)


_assistant_options = stack(MODEL_OPTION, AUX_TEXT_OPTION, CACHE_DIR_OPTION, THREADS_OPTION, PROGRESS_OPTION)


def _assistant(model, aux_text, cache_dir, threads, top_k=None, max_new_tokens=None, selector=None, alpha=None):
    import torch
    from transformers.utils import logging as transformers_logging

    from salova.infer import AssistantConfig, VideoAssistant
    from salova.model.selection import SEAL_ALPHA, SelectorConfig

    if threads:
        torch.set_num_threads(threads)
    transformers_logging.disable_progress_bar()
    fields = {"aux_text": aux_text, "cache_dir": cache_dir}
    fields.update({k: v for k, v in (("top_k", top_k), ("max_new_tokens", max_new_tokens)) if v is not None})
    if selector is not None:
        fields["selector"] = SelectorConfig(name=selector, alpha=SEAL_ALPHA if alpha is None else alpha)
    return VideoAssistant.from_model(model, AssistantConfig(**fields))


@contextmanager
def _progress_bar(video: Path, progress: bool | None):
    """A progress callback for :meth:`VideoAssistant.index` drawing a bar on stderr (or nothing)."""
    from tqdm.auto import tqdm

    with tqdm(total=None, unit="s", desc=video.name, disable=not show_progress(progress), leave=False) as bar:

        def update(event) -> None:
            if event.duration and bar.total is None:
                bar.total = round(event.duration)
            bar.set_postfix_str(event.stage, refresh=False)
            bar.update(round(event.seconds) - bar.n)

        yield update


def _index(assistant, video: Path, progress: bool | None):
    with _progress_bar(video, progress) as update:
        return assistant.index(video, progress=update)


def _print_answer(answer) -> None:
    click.echo(answer.text)
    click.echo(f"  [{answer.pipeline}] read {len(answer.segments)} segment(s):")
    for segment in answer.segments:
        click.echo(f"    {clock(segment.start)} - {clock(segment.end)}  score {segment.score:+.3f}")


def _question(value: str) -> str:
    if not value.strip():
        raise click.BadParameter("the question is empty", param_hint="'QUESTION'")
    return value


@click.command()
@click.argument("video", type=click.Path(path_type=Path, readable=False))
@_assistant_options
@click.option("--json", "as_json", is_flag=True, help="Print the index summary as JSON.")
def index(video, model, aux_text, cache_dir, threads, progress, as_json):
    """Index VIDEO once (segments, frames, features) into the cache."""
    assistant = _assistant(model, aux_text, cache_dir, threads)
    result = _index(assistant, video, progress)
    summary = {
        "video": str(result.video),
        "sha256": result.sha256,
        "pipeline": result.pipeline,
        "from_cache": result.from_cache,
        "seconds": round(result.build_seconds, 3),
        "segments": result.segments_json(),
    }
    if as_json:
        echo_json(summary)
        return
    source = "loaded from the cache" if result.from_cache else "indexed"
    click.echo(f"{result.video.name}: {result.num_segments} segments, {clock(result.duration)}; ", nl=False)
    click.echo(f"{source} in {result.build_seconds:.2f} s")
    click.echo(f"  [{result.pipeline}] {assistant.pipeline.describe()}")


def _stream_options(func):
    from salova.infer.stream import StreamConfig

    return stack(
        click.option(
            "--stream",
            is_flag=True,
            help="VIDEO is live: '-' (standard input), a URL, or a file still being written (MPEG-TS, "
            "Matroska or fragmented MP4); answer from a bounded memory of what has played.",
        ),
        click.option(
            "--at",
            type=click.FloatRange(min=0),
            multiple=True,
            metavar="SECONDS",
            help="With --stream: answer once the stream has played this far (repeatable), stop after the "
            "last. Default: answer when the stream ends.",
        ),
        click.option(
            "--window",
            type=click.IntRange(min=1),
            default=None,
            help=f"With --stream: latest segments always kept [default: {StreamConfig.window}].",
        ),
        click.option(
            "--budget",
            type=click.IntRange(min=1),
            default=None,
            help=f"With --stream: older segments kept, chosen by SEAL [default: {StreamConfig.budget}].",
        ),
    )(func)


@click.command()
@click.argument("video", type=click.Path(readable=False))
@click.argument("question")
@_assistant_options
@_answer_options
@_stream_options
@click.option("--json", "as_json", is_flag=True, help="Print {answer, pipeline, segments, timings} as JSON.")
def ask(
    video,
    question,
    model,
    aux_text,
    cache_dir,
    threads,
    progress,
    top_k,
    max_new_tokens,
    selector,
    alpha,
    stream,
    at,
    window,
    budget,
    as_json,
):
    """Answer QUESTION about VIDEO (indexed first if needed), or about a live stream with --stream."""
    question = _question(question)
    if not stream and (at or window is not None or budget is not None):
        raise click.UsageError("--at, --window and --budget apply to --stream only")
    assistant = _assistant(model, aux_text, cache_dir, threads, top_k, max_new_tokens, selector, alpha)
    if stream:
        _ask_stream(assistant, video, question, at, window, budget, as_json)
        return
    with _progress_bar(Path(video), progress) as update:
        answer = assistant.ask(question, video=Path(video), progress=update)
    if as_json:
        echo_json(answer.to_dict())
    else:
        _print_answer(answer)


def _ask_stream(assistant, source: str, question: str, at, window, budget, as_json: bool) -> None:
    """Answer while the stream plays (the question is also the memory's standing query)."""
    import json

    from salova.infer.stream import StreamConfig, StreamSession

    sizes = {k: v for k, v in (("window", window), ("budget", budget)) if v is not None}
    session = StreamSession(assistant, StreamConfig(**sizes), queries=[question])
    for answer in session.answers(source, question, at):
        if as_json:
            click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
            continue
        click.echo(f"[{clock(answer.seen_until)} seen, {answer.segments_seen} segments] ", nl=False)
        _print_answer(answer)


@click.command()
@click.argument("video", type=click.Path(path_type=Path, readable=False))
@_assistant_options
@_answer_options
def chat(video, model, aux_text, cache_dir, threads, progress, top_k, max_new_tokens, selector, alpha):
    """Talk about VIDEO: one question per line on stdin; an empty line, 'exit' or end of input stops."""
    assistant = _assistant(model, aux_text, cache_dir, threads, top_k, max_new_tokens, selector, alpha)
    session = assistant.chat(_index(assistant, video, progress))
    interactive = sys.stdin.isatty()
    click.echo(f"{video.name}: {session.index.num_segments} segments, {assistant.pipeline.describe()}", err=interactive)
    while True:
        line = (
            click.prompt("you", default="", show_default=False, prompt_suffix="> ")
            if interactive
            else sys.stdin.readline()
        )
        question = line.strip()
        if not question or question.lower() in CHAT_EXIT_WORDS:
            return
        _print_answer(session.ask(question))


@click.command()
@MODEL_OPTION
@CACHE_DIR_OPTION
@click.option(
    "--minutes",
    type=click.FloatRange(min=1),
    default=DEMO_MINUTES,
    show_default=True,
    help="Length of the synthetic video.",
)
@THREADS_OPTION
@PROGRESS_OPTION
def demo(model, cache_dir, minutes, threads, progress):
    """Cut the sample clip bikes.mp4 into segments; then make a synthetic long video (once, cached),
    ask it two questions, show answers and time ranges."""
    from salova.cli.video import print_segments
    from salova.infer import default_cache_dir
    from salova.synth import SynthConfig, write_corpus
    from salova.video import sample_video_path, segment_video

    click.echo("Segmenting the real sample clip bikes.mp4 (default segment rules):")
    print_segments(segment_video(sample_video_path("bikes")))
    click.echo("")
    root = (cache_dir or default_cache_dir()) / "demo"
    synth = SynthConfig(seed=DEMO_SYNTH_SEED, minutes=minutes, text_probability=DEMO_TEXT_PROBABILITY)
    corpus = write_corpus(root / f"synth-{DEMO_SYNTH_SEED}-{minutes:g}min", synth, progress=show_progress(progress))
    video = corpus.videos[0]
    worded = [scene for scene in video.scenes if scene.text]
    scenes = [worded[len(worded) // 3], worded[-1]]
    questions = [
        f'When is the word "{scenes[0].text}" shown on screen?',
        f'In which part of the video does the word "{scenes[1].text}" appear?',
    ]
    assistant = _assistant(model, False, cache_dir, threads)
    click.echo(f"video: {corpus.video_path(video)} ({clock(video.duration_sec)}, {len(video.scenes)} scenes)")
    click.echo(f"model: {assistant.pipeline.describe()}")
    result = _index(assistant, corpus.video_path(video), progress)
    made = "loaded from the cache" if result.from_cache else "built"
    click.echo(f"index: {result.num_segments} segments, {made} in {result.build_seconds:.2f} s")
    for question, scene in zip(questions, scenes, strict=True):
        click.echo(f"\nQ: {question}")
        answer = assistant.ask(question)
        click.echo("A: ", nl=False)
        _print_answer(answer)
        truth = f"{clock(scene.start_sec)} - {clock(scene.end_sec)}"
        click.echo(f"  (the word is on screen {truth}; answered in {answer.timings['total']:.2f} s)")
