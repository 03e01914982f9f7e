"""Configuration of the video ingest: scene detection, segment rules, frame sampling.

Every field is a named number with its source; nothing in :mod:`salova.video` uses a
literal where one of these belongs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from salova.errors import ConfigError

__all__ = ["SceneConfig", "SamplingConfig", "IngestConfig", "RESIZE_MODES"]

RESIZE_MODES = ("center_crop", "stretch", "pad")


def _require(condition: bool, name: str, value, expected: str) -> None:
    if not condition:
        raise ConfigError(f"{name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class SceneConfig:
    """Scene-cut detection (PySceneDetect ``AdaptiveDetector``) and the segment rules on top."""

    adaptive_threshold: float = 3.0
    """Ratio of a frame's content change to its neighbours' average that triggers a cut
    (paper section 3.1: PySceneDetect ``AdaptiveDetector`` with its default 3.0)."""
    min_scene_len: int = 15
    """Minimum frames between two detector cuts (``AdaptiveDetector`` default)."""
    window_width: int = 2
    """Frames on each side averaged by the adaptive ratio (``AdaptiveDetector`` default)."""
    min_content_val: float = 15.0
    """Minimum content change for a cut (``AdaptiveDetector`` default)."""
    luma_only: bool = False
    """Score only the luma channel (``AdaptiveDetector`` option)."""
    detect_width: int = 256
    """Frames are scaled down for detection by ``width / detect_width`` when wider
    (PySceneDetect's ``DEFAULT_MIN_WIDTH`` auto-downscale rule)."""
    min_segment_sec: float = 2.0
    """A cut closer than this to the previous accepted cut is dropped, so the short piece
    joins the segment before it; a short last piece joins the one before. 0 turns it off.
    At 1 FPS a shorter segment gives the connector one or two frames and adds a routing
    token that carries almost nothing."""
    max_segment_sec: float = 60.0
    """Segments longer than this are split; 0 turns it off. Keeps retrieval specific
    (SceneWalk segments average 33 s) and bounds the frames held in memory at once."""
    max_segments: int = 512
    """Upper bound on segments per video: with a known duration D the effective
    ``min_segment_sec`` becomes ``max(min_segment_sec, D / max_segments)``. 0 turns it off.
    Every segment adds one routing token to the LLM's input (the fast pathway)."""

    def __post_init__(self) -> None:
        _require(self.adaptive_threshold > 0, "adaptive_threshold", self.adaptive_threshold, "> 0")
        _require(self.min_scene_len >= 0, "min_scene_len", self.min_scene_len, ">= 0 frames")
        _require(self.window_width >= 1, "window_width", self.window_width, ">= 1")
        _require(self.min_content_val >= 0, "min_content_val", self.min_content_val, ">= 0")
        _require(self.detect_width >= 16, "detect_width", self.detect_width, ">= 16 pixels")
        _require(self.min_segment_sec >= 0, "min_segment_sec", self.min_segment_sec, ">= 0 (0 = off)")
        _require(self.max_segment_sec >= 0, "max_segment_sec", self.max_segment_sec, ">= 0 (0 = off)")
        _require(self.max_segments >= 0, "max_segments", self.max_segments, ">= 0 (0 = off)")
        if self.min_segment_sec and self.max_segment_sec:
            # A short last piece merges with a full-length one and the pair is halved; both
            # halves stay >= min only if max >= 2 * min.
            _require(
                self.max_segment_sec >= 2 * self.min_segment_sec,
                "max_segment_sec",
                self.max_segment_sec,
                f">= 2 * min_segment_sec = {2 * self.min_segment_sec:g} (or 0)",
            )


@dataclass(frozen=True)
class SamplingConfig:
    """Which frames are kept for the vision tower and at what size."""

    fps: float = 1.0
    """Frames kept per second of video (paper: 1 FPS on every benchmark, no frame drop at
    inference). The first frame of every ``1 / fps`` interval is kept."""
    frame_size: int = 336
    """Side of the square frame handed to the vision tower (CLIP ViT-L/14-336)."""
    resize: str = "center_crop"
    """``center_crop``: shortest side to ``frame_size`` then centre crop (CLIP's
    preprocessing); ``stretch``: resize to a square; ``pad``: fit inside and pad black."""

    def __post_init__(self) -> None:
        _require(self.fps > 0, "fps", self.fps, "> 0")
        _require(self.frame_size >= 8, "frame_size", self.frame_size, ">= 8 pixels")
        _require(self.resize in RESIZE_MODES, "resize", self.resize, f"one of {RESIZE_MODES}")


@dataclass(frozen=True)
class IngestConfig:
    """Everything the one-pass ingest needs."""

    scenes: SceneConfig = field(default_factory=SceneConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    keep_frames: bool = True
    """Convert and keep the sampled frames. ``False`` only counts them (cuts-only runs)."""
    strict: bool = False
    """Fail on the first damaged frame instead of skipping it and counting it."""
    max_frame_pixels: int = 7680 * 4320
    """Largest decodable frame (width x height); 8K UHD by default."""
    decode_threads: int = 0
    """Decoder threads; 0 lets FFmpeg choose (frame + slice threading)."""

    def __post_init__(self) -> None:
        _require(self.max_frame_pixels > 0, "max_frame_pixels", self.max_frame_pixels, "> 0")
        _require(self.decode_threads >= 0, "decode_threads", self.decode_threads, ">= 0")
