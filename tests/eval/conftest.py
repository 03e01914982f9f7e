"""Fixtures of the evaluation tests: official-format annotation files, small real videos placed
where each benchmark keeps them, a tiny SALOVA checkpoint and a small synthetic benchmark."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import torch

from media import solid_frames, write_video
from threads import torch_threads


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny models are many small ops; intra-op threads only slow them on a shared machine."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory) -> Path:
    """A 4-second, 8 fps clip of two solid colours (one hard cut at 2 s)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return write_video(path, solid_frames([(200, 40, 40), (40, 40, 200)], 16), fps=8)


@pytest.fixture
def place_videos(tmp_path, clip_file) -> Callable[[Iterable[str]], Path]:
    """``place_videos(["data/x.mp4", ...])`` copies the clip to those paths under a fresh folder."""

    def place(relative_paths: Iterable[str]) -> Path:
        root = tmp_path / "videos"
        for relative in relative_paths:
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip_file, target)
        root.mkdir(exist_ok=True)
        return root

    return place


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """The ``tiny`` preset (seeded random weights, offline byte-level tokenizers) saved as a checkpoint folder."""
    from salova.infer.models import tiny_processor
    from salova.model import SalovaForCausalLM, tiny_config

    folder = tmp_path_factory.mktemp("tiny-ckpt")
    config = tiny_config()
    torch.manual_seed(0)
    SalovaForCausalLM(config).save_pretrained(folder)
    tiny_processor(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def synth_bench(tmp_path_factory) -> Path:
    """A small synthetic benchmark: one 20 s / 30 s / 40 s video per bucket, four questions each."""
    from salova.eval.synth_bench import SynthBenchConfig, build_synth_bench

    out = tmp_path_factory.mktemp("synth-bench")
    config = SynthBenchConfig(seed=3, videos_per_bucket=1, questions_per_video=4, minutes=(1 / 3, 0.5, 2 / 3))
    build_synth_bench(out, config, progress=False)
    return out
