"""Needle videos: the needle is where the sidecar says, with hard cuts, in real footage."""

from __future__ import annotations

import av
import numpy as np
import pytest

from salova.errors import ConfigError, VideoDecodeError, VideoNotFoundError
from salova.synth import CorpusError, load_needle_video, make_needle_video, render_frame
from salova.synth.render import content_score

SIZE = {"width": 160, "height": 120, "fps": 8.0}
MAX_MEAN_ERROR = 6.0


def _decode(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _error(image, drawn):
    return np.abs(image.astype(np.int16) - drawn.astype(np.int16)).mean()


@pytest.fixture(scope="module")
def needle(tmp_path_factory):
    path = tmp_path_factory.mktemp("needle") / "needle.mp4"
    return make_needle_video(path, haystack_frames=64, depth=0.5, seed=3, needle_sec=2.0, **SIZE)


def test_needle_lies_where_the_sidecar_says(needle):
    start, end = needle.needle_frames
    assert (start, end) == (32, 48)
    assert needle.needle_seconds == (4.0, 6.0)
    frames = _decode(needle.path)
    assert len(frames) == needle.num_frames == 80
    for index, image in enumerate(frames):
        if start <= index < end:
            assert _error(image, render_frame(needle.scene, index, 160, 120)) < MAX_MEAN_ERROR
    first = render_frame(needle.scene, start, 160, 120)
    last = render_frame(needle.scene, end - 1, 160, 120)
    assert _error(frames[start - 1], first) > 4 * MAX_MEAN_ERROR
    assert _error(frames[end], last) > 4 * MAX_MEAN_ERROR
    assert min(content_score(frames[start - 1], frames[start]), content_score(frames[end - 1], frames[end])) > 15


def test_haystack_segments_cover_every_other_frame(needle):
    covered = sorted(i for seg in needle.haystack for i in range(seg["start_frame"], seg["end_frame"]))
    start, end = needle.needle_frames
    assert covered == [i for i in range(needle.num_frames) if not start <= i < end]
    assert {seg["source"] for seg in needle.haystack} <= {"bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"}


def test_sidecar_round_trip_and_a_question_about_the_needle(needle):
    assert load_needle_video(needle.path) == needle
    assert load_needle_video(needle.sidecar_path) == needle
    q = needle.question
    assert q.evidence_scenes == (0,) and len(set(q.options.values())) == 4
    truth = {
        "color": {o.color for o in needle.scene.objects if o.shape == q.subject.get("shape")},
        "shape": {o.shape for o in needle.scene.objects if o.color == q.subject.get("color")},
        "background": {needle.scene.background.color},
        "text": {needle.scene.text},
    }[q.attribute]
    assert truth == {q.answer_text}


@pytest.mark.parametrize(("depth", "expected_start"), [(0.0, 0), (1.0, 40)])
def test_needle_at_either_end(tmp_path, depth, expected_start):
    needle = make_needle_video(
        tmp_path / "end.mp4", haystack="carphone", haystack_frames=40, depth=depth, seed=1, needle_sec=2.0, **SIZE
    )
    assert needle.needle_frames == (expected_start, expected_start + 16)
    frames = _decode(needle.path)
    assert len(frames) == 56
    drawn = render_frame(needle.scene, expected_start, 160, 120)
    assert _error(frames[expected_start], drawn) < MAX_MEAN_ERROR
    assert [seg["source"] for seg in needle.haystack] == ["carphone_pristine.mp4"] * len(needle.haystack)


def test_same_seed_same_needle(tmp_path, needle):
    again = make_needle_video(tmp_path / "again.mp4", haystack_frames=64, depth=0.5, seed=3, needle_sec=2.0, **SIZE)
    assert again.scene == needle.scene
    assert again.question.options == needle.question.options and again.question.answer == needle.question.answer
    assert again.path.read_bytes() == needle.path.read_bytes()


def test_bad_arguments_and_inputs(tmp_path):
    with pytest.raises(ConfigError, match="depth"):
        make_needle_video(tmp_path / "a.mp4", haystack_frames=10, depth=1.5, seed=0)
    with pytest.raises(ConfigError, match="needle_sec"):
        make_needle_video(tmp_path / "a.mp4", haystack_frames=10, depth=0.5, seed=0, needle_sec=0.5)
    with pytest.raises(VideoNotFoundError):
        make_needle_video(tmp_path / "a.mp4", haystack=tmp_path / "none.mp4", haystack_frames=10, depth=0.5, seed=0)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(VideoDecodeError):
        make_needle_video(tmp_path / "a.mp4", haystack=junk, haystack_frames=10, depth=0.5, seed=0)
    with pytest.raises(CorpusError):
        make_needle_video(tmp_path / "missing" / "a.mp4", haystack_frames=10, depth=0.5, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp4"]
