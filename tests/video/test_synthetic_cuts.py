"""Cut detection of the one-pass ingest against the synthetic world's true boundaries."""

from __future__ import annotations

import pytest

from salova.synth import SynthConfig, write_corpus
from salova.video import IngestConfig, SceneConfig, segment_video
from salova.video.metrics import boundary_f1

TOLERANCE_SEC = 0.5
MIN_F1 = 0.98


def test_boundary_f1_counts_misses_and_false_alarms():
    assert boundary_f1([1.0, 2.0], [1.2, 2.1], 0.5) == 1.0
    assert boundary_f1([1.0, 2.0], [1.0], 0.5) == pytest.approx(2 / 3)
    assert boundary_f1([1.0], [1.0, 1.1], 0.5) == pytest.approx(2 / 3)
    assert boundary_f1([1.0], [2.0], 0.5) == 0.0
    assert boundary_f1([], [], 0.5) == 1.0


@pytest.mark.parametrize(
    ("seed", "scene_sec"),
    [(0, (2.0, 5.0)), (1, (2.0, 5.0)), (2, (6.0, 20.0)), (3, (6.0, 20.0))],
)
def test_ingest_finds_the_true_cuts(tmp_path, seed, scene_sec):
    minutes = 0.75 if scene_sec[1] <= 5 else 2.5
    config = SynthConfig(
        seed=seed,
        minutes=minutes,
        min_scene_sec=scene_sec[0],
        max_scene_sec=scene_sec[1],
        duplicate_probability=0.2,
        questions_per_video=0,
    )
    video = write_corpus(tmp_path, config, progress=False).videos[0]
    true = [scene.start_sec for scene in video.scenes[1:]]
    assert len(true) >= 8
    path = tmp_path / "videos" / video.file

    rules_off = segment_video(
        path, IngestConfig(scenes=SceneConfig(min_segment_sec=0, max_segment_sec=0), keep_frames=False)
    )
    assert boundary_f1(true, [s.start_sec for s in rules_off.segments[1:]], TOLERANCE_SEC) >= MIN_F1
    # The default rules (2 s to 60 s) keep every cut of scenes in that range.
    default = segment_video(path, IngestConfig(keep_frames=False))
    assert boundary_f1(true, [s.start_sec for s in default.segments[1:]], TOLERANCE_SEC) >= MIN_F1
