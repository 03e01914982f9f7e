"""Config validation and the records' dict round trips."""

from __future__ import annotations

import pytest

from salova.errors import ConfigError, DataError
from salova.synth import SynthConfig, SynthVideo, generate_video


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", -1),
        ("num_videos", 0),
        ("minutes", 0.01),
        ("fps", 0.5),
        ("width", 321),
        ("height", 32),
        ("min_scene_sec", 1.0),
        ("max_scene_sec", 2.0),
        ("text_probability", 1.5),
        ("duplicate_probability", -0.1),
        ("questions_per_video", -1),
        ("max_objects", 4),
        ("crf", 60),
        ("keyframe_sec", 0),
        ("min_cut_score", 80.0),
        ("fps", True),
    ],
)
def test_bad_config_values_name_field_and_value(field, value):
    with pytest.raises(ConfigError) as info:
        SynthConfig(**{field: value})
    assert f"SynthConfig.{field}" in str(info.value)
    assert repr(value) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_config_round_trips_and_rejects_unknown_fields():
    config = SynthConfig(seed=4, minutes=2.5, duplicate_probability=0.2)
    assert SynthConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="speed"):
        SynthConfig.from_dict({**config.to_dict(), "speed": 2})


@pytest.fixture(scope="module")
def video() -> SynthVideo:
    return generate_video(SynthConfig(seed=2, minutes=1.0, min_scene_sec=3.0, max_scene_sec=6.0), 0)


def test_video_round_trips_through_its_sidecar_dict(video):
    assert SynthVideo.from_dict(video.to_dict()) == video


def test_malformed_sidecars_are_rejected(video):
    data = video.to_dict()
    gap = {**data, "scenes": [data["scenes"][0], *data["scenes"][2:]]}
    with pytest.raises(DataError, match="does not follow on"):
        SynthVideo.from_dict(gap)
    question = {**data["questions"][0], "answer": "E"}
    with pytest.raises(DataError, match="answer"):
        SynthVideo.from_dict({**data, "questions": [question]})
    same_options = {**data["questions"][0], "options": dict.fromkeys("ABCD", "red")}
    with pytest.raises(DataError, match="distinct"):
        SynthVideo.from_dict({**data, "questions": [same_options]})
    with pytest.raises(DataError, match="colour"):
        bad = {**data["scenes"][0], "background": {"color": "mauve", "pattern": "plain"}}
        SynthVideo.from_dict({**data, "scenes": [bad, *data["scenes"][1:]]})
    with pytest.raises(DataError, match="version"):
        SynthVideo.from_dict({**data, "version": 99})


def test_scene_at_finds_the_scene_of_a_frame(video):
    for scene in video.scenes:
        assert video.scene_at(scene.start_frame) is scene
        assert video.scene_at(scene.end_frame - 1) is scene
    with pytest.raises(IndexError):
        video.scene_at(video.num_frames)
