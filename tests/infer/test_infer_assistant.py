"""index -> ask -> chat with the tiny SALOVA model on a real clip: the cache, the answer, no second decode."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace

import pytest
import torch

from salova.errors import NotIndexedError, VideoDecodeError, VideoNotFoundError
from salova.infer import VideoAssistant
from salova.infer import index as index_module
from salova.infer.assistant import Answer
from salova.infer.models import tiny_processor


def _refuse(*args, **kwargs):
    raise AssertionError("the video was decoded again")


def test_index_stores_one_routing_token_and_latents_per_segment(tiny_assistant, bikes_path):
    index = tiny_assistant.index(bikes_path)
    assert index.pipeline == "salova" and not index.from_cache
    assert index.num_segments == 4  # bikes: 5 hard cuts, min 2 s per segment
    assert index.spans[0][0] == 0.0 and index.spans[-1][1] == pytest.approx(10.0)
    assert all(a[1] == b[0] for a, b in zip(index.spans, index.spans[1:], strict=False))
    width = tiny_assistant.pipeline.model.config.connector_hidden_size
    latents = tiny_assistant.pipeline.model.config.connector_num_latents
    assert index.tensors["routing_tokens"].shape == (4, width)
    assert index.tensors["latents"].shape == (4, latents, width)
    entries = list(tiny_assistant.cache.root.rglob("*.safetensors"))
    assert [e.parent.name for e in entries] == [index.sha256]


def test_ask_reads_the_top_k_segments_without_decoding_again(tiny_assistant, bikes_path, monkeypatch):
    tiny_assistant.index(bikes_path)
    monkeypatch.setattr(index_module, "iter_segments", _refuse)
    answer = tiny_assistant.ask("What does the cyclist do?")
    assert isinstance(answer, Answer) and answer.pipeline == "salova"
    assert len(answer.segments) == 2 and len(answer.timeline) == 4
    best_two = sorted(answer.timeline, key=lambda s: -s.score)[:2]
    assert sorted(s.index for s in answer.segments) == sorted(s.index for s in best_two)
    assert [s.start for s in answer.segments] == sorted(s.start for s in answer.segments)
    assert set(answer.timings) == {"index", "route", "generate", "total"}
    assert answer.timings["total"] >= answer.timings["route"] + answer.timings["generate"]
    body = answer.to_dict()
    assert list(body) == ["answer", "pipeline", "segments", "timings"]
    assert all(list(s) == ["start", "end", "score"] for s in body["segments"])
    assert len(tiny_assistant.ask("Where?", top_k=3).segments) == 3


def test_a_new_assistant_loads_the_index_from_the_cache(tiny_config, bikes_path, tmp_path, monkeypatch):
    first = VideoAssistant.from_model("tiny", tiny_config).index(bikes_path)
    copy = tmp_path / "renamed.mp4"
    shutil.copyfile(bikes_path, copy)  # same bytes, other name: same content hash
    monkeypatch.setattr(index_module, "iter_segments", _refuse)
    second = VideoAssistant.from_model("tiny", tiny_config)
    again = second.index(copy)
    assert again.from_cache and again.sha256 == first.sha256 and again.spans == first.spans
    assert torch.equal(again.tensors["latents"], first.tensors["latents"])
    assert second.ask("And now?").segments


def test_corrupted_entry_is_rebuilt_never_used(tiny_config, bikes_path, caplog):
    first = VideoAssistant.from_model("tiny", tiny_config).index(bikes_path)
    (entry,) = (tiny_config.cache_dir / "index").rglob("*.safetensors")
    data = bytearray(entry.read_bytes())
    data[-8:] = b"\x00" * 8
    entry.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="salova.infer.cache"):
        rebuilt = VideoAssistant.from_model("tiny", tiny_config).index(bikes_path)
    assert "checksum mismatch" in caplog.text
    assert not rebuilt.from_cache
    assert torch.equal(rebuilt.tensors["latents"], first.tensors["latents"])
    assert VideoAssistant.from_model("tiny", tiny_config).index(bikes_path).from_cache


def test_other_weights_are_another_cache_entry(tiny_config, bikes_path):
    VideoAssistant.from_model("tiny", tiny_config).index(bikes_path)
    changed = VideoAssistant.from_model("tiny", tiny_config)
    with torch.no_grad():
        changed.pipeline.model.connector.latents.add_(1.0)
    index = changed.index(bikes_path)
    assert not index.from_cache
    assert len(list((tiny_config.cache_dir / "index").rglob("*.safetensors"))) == 2


def test_a_checkpoint_folder_loads_by_path_and_shares_the_cache(tiny_config, tiny_assistant, bikes_path, tmp_path):
    tiny_assistant.index(bikes_path)
    folder = tmp_path / "checkpoint"
    tiny_assistant.pipeline.model.save_pretrained(folder)
    tiny_processor(tiny_assistant.pipeline.model.config).save_pretrained(folder)
    from_folder = VideoAssistant.from_model(str(folder), tiny_config)
    assert str(folder) in from_folder.pipeline.describe()
    assert from_folder.index(bikes_path).from_cache  # same weights: same identity
    assert from_folder.ask("What?").pipeline == "salova"


def test_chat_keeps_history_and_reuses_the_index(tiny_assistant, bikes_path, monkeypatch):
    session = tiny_assistant.chat(bikes_path)
    monkeypatch.setattr(index_module, "iter_segments", _refuse)
    seen = []
    original = tiny_assistant.pipeline.processor.tokenize_conversation

    def spy(conversation):
        seen.append([m["content"] for m in conversation])
        return original(conversation)

    monkeypatch.setattr(tiny_assistant.pipeline.processor, "tokenize_conversation", spy)
    first = session.ask("What happens first?")
    second = session.ask("And after that?")
    assert session.history == [("What happens first?", first.text), ("And after that?", second.text)]
    assert seen[1] == ["What happens first?", first.text, "And after that?"]


def test_bad_requests_are_typed_errors(tiny_assistant, tmp_path):
    with pytest.raises(NotIndexedError):
        tiny_assistant.ask("Anything?")
    with pytest.raises(VideoNotFoundError):
        tiny_assistant.index(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoDecodeError):
        tiny_assistant.index(junk)
    assert list(tiny_assistant.cache.root.rglob("*.safetensors")) == []


def test_empty_question_bad_top_k_and_foreign_index_are_refused(tiny_assistant, tiny_config, bikes_path):
    index = tiny_assistant.index(bikes_path)
    with pytest.raises(ValueError, match="empty"):
        tiny_assistant.ask("   ")
    with pytest.raises(ValueError, match="top_k"):
        tiny_assistant.ask("Why?", top_k=0)
    other = VideoAssistant.from_model("tiny", replace(tiny_config, sample_fps=0.5))
    with pytest.raises(ValueError, match="indexed by another model or with other settings"):
        other.ask("Why?", video=index)
