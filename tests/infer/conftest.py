"""Fixtures of the assistant tests: tiny and text-pipeline assistants, a synthetic video with words on screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from salova.infer import AssistantConfig, OcrConfig, VideoAssistant, default_cache_dir, load_pipeline
from salova.synth import SynthConfig, SynthVideo, write_corpus
from threads import torch_threads

TEXT_VIDEO = SynthConfig(seed=3, minutes=2.0, text_probability=0.6, questions_per_video=4)
"""Nine scenes in two minutes; scenes 3, 5 and 8 show GARLIC, ROCKET and BANANA."""
TEST_OCR = OcrConfig(frames_per_segment=2)
"""Half the default reading, for speed: a word stays on screen for its whole scene."""


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny models are thousands of small ops; intra-op threads only stall on a shared machine."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """Converted bundled models persist between runs (the SmolLM2 conversion takes half a minute)."""
    return default_cache_dir() / "models"


@pytest.fixture(scope="session")
def text_video(tmp_path_factory) -> tuple[Path, SynthVideo]:
    """A real H.264 file whose scenes render distinct words, and its ground truth."""
    corpus = write_corpus(tmp_path_factory.mktemp("synth"), TEXT_VIDEO, progress=False)
    return corpus.video_path(corpus.videos[0]), corpus.videos[0]


@pytest.fixture
def tiny_config(tmp_path) -> AssistantConfig:
    return AssistantConfig(cache_dir=tmp_path / "cache", max_new_tokens=8, top_k=2)


@pytest.fixture
def tiny_assistant(tiny_config) -> VideoAssistant:
    return VideoAssistant.from_model("tiny", tiny_config)


@pytest.fixture(scope="session")
def text_rag_pipeline(models_dir):
    """OCR, MiniLM and SmolLM2 loaded once for the session (OCR reads two frames per segment)."""
    return load_pipeline("text-rag", AssistantConfig(models_dir=models_dir, ocr=TEST_OCR))


@pytest.fixture(scope="session")
def text_cache(tmp_path_factory) -> Path:
    """One index cache for the text-pipeline tests, so each video is read by OCR once."""
    return tmp_path_factory.mktemp("text-cache")


@pytest.fixture
def text_rag(text_rag_pipeline, text_cache, models_dir) -> VideoAssistant:
    config = AssistantConfig(cache_dir=text_cache, models_dir=models_dir, ocr=TEST_OCR, max_new_tokens=24, top_k=3)
    return VideoAssistant(text_rag_pipeline, config)
