"""Helpers of the model tests: the tiny preset's offline tokenizers, tiny models and random videos.

(A module with a unique name rather than ``conftest``, so that tests can import it whatever other
test folders hold.)
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from salova.model import SalovaConfig, SalovaForCausalLM, SalovaProcessor, tiny_config
from salova.model.presets import TINY_BOS_ID, TINY_EOS_ID, TINY_PAD_ID, TINY_VIDEO_TOKEN_ID
from salova.model.tiny_tokenizers import tiny_llm_tokenizer, tiny_text_tokenizer


def make_llm_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = tiny_llm_tokenizer()
    assert tokenizer.convert_tokens_to_ids(["<s>", "</s>", "<pad>", "<video>"]) == [
        TINY_BOS_ID,
        TINY_EOS_ID,
        TINY_PAD_ID,
        TINY_VIDEO_TOKEN_ID,
    ]
    return tokenizer


def make_text_tower_tokenizer() -> PreTrainedTokenizerFast:
    return tiny_text_tokenizer()


def make_processor(config: SalovaConfig, **overrides) -> SalovaProcessor:
    return SalovaProcessor.from_config(config, make_llm_tokenizer(), make_text_tower_tokenizer(), **overrides)


def make_model(language_model: str = "llama", towers: str = "clip", **overrides) -> SalovaForCausalLM:
    torch.manual_seed(0)
    return SalovaForCausalLM(tiny_config(language_model, towers, **overrides)).eval()


def random_video(config: SalovaConfig, frames_per_segment: list[int], seed: int = 0) -> list[np.ndarray]:
    """Segments of random uint8 RGB frames at the vision tower's input size."""
    rng = np.random.default_rng(seed)
    size = config.vision_config.image_size
    return [rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8) for n in frames_per_segment]
