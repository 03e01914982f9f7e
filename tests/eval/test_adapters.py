"""Evaluation models over the assistant: index once, route with the question, the ablation variants."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest

from salova.errors import ConfigError, EvalError
from salova.eval import LoadOptions, load_docs
from salova.eval.adapters import (
    AssistantEvalModel,
    ModelVariant,
    VariantEvalModel,
    assistant_eval_model,
    load_checkpoint,
)
from salova.model.choices import parse_options


@pytest.fixture
def bench_docs(synth_bench):
    return load_docs("videomme", synth_bench / "videomme.json", LoadOptions(videos=synth_bench / "data"))


@pytest.fixture
def tiny_eval(tiny_checkpoint, tmp_path) -> AssistantEvalModel:
    return assistant_eval_model(tiny_checkpoint, cache_dir=tmp_path / "cache")


def test_each_video_is_indexed_once_through_the_assistant_cache(tiny_eval, bench_docs, tmp_path, monkeypatch):
    built = []
    import salova.infer.assistant as assistant_module

    original = assistant_module.build_index
    monkeypatch.setattr(
        assistant_module, "build_index", lambda path, *a, **k: built.append(path.name) or original(path, *a, **k)
    )
    for doc in bench_docs:
        tiny_eval.answer(doc.video, doc.prompt, query=doc.question)
    assert sorted(built) == sorted({doc.video.name for doc in bench_docs})
    entries = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len(entries) == 3
    # A new process (a new assistant) finds the cache: nothing is decoded again.
    fresh = assistant_eval_model(tiny_eval.source, cache_dir=tmp_path / "cache")
    fresh.answer(bench_docs[0].video, bench_docs[0].prompt, query=bench_docs[0].question)
    assert len(built) == 3


def test_the_router_reads_the_question_and_the_llm_the_prompt(tiny_eval, bench_docs, monkeypatch):
    processor = tiny_eval.assistant.pipeline.processor
    queries, conversations = [], []
    tokenize_queries, tokenize_conversation = processor.tokenize_queries, processor.tokenize_conversation
    monkeypatch.setattr(processor, "tokenize_queries", lambda q: queries.append(q) or tokenize_queries(q))
    monkeypatch.setattr(
        processor, "tokenize_conversation", lambda c: conversations.append(c) or tokenize_conversation(c)
    )
    doc = bench_docs[0]
    response = tiny_eval.answer(doc.video, doc.prompt, query=doc.question)
    assert queries == [[[doc.question]]]
    assert conversations[0][-1] == {"role": "user", "content": doc.prompt}
    # The short video has four segments: all of them fit the assistant's K = 5.
    assert len(response.segments) == 4 and all(s.selected for s in response.segments)
    assert all(s.score is not None for s in response.segments)


def test_uniform_frames_are_one_segment_without_routing(tiny_checkpoint, bench_docs):
    model, processor = load_checkpoint(tiny_checkpoint)
    doc = bench_docs[-1]  # the 40 s video
    uniform = VariantEvalModel(model, processor, ModelVariant("8frm", "uniform", 8, routing=False))
    response = uniform.answer(doc.video, doc.prompt, query=doc.question)
    (segment,) = response.segments
    assert segment.selected and segment.score is None
    assert len(segment.frame_times) == 8
    assert segment.frame_times[0] == 0.0 and segment.frame_times[-1] >= 40 * 7 / 8 - 0.2
    assert segment.end == pytest.approx(40.0, abs=0.2)


def test_routing_off_reads_every_segment_and_pathways_reach_the_model(tiny_eval, bench_docs, monkeypatch):
    doc = bench_docs[-1]
    everything = tiny_eval.with_variant(ModelVariant("1fps-norouter", routing=False))
    response = everything.answer(doc.video, doc.prompt, query=doc.question)
    assert all(s.selected and s.score is None for s in response.segments)
    model = tiny_eval.assistant.pipeline.model
    seen = []
    generate = model.generate
    monkeypatch.setattr(
        model, "generate", lambda *a, **k: seen.append((k["pathways"], k["top_k"])) or generate(*a, **k)
    )
    tiny_eval.with_variant(ModelVariant("focus", pathways=("focus",), top_k=2)).answer(doc.video, doc.prompt, query="q")
    tiny_eval.answer(doc.video, doc.prompt, query="q")
    assert seen == [(["focus"], 2), (None, tiny_eval.assistant.config.top_k)]


def test_text_pipelines_run_only_the_default_variant():
    fake = SimpleNamespace(pipeline=SimpleNamespace(name="text-rag", describe=lambda: "text-rag"), config=None)
    model = AssistantEvalModel(fake, ModelVariant(top_k=3))
    with pytest.raises(ConfigError, match="runs only SALOVA's default variant"):
        AssistantEvalModel(fake, ModelVariant("focus", pathways=("focus",)))
    with pytest.raises(ConfigError, match="the text-rag pipeline runs only"):
        model.with_variant(ModelVariant("16frm", "uniform", 16, routing=False))


def test_evidence_focus_reads_the_evidence_the_router_ranks_last(tiny_eval, bench_docs):
    doc = bench_docs[-1]  # the 40 s video: more segments than K = 1
    routed = tiny_eval.with_variant(ModelVariant("k1", top_k=1)).answer(doc.video, doc.prompt, query=doc.question)
    assert len(routed.segments) > 1
    last = min(routed.segments, key=lambda s: s.score)
    assert not last.selected
    oracle = tiny_eval.with_variant(ModelVariant("evidence", top_k=1, focus="evidence"))
    response = oracle.answer(doc.video, doc.prompt, query=doc.question, evidence=[(last.start, last.end)])
    assert [(s.start, s.end) for s in response.segments if s.selected] == [(last.start, last.end)]
    assert [s.score for s in response.segments] == [s.score for s in routed.segments]  # the router still scores
    with pytest.raises(EvalError, match="focus 'evidence' needs the question's evidence spans"):
        oracle.answer(doc.video, doc.prompt, query=doc.question, evidence=[])
    assert "focus" not in ModelVariant().to_dict() and oracle.variant.to_dict()["focus"] == "evidence"
    assert not oracle.variant.is_default


def test_a_checkpoint_taught_the_options_replies_with_the_likeliest_options_letter(
    tiny_checkpoint, bench_docs, tmp_path, monkeypatch
):
    folder = tmp_path / "options"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "choice_answer": "option"}))
    model, processor = load_checkpoint(folder)
    asked, scored = [], []
    tokenize_answers, score_answers = processor.tokenize_answers, model.score_answers
    monkeypatch.setattr(processor, "tokenize_answers", lambda q, a: asked.append((q, a)) or tokenize_answers(q, a))
    monkeypatch.setattr(model, "score_answers", lambda *a, **k: scored.append(score_answers(*a, **k)) or scored[-1])
    generated = []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda *a, **k: generated.append(1) or generate(*a, **k))
    doc = bench_docs[-1]
    evaluator = VariantEvalModel(model, processor, ModelVariant(top_k=1))
    response = evaluator.answer(doc.video, doc.prompt, query=doc.question)
    options = parse_options(doc.prompt)
    assert asked == [(doc.question, list(options.values()))] and not generated
    (likelihoods,) = [out.log_likelihoods for out in scored]
    assert response.text == "ABCD"[int(likelihoods.argmax())] and len(set(likelihoods.tolist())) == 4
    assert sum(s.selected for s in response.segments) == 1 and all(s.score is not None for s in response.segments)
    VariantEvalModel(model, processor).answer(doc.video, "Describe the video.", max_new_tokens=2)
    assert generated == [1]  # a prompt without options is answered by generation


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sampling": "uniform", "routing": False}, "needs num_frames"),
        ({"sampling": "uniform", "num_frames": 8}, "nothing to route"),
        ({"num_frames": 8}, "uniform sampling only"),
        ({"pathways": ("slow",)}, "pathways must be"),
        ({"sampling": "dense"}, "sampling must be one of"),
        ({"top_k": 0}, "top_k must be >= 1"),
        ({"focus": "caption"}, "focus must be one of"),
        ({"focus": "evidence", "routing": False}, "needs scene sampling and routing"),
    ],
)
def test_invalid_variants_are_config_errors(fields, message):
    with pytest.raises(ConfigError, match=message):
        ModelVariant(**fields)
