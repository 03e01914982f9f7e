"""The synthetic benchmark: held-out seeds, Video-MME's format, buckets, evidence carried along."""

from __future__ import annotations

import json

import pytest

from salova.errors import ConfigError, CorpusError, CorpusMismatchError
from salova.eval import LoadOptions, load_docs
from salova.eval.synth_bench import (
    BUCKETS,
    HELD_OUT_SEED_MIN,
    SynthBenchConfig,
    bucket_seed,
    build_synth_bench,
    is_held_out_seed,
    videomme_rows,
)
from salova.eval.tasks.videomme import VIDEOMME_BUCKETS
from salova.synth import generate_video
from salova.synth.schema import SynthVideo

VIDEOMME_TASK_TYPES = {
    "Temporal Perception",
    "Spatial Perception",
    "Attribute Perception",
    "Action Recognition",
    "Object Recognition",
    "OCR Problems",
    "Counting Problem",
    "Temporal Reasoning",
    "Spatial Reasoning",
    "Action Reasoning",
    "Object Reasoning",
    "Information Synopsis",
}
"""Video-MME's task types (its eval_your_results.py and lmms-eval's aggregation accept only these)."""


def test_seeds_are_held_out_and_distinct_per_bucket():
    seeds = [bucket_seed(seed, bucket) for seed in range(4) for bucket in range(len(BUCKETS))]
    assert len(set(seeds)) == len(seeds) and min(seeds) == HELD_OUT_SEED_MIN
    assert all(is_held_out_seed(s) for s in seeds) and not is_held_out_seed(HELD_OUT_SEED_MIN - 1)


def test_default_buckets_have_video_mme_lengths_and_enough_segments():
    config = SynthBenchConfig()
    lengths = []
    for bucket in range(len(BUCKETS)):
        video = generate_video(config.corpus_config(bucket), 0)  # content only, nothing is rendered
        lengths.append(video.duration_sec / 60)
        assert len(video.scenes) >= 20, (BUCKETS[bucket], len(video.scenes))
        assert len(video.questions) == config.questions_per_video
    short, medium, long = lengths
    assert short <= 2 and 4 <= medium <= 15 and long >= 30  # Video-MME's bucket ranges


def test_a_quieter_world_reaches_every_bucket():
    config = SynthBenchConfig(max_objects=1, text_probability=0.0, minutes=(1.0, 1.0, 1.0))
    for bucket in range(len(BUCKETS)):
        video = generate_video(config.corpus_config(bucket), 0)
        assert all(len(scene.objects) == 1 and scene.text is None for scene in video.scenes)


def test_the_benchmark_is_video_mme_format_with_evidence(synth_bench):
    rows = json.loads((synth_bench / "videomme.json").read_text())
    assert {row["duration"] for row in rows} == set(VIDEOMME_BUCKETS)
    assert len(rows) == 12 and len({row["videoID"] for row in rows}) == 3
    expected_keys = {"video_id", "duration", "domain", "sub_category", "url", "videoID", "question_id"}
    expected_keys |= {"task_type", "question", "options", "answer", "synth_type", "evidence_scenes", "evidence_seconds"}
    assert all(set(row) == expected_keys for row in rows)
    assert all(row["task_type"] in VIDEOMME_TASK_TYPES for row in rows)
    assert all([o[:3] for o in row["options"]] == ["A. ", "B. ", "C. ", "D. "] for row in rows)
    manifest = json.loads((synth_bench / "manifest.json").read_text())
    assert manifest["complete"] and manifest["held_out_seed_min"] == HELD_OUT_SEED_MIN
    for row in rows:
        sidecar = SynthVideo.from_dict(json.loads((synth_bench / "data" / f"{row['videoID']}.json").read_text()))
        assert sidecar.seed >= HELD_OUT_SEED_MIN
        question = next(q for q in sidecar.questions if q.question == row["question"])
        assert row["answer"] == question.answer and row["evidence_scenes"] == list(question.evidence_scenes)
        spans = [[sidecar.scenes[i].start_sec, sidecar.scenes[i].end_sec] for i in question.evidence_scenes]
        assert row["evidence_seconds"] == spans


def test_the_videomme_loader_reads_it_with_evidence(synth_bench):
    docs = load_docs("videomme", synth_bench / "videomme.json", LoadOptions(videos=synth_bench / "data"))
    assert len(docs) == 12 and all(doc.video.is_file() for doc in docs)
    assert all(doc.evidence and doc.evidence[0][1] > doc.evidence[0][0] for doc in docs)
    assert [doc.categories["duration"] for doc in docs[::4]] == ["short", "medium", "long"]


def test_a_rebuild_keeps_the_videos_and_other_settings_are_refused(synth_bench, tmp_path):
    config = SynthBenchConfig(seed=3, videos_per_bucket=1, questions_per_video=4, minutes=(1 / 3, 0.5, 2 / 3))
    video = next((synth_bench / "data").glob("*.mp4"))
    before = video.stat().st_mtime_ns
    rows = build_synth_bench(synth_bench, config, progress=False)
    assert video.stat().st_mtime_ns == before
    assert rows == json.loads((synth_bench / "videomme.json").read_text())
    with pytest.raises(CorpusMismatchError, match="built with other settings"):
        build_synth_bench(synth_bench, SynthBenchConfig(seed=4, videos_per_bucket=1, minutes=(0.25, 0.5, 0.75)))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CorpusError, match="is not empty"):
        build_synth_bench(tmp_path, config)


@pytest.mark.parametrize("fields", [{"minutes": (1.0, 2.0)}, {"videos_per_bucket": 0}, {"seed": -1}])
def test_invalid_settings_are_config_errors(fields):
    with pytest.raises(ConfigError):
        SynthBenchConfig(**fields)


def test_training_prompt_of_a_question_is_the_evaluation_prompt():
    """build-data's QA turns read exactly what `salova eval videomme` asks a model."""
    from salova.data.pipeline import prompt_question, question_prompt
    from salova.eval.tasks.videomme import videomme_doc_to_text
    from salova.synth import SynthConfig

    video = generate_video(SynthConfig(seed=3, minutes=2.0, questions_per_video=5), 0)
    rows = videomme_rows(video, "short", 1)
    assert len(rows) == len(video.questions) > 0
    for question, row in zip(video.questions, rows, strict=True):
        assert question_prompt(question) == videomme_doc_to_text(row)
        # ...and the router's training query is the question the evaluation routes with.
        assert prompt_question(question_prompt(question)) == row["question"]
    assert prompt_question("Describe the video.") == "Describe the video."
