"""Scene sampling: determinism, independence, layout rules, uniqueness and near-duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from salova.synth import SynthConfig, generate_video
from salova.synth.language import object_phrase
from salova.synth.render import TEXT_BAND_TOP, background_contrast, stands_out
from salova.synth.vocab import SIZES, WORDS, pattern_phrase
from salova.synth.world import sample_scene_group, split_frames

CONFIG = SynthConfig(seed=7, num_videos=3, minutes=3.0, min_scene_sec=3.0, max_scene_sec=8.0, text_probability=0.5)
DUPLICATES = SynthConfig(seed=8, minutes=4.0, min_scene_sec=3.0, max_scene_sec=6.0, duplicate_probability=0.3)


@pytest.fixture(scope="module")
def videos():
    return [generate_video(CONFIG, i) for i in range(CONFIG.num_videos)]


def test_same_config_gives_the_same_video_and_videos_are_independent(videos):
    assert generate_video(CONFIG, 1) == videos[1]
    more = SynthConfig(**{**CONFIG.to_dict(), "num_videos": 10})
    assert generate_video(more, 1) == videos[1]
    assert videos[0].scenes != videos[1].scenes
    other_seed = SynthConfig(**{**CONFIG.to_dict(), "seed": 8})
    assert generate_video(other_seed, 0).scenes != videos[0].scenes
    with pytest.raises(ValueError, match="index"):
        generate_video(CONFIG, 3)


@pytest.mark.parametrize(("total", "low", "high"), [(480, 48, 160), (100, 16, 20), (17, 16, 16), (35, 16, 20)])
def test_split_frames_covers_the_total_within_bounds(total, low, high):
    lengths = split_frames(total, low, high, np.random.default_rng(0))
    assert sum(lengths) == total
    assert all(n >= low for n in lengths)
    assert all(n <= high for n in lengths[:-1])


def test_scenes_tile_the_video_on_frame_boundaries(videos):
    for video in videos:
        assert video.scenes[0].start_frame == 0 and video.scenes[-1].end_frame == video.num_frames
        for a, b in zip(video.scenes, video.scenes[1:], strict=False):
            assert a.end_frame == b.start_frame
        for scene in video.scenes:
            assert scene.start_sec == pytest.approx(scene.start_frame / video.fps)
            assert 3.0 * video.fps <= scene.num_frames


def test_adjacent_backgrounds_always_cut_sharply(videos):
    for video in [*videos, generate_video(DUPLICATES, 0)]:
        for a, b in zip(video.scenes, video.scenes[1:], strict=False):
            assert background_contrast(a.background, b.background) >= CONFIG.min_cut_score


def test_objects_are_distinct_visible_and_inside_their_area(videos):
    for scene in (s for v in videos for s in v.scenes):
        shapes = [o.shape for o in scene.objects]
        colors = [o.color for o in scene.objects]
        assert len(set(shapes)) == len(shapes) and len(set(colors)) == len(colors)
        assert 1 <= len(scene.objects) <= (2 if scene.text else 3)
        for obj in scene.objects:
            assert stands_out(obj.color, scene.background)
            radius = SIZES[obj.size] / 2
            bottom = TEXT_BAND_TOP if scene.text else 1.0
            for x, y in (obj.start, obj.end):
                assert radius <= x <= 1 - radius and radius <= y <= bottom - radius
            horizontal = obj.start[1] == obj.end[1]
            assert obj.motion in (("left", "right", "still") if horizontal else ("up", "down", "still"))


def test_no_accidental_duplicates_and_no_repeated_words(videos):
    for video in videos:
        keys = [s.content_key() for s in video.scenes]
        assert len(set(keys)) == len(keys)
        words = [s.text for s in video.scenes if s.text]
        assert len(set(words)) == len(words) > 0


def test_near_duplicates_repeat_an_earlier_non_adjacent_scene():
    video = generate_video(DUPLICATES, 0)
    duplicates = [s for s in video.scenes if s.duplicate_of is not None]
    assert duplicates, "a 0.3 duplicate probability gives duplicates in a 60-scene video"
    for scene in duplicates:
        original = video.scenes[scene.duplicate_of]
        assert original.duplicate_of is None and scene.index - original.index >= 2
        assert scene.content_key() == original.content_key()
    originals = [s.content_key() for s in video.scenes if s.duplicate_of is None]
    assert len(set(originals)) == len(originals)


def test_captions_name_everything_visible(videos):
    for scene in (s for v in videos for s in v.scenes):
        caption = scene.caption.lower()
        assert pattern_phrase(scene.background.color, scene.background.pattern) in caption
        for obj in scene.objects:
            assert object_phrase(obj) in caption
        if scene.text:
            assert f'"{scene.text.lower()}"' in caption
        else:
            assert '"' not in caption
    templates = {s.caption.split(" ")[0] for v in videos for s in v.scenes}
    assert len(templates) >= 3


def test_words_run_out_instead_of_repeating():
    config = SynthConfig(
        minutes=12.0, min_scene_sec=2.0, max_scene_sec=2.5, text_probability=1.0, questions_per_video=0
    )
    video = generate_video(config, 0)
    words = [s.text for s in video.scenes if s.text]
    assert len(video.scenes) > len(WORDS) == len(words) == len(set(words))


def test_still_objects_sit_clearly_inside_one_grid_cell(videos):
    still = [o for v in videos for s in v.scenes for o in s.objects if o.motion == "still"]
    assert len({o.position for o in still}) >= 6
    for obj in still:
        for value in obj.start:
            assert min(abs(value - 1 / 3), abs(value - 2 / 3)) >= 0.05, obj


@pytest.mark.parametrize("max_objects", [1, 3])
def test_a_scene_group_differs_only_in_its_first_objects_shape(max_objects):
    config = SynthConfig(max_objects=max_objects, text_probability=0.5, fps=4, min_scene_sec=4, max_scene_sec=6)
    for seed in range(20):
        group = sample_scene_group(config, np.random.default_rng(seed), 5)
        first = [scene.objects[0] for scene in group]
        assert len({scene.background for scene in group}) == 1
        assert len({o.color for o in first}) == 1 and len({o.shape for o in first}) == 5
        for scene in group:
            assert 16 <= scene.num_frames <= 24 and scene.start_frame == 0 and len(scene.objects) <= max_objects
            assert all(stands_out(o.color, scene.background) for o in scene.objects)
            assert len({o.shape for o in scene.objects}) == len({o.color for o in scene.objects}) == len(scene.objects)
            assert object_phrase(scene.objects[0]) in scene.caption.lower()
    with pytest.raises(ValueError, match="1 to 8 scenes"):
        sample_scene_group(config, np.random.default_rng(0), 9)
