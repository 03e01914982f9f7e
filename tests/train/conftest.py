"""Fixtures of the training tests: a small synthetic corpus, a tiny LLM folder, a stage 0 CLIP
trained on the corpus and a data build scored with it, shared by the whole session.

Everything is real and small: videos written by ``salova.synth``, a ``transformers`` CLIP trained
by stage 0, records written by ``salova.data.build_dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from train_helpers import stage0_config, write_tiny_llm

from salova.data import BuildConfig, ScoringConfig, build_dataset
from salova.synth import SynthConfig, write_corpus
from salova.train import config_from_dict, run_stage
from salova.video import IngestConfig, SamplingConfig
from threads import torch_threads

CORPUS = SynthConfig(
    seed=3,
    num_videos=2,
    minutes=0.5,
    width=64,
    height=64,
    fps=4,
    min_scene_sec=4,
    max_scene_sec=8,
    questions_per_video=3,
)
"""Two 30-second videos of 4-8 s scenes (11 scenes), three questions each."""


@dataclass(frozen=True)
class Synthetic:
    corpus: Path
    llm: Path
    stage0: Path
    data: Path


@pytest.fixture(autouse=True)
def _one_thread():
    """Single-threaded tests: the tiny models gain nothing from threads, and one thread keeps the
    order of float sums equal to that of the subprocesses (run with OMP_NUM_THREADS=1)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Synthetic:
    root = tmp_path_factory.mktemp("synthetic")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        corpus = write_corpus(root / "corpus", CORPUS, progress=False).root
        llm = write_tiny_llm(root / "llm")
        stage0 = root / "stage0"
        run_stage(config_from_dict(stage0_config(corpus, stage0)))
        data = root / "data"
        build_dataset(
            corpus / "videos",
            data,
            BuildConfig(
                task="both",
                ingest=IngestConfig(sampling=SamplingConfig(frame_size=16)),
                scoring=ScoringConfig(v2t_model=str(stage0), t2t_model=None),
            ),
        )
    finally:
        torch.set_num_threads(threads)
    return Synthetic(corpus=corpus, llm=llm, stage0=stage0, data=data)
