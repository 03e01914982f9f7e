"""Captioners: the synthetic world's truth, a tiny local VLM through transformers, and an
OpenAI-compatible endpoint served by a real HTTP server on loopback."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from chat_server import ChatServer
from PIL import Image

from salova.data.captioners import CaptionerConfig, build_captioner
from salova.data.instructions import CAPTION_INSTRUCTIONS, draw_instruction, draw_instructions
from salova.data.sources import VideoInput, discover_videos
from salova.errors import CaptionerError, ConfigError, ModelFolderError
from salova.video import Segment

FRAME = 32


def segment(index: int, start: float, end: float, frames: int = 3, seed: int = 0) -> Segment:
    rng = np.random.default_rng(seed + index)
    return Segment(
        index=index,
        start_sec=start,
        end_sec=end,
        start_frame=round(start * 8),
        end_frame=round(end * 8),
        frame_times=np.linspace(start, end, frames, endpoint=False),
        frames=rng.integers(0, 256, (frames, FRAME, FRAME, 3), dtype=np.uint8),
    )


def test_registry_names_the_choices():
    with pytest.raises(ConfigError, match=r"unknown captioner 'vila'; choose from \['hf', 'openai', 'synthetic'\]"):
        CaptionerConfig(name="vila")
    with pytest.raises(ConfigError, match="needs a model"):
        CaptionerConfig(name="hf")
    with pytest.raises(ConfigError, match="needs base_url"):
        CaptionerConfig(name="openai", model="m")
    assert build_captioner(CaptionerConfig()).describe() == "synthetic"


def test_instruction_draws_are_seeded_and_spread():
    drawn = draw_instructions(0, "synth-11-00000", 200)
    assert drawn == draw_instructions(0, "synth-11-00000", 200)
    assert set(drawn) == set(CAPTION_INSTRUCTIONS)  # every instruction gets used
    assert drawn != draw_instructions(1, "synth-11-00000", 200)
    assert draw_instruction(0, "a", 5, ["only"]) == "only"


def test_synthetic_captioner_takes_the_caption_of_the_most_overlapped_scene(synth_corpus):
    video_record = synth_corpus.videos[0]
    video = VideoInput(video_record.id, synth_corpus.video_path(video_record), f"{video_record.id}.mp4")
    scenes = video_record.scenes
    # Segment 1 starts 1 s before scene 2 and covers all of it: scene 2 wins.
    segments = [
        segment(0, scenes[0].start_sec, scenes[0].end_sec),
        segment(1, scenes[2].start_sec - 1.0, scenes[2].end_sec),
    ]
    captioner = build_captioner(CaptionerConfig())
    assert captioner.caption(video, segments, ["x", "y"]) == [scenes[0].caption, scenes[2].caption]


def test_synthetic_captioner_needs_a_sidecar(tmp_path, make_video):
    from media import solid_frames

    path = make_video("plain.mp4", solid_frames([(200, 0, 0)], 10))
    (video,) = discover_videos(path)
    with pytest.raises(CaptionerError, match="needs the sidecar plain.json"):
        build_captioner(CaptionerConfig()).caption(video, [segment(0, 0, 0.4)], ["x"])


# -- hf: a tiny random LLaVA saved to a folder (see conftest) ----------------------------------


def test_hf_captioner_runs_a_local_vlm_end_to_end(tiny_vlm, tiny_clip):
    config = CaptionerConfig(name="hf", model=str(tiny_vlm), frames_per_segment=2, max_new_tokens=5)
    captioner = build_captioner(config)
    video = VideoInput("v", tiny_vlm / "v.mp4", "v.mp4")
    segments = [segment(0, 0, 4, frames=4), segment(1, 4, 9, frames=5)]
    captions = captioner.caption(video, segments, ["describe the video clip", "describe the video clip in detail"])
    assert len(captions) == 2 and all(c and len(c.split()) <= 5 for c in captions)
    assert captioner.caption(video, segments, ["describe the video clip", "describe the video clip in detail"]) == (
        captions
    )
    assert captioner.describe() == f"hf:{tiny_vlm.resolve()}"
    with pytest.raises(ModelFolderError, match="no such captioning model folder"):
        build_captioner(CaptionerConfig(name="hf", model=str(tiny_vlm / "missing")))
    with pytest.raises(ModelFolderError, match="cannot load a captioning model"):
        build_captioner(CaptionerConfig(name="hf", model=str(tiny_clip)))


# -- openai: a real chat-completions server on 127.0.0.1 ----------------------------------------


def openai_config(url: str, **changes) -> CaptionerConfig:
    options = {"timeout_sec": 5.0, "max_retries": 2, "backoff_sec": 0.01, "max_backoff_sec": 0.05, "concurrency": 2}
    return CaptionerConfig(name="openai", model="tiny-vlm", base_url=url, api_key="sk-test", **(options | changes))


VIDEO = VideoInput("v", Path("v.mp4"), "v.mp4")


def test_openai_captioner_sends_standard_vision_messages():
    with ChatServer() as server:
        captioner = build_captioner(openai_config(server.url, frames_per_segment=2))
        captions = captioner.caption(VIDEO, [segment(0, 0, 4, frames=5), segment(1, 4, 8)], ["first", "second"])
        captioner.close()
    assert captions == ["caption of: first", "caption of: second"]
    request = next(r for r in server.requests if r["messages"][0]["content"][-1]["text"] == "first")
    assert request["model"] == "tiny-vlm" and request["max_tokens"] == 256 and request["temperature"] == 0.0
    parts = request["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    for part in parts[:2]:
        header, data = part["image_url"]["url"].split(",", 1)
        assert header == "data:image/jpeg;base64"
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.format == "JPEG" and image.size == (FRAME, FRAME)
    assert all(h["Authorization"] == "Bearer sk-test" for h in server.headers)


def test_openai_captioner_retries_a_5xx_and_then_succeeds():
    with ChatServer(script=[500]) as server:
        captioner = build_captioner(openai_config(server.url))
        assert captioner.caption(VIDEO, [segment(0, 0, 2)], ["only"]) == ["caption of: only"]
    assert len(server.requests) == 2


def test_openai_captioner_retries_after_a_timeout():
    with ChatServer(script=[("sleep", 1.5)]) as server:
        captioner = build_captioner(openai_config(server.url, timeout_sec=0.3))
        assert captioner.caption(VIDEO, [segment(0, 0, 2)], ["slow"]) == ["caption of: slow"]
    assert len(server.requests) == 2


def test_openai_captioner_gives_up_with_the_endpoint_and_status():
    with ChatServer(script=[503, 503, 503, 503]) as server:
        captioner = build_captioner(openai_config(server.url))
        with pytest.raises(
            CaptionerError, match=r"/v1/chat/completions: gave up after 3 attempts; last: HTTP 503"
        ) as e:
            captioner.caption(VIDEO, [segment(0, 0, 2)], ["x"])
    assert e.value.status == 503 and e.value.endpoint == f"{server.url}/chat/completions"
    assert len(server.requests) == 3


def test_openai_captioner_does_not_retry_client_errors_or_bad_replies():
    with ChatServer(script=[400, "garbage"]) as server:
        captioner = build_captioner(openai_config(server.url))
        with pytest.raises(CaptionerError, match="HTTP 400: .*scripted failure") as e:
            captioner.caption(VIDEO, [segment(0, 0, 2)], ["x"])
        assert e.value.status == 400 and len(server.requests) == 1
        with pytest.raises(CaptionerError, match="malformed chat-completions reply"):
            captioner.caption(VIDEO, [segment(0, 0, 2)], ["x"])


def test_openai_captioner_reports_an_unreachable_endpoint():
    with ChatServer() as server:
        url = server.url
    captioner = build_captioner(openai_config(url, max_retries=1))
    with pytest.raises(CaptionerError, match=r"gave up after 2 attempts; last: connection failed \(ConnectError"):
        captioner.caption(VIDEO, [segment(0, 0, 2)], ["x"])


def test_openai_captioner_keeps_to_its_concurrency_limit():
    with ChatServer(delay=0.2) as server:
        captioner = build_captioner(openai_config(server.url, concurrency=2))
        segments = [segment(i, i, i + 1) for i in range(6)]
        captions = captioner.caption(VIDEO, segments, [f"s{i}" for i in range(6)])
    assert captions == [f"caption of: s{i}" for i in range(6)]  # in segment order
    assert server.max_in_flight == 2
