"""Drawing: backgrounds, objects where the record says, text, smooth motion inside a scene."""

from __future__ import annotations

import numpy as np
import pytest

from salova.synth import SynthBackground, SynthObject, SynthScene
from salova.synth.render import (
    content_score,
    draw_background,
    render_frame,
    render_scene_frames,
    safe_square,
    stands_out,
)
from salova.synth.vocab import COLORS, PATTERNS, SHAPES

WIDTH, HEIGHT = 160, 120


BLUE = SynthBackground("blue", "plain")


def _scene(objects, text=None, background=BLUE, frames=24) -> SynthScene:
    return SynthScene(0, 0, frames, 0.0, frames / 8.0, background, tuple(objects), text, "caption")


def _pixel(frame, x, y):
    x0, y0, side = safe_square(WIDTH, HEIGHT)
    return frame[round(y0 + y * side), round(x0 + x * side)].tolist()


@pytest.mark.parametrize("pattern", PATTERNS)
def test_backgrounds_use_the_named_colour_and_a_shade(pattern):
    image = draw_background(SynthBackground("green", pattern), WIDTH, HEIGHT)
    assert image.shape == (HEIGHT, WIDTH, 3) and not image.flags.writeable
    tones = np.unique(image.reshape(-1, 3), axis=0)
    assert list(COLORS["green"]) in tones.tolist()
    assert len(tones) == (1 if pattern == "plain" else 2)


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_is_drawn_in_its_colour_at_its_place(shape):
    obj = SynthObject(shape, "yellow", "large", "still", (0.3, 0.4), (0.3, 0.4))
    frame = render_frame(_scene([obj]), 0, WIDTH, HEIGHT)
    assert _pixel(frame, 0.3, 0.4) == list(COLORS["yellow"])
    assert _pixel(frame, 0.8, 0.4) == list(COLORS["blue"])
    covered = np.all(frame == COLORS["yellow"], axis=-1).mean()
    assert 0.005 < covered < 0.1


def test_moving_objects_glide_from_start_to_end():
    obj = SynthObject("square", "red", "medium", "right", (0.2, 0.5), (0.8, 0.5))
    scene = _scene([obj], frames=16)
    frames = [f.copy() for f in render_scene_frames(scene, WIDTH, HEIGHT)]
    assert len(frames) == 16
    assert _pixel(frames[0], 0.2, 0.5) == list(COLORS["red"]) != _pixel(frames[0], 0.8, 0.5)
    assert _pixel(frames[-1], 0.8, 0.5) == list(COLORS["red"]) != _pixel(frames[-1], 0.2, 0.5)
    steps = [content_score(a, b) for a, b in zip(frames, frames[1:], strict=False)]
    assert max(steps) < 5.0  # smooth: far below a content detector's 15
    np.testing.assert_array_equal(render_frame(scene, 7, WIDTH, HEIGHT), frames[7])


def test_text_is_drawn_on_a_plate_at_the_bottom():
    plain = render_frame(_scene([]), 0, WIDTH, HEIGHT)
    with_text = render_frame(_scene([], text="MANGO"), 0, WIDTH, HEIGHT)
    changed = np.any(plain != with_text, axis=-1)
    rows = np.flatnonzero(changed.any(axis=1))
    assert rows.min() > HEIGHT * 0.7
    assert np.all(with_text[changed] <= 255) and (with_text[changed] == 255).all(axis=-1).mean() > 0.3


def test_reused_buffer_and_bad_buffer():
    buffer = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame = next(render_scene_frames(_scene([]), WIDTH, HEIGHT, out=buffer))
    assert frame is buffer
    with pytest.raises(ValueError, match="uint8"):
        next(render_scene_frames(_scene([]), WIDTH, HEIGHT, out=np.zeros((2, 2, 3), np.uint8)))
    with pytest.raises(IndexError):
        render_frame(_scene([]), 24, WIDTH, HEIGHT)


def test_low_contrast_colours_are_flagged():
    assert not stands_out("gray", SynthBackground("white", "horizontal stripes"))
    assert not stands_out("blue", SynthBackground("blue", "plain"))
    assert stands_out("yellow", SynthBackground("blue", "checkered"))
