"""SEAL's experiments: distinct relevant scenes covered on videos with repeated scenes, the
accuracy runs side by side, the streaming replay, and the command that writes them."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from salova.eval.adapters import ModelVariant, assistant_eval_model
from salova.eval.seal_coverage import measure_coverage, object_queries, scene_groups, segment_groups
from salova.eval.seal_eval import SealEvalConfig, StreamReplayEvalModel
from salova.infer.stream import StreamConfig
from salova.model.selection import SelectorConfig
from salova.synth import SynthConfig, write_corpus

REPEATS = SynthConfig(
    seed=1_500_101, num_videos=4, minutes=6.0, fps=4.0, width=160, height=120, questions_per_video=4,
    duplicate_probability=0.4,
)  # fmt: skip
"""Four 6-minute videos where about a third of the scenes repeat an earlier one (15 object queries)."""


@pytest.fixture(scope="module")
def repeats(tmp_path_factory):
    root = tmp_path_factory.mktemp("repeats")
    corpus = write_corpus(root / "corpus", REPEATS, progress=False)
    model = assistant_eval_model("tiny", variant=ModelVariant(top_k=3), cache_dir=root / "cache")
    return corpus, model


def test_object_queries_name_every_object_shown_in_several_scene_groups(repeats):
    corpus, _ = repeats
    video = corpus.videos[0]
    groups = scene_groups(video)
    assert all(groups[s.duplicate_of] == s.duplicate_of for s in video.scenes if s.duplicate_of is not None)
    for query in object_queries(video):
        colour_shape = query.text.removeprefix("Where does ").removesuffix(" appear?").split()[-2:]
        holders = {groups[s.index] for s in video.scenes if any([o.color, o.shape] == colour_shape for o in s.objects)}
        assert holders == set(query.relevant) and len(holders) >= 2


def test_seal_covers_more_distinct_relevant_scenes_than_topk(repeats):
    corpus, model = repeats
    assistant, pipeline = model.assistant, model.assistant.pipeline
    entries = []
    for video in corpus.videos:
        index = assistant.index(corpus.video_path(video))
        queries = object_queries(video)
        scores = [pipeline.scores(index, q.text).numpy() for q in queries]
        entries.append((video, index.spans, pipeline.features(index).float(), queries, scores))
        assert len(set(segment_groups(index.spans, video))) < index.num_segments  # repeats were decoded as such
    result = measure_coverage(entries, (2, 3, 4), SelectorConfig("seal"))
    assert result.queries >= 12 and result.queries_with_repeats >= 5
    for budget in (2, 3):
        seal, topk = result.at("oracle", "seal", budget), result.at("oracle", "topk", budget)
        assert seal["relevant"] > topk["relevant"], (budget, seal, topk)
        assert seal["relevant"] <= result.ceiling[result.budgets.index(budget)] + 1e-9
    # Under the (untrained) router too, SEAL's reads show more distinct scenes than top-K's.
    assert sum(result.curves["router"]["seal"].distinct) > sum(result.curves["router"]["topk"].distinct)


def test_streaming_replay_answers_from_a_bounded_memory(repeats):
    corpus, model = repeats
    video = corpus.videos[0]
    path = corpus.video_path(video)
    replay = StreamReplayEvalModel(model, StreamConfig(window=2, budget=3))
    index, kept = replay.memory(path, video.questions[0].question)
    assert len(kept) <= 5 < index.num_segments and kept == sorted(kept)
    assert kept[-2:] == [index.num_segments - 2, index.num_segments - 1]  # the window is the latest
    response = replay.answer(path, "Answer with A, B, C or D.", query=video.questions[0].question)
    assert [(s.start, s.end) for s in response.segments] == [index.spans[i] for i in kept]
    assert sum(s.selected for s in response.segments) == 3
    assert replay.describe()["stream"]["budget"] == 3


def test_the_seal_variant_is_recorded_only_when_set():
    assert "selector" not in ModelVariant().to_dict()  # results of runs before the option still resume
    variant = replace(ModelVariant(), selector=SelectorConfig("seal", alpha=0.8))
    assert variant.to_dict()["selector"]["alpha"] == 0.8


def test_seal_eval_command_writes_the_figure_and_reports(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "salova", "seal-eval", "--model", "tiny", "--out", str(out), "--work-dir",
         str(tmp_path / "work"), "--videos", "1", "--minutes", "3", "--limit", "4", "--threads", "1",
         "--cache-dir", str(tmp_path / "cache"), "--max-objects", "1", "--text-probability", "0"],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(report["accuracy"]) == {"topk", "seal", "stream"}
    assert all(row["questions"] == 4 for row in report["accuracy"].values())
    assert report["config"]["budgets"] == list(SealEvalConfig().budgets)
    scenes = [
        scene
        for sidecar in (tmp_path / "work").rglob("synth-*.json")
        for scene in json.loads(sidecar.read_text())["scenes"]
    ]
    assert scenes and all(len(scene["objects"]) == 1 and not scene["text"] for scene in scenes)  # the quiet world
    assert (out / "coverage.png").stat().st_size > 10_000
    markdown = (out / "report.md").read_text()
    assert "--selector seal" in markdown and "Streaming vs global gap" in markdown


def test_eval_command_runs_a_selector_and_a_streaming_memory(synth_bench, tmp_path, capsys):
    from salova.cli import main

    base = ["eval", "videomme", "--annotations", str(synth_bench / "videomme.json"), "--videos",
            str(synth_bench / "data"), "--model", "tiny", "--cache-dir", str(tmp_path / "cache"), "--no-progress",
            "--json"]  # fmt: skip
    runs = {}
    for name, extra in {"global": [], "seal": ["--selector", "seal"], "stream": ["--stream", "1", "1"]}.items():
        with pytest.raises(SystemExit) as exit_info:
            main([*base, *extra, "--out", str(tmp_path / name)])
        assert exit_info.value.code == 0
        runs[name] = json.loads(capsys.readouterr().out)
        header = json.loads((tmp_path / name / "predictions.jsonl").read_text().splitlines()[0])
        runs[name]["header"] = header["run"]
    assert "selector" not in runs["global"]["header"]["variant"]
    assert runs["seal"]["header"]["variant"]["selector"]["name"] == "seal"
    assert runs["stream"]["header"]["stream"] == {**runs["stream"]["header"]["stream"], "window": 1, "budget": 1}
    assert all(run["overall"]["questions"] == 12 for run in runs.values())
    # A memory of two segments cannot hold the evidence of every question: fewer can be measured.
    assert runs["stream"]["retrieval"]["questions"] < runs["global"]["retrieval"]["questions"]
