"""Every kind of bad or unusual input: typed error, one-line CLI message, nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from media import solid_frames, write_audio_only
from salova.cli import main
from salova.errors import (
    CorruptVideoError,
    NoVideoStreamError,
    VideoDecodeError,
    VideoNotFoundError,
    VideoPermissionError,
    VideoTooLargeError,
)
from salova.video import IngestConfig, SamplingConfig, SceneConfig, segment_video


def run_cli(args, capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_cli_error(path, problem, tmp_path, capsys, extra=()):
    """The CLI prints one `error:` line naming the file and the problem, exits 2, writes nothing."""
    out_file = tmp_path / "out" / "segments.json"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, out, err = run_cli(["segment", str(path), "-o", str(out_file), "--no-progress", *extra], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and str(path) in lines[0] and problem in lines[0]
    assert "Traceback" not in err and out == ""
    assert not out_file.exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name != "out") == before


@pytest.fixture
def copy_of_bikes(bikes_path, tmp_path):
    return shutil.copy(bikes_path, tmp_path / "bikes.mp4")


def test_missing_path(tmp_path, capsys):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VideoNotFoundError, match="no such file"):
        segment_video(missing)
    assert_cli_error(missing, "no such file", tmp_path, capsys)


def test_directory(tmp_path, capsys):
    folder = tmp_path / "clips.mp4"
    folder.mkdir()
    with pytest.raises(VideoNotFoundError, match="is a directory"):
        segment_video(folder)
    assert_cli_error(folder, "is a directory", tmp_path, capsys)


def test_zero_bytes(tmp_path, capsys):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(VideoDecodeError, match=r"empty \(0 bytes\)"):
        segment_video(empty)
    assert_cli_error(empty, "empty", tmp_path, capsys)


def test_text_file_named_mp4(tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("these are meeting notes, not a video\n" * 50)
    with pytest.raises(VideoDecodeError, match="cannot be opened as a video") as info:
        segment_video(text)
    assert not isinstance(info.value, NoVideoStreamError)
    assert_cli_error(text, "cannot be opened as a video", tmp_path, capsys)


def test_truncated_mp4_without_index(copy_of_bikes, tmp_path, capsys):
    # The sample's index (moov) sits at the end: cutting the file loses it.
    data = copy_of_bikes.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="truncated or not a video file"):
        segment_video(truncated)
    assert_cli_error(truncated, "truncated", tmp_path, capsys)


def test_truncated_mp4_with_index_first(make_video, tmp_path, capsys):
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(100)]
    video = make_video("faststart.mp4", frames, faststart=True)
    data = video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    # Lenient: what is there is used and the truncation is reported.
    result = segment_video(cut)
    assert result.truncated and result.segments[-1].end_sec < 3.0
    # Strict: a typed error.
    with pytest.raises(CorruptVideoError, match="truncated"):
        segment_video(cut, IngestConfig(strict=True))
    assert_cli_error(cut, "truncated", tmp_path, capsys, extra=["--strict"])


def test_corrupted_middle_skips_and_reports_or_fails_strict(copy_of_bikes, tmp_path, capsys):
    data = bytearray(copy_of_bikes.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 20_000] = np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))

    result = segment_video(damaged)
    assert result.damaged_frames > 0
    assert result.segments[0].start_frame == 0 and result.segments[-1].end_frame == 250

    code, out, err = run_cli(["segment", str(damaged), "--json", "--no-progress"], capsys)
    assert code == 0 and out.startswith("[")
    assert f"skipped {result.damaged_frames} damaged frames" in err

    with pytest.raises(CorruptVideoError, match="damaged video data"):
        segment_video(damaged, IngestConfig(strict=True))
    assert_cli_error(damaged, "damaged video data", tmp_path, capsys, extra=["--strict"])


def test_audio_only(tmp_path, capsys):
    audio = write_audio_only(tmp_path / "voice.m4a")
    with pytest.raises(NoVideoStreamError, match=r"has no video stream \(streams: audio\)"):
        segment_video(audio)
    assert_cli_error(audio, "no video stream", tmp_path, capsys)


def test_single_frame_video_is_one_segment_with_one_frame(make_video):
    video = make_video("still.mp4", solid_frames([(90, 10, 200)], 1))
    result = segment_video(video)
    assert len(result.segments) == 1
    only = result.segments[0]
    assert (only.start_frame, only.end_frame, only.num_frames) == (0, 1, 1)
    assert only.frames.shape == (1, 336, 336, 3)


def test_very_large_resolution_is_bounded_and_limit_is_enforced(make_video, tmp_path, capsys):
    frames = solid_frames([(200, 0, 0), (0, 0, 200)], 20, size=(3840, 2160))
    video = make_video("uhd.mp4", frames)
    result = segment_video(video, IngestConfig(scenes=SceneConfig(min_segment_sec=0)))
    assert [s.start_frame for s in result.segments] == [0, 20]
    assert result.segments[0].frames.shape[1:] == (336, 336, 3)
    with pytest.raises(VideoTooLargeError, match="3840x2160 .* exceeds max_frame_pixels=1000000"):
        segment_video(video, IngestConfig(max_frame_pixels=1_000_000))


def test_variable_frame_rate_uses_timestamps(make_video):
    # 40 frames over 8 s with irregular spacing; colour changes at t = 4 s.
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(0, 8, 38)).tolist()
    times = sorted({0.0, 4.0, *times})
    frames = [np.full((48, 64, 3), (220, 40, 40) if t < 4.0 else (40, 40, 220), np.uint8) for t in times]
    video = make_video("vfr.mp4", frames, times=times)
    config = IngestConfig(scenes=SceneConfig(min_scene_len=2, min_segment_sec=0))
    result = segment_video(video, config)
    assert [round(s.start_sec, 3) for s in result.segments] == [0.0, 4.0]
    first, second = result.segments
    sampled = np.concatenate([first.frame_times, second.frame_times])
    # One frame per second of timeline, at the first timestamp inside each second.
    in_second = [[t for t in times if sec <= t < sec + 1] for sec in range(8)]
    expected = [min(ts) for ts in in_second if ts]
    assert sampled.tolist() == pytest.approx(expected, abs=1e-3)
    assert np.argmax(second.frames.reshape(-1, 3).mean(axis=0)) == 2


@pytest.mark.parametrize(("rotation", "top_color"), [(90, 2), (-90, 0), (0, None)])
def test_rotation_metadata_gives_upright_frames(make_video, rotation, top_color):
    # Stored 64x32: left half red, right half blue.
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :32] = (230, 20, 20)
    image[:, 32:] = (20, 20, 230)
    video = make_video(f"rot{rotation}.mp4", [image] * 10, rotation=rotation)
    result = segment_video(video, IngestConfig(sampling=SamplingConfig(frame_size=32, resize="pad")))
    frame = result.segments[0].frames[0].astype(int)
    if top_color is None:  # landscape, padded top and bottom
        assert frame[16, 4].argmax() == 0 and frame[16, 28].argmax() == 2
    else:  # portrait after rotation: one colour on top, the other below
        top, bottom = frame[4, 16], frame[28, 16]
        assert top.argmax() == top_color and bottom.argmax() == 2 - top_color
        assert frame[16, 2].max() < 30  # padded sides


def test_unreadable_permissions(copy_of_bikes, tmp_path, capsys):
    copy_of_bikes.chmod(0)
    try:
        if os.geteuid() != 0:
            with pytest.raises(VideoPermissionError, match="permission denied"):
                segment_video(copy_of_bikes)
            assert_cli_error(copy_of_bikes, "permission denied", tmp_path, capsys)
            return
        # Root reads anything; drop the capabilities that let it, then run the real CLI.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        out_file = tmp_path / "out.json"
        proc = subprocess.run(
            [
                setpriv,
                "--bounding-set=-dac_override,-dac_read_search",
                sys.executable,
                "-m",
                "salova",
                "segment",
                str(copy_of_bikes),
                "-o",
                str(out_file),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2
        assert proc.stderr.strip() == f"error: {copy_of_bikes}: permission denied (cannot read the file)"
        assert not out_file.exists()
    finally:
        copy_of_bikes.chmod(0o644)
