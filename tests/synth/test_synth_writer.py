"""Writing corpora: sidecars agree with the decoded videos, atomic writes, re-runs, errors."""

from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest

from salova.synth import CorpusError, CorpusMismatchError, SynthConfig, load_corpus, render_frame, write_corpus
from salova.synth import writer as writer_module
from salova.synth.vocab import COLORS

CONFIG = SynthConfig(
    seed=5,
    num_videos=2,
    minutes=0.5,
    min_scene_sec=3.0,
    max_scene_sec=6.0,
    width=160,
    height=120,
    questions_per_video=4,
)
MAX_MEAN_ERROR = 6.0  # mean |decoded - drawn| per channel after H.264 at crf 23


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), CONFIG, progress=False)


def _decode(path):
    with av.open(str(path)) as container:
        return [(f.to_ndarray(format="rgb24"), f.time, f.key_frame) for f in container.decode(video=0)]


def _leftovers(root):
    return sorted(p.name for p in root.rglob(".*"))


def test_layout_manifest_and_load_round_trip(corpus):
    manifest = json.loads((corpus.root / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["config"] == CONFIG.to_dict()
    assert [v["id"] for v in manifest["videos"]] == [v.id for v in corpus.videos] == ["synth-5-00000", "synth-5-00001"]
    for video in corpus.videos:
        assert corpus.video_path(video).stat().st_size > 0
        assert json.loads(corpus.sidecar_path(video).read_text()) == video.to_dict()
    assert load_corpus(corpus.root) == corpus
    assert _leftovers(corpus.root) == []


def test_decoded_video_agrees_with_its_sidecar(corpus):
    video = corpus.videos[0]
    frames = _decode(corpus.video_path(video))
    assert len(frames) == video.num_frames
    for index, (image, time, key) in enumerate(frames):
        assert time == pytest.approx(index / video.fps)
        scene = video.scene_at(index)
        if index == scene.start_frame:
            assert key, f"scene {scene.index} does not start on a keyframe"
        if index % 3 == 0:
            drawn = render_frame(scene, index, video.width, video.height).astype(np.int16)
            error = np.abs(image.astype(np.int16) - drawn).mean()
            assert error < MAX_MEAN_ERROR, (index, error)
    for previous, scene in zip(video.scenes, video.scenes[1:], strict=False):
        first = frames[scene.start_frame][0].astype(np.int16)
        drawn_previous = render_frame(previous, previous.end_frame - 1, video.width, video.height)
        assert np.abs(first - drawn_previous).mean() > 4 * MAX_MEAN_ERROR


def test_background_colour_of_each_scene_is_visible_in_its_frames(corpus):
    video = corpus.videos[1]
    frames = _decode(corpus.video_path(video))
    for scene in video.scenes:
        middle = frames[(scene.start_frame + scene.end_frame) // 2][0]
        drawn = render_frame(scene, (scene.start_frame + scene.end_frame) // 2, video.width, video.height)
        base = np.all(drawn == COLORS[scene.background.color], axis=-1)
        assert base.mean() > 0.3
        mean_colour = middle[base].astype(float).mean(axis=0)
        assert np.abs(mean_colour - COLORS[scene.background.color]).max() < 12


def test_same_config_gives_identical_files(corpus, tmp_path):
    again = write_corpus(tmp_path / "again", CONFIG, progress=False)
    assert again.videos == corpus.videos
    for video in corpus.videos:
        assert again.sidecar_path(video).read_bytes() == corpus.sidecar_path(video).read_bytes()
        assert again.video_path(video).read_bytes() == corpus.video_path(video).read_bytes()


def test_rerun_skips_complete_videos_and_redoes_edited_ones(corpus, tmp_path, monkeypatch):
    root = tmp_path / "copy"
    shutil.copytree(corpus.root, root)
    sidecar = root / "videos" / "synth-5-00001.json"
    sidecar.write_text(sidecar.read_text().replace(corpus.videos[1].scenes[0].caption, "edited"))
    encoded = []
    real_encode = writer_module.encode_frames

    def recording_encode(path, *args, **kwargs):
        encoded.append(path.name)
        return real_encode(path, *args, **kwargs)

    monkeypatch.setattr(writer_module, "encode_frames", recording_encode)
    assert write_corpus(root, CONFIG, progress=False).videos == corpus.videos
    assert encoded == ["synth-5-00001.mp4"]
    write_corpus(root, CONFIG, progress=False)
    assert encoded == ["synth-5-00001.mp4"]
    assert json.loads(sidecar.read_text()) == corpus.videos[1].to_dict()


def test_interrupted_write_leaves_nothing_partial_and_a_rerun_completes(tmp_path, monkeypatch):
    root = tmp_path / "crash"
    real_frames = writer_module._video_frames

    def crash_in_second_video(video, bar):
        for i, frame in enumerate(real_frames(video, bar)):
            if video.index == 1 and i == 40:
                raise RuntimeError("simulated crash while encoding")
            yield frame

    monkeypatch.setattr(writer_module, "_video_frames", crash_in_second_video)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_corpus(root, CONFIG, progress=False)
    names = sorted(p.name for p in (root / "videos").iterdir())
    assert names == ["synth-5-00000.json", "synth-5-00000.mp4"]
    assert _leftovers(root) == []
    assert json.loads((root / "manifest.json").read_text())["complete"] is False
    with pytest.raises(CorpusError, match="not finished"):
        load_corpus(root)
    first_mtime = (root / "videos" / "synth-5-00000.mp4").stat().st_mtime_ns

    monkeypatch.setattr(writer_module, "_video_frames", real_frames)
    corpus = write_corpus(root, CONFIG, progress=False)
    assert load_corpus(root) == corpus and len(corpus.videos) == 2
    assert (root / "videos" / "synth-5-00000.mp4").stat().st_mtime_ns == first_mtime


def test_a_different_config_in_the_same_folder_is_refused(corpus):
    other = SynthConfig(**{**CONFIG.to_dict(), "seed": 6})
    with pytest.raises(CorpusMismatchError) as info:
        write_corpus(corpus.root, other, progress=False)
    assert info.value.path == corpus.root and "seed" in str(info.value)


def test_unusable_output_folders_raise_with_their_path(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(CorpusError) as info:
        write_corpus(a_file, CONFIG, progress=False)
    assert info.value.path == a_file
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(CorpusError, match="not empty"):
        write_corpus(foreign, CONFIG, progress=False)


def test_load_corpus_reports_missing_and_broken_files(corpus, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(corpus.root, root)
    (root / "videos" / "synth-5-00001.mp4").unlink()
    with pytest.raises(CorpusError, match="synth-5-00001"):
        load_corpus(root)
    (root / "videos" / "synth-5-00000.json").write_text("{not json")
    with pytest.raises(CorpusError) as info:
        load_corpus(root)
    assert info.value.path.name == "synth-5-00000.json"
    with pytest.raises(CorpusError, match="missing"):
        load_corpus(tmp_path / "nowhere")
