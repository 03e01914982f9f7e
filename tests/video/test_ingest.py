"""One-pass ingest on real footage and on small videos with known content."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scenedetect import AdaptiveDetector, detect

from media import solid_frames
from salova.cli import main
from salova.video import (
    IngestConfig,
    SamplingConfig,
    SceneConfig,
    iter_segments,
    probe_video,
    segment_video,
)

RULES_OFF = SceneConfig(min_segment_sec=0, max_segment_sec=0)


def _starts(result) -> list[int]:
    return [s.start_frame for s in result.segments]


def test_bikes_cuts_equal_scenedetect(bikes_path):
    expected = [start.frame_num for start, _ in detect(str(bikes_path), AdaptiveDetector())]
    result = segment_video(bikes_path, IngestConfig(scenes=RULES_OFF, keep_frames=False))
    assert len(expected) == 6  # the clip's 6 scenes
    assert _starts(result) == expected
    assert result.cut_frames == expected[1:]
    assert result.segments[-1].end_frame == probe_video(bikes_path).num_frames


def test_cli_rules_off_matches_scenedetect_with_same_parameters(bikes_path, capsys):
    detector = AdaptiveDetector(adaptive_threshold=2.5)
    scenes = detect(str(bikes_path), detector)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "segment",
                str(bikes_path),
                "--min-segment-sec",
                "0",
                "--max-segment-sec",
                "0",
                "--threshold",
                "2.5",
                "--json",
                "--no-progress",
            ]
        )
    assert exit_info.value.code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [(s.frame_num, e.frame_num) for s, e in scenes]
    assert [r["start"] for r in rows] == pytest.approx([s.seconds for s, _ in scenes], abs=1e-3)
    assert all(r["frames"] >= 1 for r in rows)


def test_three_solid_clips_give_exactly_two_cuts(three_scene_video):
    result = segment_video(three_scene_video, IngestConfig(scenes=RULES_OFF))
    assert result.cut_frames == [30, 60]
    assert [(s.start_frame, s.end_frame) for s in result.segments] == [(0, 30), (30, 60), (60, 90)]
    # Frames kept for segment k show colour k (RGB order, tower size).
    dominant = [int(np.argmax(s.frames.reshape(-1, 3).mean(axis=0))) for s in result.segments]
    assert dominant == [0, 1, 2]
    assert result.segments[0].frames.shape[1:] == (336, 336, 3)
    assert result.segments[0].frames.dtype == np.uint8


def test_one_fps_sampling_takes_first_frame_of_every_second(bikes_path):
    result = segment_video(bikes_path, IngestConfig(scenes=RULES_OFF))
    times = np.concatenate([s.frame_times for s in result.segments])
    # Every whole second 0..9 is sampled exactly once, plus the first frame of segments
    # too short to contain one.
    whole = sorted(t for t in times if abs(t - round(t)) < 1e-6)
    assert whole == [float(i) for i in range(10)]
    for seg in result.segments:
        assert seg.num_frames >= 1
        assert np.all((seg.frame_times >= seg.start_sec - 1e-9) & (seg.frame_times < seg.end_sec))


def test_sampling_rate_is_configurable(bikes_path):
    two_fps = segment_video(bikes_path, IngestConfig(scenes=RULES_OFF, sampling=SamplingConfig(fps=2.0)))
    times = np.concatenate([s.frame_times for s in two_fps.segments])
    # One frame per half-second slot: the first frame at or after each slot start.
    slots = [int(np.floor(t * 2 + 1e-9)) for t in times[:-1]]
    assert slots == list(range(20))
    assert all(t - slot / 2 < 0.04 for t, slot in zip(times[:-1], slots, strict=True))  # within one frame (25 fps)
    # The 0.32 s last scene holds no grid point: its first frame (9.68 s) stands for it.
    assert two_fps.segments[-1].frame_times.tolist() == pytest.approx([9.68])


def test_default_rules_merge_short_scenes(bikes_path):
    result = segment_video(bikes_path, IngestConfig(keep_frames=False))
    spans = [(s.start_frame, s.end_frame) for s in result.segments]
    # The 1.2 s first scene joins the next; the 0.32 s last piece joins the one before.
    assert spans == [(0, 76), (76, 137), (137, 187), (187, 250)]
    assert all(s.duration_sec >= 2.0 - 1e-6 for s in result.segments)


def test_max_segment_sec_splits_and_keeps_pieces_balanced(make_video):
    video = make_video("long.mp4", solid_frames([(200, 50, 50)], 250, size=(32, 32)))  # 10 s, no cut
    result = segment_video(video, IngestConfig(scenes=SceneConfig(min_segment_sec=1.5, max_segment_sec=3.0)))
    durations = [round(s.duration_sec, 2) for s in result.segments]
    assert sum(durations) == pytest.approx(10.0)
    assert all(1.5 <= d <= 3.0 + 1e-6 for d in durations), durations
    assert len(result.segments) == 4


def test_segment_cap_raises_minimum_length(bikes_path):
    capped = segment_video(bikes_path, IngestConfig(scenes=SceneConfig(min_segment_sec=0, max_segments=3)))
    assert 1 <= len(capped.segments) <= 3
    assert capped.segments[0].start_frame == 0 and capped.segments[-1].end_frame == 250


def test_video_without_cut_is_one_segment(make_video):
    video = make_video("flat.mp4", solid_frames([(10, 120, 200)], 40))
    result = segment_video(video)
    assert len(result.segments) == 1
    assert (result.segments[0].start_frame, result.segments[0].end_frame) == (0, 40)
    assert result.segments[0].num_frames == 2  # t = 0 s and 1 s


def test_iterator_yields_segments_before_the_end_and_equals_list(three_scene_video):
    config = IngestConfig(scenes=RULES_OFF)
    iterator = iter_segments(three_scene_video, config)
    first = next(iterator)
    # The first segment is final while the decoder is still early in the file.
    assert iterator._decoder.decoded_frames < 90
    rest = list(iterator)
    listed = segment_video(three_scene_video, config).segments
    assert [s.to_dict() for s in [first, *rest]] == [s.to_dict() for s in listed]
    assert np.array_equal(first.frames, listed[0].frames)


def test_keep_frames_false_counts_without_pixels(bikes_path):
    result = segment_video(bikes_path, IngestConfig(keep_frames=False))
    assert all(s.frames is None and s.num_frames >= 1 for s in result.segments)


@pytest.mark.parametrize("mode", ["center_crop", "stretch", "pad"])
def test_resize_modes_give_square_frames(bikes_path, mode):
    config = IngestConfig(sampling=SamplingConfig(frame_size=64, resize=mode))
    segment = next(iter_segments(bikes_path, config))
    assert segment.frames.shape[1:] == (64, 64, 3)
    if mode == "pad":  # 640x272 fits as 64x27: black bars above and below
        assert segment.frames[:, :10].max() == 0 and segment.frames[:, 30].max() > 0
