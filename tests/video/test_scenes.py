"""The segment rules on their own: cuts in, segments out."""

from __future__ import annotations

from fractions import Fraction

import pytest

from salova.errors import ConfigError
from salova.video.config import SceneConfig
from salova.video.scenes import Piece, SegmentAssembler, detection_size, merge_to_cap

FPS = Fraction(10)


def assemble(cut_times, end, config, duration=None, sample_every=1.0):
    """Feed a 10 fps timeline with cuts at ``cut_times``; return (start, end) pairs."""
    assembler = SegmentAssembler(config, FPS, duration)
    cut_frames = {round(t * 10) for t in cut_times}
    out = []
    for frame in range(round(end * 10)):
        time = frame / 10
        opens = assembler.boundary(time, frame, frame in cut_frames)
        sampled = abs(time / sample_every - round(time / sample_every)) < 1e-9
        if sampled or opens:
            assembler.add_frame(time, None, sampled)
        out += assembler.pop_ready()
    assembler.finish(end, round(end * 10))
    out += assembler.pop_ready()
    return [(round(p.start_sec, 2), round(p.end_sec, 2)) for p in out]


def test_rules_off_keeps_every_cut():
    config = SceneConfig(min_segment_sec=0, max_segment_sec=0, max_segments=0)
    assert assemble([1.0, 1.5, 7.0], 8.0, config) == [(0, 1.0), (1.0, 1.5), (1.5, 7.0), (7.0, 8.0)]


def test_close_cut_joins_previous_segment_and_short_tail_merges_back():
    config = SceneConfig(min_segment_sec=2.0, max_segment_sec=0, max_segments=0)
    # 1.0 is too early (1 s); 5.0 is kept; 6.0 too close; 9.5 leaves a 0.5 s tail.
    assert assemble([1.0, 5.0, 6.0, 9.5], 10.0, config) == [(0, 5.0), (5.0, 10.0)]


def test_long_segment_split_eagerly_and_tail_rebalanced():
    config = SceneConfig(min_segment_sec=2.0, max_segment_sec=4.0, max_segments=0)
    spans = assemble([], 9.0, config)
    # 0-4, 4-8, then a 1 s tail: merged with 4-8 (5 s > max) and halved at a sampled frame.
    assert spans == [(0, 4.0), (4.0, 6.0), (6.0, 9.0)]
    assert all(2.0 <= e - s <= 4.0 + 1e-9 for s, e in spans[:-1])


def test_segment_cap_from_duration_raises_minimum():
    config = SceneConfig(min_segment_sec=0, max_segment_sec=0, max_segments=4)
    spans = assemble([1, 2, 3, 4, 5, 6, 7, 8, 9], 10.0, config, duration=10.0)
    assert len(spans) <= 4
    assert spans[0][0] == 0 and spans[-1][1] == 10.0


def test_merge_to_cap_merges_shortest_neighbours_first():
    pieces = [Piece(s, int(s * 10), e, int(e * 10), times=[s]) for s, e in [(0, 5), (5, 6), (6, 7), (7, 12)]]
    merged = merge_to_cap(pieces, 3)
    assert [(p.start_sec, p.end_sec) for p in merged] == [(0, 5), (5, 7), (7, 12)]
    assert merged[1].times == [5, 6]


def test_detection_size_follows_scenedetect_auto_downscale():
    assert detection_size(640, 272, 256) == (256, 109)
    assert detection_size(1280, 720, 256) == (256, 144)
    assert detection_size(176, 144, 256) == (176, 144)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_segment_sec": -1.0}, "min_segment_sec must be >= 0"),
        ({"window_width": 0}, "window_width must be >= 1"),
        ({"min_segment_sec": 2.0, "max_segment_sec": 3.0}, r"max_segment_sec must be >= 2 \* min_segment_sec = 4"),
    ],
)
def test_invalid_scene_config_names_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SceneConfig(**kwargs)
