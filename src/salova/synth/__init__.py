"""The synthetic world: deterministic long videos whose content is known.

Videos are made of scenes separated by hard cuts; each scene shows a patterned background,
one to three drawn objects (shape, colour, size, motion or place) and sometimes a word on
screen. Every video comes with a JSON sidecar holding the true scene boundaries, one
caption per scene and multiple-choice questions whose evidence lies in known scenes.
Needle videos insert one short synthetic scene into real footage.

Example:
    >>> from salova.synth import SynthConfig, write_corpus, load_corpus
    >>> corpus = write_corpus("out/synth", SynthConfig(seed=0, num_videos=2, minutes=5))  # doctest: +SKIP
    >>> load_corpus("out/synth").videos[0].scenes[0].caption  # doctest: +SKIP
"""

from salova.errors import CorpusError, CorpusMismatchError
from salova.synth.needle import NeedleVideo, load_needle_video, make_needle_video
from salova.synth.questions import QUESTION_TYPES
from salova.synth.render import render_frame
from salova.synth.schema import (
    SynthBackground,
    SynthConfig,
    SynthCorpus,
    SynthObject,
    SynthQuestion,
    SynthScene,
    SynthVideo,
)
from salova.synth.world import generate_video
from salova.synth.writer import load_corpus, write_corpus, write_video

__all__ = [
    "SynthConfig",
    "SynthCorpus",
    "SynthVideo",
    "SynthScene",
    "SynthObject",
    "SynthBackground",
    "SynthQuestion",
    "QUESTION_TYPES",
    "CorpusError",
    "CorpusMismatchError",
    "NeedleVideo",
    "generate_video",
    "render_frame",
    "write_video",
    "write_corpus",
    "load_corpus",
    "make_needle_video",
    "load_needle_video",
]
