"""Reports: Wilson intervals, per-category accuracy, conventions, retrieval metrics, Markdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from salova.eval import EvalDoc, Scored, build_report, get_task, report_markdown, wilson_interval
from salova.eval.report import evidence_segments, retrieval_hits
from salova.eval.tasks.mlvu import mlvu_m_avg


def test_wilson_interval_matches_known_values():
    # 81 of 263 at 95 %: the classic textbook example (0.2553, 0.3662).
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson_interval(0, 10)[0] == 0.0 and round(wilson_interval(0, 10)[1], 4) == 0.2775
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0) and round(wilson_interval(10, 10)[0], 4) == 0.7225
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _doc(qid: str, duration: str, task_type: str, answer: str = "A", evidence=()) -> EvalDoc:
    return EvalDoc(
        question_id=qid,
        video_id=qid.split("-")[0],
        video=Path("x.mp4"),
        question="q",
        prompt="p",
        answer=answer,
        choices="ABCD",
        categories={"duration": duration, "domain": "d", "sub_category": "s", "task_type": task_type},
        evidence=evidence,
    )


def test_report_counts_per_bucket_and_category_under_both_conventions():
    spec = get_task("videomme")
    docs = [
        _doc("1-1", "short", "OCR Problems"),
        _doc("1-2", "short", "Counting Problem"),
        _doc("2-1", "medium", "OCR Problems"),
        _doc("3-1", "long", "OCR Problems"),
    ]
    responses = ["A", "The answer is B", "I cannot tell from the video frames that were shown here to me.", "a"]
    results = [(d, spec.score(d, r, "lmms-eval"), ()) for d, r in zip(docs, responses, strict=True)]
    report = build_report(spec, results, "lmms-eval")
    assert {b: (a.correct, a.counted) for b, a in report.buckets.items()} == {
        "short": (1, 2),
        "medium": (0, 1),
        "long": (0, 1),  # lower-case "a" is no letter for lmms-eval
    }
    assert (report.overall.correct, report.overall.counted, report.overall.accuracy) == (1, 4, 25.0)
    assert {k: (v.correct, v.counted) for k, v in report.categories["task_type"].items()} == {
        "Counting Problem": (0, 1),
        "OCR Problems": (1, 3),
    }
    official = [(d, spec.score(d, r, "videomme-official"), ()) for d, r in zip(docs, responses, strict=True)]
    report = build_report(spec, official, "videomme-official")
    # "I cannot tell..." holds the capital I only: unanswered, left out; "a": unanswered too.
    assert (report.overall.correct, report.overall.counted, report.overall.questions) == (1, 2, 4)
    assert report.buckets["long"].counted == 0 and report.buckets["long"].questions == 1
    assert any("left out of the accuracy" in note for note in report.notes)


def test_markdown_has_the_official_table_and_the_interval_named():
    spec = get_task("videomme")
    docs = [_doc(f"{i}-1", bucket, "OCR Problems") for i, bucket in enumerate(["short", "medium", "long", "long"])]
    results = [(d, Scored("A", i != 3), ()) for i, d in enumerate(docs)]
    text = report_markdown(build_report(spec, results, "lmms-eval", run={"model": "ckpt"}))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("|  |"))
    assert header == "|  | Short | Medium | Long | Overall |"
    row = lines[lines.index(header) + 2]
    assert row.startswith("| accuracy (%) | 100.0 [20.7, 100.0] | 100.0 [20.7, 100.0] | 50.0 [9.5, 90.5] | 75.0 [")
    assert "95% Wilson score interval" in text and "model: ckpt" in text
    assert "## By task_type" in text and "## By duration" not in text


def test_retrieval_uses_the_segment_that_overlaps_the_evidence_most():
    segments = [(0.0, 10.0, 0.1), (10.0, 20.0, 0.9), (20.0, 30.0, 0.5), (30.0, 40.0, 0.2)]
    assert evidence_segments([(18.0, 25.0)], segments) == {2}  # 5 s in segment 2, 2 s in segment 1
    assert retrieval_hits([(18.0, 25.0)], segments) == (False, 1.0)
    assert retrieval_hits([(11.0, 19.0)], segments) == (True, 1.0)
    assert retrieval_hits([(1.0, 9.0), (31.0, 39.0)], segments, k=2) == (False, 0.0)
    assert retrieval_hits([(1.0, 9.0), (21.0, 29.0)], segments, k=2) == (False, 0.5)
    assert retrieval_hits([(1.0, 9.0)], [(0.0, 10.0, None)]) is None  # nothing was routed
    assert retrieval_hits([], segments) is None


def test_report_adds_retrieval_when_questions_carry_evidence():
    spec = get_task("videomme")
    segments = ((0.0, 10.0, 0.9), (10.0, 20.0, 0.1))
    docs = [
        _doc("1-1", "short", "OCR Problems", evidence=((1.0, 9.0),)),
        _doc("2-1", "long", "OCR Problems", evidence=((11.0, 19.0),)),
    ]
    report = build_report(spec, [(d, Scored("A", True), segments) for d in docs], "lmms-eval")
    assert (report.retrieval.top1.correct, report.retrieval.top1.counted) == (1, 2)
    assert report.retrieval.recall_at_k == 1.0
    assert report.retrieval_buckets["short"].top1.correct == 1 and report.retrieval_buckets["long"].top1.correct == 0
    assert "router top-1 (%)" in report_markdown(report)
    assert report.to_dict()["retrieval"]["top1"]["accuracy"] == 50.0


def test_mlvu_headline_is_lmms_evals_mean_over_the_seven_task_types():
    docs = [
        EvalDoc("a", "v", Path("v"), "q", "p", "A", "ABCD", {"task_type": "plotQA"}),
        EvalDoc("b", "v", Path("v"), "q", "p", "A", "ABCD", {"task_type": "plotQA"}),
        EvalDoc("c", "v", Path("v"), "q", "p", "A", "ABCD", {"task_type": "needle"}),
    ]
    pairs = [(docs[0], Scored("A", True)), (docs[1], Scored("B", False)), (docs[2], Scored("A", True))]
    # plotQA 50 %, needle 100 %, the five absent types 0 % -> 150 / 7.
    assert mlvu_m_avg(pairs) == pytest.approx(150 / 7)
    report = build_report(get_task("mlvu"), [(d, s, ()) for d, s in pairs], "lmms-eval")
    assert report.headline == pytest.approx(150 / 7) and report.overall.accuracy == pytest.approx(200 / 3)
    assert "lmms-eval score: 21.43" in report_markdown(report)
