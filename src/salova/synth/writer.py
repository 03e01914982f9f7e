"""Writing synthetic videos to disk: H.264 encoding with PyAV, JSON sidecars, corpora.

Layout of a corpus folder::

    out_dir/manifest.json          format, version, config, complete flag, list of videos
    out_dir/videos/<id>.mp4        H.264 (libx264), yuv420p, constant frame rate
    out_dir/videos/<id>.json       sidecar: scenes, captions, questions (see SynthVideo.to_dict)

Every file is written under a temporary name in its final folder and moved into place
with ``os.replace``, so an interrupted run never leaves a half-written mp4 or JSON. The
sidecar is written after its mp4, so a sidecar that matches the config marks a finished
video; a re-run skips those. The encoder runs single-threaded with options whose output is
reproducible, so the same config gives byte-identical files on the same PyAV build.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Collection, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from tqdm import tqdm

from salova import fileio
from salova.errors import ConfigError, CorpusError, CorpusMismatchError, DataError
from salova.synth.render import render_scene_frames
from salova.synth.schema import SYNTH_FORMAT, SYNTH_FORMAT_VERSION, SynthConfig, SynthCorpus, SynthVideo
from salova.synth.world import generate_video, video_id

__all__ = [
    "MANIFEST_NAME",
    "VIDEOS_DIR",
    "encode_frames",
    "write_video",
    "write_corpus",
    "load_corpus",
    "atomic_write_json",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
"""File name of a corpus manifest."""
VIDEOS_DIR = "videos"
"""Sub-folder of a corpus that holds the mp4s and sidecars."""
X264_PRESET = "superfast"
"""Fast, and (unlike presets that use macroblock-tree lookahead) reproducible byte for byte."""
FPS_DENOMINATOR_LIMIT = 1001
"""Frame rates are stored as fractions with at most this denominator (29.97 -> 30000/1001)."""
DEFAULT_CONFIG = SynthConfig()
"""The config ``write_corpus`` uses when given none."""


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (see :mod:`salova.fileio`).

    Raises:
        CorpusError: the file cannot be written.
    """
    try:
        fileio.atomic_write_json(path, data, indent=1)
    except OSError as exc:
        raise CorpusError(path, f"cannot write: {exc.strerror or exc}") from exc


def _frame_rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(FPS_DENOMINATOR_LIMIT)


def encode_frames(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    width: int,
    height: int,
    crf: int,
    keyframe_sec: float,
    keyframes: Collection[int] = (),
) -> int:
    """Encode RGB frames to an H.264 mp4, atomically.

    Args:
        path: destination ``.mp4``; written under a temporary name, then moved into place.
        frames: iterable of ``(height, width, 3)`` uint8 RGB arrays (a reused buffer is fine).
        fps: frame rate.
        width: frame width (even).
        height: frame height (even).
        crf: x264 constant rate factor.
        keyframe_sec: largest gap between keyframes in seconds.
        keyframes: frame numbers that must be keyframes (e.g. scene starts, for cheap seeking).

    Returns:
        The number of frames written.

    Raises:
        CorpusError: the file cannot be written.
    """
    path = Path(path)
    fileio.remove_stale_parts(path)
    yuv = np.empty((height * 3 // 2, width), np.uint8)
    forced = set(keyframes)
    count = 0
    try:
        with fileio.atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=_frame_rate(fps))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.thread_count = 1
            stream.codec_context.gop_size = max(1, round(keyframe_sec * fps))
            stream.options = {"preset": X264_PRESET, "crf": str(crf), "x264-params": "forced-idr=1"}
            for frame in frames:
                cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420, dst=yuv)
                packet_frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                packet_frame.pts = count
                if count in forced:
                    packet_frame.pict_type = av.video.frame.PictureType.I
                container.mux(stream.encode(packet_frame))
                count += 1
            container.mux(stream.encode(None))
    except OSError as exc:
        raise CorpusError(path, f"cannot write video: {exc}") from exc
    return count


def _video_frames(video: SynthVideo, bar: tqdm | None):
    buffer = np.empty((video.height, video.width, 3), np.uint8)
    for scene in video.scenes:
        yield from render_scene_frames(scene, video.width, video.height, out=buffer)
        if bar is not None:
            bar.update(scene.num_frames)


def _is_complete(video: SynthVideo, directory: Path) -> bool:
    sidecar = directory / f"{video.id}.json"
    mp4 = directory / video.file
    if not sidecar.is_file() or not mp4.is_file() or mp4.stat().st_size == 0:
        return False
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")) == video.to_dict()
    except (OSError, ValueError):
        return False


def write_video(directory: str | Path, config: SynthConfig, index: int, *, bar: tqdm | None = None) -> SynthVideo:
    """Generate, encode and describe video ``index`` of a corpus (skipped if already complete).

    Videos are independent, so several processes may write different indices of one corpus.

    Args:
        directory: folder of the mp4 and its sidecar (``out_dir/videos`` in a corpus).
        config: the corpus config.
        index: the video's number, ``0 <= index < config.num_videos``.
        bar: optional progress bar, advanced by frames.

    Returns:
        The video record, as written to its sidecar.

    Raises:
        CorpusError: a file cannot be written.
    """
    directory = Path(directory)
    video = generate_video(config, index)
    if _is_complete(video, directory):
        logger.info("%s is complete; skipped", video.id)
        if bar is not None:
            bar.update(video.num_frames)
        return video
    keyframes = {scene.start_frame for scene in video.scenes}
    written = encode_frames(
        directory / video.file,
        _video_frames(video, bar),
        fps=config.fps,
        width=config.width,
        height=config.height,
        crf=config.crf,
        keyframe_sec=config.keyframe_sec,
        keyframes=keyframes,
    )
    if written != video.num_frames:
        raise AssertionError(f"{video.id}: wrote {written} frames, expected {video.num_frames}")
    atomic_write_json(directory / f"{video.id}.json", video.to_dict())
    return video


def _manifest(config: SynthConfig, videos: list[SynthVideo], complete: bool) -> dict[str, Any]:
    return {
        "format": SYNTH_FORMAT,
        "version": SYNTH_FORMAT_VERSION,
        "complete": complete,
        "config": config.to_dict(),
        "videos": [
            {
                "id": v.id,
                "video": f"{VIDEOS_DIR}/{v.file}",
                "sidecar": f"{VIDEOS_DIR}/{v.id}.json",
                "num_frames": v.num_frames,
                "duration_sec": v.duration_sec,
                "num_scenes": len(v.scenes),
                "num_questions": len(v.questions),
            }
            for v in videos
        ],
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CorpusError(path, "missing") from exc
    except (OSError, ValueError) as exc:
        raise CorpusError(path, f"unreadable JSON: {exc}") from exc


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_NAME
    manifest = _read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != SYNTH_FORMAT:
        raise CorpusError(path, f"not a {SYNTH_FORMAT} manifest")
    if manifest.get("version") != SYNTH_FORMAT_VERSION:
        raise CorpusError(
            path, f"written by format version {manifest.get('version')!r}; this salova reads {SYNTH_FORMAT_VERSION}"
        )
    return manifest


def _prepare_root(root: Path, config: SynthConfig) -> None:
    if root.exists() and not root.is_dir():
        raise CorpusError(root, "exists and is not a folder")
    try:
        (root / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CorpusError(root, f"cannot create the corpus folder: {exc.strerror or exc}") from exc
    if (root / MANIFEST_NAME).exists():
        existing = _read_manifest(root).get("config")
        if existing != config.to_dict():
            changed = sorted(
                k for k, v in config.to_dict().items() if not isinstance(existing, dict) or existing.get(k) != v
            )
            raise CorpusMismatchError(
                root, f"holds a corpus made with another config (differs in {changed}); use a new folder"
            )
    elif any(p.name != VIDEOS_DIR for p in root.iterdir()) or any((root / VIDEOS_DIR).iterdir()):
        raise CorpusError(root, "is not empty and holds no synthetic corpus; use an empty or new folder")


def write_corpus(out_dir: str | Path, config: SynthConfig = DEFAULT_CONFIG, *, progress: bool = True) -> SynthCorpus:
    """Write a deterministic corpus of synthetic videos with sidecars, captions and questions.

    Args:
        out_dir: corpus folder (created if missing). A folder that already holds a corpus of
            the same config is completed: finished videos are skipped.
        config: what to generate.
        progress: show a progress bar (frames) on stderr.

    Returns:
        The corpus as written.

    Raises:
        CorpusMismatchError: ``out_dir`` holds a corpus made with another config.
        CorpusError: ``out_dir`` is not usable (a file, not empty, not writable).

    Example:
        >>> corpus = write_corpus("out/synth", SynthConfig(minutes=1.0), progress=False)  # doctest: +SKIP
        >>> corpus.videos[0].questions[0].options["A"]  # doctest: +SKIP
    """
    root = Path(out_dir)
    _prepare_root(root, config)
    atomic_write_json(root / MANIFEST_NAME, _manifest(config, [], complete=False))
    videos: list[SynthVideo] = []
    total = config.num_videos * config.num_frames
    with tqdm(total=total, unit="frame", desc="synth", disable=not progress, file=sys.stderr) as bar:
        for index in range(config.num_videos):
            videos.append(write_video(root / VIDEOS_DIR, config, index, bar=bar))
    atomic_write_json(root / MANIFEST_NAME, _manifest(config, videos, complete=True))
    logger.info("wrote %d synthetic videos to %s", len(videos), root)
    return SynthCorpus(root=root, config=config, videos=tuple(videos))


def load_corpus(out_dir: str | Path) -> SynthCorpus:
    """Read a corpus written by :func:`write_corpus`, checking that it is complete.

    Args:
        out_dir: the corpus folder.

    Returns:
        The corpus with every video's record read from its sidecar.

    Raises:
        CorpusError: the manifest or a sidecar is missing, malformed or incomplete, or a
            listed mp4 is missing.
    """
    root = Path(out_dir)
    manifest = _read_manifest(root)
    path = root / MANIFEST_NAME
    if manifest.get("complete") is not True:
        raise CorpusError(path, "the corpus was not finished; run write_corpus again with the same config")
    try:
        config = SynthConfig.from_dict(manifest.get("config", {}))
    except (ConfigError, TypeError) as exc:
        raise CorpusError(path, f"invalid config: {exc}") from exc
    entries = manifest.get("videos")
    if not isinstance(entries, list) or len(entries) != config.num_videos:
        raise CorpusError(path, f"lists {len(entries or [])} videos, the config asks for {config.num_videos}")
    videos = []
    for index, entry in enumerate(entries):
        expected = video_id(config.seed, index)
        if not isinstance(entry, dict) or entry.get("id") != expected:
            raise CorpusError(path, f"entry {index} should list video {expected}, got {entry!r}")
        sidecar = root / VIDEOS_DIR / f"{expected}.json"
        try:
            video = SynthVideo.from_dict(_read_json(sidecar), where=str(sidecar))
        except DataError as exc:
            if isinstance(exc, CorpusError):
                raise
            raise CorpusError(sidecar, str(exc)) from exc
        if video.id != expected or not (root / VIDEOS_DIR / video.file).is_file():
            raise CorpusError(sidecar, f"does not describe an existing video {expected}")
        videos.append(video)
    return SynthCorpus(root=root, config=config, videos=tuple(videos))
