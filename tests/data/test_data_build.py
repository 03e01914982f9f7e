"""The data build on a synthetic corpus: true scenes supervised, real model scores, resumable
and safe output folders, failures recorded without stopping the build."""

from __future__ import annotations

import fcntl
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import CLIPModel, CLIPProcessor

from salova.data import build_dataset, read_records
from salova.data.build import MANIFEST_NAME
from salova.data.scoring import bundled_t2t_path
from salova.data.sources import discover_videos, result_file_name, video_id
from salova.errors import BuildMismatchError, BuildOutputError, ModelFolderError, PathError
from salova.video import segment_video


def true_scene(sidecar, start, end) -> int:
    overlaps = [min(end, s.end_sec) - max(start, s.start_sec) for s in sidecar.scenes]
    return overlaps.index(max(overlaps))


def test_every_caption_marks_its_true_scene_positive(reference_build, synth_corpus):
    records = read_records(reference_build / "captions.jsonl")
    assert [r.id for r in records] == [v.id for v in synth_corpus.videos]
    duplicates_seen = 0
    for record, sidecar in zip(records, synth_corpus.videos, strict=True):
        truth = [true_scene(sidecar, s.start_sec, s.end_sec) for s in record.scenes]
        assert len(set(truth)) == len(sidecar.scenes)  # the ingest found every cut
        for q, caption in enumerate(record.queries):
            assert caption == sidecar.scenes[truth[q]].caption
            # Every segment showing a scene with this very caption is positive, the true one first.
            same = [s for s, scene in enumerate(truth) if sidecar.scenes[scene].caption == caption]
            assert q in same and set(same) <= set(record.positives(q))
            duplicates_seen += len(same) > 1
        assert record.provenance.captioner == "synthetic" and record.provenance.label_rule == "scores"
    assert duplicates_seen >= 2  # near-duplicate scenes with one caption link both ways


def test_scores_are_the_models_own_outputs(reference_build, videos_dir, build_config, tiny_clip):
    record = read_records(reference_build / "captions.jsonl")[1]
    minilm = SentenceTransformer(str(bundled_t2t_path()), device="cpu")
    embeddings = minilm.encode(list(record.queries), normalize_embeddings=True)
    np.testing.assert_allclose(np.array(record.sen_sim), embeddings @ embeddings.T, atol=2e-6)
    assert len({round(v, 3) for row in record.sen_sim for v in row}) > record.num_segments  # not a constant

    # V2T: the tiny CLIP on 8 evenly spread 1 FPS frames per segment, averaged.
    segments = segment_video(videos_dir / f"{record.id}.mp4", build_config.ingest).segments
    model, processor = CLIPModel.from_pretrained(tiny_clip).eval(), CLIPProcessor.from_pretrained(tiny_clip)
    with torch.no_grad():
        text = processor(text=list(record.queries), padding=True, truncation=True, max_length=64, return_tensors="pt")
        text = torch.nn.functional.normalize(model.get_text_features(**text).pooler_output, dim=-1)
        videos = []
        for segment in segments:
            picked = np.unique(np.linspace(0, len(segment.frames) - 1, 8).round().astype(int))
            image = processor(images=list(segment.frames[picked]), return_tensors="pt")
            image = torch.nn.functional.normalize(model.get_image_features(**image).pooler_output, dim=-1)
            videos.append(image.mean(0))
        expected = text @ torch.nn.functional.normalize(torch.stack(videos), dim=-1).T
    np.testing.assert_allclose(np.array(record.lb_sim), expected.numpy(), atol=2e-6)
    assert record.provenance.v2t_model == str(tiny_clip.resolve())


def test_question_records_take_evidence_and_scores(reference_build, synth_corpus):
    records = read_records(reference_build / "qa.jsonl")
    for record, sidecar in zip(records, synth_corpus.videos, strict=True):
        truth = [true_scene(sidecar, s.start_sec, s.end_sec) for s in record.scenes]
        assert record.answers() == [q.answer for q in sidecar.questions]
        for q, question in enumerate(sidecar.questions):
            assert f"\n{question.question}\nA. {question.options['A']}\n" in record.prompts()[q]
            assert record.queries[q] == f"{question.question} {question.answer_text}"
            evidence = [s for s, scene in enumerate(truth) if scene in question.evidence_scenes]
            assert list(record.evidence[q]) == evidence
            positives = record.positives(q)
            assert positives and set(positives) <= set(evidence)  # rule evidence_and_scores


def test_rerun_skips_finished_videos_and_changes_nothing(tmp_path, reference_build, videos_dir, build_config):
    out = shutil.copytree(reference_build, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    summary = build_dataset(videos_dir, out, build_config)
    assert (summary.built, summary.skipped, summary.failed) == (0, 4, {})
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["complete"] and [v["status"] for v in manifest["videos"]] == ["built"] * 4


def test_a_failing_video_is_recorded_and_retried(tmp_path, corpus_copy, build_config, reference_build):
    (corpus_copy / "broken.mp4").write_bytes(b"this is not a video")
    inputs = sorted(p.name for p in corpus_copy.iterdir())
    out = tmp_path / "out"
    summary = build_dataset(corpus_copy, out, build_config)
    assert summary.built == 4 and list(summary.failed) == ["broken"]
    assert summary.failed["broken"].startswith("VideoDecodeError: ")
    error = json.loads((out / "errors" / "broken.json").read_text())
    assert error["video"] == "broken.mp4" and "Traceback" in error["traceback"]
    assert (out / "captions.jsonl").read_bytes() == (reference_build / "captions.jsonl").read_bytes()
    assert json.loads((out / MANIFEST_NAME).read_text())["complete"] is False
    assert sorted(p.name for p in corpus_copy.iterdir()) == inputs  # nothing written beside the videos

    # Mend the video (a copy of a real one, with its sidecar): the re-run builds only it.
    for suffix in (".mp4", ".json"):
        shutil.copy(corpus_copy / f"synth-11-00000{suffix}", corpus_copy / f"broken{suffix}")
    summary = build_dataset(corpus_copy, out, build_config)
    assert (summary.built, summary.skipped, summary.failed) == (1, 4, {})
    assert not (out / "errors" / "broken.json").exists()
    assert [r.id for r in read_records(out / "captions.jsonl")] == ["broken", *(f"synth-11-0000{i}" for i in range(4))]


def test_damaged_results_and_stale_parts_are_rebuilt(tmp_path, reference_build, videos_dir, build_config):
    out = shutil.copytree(reference_build, tmp_path / "out")
    target = out / "records" / "synth-11-00002.json"
    good = target.read_bytes()
    target.write_bytes(good[: len(good) // 2])  # as if a disk lost the tail
    stale = out / "records" / ".synth-11-00001.json.4242.deadbeef.part"
    stale.write_text("{")
    summary = build_dataset(videos_dir, out, build_config)
    assert (summary.built, summary.skipped) == (1, 3)
    assert target.read_bytes() == good and not stale.exists()


def test_other_settings_or_foreign_folders_are_refused(
    tmp_path, reference_build, videos_dir, build_config, corpus_copy
):
    out = shutil.copytree(reference_build, tmp_path / "out")
    changed = replace(build_config, seed=1, scoring=replace(build_config.scoring, t2t_threshold=0.7))
    with pytest.raises(BuildMismatchError, match=r"differs in \['scoring.t2t_threshold', 'seed'\]"):
        build_dataset(videos_dir, out, changed)
    with pytest.raises(BuildMismatchError, match="videos folder"):
        build_dataset(corpus_copy, out, build_config)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BuildOutputError, match="is not empty and holds no data build"):
        build_dataset(videos_dir, foreign, build_config)
    missing = replace(build_config, scoring=replace(build_config.scoring, v2t_model="/no/clip"))
    with pytest.raises(ModelFolderError, match="no such V2T model folder"):
        build_dataset(videos_dir, tmp_path / "new", missing)


def test_one_build_per_folder_at_a_time(tmp_path, videos_dir, build_config):
    out = tmp_path / "out"
    out.mkdir()
    with (out / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(BuildOutputError, match="another build is writing to this folder"):
            build_dataset(videos_dir, out, build_config)


def test_video_ids_are_relative_paths(tmp_path, synth_corpus):
    source = synth_corpus.video_path(synth_corpus.videos[0])
    (tmp_path / "day 1").mkdir()
    shutil.copy(source, tmp_path / "day 1" / "a.mp4")
    shutil.copy(source, tmp_path / "b.MKV")
    (tmp_path / ".hidden.mp4").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    videos = discover_videos(tmp_path)
    assert [(v.id, v.relative) for v in videos] == [("b", "b.MKV"), ("day 1/a", "day 1/a.mp4")]
    assert result_file_name("day 1/a") == "day%201%2Fa.json" and video_id("x/y.z.mp4") == "x/y.z"
    shutil.copy(source, tmp_path / "b.mp4")
    with pytest.raises(PathError, match="'b.MKV' and 'b.mp4' would share the id 'b'"):
        discover_videos(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PathError, match="holds no video files"):
        discover_videos(tmp_path / "empty")
