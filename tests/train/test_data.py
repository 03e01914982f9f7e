"""Training data: the frame cache, segments cut by time, samples of records and the batch order."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from salova.data.pipeline import prompt_question
from salova.errors import ConfigError
from salova.train.config import DataConfig, config_from_dict
from salova.train.data import (
    BatchPlan,
    FrameCache,
    RecordDataset,
    VideoFrames,
    frame_cache_for,
    load_record_source,
    micro_batches,
    option_turn,
    segment_frames,
)
from salova.train.loop import retrieval_hits


def test_the_frame_cache_decodes_once_and_notices_a_changed_video(three_scene_video, tmp_path, monkeypatch):
    cache = FrameCache(tmp_path / "cache", frame_size=16, fps=1.0, resize="center_crop")
    root, name = three_scene_video.parent, three_scene_video.name
    frames = cache.load(root, name)
    # 90 frames at 25 fps: 3.6 s, one frame per second.
    assert frames.frames.shape == (4, 16, 16, 3) and frames.frames.dtype == np.uint8
    assert frames.times.tolist() == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert frames.frames[0, 8, 8, 0] > 180 and frames.frames[3, 8, 8, 2] > 180  # red first, blue last
    path = cache.path_for(name)
    assert path.is_file()

    decodes = []
    real_decode = FrameCache._decode
    monkeypatch.setattr(FrameCache, "_decode", lambda self, video: decodes.append(video) or real_decode(self, video))
    fresh = FrameCache(tmp_path / "cache", frame_size=16, fps=1.0, resize="center_crop")
    np.testing.assert_array_equal(fresh.load(root, name).frames, frames.frames)
    assert decodes == []
    stat = three_scene_video.stat()
    os.utime(three_scene_video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    FrameCache(tmp_path / "cache", frame_size=16, fps=1.0, resize="center_crop").load(root, name)
    assert decodes == [three_scene_video]


def test_segments_take_their_frames_by_time_and_short_ones_the_nearest():
    video = VideoFrames(frames=np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1), times=np.arange(6.0))
    pieces = segment_frames(video, [(0.0, 2.5), (2.5, 2.9), (2.9, 6.0)])
    assert [p[:, 0, 0, 0].tolist() for p in pieces] == [[0, 1, 2], [3], [3, 4, 5]]
    (capped,) = segment_frames(video, [(0.0, 6.0)], max_frames=3)
    assert capped[:, 0, 0, 0].tolist() == [0, 2, 5]


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_the_batch_order_does_not_depend_on_the_number_of_processes(world_size):
    plan = BatchPlan(num_samples=19, global_batch_size=8, micro_batch_size=2, world_size=world_size, seed=5)
    one = BatchPlan(num_samples=19, global_batch_size=8, micro_batch_size=2, world_size=1, seed=5)
    assert plan.steps_per_epoch == 2 and plan.accumulation == 4 // world_size
    for epoch in (0, 1):
        order = plan.order(epoch)
        for step in range(plan.steps_per_epoch):
            chunks = {
                plan.chunk(rank, micro): plan.chunk_samples(order, step, plan.chunk(rank, micro))
                for rank in range(world_size)
                for micro in range(plan.accumulation)
            }
            expected = {c: one.chunk_samples(one.order(epoch), step, c) for c in range(one.chunks_per_step)}
            assert chunks == expected
            assert len({i for chunk in chunks.values() for i in chunk}) == 8  # a step never repeats a sample
    assert plan.order(0).tolist() != plan.order(1).tolist()
    assert plan.micro_seed(0, 1, 2) == one.micro_seed(0, 1, 2) != one.micro_seed(1, 1, 2)


def test_batch_plans_refuse_too_little_data_and_uneven_batches():
    with pytest.raises(ConfigError, match="fewer than one global batch"):
        BatchPlan(num_samples=3, global_batch_size=4, micro_batch_size=1, world_size=1, seed=0)
    with pytest.raises(ConfigError, match="multiple of micro_batch_size x processes"):
        BatchPlan(num_samples=30, global_batch_size=6, micro_batch_size=2, world_size=2, seed=0)


class _Keys(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, key):
        return key


def test_micro_batches_resume_at_any_step_of_any_epoch():
    plan = BatchPlan(num_samples=10, global_batch_size=4, micro_batch_size=2, world_size=1, seed=1)
    whole = micro_batches(plan, _Keys(), list, rank=0, start_step=0)
    sequence = [(m.epoch, m.step, m.seed, m.inputs) for m in (next(whole) for _ in range(12))]
    assert [(e, s) for e, s, _, _ in sequence[::2]] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    resumed = micro_batches(plan, _Keys(), list, rank=0, start_step=3)
    assert [(m.epoch, m.step, m.seed, m.inputs) for m in (next(resumed) for _ in range(6))] == sequence[6:]


def test_record_samples_per_query_or_per_video(synthetic):
    source = load_record_source(DataConfig(records=str(synthetic.data), task="qa"))
    assert source.videos_root == (synthetic.corpus / "videos").resolve()
    record = source.records[0]
    cache = frame_cache_for(DataConfig(records="-", task="qa"), source.videos_root, 16)
    per_query = RecordDataset(source, DataConfig(records="-", task="qa"), cache)
    assert len(per_query) == sum(r.num_queries for r in source.records)
    example = per_query[(0, 1)]
    assert [m["role"] for m in example.conversation] == ["user", "assistant"]
    # The router reads the bare question, as the evaluation routes, never the scored text that names
    # the answer nor the options; the LLM reads the whole prompt.
    question = prompt_question(record.prompts()[1])
    assert example.queries == [question] and example.conversation[0]["content"] == record.prompts()[1]
    assert question in record.prompts()[1] and "\n" not in question and "A. " not in question
    whole = RecordDataset(source, DataConfig(records="-", task="qa", query_source="prompts"), cache)
    assert whole[(0, 1)].queries == [record.prompts()[1]]
    assert example.labels.tolist() == [list(record.labels[1])]
    assert len(example.frames) == record.num_segments == len(example.timestamps)
    per_video = RecordDataset(source, DataConfig(records="-", task="qa", sample_unit="video"), cache)
    whole = per_video[(0, 0)]
    assert len(per_video) == len(source.records) and len(whole.conversation) == 2 * record.num_queries
    assert whole.labels.shape == (record.num_queries, record.num_segments)


def test_option_answers_turn_a_choice_into_the_bare_question_and_the_options_text(synthetic):
    source = load_record_source(DataConfig(records=str(synthetic.data), task="qa"))
    cache = frame_cache_for(DataConfig(records="-", task="qa"), source.videos_root, 16)
    letters = RecordDataset(source, DataConfig(records="-", task="qa"), cache)[(0, 1)]
    options = RecordDataset(source, DataConfig(records="-", task="qa", answer_format="option"), cache)[(0, 1)]
    prompt, letter = letters.conversation[0]["content"], letters.conversation[1]["content"]
    chosen = next(line[3:] for line in prompt.splitlines() if line.startswith(f"{letter}. "))
    assert options.conversation == [
        {"role": "user", "content": prompt_question(prompt)},
        {"role": "assistant", "content": chosen},
    ]
    assert options.queries == letters.queries and options.labels.tolist() == letters.labels.tolist()
    assert option_turn("Describe the video.", "A red ball.") == ("Describe the video.", "A red ball.")
    assert option_turn("Which?\nA. red\nB. blue", "E") == ("Which?\nA. red\nB. blue", "E")
    with pytest.raises(ConfigError, match="data.answer_format must be one of"):
        config_from_dict({"stage": 2, "init_from": "x", "data": {"records": "d", "answer_format": "text"}})


def test_retrieval_hits_count_queries_whose_best_segment_is_relevant():
    logits = (torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.0], [0.3, 0.2, 0.1]]), torch.tensor([[2.0, 1.0]]))
    labels = [torch.tensor([[0, 1, 0], [0, 1, 1], [0, 0, 0]]), torch.tensor([[1, 0]])]
    # video 0: query 0 hit, query 1 miss, query 2 has no relevant segment (not counted); video 1: hit.
    assert retrieval_hits(logits, labels) == (2, 3)


def test_stage0_scenes_pair_with_their_caption_questions_and_partial_descriptions(synthetic):
    from salova.synth import load_corpus
    from salova.synth.questions import reference_phrases
    from salova.train.clip_pretrain import SceneDataset, scene_texts

    corpus = load_corpus(synthetic.corpus)
    cache = FrameCache(synthetic.corpus / "videos" / ".salova-frames", 16, 1.0, "center_crop")
    captions_only = SceneDataset(corpus, cache, seed=0)
    every_kind = SceneDataset(corpus, cache, seed=0, texts=("captions", "questions", "references"))
    assert [s.texts for s in captions_only.scenes] == [
        (scene.caption,) for video in corpus.videos for scene in video.scenes
    ]
    single = [(video, q) for video in corpus.videos for q in video.questions if len(q.evidence_scenes) == 1]
    assert single, "the test corpus has single-evidence questions"
    for video, question in single:
        assert question.question in scene_texts(video, question.evidence_scenes[0], ("captions", "questions"))
    video = corpus.videos[0]
    scene = video.scenes[0]
    texts = scene_texts(video, 0, ("captions", "references"))
    assert texts[0] == scene.caption and set(reference_phrases(scene)) <= set(texts)
    obj = scene.objects[0]
    assert f"{obj.color} {obj.shape}" in " ".join(texts[1:])  # objects named without the background
    # Every text of a scene is drawn over the epochs, the same ones for the same (epoch, index).
    drawn = {every_kind[(epoch, 0)][0][1] for epoch in range(200)}
    assert drawn == set(every_kind.scenes[0].texts)
    assert every_kind[(3, 0)][0][1] == every_kind[(3, 0)][0][1]


def test_stage0_world_groups_are_fresh_each_epoch_and_differ_only_in_the_object(synthetic):
    from transformers import AutoTokenizer

    from salova.synth import load_corpus
    from salova.synth.world import sample_scene_group
    from salova.train.clip_attributes import scene_attributes
    from salova.train.clip_pretrain import ClipCollator, SceneDataset

    corpus = load_corpus(synthetic.corpus)
    cache = FrameCache(synthetic.corpus / "videos" / ".salova-frames", 16, 1.0, "center_crop")
    dataset = SceneDataset(corpus, cache, seed=0, world_scenes=8, world_group=4)
    corpus_scenes = len(dataset.scenes)
    assert len(dataset) == corpus_scenes + 2
    group = dataset[(0, corpus_scenes)]
    assert len(group) == 4 and all(frame.shape == (16, 16, 3) and frame.dtype == np.uint8 for frame, _, _ in group)
    captions = [text for _, text, _ in group]
    scenes = sample_scene_group(corpus.config, np.random.default_rng([0, 0, corpus_scenes]), 4)
    assert captions == [scene.caption for scene in scenes]  # drawn from the corpus's world, captions as texts
    assert all(np.array_equal(a, scene_attributes(scene)) for (_, _, a), scene in zip(group, scenes, strict=True))
    assert all(not np.array_equal(group[0][0], frame) for frame, _, _ in group[1:])
    # The same key draws the same group; another epoch draws another one.
    again = dataset[(0, corpus_scenes)]
    assert [t for _, t, _ in again] == captions
    assert all(np.array_equal(a, b) for (a, _, _), (b, _, _) in zip(again, group, strict=True))
    assert [t for _, t, _ in dataset[(1, corpus_scenes)]] != captions
    # A group stays in one micro-batch: the collator flattens items into pairs.
    tokenizer = AutoTokenizer.from_pretrained(synthetic.stage0)
    batch = ClipCollator(tokenizer, 64, attributes=True)([dataset[(0, 0)], group])
    assert batch["pixel_values"].shape == (5, 3, 16, 16) and batch["input_ids"].shape[0] == 5
    assert torch.equal(batch["attributes"][0], torch.from_numpy(dataset.scenes[0].attributes))
    assert "attributes" not in ClipCollator(tokenizer, 64)([group])


@pytest.mark.parametrize(
    ("fields", "key"), [({"world_scenes": 6, "world_group": 4}, "world_scenes"), ({"world_group": 9}, "world_group")]
)
def test_stage0_world_settings_are_checked(fields, key):
    from salova.train.config import ClipDataConfig

    with pytest.raises(ConfigError, match=f"^{key} must be"):
        ClipDataConfig(corpus="c", **fields)


def test_rendered_world_frames_match_the_decoded_corpus_frames(synthetic):
    """Stage 0's fresh scenes are rendered and fitted by ``fit_frame``; they must look like the
    decoded, cached frames of the corpus, or the tower would learn two worlds."""
    from salova.synth import load_corpus, render_frame
    from salova.video.ingest import fit_frame

    corpus = load_corpus(synthetic.corpus)
    video = corpus.videos[0]
    cache = FrameCache(synthetic.corpus / "videos" / ".salova-frames", 32, 1.0, "center_crop")
    decoded = cache.load(synthetic.corpus / "videos", video.file)

    def distance(scene, index, frame) -> float:
        image = fit_frame(render_frame(scene, index, video.width, video.height), 32, "center_crop")
        return float(np.abs(image.astype(int) - frame.astype(int)).mean())

    same, other = [], []
    for frame, time in zip(decoded.frames, decoded.times, strict=True):
        index = round(time * video.fps)
        scene = next(s for s in video.scenes if s.start_frame <= index < s.end_frame)
        elsewhere = next(s for s in video.scenes if s.background != scene.background)
        same.append(distance(scene, index, frame))
        other.append(distance(elsewhere, elsewhere.start_frame, frame))
    assert 4 * max(same) < min(other), (max(same), min(other))  # codec noise on 64 px clips, not another scene
