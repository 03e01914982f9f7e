"""Offline tokenizers of the ``tiny`` preset: byte-level, built with the ``tokenizers`` library.

The 256 byte symbols come first, then the special tokens, so that ``<s>``, ``</s>``, ``<pad>`` and
``<video>`` get the ids 256-259 that :func:`~salova.model.presets.tiny_config` sets. No model hub
is needed; the assistant's ``--model tiny`` and the tests use them.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from salova.model.presets import TINY_BOS_ID, TINY_EOS_ID

__all__ = ["TINY_CHAT_TEMPLATE", "tiny_llm_tokenizer", "tiny_text_tokenizer"]

BOS, EOS, PAD, VIDEO = "<s>", "</s>", "<pad>", "<video>"
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""A minimal Zephyr-style chat template: role marker, content, end of turn."""


def _byte_level(specials: list[str]) -> Tokenizer:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = Tokenizer(models.BPE(vocab={symbol: i for i, symbol in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(specials)
    return tokenizer


def tiny_llm_tokenizer() -> PreTrainedTokenizerFast:
    """The LLM's tokenizer: bytes, ``<s>`` ``</s>`` ``<pad>`` ``<video>`` and the chat role markers."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level([BOS, EOS, PAD, VIDEO, *CHAT_TOKENS]),
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
    )
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def tiny_text_tokenizer() -> PreTrainedTokenizerFast:
    """The router's text-tower tokenizer: bytes between ``<s>`` and ``</s>``."""
    backend = _byte_level([BOS, EOS, PAD])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, TINY_BOS_ID), (EOS, TINY_EOS_ID)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD)
