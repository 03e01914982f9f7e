"""Fixtures of the server tests (the helpers they import live in ``serve_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import UPLOAD_LIMIT, LiveServer, live_server, settings_for

from salova.synth import SynthConfig, SynthVideo, write_corpus
from threads import torch_threads


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Asks of the tiny model are thousands of small ops; intra-op threads only stall on 2 shared cores."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory) -> Iterator[LiveServer]:
    """The tiny SALOVA model; uploads limited to ``UPLOAD_LIMIT``."""
    with live_server(settings_for(tmp_path_factory.mktemp("tiny"), "tiny", max_upload_bytes=UPLOAD_LIMIT)) as server:
        yield server


@pytest.fixture(scope="session")
def bikes_video(tiny_server, bikes_path) -> dict:
    """bikes.mp4 uploaded to the tiny server and indexed."""
    return tiny_server.upload(bikes_path)


@pytest.fixture(scope="session")
def text_video(tmp_path_factory) -> tuple[Path, SynthVideo]:
    """A two-minute synthetic video whose scenes render distinct words."""
    config = SynthConfig(seed=3, minutes=2.0, text_probability=0.6, questions_per_video=4)
    corpus = write_corpus(tmp_path_factory.mktemp("synth"), config, progress=False)
    return corpus.video_path(corpus.videos[0]), corpus.videos[0]
