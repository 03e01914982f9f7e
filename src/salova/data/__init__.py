"""SceneWalk-style training data: segment long videos, caption every segment, score
query-segment correspondence (V2T and T2T) and turn it into the router's supervision.

Public entry points:

- :func:`build_dataset` — the resumable build behind ``salova build-data``.
- :class:`Record` and :func:`read_records` / :func:`write_records` — the record schema.
- :mod:`salova.data.convert` — converters to and from the released code's JSON and the
  public SceneWalk rows.
- :func:`compute_stats` — the statistics behind ``salova data-stats``.

Example:
    >>> from salova.data import BuildConfig, ScoringConfig, build_dataset, read_records
    >>> config = BuildConfig(scoring=ScoringConfig(v2t_model="models/clip"))  # doctest: +SKIP
    >>> build_dataset("out/synth/videos", "out/data", config)  # doctest: +SKIP
    >>> read_records("out/data/captions.jsonl")[0].positives(0)  # doctest: +SKIP
    [0]
"""

from salova.data.build import BuildSummary, build_dataset
from salova.data.captioners import CAPTIONERS, Captioner, CaptionerConfig, build_captioner
from salova.data.engines import ENGINES, build_engine
from salova.data.instructions import CAPTION_INSTRUCTIONS, draw_instruction
from salova.data.pipeline import BuildConfig, VideoBuilder, process_video
from salova.data.schema import Provenance, Record, Scene, Turn, read_records, write_records
from salova.data.scoring import BUNDLED_T2T_MODEL, ScoringConfig, TextTextScorer, VideoTextScorer
from salova.data.sources import VideoInput, discover_videos
from salova.data.supervision import LABEL_RULES, supervise

__all__ = [
    "BuildConfig",
    "BuildSummary",
    "build_dataset",
    "VideoBuilder",
    "process_video",
    "CaptionerConfig",
    "Captioner",
    "CAPTIONERS",
    "build_captioner",
    "ENGINES",
    "build_engine",
    "CAPTION_INSTRUCTIONS",
    "draw_instruction",
    "ScoringConfig",
    "BUNDLED_T2T_MODEL",
    "TextTextScorer",
    "VideoTextScorer",
    "LABEL_RULES",
    "supervise",
    "Record",
    "Scene",
    "Turn",
    "Provenance",
    "read_records",
    "write_records",
    "VideoInput",
    "discover_videos",
]
