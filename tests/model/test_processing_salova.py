"""SalovaProcessor: frame normalisation, packing, prompts and labels, queries, persistence."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from model_helpers import make_llm_tokenizer, make_processor, make_text_tower_tokenizer, random_video
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from salova.errors import CheckpointError, ConfigError
from salova.model import IGNORE_INDEX, SalovaProcessor, tiny_config


@pytest.fixture
def config():
    return tiny_config()


def test_frames_are_normalised_channel_first(config):
    processor = make_processor(config)
    frames = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    frames[1] = 255
    frames[0, :, :, 0] = 51  # 0.2 on the red channel
    pixels = processor.preprocess_frames(frames)
    assert pixels.shape == (2, 3, 16, 16) and pixels.dtype == torch.float32
    mean, std = torch.tensor(OPENAI_CLIP_MEAN), torch.tensor(OPENAI_CLIP_STD)
    torch.testing.assert_close(pixels[1, :, 0, 0], (1 - mean) / std)
    torch.testing.assert_close(pixels[0, :, 5, 5], (torch.tensor([0.2, 0.0, 0.0]) - mean) / std)


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((2, 16, 16, 3), dtype=np.float32), "numpy uint8 array"),
        (np.zeros((2, 20, 16, 3), dtype=np.uint8), r"must have shape \(num_frames >= 1, 16, 16, 3\)"),
        (np.zeros((0, 16, 16, 3), dtype=np.uint8), "must have shape"),
        (np.zeros((16, 16, 3), dtype=np.uint8), "must have shape"),
    ],
)
def test_bad_frames_are_rejected(config, frames, message):
    with pytest.raises(ValueError, match=message):
        make_processor(config).preprocess_frames(frames)


def test_videos_are_packed_with_counts(config):
    processor = make_processor(config)
    packed = processor.pack_videos([random_video(config, [3, 1]), random_video(config, [2, 2, 5])])
    assert packed["pixel_values"].shape == (13, 3, 16, 16)
    assert packed["frames_per_segment"].tolist() == [3, 1, 2, 2, 5]
    assert packed["segments_per_video"].tolist() == [2, 3]
    with pytest.raises(ValueError, match="at least one segment"):
        processor.pack_videos([[]])


def test_prompt_puts_the_video_before_the_question_and_labels_only_the_answer(config):
    processor = make_processor(config)
    batch = processor([random_video(config, [1])], ["What is red?"], ["A ball."])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    text = processor.tokenizer.decode(ids)
    assert text.index("<video>") < text.index("What is red?") < text.index("A ball.")
    assert int((ids == processor.video_token_id).sum()) == 1
    answer = processor.tokenizer.decode(ids[labels != IGNORE_INDEX])
    assert answer.startswith("A ball.</s>")


def test_video_can_follow_the_question(config):
    processor = make_processor(config, video_position="after_question")
    text = processor.tokenizer.decode(processor([random_video(config, [1])], ["Why?"])["input_ids"][0])
    assert text.index("Why?") < text.index("<video>")


def test_prompt_without_answer_ends_with_the_generation_prompt(config):
    processor = make_processor(config)
    batch = processor([random_video(config, [1])], ["Why?"])
    assert "labels" not in batch
    assert processor.tokenizer.decode(batch["input_ids"][0]).endswith("<|assistant|>\n")


def test_multi_turn_conversation_labels_every_answer_and_queries_every_question(config):
    processor = make_processor(config)
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First?"},
        {"role": "assistant", "content": "One."},
        {"role": "user", "content": "Second?"},
        {"role": "assistant", "content": "Two."},
    ]
    batch = processor([random_video(config, [1, 1])], conversations=[conversation])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    labelled = processor.tokenizer.decode(ids[labels != IGNORE_INDEX])
    assert labelled == "One.</s>\nTwo.</s>\n"
    assert batch["queries_per_video"].tolist() == [2]
    queries = processor.text_tower_tokenizer.batch_decode(batch["query_input_ids"], skip_special_tokens=True)
    assert queries == ["First?", "Second?"]


def test_explicit_queries_replace_the_questions(config):
    processor = make_processor(config)
    batch = processor([random_video(config, [1, 1])], ["Q"], queries=[["caption one", "caption two", "three"]])
    assert batch["queries_per_video"].tolist() == [3]
    assert batch["query_input_ids"].shape[0] == 3


def test_long_queries_are_truncated_with_a_warning(config, caplog):
    processor = make_processor(config)
    with caplog.at_level(logging.WARNING, logger="salova.model.processing_salova"):
        batch = processor([random_video(config, [1])], ["word " * 100])
    assert "1 of 1 queries exceed the text tower's 64 tokens" in caplog.text
    ids = batch["query_input_ids"][0]
    assert ids.shape[0] == config.text_tower_max_length
    assert ids[-1] == processor.text_tower_tokenizer.eos_token_id  # CLIP pools this token


def test_siglip_queries_are_padded_to_the_full_context():
    config = tiny_config(towers="siglip")
    processor = make_processor(config)
    batch = processor([random_video(config, [1])], ["short"])
    assert batch["query_input_ids"].shape == (1, config.text_tower_max_length)


def test_timestamps_become_one_row_per_segment(config):
    processor = make_processor(config)
    videos = [random_video(config, [1, 1]), random_video(config, [1])]
    batch = processor(videos, ["a", "b"], timestamps=[[(0.0, 1.5), (1.5, 3.0)], [(0.0, 12.25)]])
    ids, mask = batch["segment_timestamp_ids"], batch["segment_timestamp_mask"]
    assert ids.shape[0] == 3
    spans = [processor.tokenizer.decode(row[m.bool()]) for row, m in zip(ids, mask, strict=True)]
    assert spans == ["[0.0s-1.5s]", "[1.5s-3.0s]", "[0.0s-12.2s]"]
    with pytest.raises(ValueError, match="one \\(start, end\\) pair per segment"):
        processor(videos, ["a", "b"], timestamps=[[(0.0, 1.0)], [(0.0, 1.0)]])


def test_save_and_load_round_trip(config, tmp_path):
    processor = make_processor(config, video_position="after_question")
    processor.save_pretrained(tmp_path)
    loaded = SalovaProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    video = random_video(config, [2, 1])
    a, b = processor([video], ["q?"], ["a."]), loaded([video], ["q?"], ["a."])
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)
    with pytest.raises(CheckpointError, match="not a SALOVA processor folder"):
        SalovaProcessor.from_pretrained(tmp_path / "text_tower_tokenizer")


def test_the_video_token_is_added_when_the_tokenizer_lacks_it(config):
    processor = make_processor(config, video_token="<clip>")
    assert processor.tokenizer.convert_tokens_to_ids("<clip>") >= 263
    assert processor.tokenizer.tokenize("<clip>") == ["<clip>"]


def test_a_tokenizer_without_chat_template_is_a_config_error(config):
    tokenizer = make_llm_tokenizer()
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        SalovaProcessor.from_config(config, tokenizer, make_text_tower_tokenizer())


def test_ingested_segments_of_a_real_clip_feed_the_model(config):
    from model_helpers import make_model

    from salova.video import IngestConfig, SamplingConfig, sample_video_path, segment_video

    ingest = IngestConfig(sampling=SamplingConfig(frame_size=config.vision_config.image_size))
    segments = segment_video(sample_video_path("bikes"), ingest).segments
    frames, spans = SalovaProcessor.unpack_segments(segments)
    assert [len(f) for f in frames] == [s.num_frames for s in segments]
    model = make_model(focusfast_timestamps=True)
    processor = make_processor(model.config)
    batch = processor([frames], ["Which bike passes first?"], timestamps=[spans])
    assert batch["frames_per_segment"].tolist() == [s.num_frames for s in segments]
    out = model.generate(**batch, max_new_tokens=2, do_sample=False)
    assert out.selected_segments[0].numel() == min(len(segments), model.config.focus_top_k)
