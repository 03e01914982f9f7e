"""Fixtures shared by the whole suite: real sample clips and small videos written with PyAV."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from media import solid_frames, write_video
from salova.video import sample_video_path


@pytest.fixture(scope="session")
def bikes_path() -> Path:
    """Real footage: 640x272, 25 fps, 10 s, 5 hard cuts."""
    return sample_video_path("bikes")


@pytest.fixture
def make_video(tmp_path) -> Callable[..., Path]:
    """``make_video(name, frames, **write_video_options)`` writes into ``tmp_path``."""

    def make(name: str, frames: Sequence[np.ndarray], **options) -> Path:
        return write_video(tmp_path / name, frames, **options)

    return make


@pytest.fixture
def three_scene_video(make_video) -> Path:
    """Red, green, blue: 30 frames each at 25 fps, so two hard cuts at frames 30 and 60."""
    return make_video("rgb.mp4", solid_frames([(220, 30, 30), (30, 200, 40), (30, 40, 220)], 30))
