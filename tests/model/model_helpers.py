"""Helpers of the model tests: offline byte-level tokenizers, tiny models and random videos.

There is no model hub here, so tokenizers are built from scratch with the ``tokenizers`` library:
the 256 byte symbols, then the special tokens of the ``tiny`` preset at fixed ids. (A module with
a unique name rather than ``conftest``, so that tests can import it whatever other test folders
hold.)
"""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from salova.model import SalovaConfig, SalovaForCausalLM, SalovaProcessor, tiny_config
from salova.model.presets import TINY_BOS_ID, TINY_EOS_ID, TINY_PAD_ID, TINY_VIDEO_TOKEN_ID

BOS, EOS, PAD, VIDEO = "<s>", "</s>", "<pad>", "<video>"
CHAT_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
# A minimal template in the style of Zephyr/TinyLlama: role marker, content, end of turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _byte_level(specials: list[str]) -> Tokenizer:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = Tokenizer(models.BPE(vocab={symbol: i for i, symbol in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(specials)
    return tokenizer


def make_llm_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level([BOS, EOS, PAD, VIDEO, *CHAT_TOKENS]),
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    assert tokenizer.convert_tokens_to_ids([BOS, EOS, PAD, VIDEO]) == [
        TINY_BOS_ID,
        TINY_EOS_ID,
        TINY_PAD_ID,
        TINY_VIDEO_TOKEN_ID,
    ]
    return tokenizer


def make_text_tower_tokenizer() -> PreTrainedTokenizerFast:
    backend = _byte_level([BOS, EOS, PAD])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, TINY_BOS_ID), (EOS, TINY_EOS_ID)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD)


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
