"""Semantic tokens: proposal sources on drawn motion, the tracker's length rules, and the whole
decomposition on real footage (bikes.mp4)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from salova.errors import ConfigError
from salova.video.proposals import (
    BackgroundSubtraction,
    Box,
    CompensatedDifference,
    SpectralResidualRegions,
    build_motion_source,
)
from salova.video.tokens import SemanticConfig, draw_tracklets, semantic_tokens
from salova.video.tracking import Tracker, TrackerConfig

SIZE = (160, 120)  # width, height


def textured_background(seed: int = 0) -> np.ndarray:
    """A wide random texture to pan over (corners for the camera-motion fit)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, size=(SIZE[1] // 4, SIZE[0] // 2, 3), dtype=np.uint8)
    return cv2.resize(noise, (SIZE[0] * 2, SIZE[1]), interpolation=cv2.INTER_LINEAR)


def moving_square_frames(count: int, pan: int, start: int = 20, step: int = 4, side: int = 20):
    """The camera pans by ``pan`` px per frame over a texture while a white square moves ``step`` px."""
    background = textured_background()
    frames, boxes = [], []
    for i in range(count):
        frame = np.ascontiguousarray(background[:, i * pan : i * pan + SIZE[0]])
        x, y = start + i * step, 50
        cv2.rectangle(frame, (x, y), (x + side, y + side), (255, 255, 255), -1)
        frames.append(frame)
        boxes.append(Box(x, y, x + side, y + side))
    return frames, boxes


def best_iou(found: list[Box], truth: Box) -> float:
    return max((box.iou(truth) for box in found), default=0.0)


def test_box_geometry():
    a, b = Box(0, 0, 10, 10), Box(5, 5, 15, 15)
    assert a.iou(b) == pytest.approx(25 / 175)
    assert a.union(b) == Box(0, 0, 15, 15)
    assert Box(0, 0, 1, 1).iou(Box(2, 2, 3, 3)) == 0.0
    assert a.crop(np.zeros((4, 4, 3), np.uint8)).shape == (4, 4, 3)  # clipped to the frame


def test_compensated_difference_finds_the_mover_despite_the_panning_camera():
    frames, truth = moving_square_frames(8, pan=3)
    source = CompensatedDifference()
    found = [source.propose(frame) for frame in frames]
    assert found[0] == []  # nothing to compare the first frame with
    for boxes, box in zip(found[2:], truth[2:], strict=True):
        assert boxes is not None
        # Differencing sees the square where it is and where it was: the box spans both.
        assert best_iou(boxes, box.union(Box(box.x0 - 4, box.y0, box.x1 - 4, box.y1))) > 0.5
        assert len(boxes) <= 2  # the pan itself is compensated, not proposed


def test_background_subtraction_needs_a_still_camera():
    frames, truth = moving_square_frames(30, pan=0, start=0, step=3)
    source = BackgroundSubtraction()
    found = [source.propose(frame) for frame in frames]
    assert best_iou(found[-1], truth[-1]) > 0.4


def test_a_hard_cut_is_reported_as_none():
    frames, _ = moving_square_frames(3, pan=0)
    other = np.full_like(frames[0], 255) - frames[0]
    source = CompensatedDifference()
    source.propose(frames[0])
    source.propose(frames[1])
    assert source.propose(other) is None


def test_saliency_finds_a_blob_on_a_plain_background():
    frame = np.full((120, 160, 3), 90, np.uint8)
    cv2.circle(frame, (110, 40), 14, (250, 40, 40), -1)
    boxes = SpectralResidualRegions().propose(frame)
    assert boxes and boxes[0].iou(Box(96, 26, 125, 55)) > 0.3


def test_unknown_sources_name_the_choices():
    with pytest.raises(ConfigError, match=r"choose from \['mog2', 'motion'\]"):
        build_motion_source("sam2")


def test_tracker_links_boxes_drops_short_tracks_and_splits_long_ones():
    config = TrackerConfig(min_track_sec=0.4, max_track_sec=1.0, max_missed=1)
    tracker = Tracker(config, fps=10.0, diagonal=200.0)  # L_min 4 frames, L_max 10 frames
    finished = []
    for frame in range(25):
        boxes = [Box(frame * 2, 10, frame * 2 + 20, 30)]  # one object for 25 frames
        if frame < 3:
            boxes.append(Box(150, 150, 170, 170))  # a blip for 3 frames: under L_min
        finished += tracker.update(frame, frame / 10.0, boxes)
    finished += tracker.finish()
    assert tracker.dropped == 1  # the blip; and the 5-frame tail survives (>= 4 frames)
    assert [(t.track_id, t.piece, t.length) for t in finished] == [(0, 0, 10), (0, 1, 10), (0, 2, 5)]
    assert tracker.splits == 2
    first = finished[0]
    assert first.union == Box(0, 10, 38, 30)
    assert all(first.union.iou(box.union(first.union)) == 1.0 for box in first.boxes)


def test_tracker_ends_every_track_at_a_cut():
    tracker = Tracker(TrackerConfig(min_track_sec=0.1, max_track_sec=5.0), fps=10.0, diagonal=100.0)
    for frame in range(5):
        assert tracker.update(frame, frame / 10, [Box(0, 0, 10, 10)]) == []
    ended = tracker.update(5, 0.5, None)
    assert len(ended) == 1 and tracker.active == 0


@pytest.fixture(scope="module")
def bikes_tokens(bikes_path):
    return semantic_tokens(bikes_path)


def test_bikes_tokens_follow_seal_rules(bikes_tokens):
    config = SemanticConfig()
    info = bikes_tokens.info
    assert len(bikes_tokens.scene) == config.scene_tokens
    times = [t.start for t in bikes_tokens.scene]
    gaps = np.diff(times)
    assert np.allclose(gaps, info.duration_sec / config.scene_tokens, atol=1.5 / float(info.fps))
    assert bikes_tokens.action, "no moving thing found in real street footage"
    fps = min(config.analysis_fps, float(info.fps))
    min_frames = math.ceil(config.tracker.min_track_sec * fps - 1e-9)
    max_frames = math.floor(config.tracker.max_track_sec * fps + 1e-9)
    for token in bikes_tokens.action:
        tracklet = token.tracklet
        assert min_frames <= tracklet.length <= max_frames
        assert token.box == tracklet.union
        assert all(token.box.union(b) == token.box for b in tracklet.boxes)
        assert 0 <= token.start <= token.end <= info.duration_sec
        assert token.image.dtype == np.uint8 and token.image.ndim == 3 and token.image.shape[2] == 3
        assert 0 <= token.box.x0 < token.box.x1 <= info.width and 0 <= token.box.y0 < token.box.y1 <= info.height
    assert bikes_tokens.dropped_tracklets > 0  # flicker shorter than L_min was dropped
    assert bikes_tokens.cuts >= 4  # the clip has five hard cuts
    per_keyframe = {}
    for token in bikes_tokens.object:
        per_keyframe[token.start] = per_keyframe.get(token.start, 0) + 1
    assert len(per_keyframe) <= config.object_keyframes
    assert max(per_keyframe.values()) <= config.max_objects_per_keyframe


def test_a_plugged_in_motion_source_replaces_the_default(bikes_path):
    class Fixed:
        """A stand-in for a segmentation model: one box, every frame."""

        def reset(self):
            self.calls = 0

        def propose(self, frame):
            self.calls += 1
            return [Box(10, 10, 60, 60)]

    source = Fixed()
    config = SemanticConfig(tracker=TrackerConfig(min_track_sec=0.2, max_track_sec=2.0))
    tokens = semantic_tokens(bikes_path, config, motion=source)
    assert source.calls > 0
    # One box all along: a 10 s track split into 2 s tracklets of one identity.
    assert {t.tracklet.track_id for t in tokens.action} == {0}
    assert len(tokens.action) == 5
    assert all(t.box.scaled(320 / 640) == Box(10, 10, 60, 60) for t in tokens.action)


def test_drawing_tracklets(bikes_path, bikes_tokens):
    image = draw_tracklets(bikes_path, bikes_tokens, frames=6, columns=3, tile_width=200, crop_height=0)
    tile_height = round(200 * bikes_tokens.info.height / bikes_tokens.info.width)
    assert image.shape == (2 * tile_height, 600, 3) and image.dtype == np.uint8
    with_crops = draw_tracklets(bikes_path, bikes_tokens, frames=6, columns=3, tile_width=200, crop_height=40)
    assert with_crops.shape[0] > image.shape[0]


def test_tokens_command_draws_and_lists(bikes_path, tmp_path, capsys):
    import json

    from salova.cli import main

    drawing = tmp_path / "figure" / "tracklets.png"
    with pytest.raises(SystemExit) as exit_info:
        main(["tokens", str(bikes_path), "--draw", str(drawing), "--frames", "4", "--columns", "2", "--json"])
    assert exit_info.value.code == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["counts"]["scene"] == SemanticConfig().scene_tokens
    assert {row["kind"] for row in listed["tokens"]} == {"scene", "action", "object"}
    image = cv2.imread(str(drawing))
    assert image is not None and image.shape[1] == 2 * 320


def test_rotated_videos_give_upright_tokens(make_video):
    frames, _ = moving_square_frames(30, pan=0, step=3)
    path = make_video("rotated.mp4", frames, rotation=90, fps=10)
    tokens = semantic_tokens(path, SemanticConfig(scene_tokens=2, object_keyframes=1))
    # Coded 160x120, shown a quarter turn: tokens are 120 wide and 160 high.
    assert [t.image.shape[:2] for t in tokens.scene] == [(160, 120), (160, 120)]
    assert tokens.scene[0].box == Box(0, 0, 120, 160)
    assert all(t.box.x1 <= 120 and t.box.y1 <= 160 for t in tokens.action)
