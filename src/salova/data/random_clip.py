"""Randomly initialised CLIP folders, for tests and throughput benchmarks.

No CLIP weights can be had offline here, yet the V2T scorer loads any CLIP-family folder by
path. :func:`save_random_clip` writes a standard transformers CLIP folder (model, image
processor and a byte-level tokenizer built from scratch) of any size: scores from it are
meaningless, but it runs exactly the code and the compute of a trained model of that shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RandomClipConfig", "TINY_CLIP", "BASE_CLIP", "save_random_clip"]

BOS, EOS, PAD = "<|startoftext|>", "<|endoftext|>", "<pad>"
"""Special tokens of the byte-level tokenizer (CLIP's start/end names)."""


@dataclass(frozen=True)
class RandomClipConfig:
    """Shape of a random CLIP; every tower uses the same width and depth."""

    hidden_size: int = 32
    intermediate_size: int = 37
    num_layers: int = 2
    num_heads: int = 4
    image_size: int = 32
    """Input side of the vision tower; the image processor resizes and crops to it."""
    patch_size: int = 8
    projection_dim: int = 16
    text_positions: int = 64
    """Longest text in tokens (bytes plus start and end); longer texts are truncated."""
    seed: int = 0


TINY_CLIP = RandomClipConfig()
"""Hidden 32, 2 layers, 32 px images in 8 px patches: loads and runs in well under a second."""
BASE_CLIP = RandomClipConfig(
    hidden_size=768,
    intermediate_size=3072,
    num_layers=12,
    num_heads=12,
    image_size=224,
    patch_size=32,
    projection_dim=512,
    text_positions=77,
)
"""The shape of CLIP ViT-B/32 (both towers at width 768 here), for realistic compute."""


def save_random_clip(folder: str | Path, config: RandomClipConfig = TINY_CLIP) -> Path:
    """Write a randomly initialised ``CLIPModel`` and its ``CLIPProcessor`` to ``folder``.

    Args:
        folder: destination (created).
        config: the model's shape and seed.

    Returns:
        ``folder``, loadable with ``AutoModel.from_pretrained`` / ``AutoProcessor.from_pretrained``.

    Example:
        >>> save_random_clip("out/tiny-clip")  # doctest: +SKIP
        PosixPath('out/tiny-clip')
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, PreTrainedTokenizerFast

    folder = Path(folder)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = Tokenizer(models.BPE(vocab={symbol: i for i, symbol in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([BOS, EOS, PAD])
    bos, eos, pad = (tokenizer.token_to_id(token) for token in (BOS, EOS, PAD))
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, bos), (EOS, eos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=config.text_positions
    )
    tower = {
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
    }
    clip_config = CLIPConfig(
        text_config={
            **tower,
            "vocab_size": tokenizer.get_vocab_size(),
            "max_position_embeddings": config.text_positions,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": pad,
        },
        vision_config={**tower, "image_size": config.image_size, "patch_size": config.patch_size},
        projection_dim=config.projection_dim,
    )
    torch.manual_seed(config.seed)
    model = CLIPModel(clip_config).eval()
    side = config.image_size
    image_processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=fast).save_pretrained(folder)
    return folder
