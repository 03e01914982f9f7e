"""Fixtures for the data-builder tests: a small synthetic corpus, a tiny CLIP saved as a standard
transformers folder, the bundled MiniLM, and one reference build that several tests compare with.

There is no model hub here: the tiny CLIP is randomly initialised (seeded) with a byte-level
tokenizer built from scratch, and loaded back by path exactly as a trained CLIP folder would be.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from salova.data import BuildConfig, ScoringConfig, build_dataset
from salova.data.random_clip import TINY_CLIP, save_random_clip
from salova.synth import SynthConfig, write_corpus
from salova.video import IngestConfig, SamplingConfig

TINY_IMAGE_SIZE = TINY_CLIP.image_size

CORPUS_CONFIG = SynthConfig(
    seed=11,
    num_videos=4,
    minutes=0.75,
    width=128,
    height=96,
    min_scene_sec=4.0,
    max_scene_sec=10.0,
    questions_per_video=3,
    duplicate_probability=0.25,
)
"""Four 45-second videos of 4-10 s scenes, some repeated as near-duplicates."""


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """Hidden 32, 2 layers, 32 px images, byte-level tokenizer, 64 text positions."""
    return save_random_clip(tmp_path_factory.mktemp("tiny-clip"), TINY_CLIP)


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> Path:
    """A randomly initialised LLaVA (CLIP vision + Llama, hidden 32) with a word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
    words = "a an the red green blue square circle moves left right describe video clip in detail user assistant :"
    vocab = {token: i for i, token in enumerate(specials + words.split())}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.add_special_tokens({"additional_special_tokens": ["<image>"]})
    template = (
        "{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
        "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}{% if add_generation_prompt %}assistant : "
        "{% endif %}"
    )
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8
    )
    text = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(LlavaConfig(vision_config=vision, text_config=text, image_token_index=4))
    # A random model may well emit only special tokens; keep it to words so the caption is not empty.
    model.generation_config.suppress_tokens = list(range(len(specials)))
    crop = {"height": 32, "width": 32}
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=crop),
        tokenizer=fast,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token="<image>",
        chat_template=template,
    )
    folder = tmp_path_factory.mktemp("tiny-vlm")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), CORPUS_CONFIG, progress=False)


@pytest.fixture(scope="session")
def videos_dir(synth_corpus) -> Path:
    return synth_corpus.root / "videos"


def make_build_config(clip: Path | None, **changes) -> BuildConfig:
    """The test build: captions and questions, 32 px frames, the tiny CLIP and MiniLM."""
    config = BuildConfig(
        task="both",
        ingest=IngestConfig(sampling=SamplingConfig(frame_size=TINY_IMAGE_SIZE)),
        scoring=ScoringConfig(v2t_model=None if clip is None else str(clip)),
    )
    return replace(config, **changes)


@pytest.fixture(scope="session")
def build_config(tiny_clip) -> BuildConfig:
    return make_build_config(tiny_clip)


@pytest.fixture(scope="session")
def reference_build(tmp_path_factory, videos_dir, build_config) -> Path:
    """One uninterrupted in-process build of the corpus (read-only for the tests)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    summary = build_dataset(videos_dir, out, build_config)
    assert summary.complete and summary.built == 4
    return out


@pytest.fixture
def corpus_copy(tmp_path, synth_corpus) -> Path:
    """A writable copy of the corpus's videos folder."""
    return Path(shutil.copytree(synth_corpus.root / "videos", tmp_path / "videos"))
