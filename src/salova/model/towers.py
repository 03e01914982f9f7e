"""Vision and text towers: thin wrappers around ``transformers`` CLIP / SigLIP models.

* :class:`VisionTower` turns normalised frames into pooled patch tokens: the hidden states of
  ``config.vision_feature_layer``, without the class token, average-pooled over
  ``vision_pool_stride x vision_pool_stride`` cells of the patch grid (CLIP-L-336: 24x24 = 576
  patches -> 12x12 = 144 tokens per frame; a SigLIP grid pools with the same stride from its own
  grid, partial windows at an odd edge).
* :class:`TextTower` encodes the router's queries: per-token features and the tower's pooled
  sentence feature (CLIP: the end-of-text token, SigLIP: its head on the last token). Queries
  longer than the tower's context are truncated with a warning (never an index error).

Both wrap a real ``CLIPVisionModel``/``SiglipVisionModel`` or ``CLIPTextModel``/``SiglipTextModel``
in ``.backbone`` (built from a config; weights are loaded by :meth:`SalovaForCausalLM.from_components`
or ``from_pretrained``). A tower whose parameters are all frozen runs under ``torch.no_grad``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    CLIPTextModel,
    CLIPVisionModel,
    PreTrainedConfig,
    PreTrainedModel,
    SiglipTextModel,
    SiglipVisionModel,
)

from salova.errors import ConfigError
from salova.model.configuration_salova import SalovaConfig
from salova.model.feature_cache import FrameFeatureCache

logger = logging.getLogger(__name__)

__all__ = ["VisionTower", "TextTower", "TextFeatures", "VISION_BACKBONES", "TEXT_BACKBONES", "build_backbone"]

VISION_BACKBONES: dict[str, type[PreTrainedModel]] = {
    "clip_vision_model": CLIPVisionModel,
    "siglip_vision_model": SiglipVisionModel,
}
TEXT_BACKBONES: dict[str, type[PreTrainedModel]] = {
    "clip_text_model": CLIPTextModel,
    "siglip_text_model": SiglipTextModel,
}


def build_backbone(config: PreTrainedConfig, registry: dict[str, type[PreTrainedModel]]) -> PreTrainedModel:
    """Instantiate the registered ``transformers`` class for ``config.model_type`` with random weights.

    Raises:
        ConfigError: the model type is not in ``registry``.
    """
    if config.model_type not in registry:
        raise ConfigError(f"Unknown tower model_type {config.model_type!r}; choose from {sorted(registry)}")
    return registry[config.model_type](config)


def _grad_context(module: nn.Module) -> contextlib.AbstractContextManager:
    """``no_grad`` for a fully frozen module (saves the activations), a no-op otherwise."""
    if any(parameter.requires_grad for parameter in module.parameters()):
        return contextlib.nullcontext()
    return torch.no_grad()


class _Tower(nn.Module):
    """A ``transformers`` backbone built from its config, frozen or trainable."""

    def __init__(self, config: PreTrainedConfig, registry: dict[str, type[PreTrainedModel]], frozen: bool):
        super().__init__()
        self.backbone = build_backbone(config, registry)
        # Collected by `PreTrainedModel.post_init` of the parent for device maps.
        self._no_split_modules = self.backbone._no_split_modules
        self.backbone.requires_grad_(not frozen)

    @property
    def hidden_size(self) -> int:
        return self.backbone.config.hidden_size

    @property
    def trains(self) -> bool:
        """Whether any of the backbone's weights is trainable."""
        return any(parameter.requires_grad for parameter in self.backbone.parameters())


class VisionTower(_Tower):
    """Frame encoder + 2x2 average pooling.

    Args:
        config: the SALOVA config; reads ``vision_config``, ``vision_feature_layer``,
            ``vision_pool_stride``, ``vision_chunk_frames`` and ``freeze_vision_tower``.
    """

    def __init__(self, config: SalovaConfig):
        super().__init__(config.vision_config, VISION_BACKBONES, frozen=config.freeze_vision_tower)
        self.feature_layer = config.vision_feature_layer
        self.pool_stride = config.vision_pool_stride
        self.chunk_frames = config.vision_chunk_frames
        self.has_class_token = config.vision_has_class_token
        self.image_size = config.vision_config.image_size
        self.grid_size = config.patch_grid_size
        self.tokens_per_frame = config.tokens_per_frame
        self.feature_cache: FrameFeatureCache | None = None
        """Kept features of frames already encoded (training with a frozen tower); ``None``: off."""

    def pool(self, patch_tokens: torch.Tensor) -> torch.Tensor:
        """Average-pool patch tokens over ``pool_stride x pool_stride`` cells of the patch grid.

        Args:
            patch_tokens: ``(frames, grid * grid, hidden)`` in row-major grid order.

        Returns:
            ``(frames, pooled_grid * pooled_grid, hidden)``, row-major.
        """
        frames, num_patches, hidden = patch_tokens.shape
        grid = self.grid_size
        if num_patches != grid * grid:
            raise ValueError(f"expected {grid * grid} patch tokens per frame, got {num_patches}")
        x = patch_tokens.transpose(1, 2).reshape(frames, hidden, grid, grid)
        x = F.avg_pool2d(x, kernel_size=self.pool_stride, stride=self.pool_stride, ceil_mode=True)
        return x.flatten(2).transpose(1, 2)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Encode frames.

        Args:
            pixel_values: ``(frames, 3, image_size, image_size)`` normalised frames.

        Returns:
            ``(frames, tokens_per_frame, hidden)`` pooled patch tokens.

        Raises:
            ValueError: the frames do not have the tower's input size.
            RuntimeError: a ``feature_cache`` is attached while the tower trains.
        """
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(
                f"pixel_values must have shape (frames, 3, {self.image_size}, {self.image_size}), "
                f"got {tuple(pixel_values.shape)}"
            )
        if self.feature_cache is None:
            return self._encode(pixel_values)
        if self.trains:
            raise RuntimeError("the vision tower trains, so its features cannot be kept: detach its feature_cache")
        return self.feature_cache.features(pixel_values, self._encode)

    def _encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = next(self.backbone.parameters()).dtype
        chunks = []
        with _grad_context(self.backbone):
            for frames in pixel_values.split(self.chunk_frames):
                outputs = self.backbone(pixel_values=frames.to(dtype), output_hidden_states=True)
                tokens = outputs.hidden_states[self.feature_layer]
                if self.has_class_token:
                    tokens = tokens[:, 1:]
                chunks.append(self.pool(tokens))
        if not chunks:
            return pixel_values.new_zeros(0, self.tokens_per_frame, self.hidden_size)
        return torch.cat(chunks)


@dataclass
class TextFeatures:
    """Output of :class:`TextTower`.

    Attributes:
        token_features: ``(queries, length, text_hidden)`` per-token features.
        pooled: ``(queries, text_hidden)`` the tower's sentence feature.
        mask: ``(queries, length)`` bool, ``True`` on real tokens.
    """

    token_features: torch.Tensor
    pooled: torch.Tensor
    mask: torch.Tensor


class TextTower(_Tower):
    """The router's query encoder.

    Args:
        config: the SALOVA config; reads ``text_tower_config`` and ``freeze_text_tower``.
    """

    def __init__(self, config: SalovaConfig):
        super().__init__(config.text_tower_config, TEXT_BACKBONES, frozen=config.freeze_text_tower)
        self.max_length = config.text_tower_max_length

    def truncate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fit queries to the tower's context: keep the first ``max_length - 1`` tokens and the final one.

        The final real token (CLIP's end-of-text, which its pooling reads) is kept in the last slot.

        Args:
            input_ids: ``(queries, length)``.
            attention_mask: ``(queries, length)`` 0/1, right padding.

        Returns:
            ``(input_ids, attention_mask)`` of length at most ``max_length``.
        """
        length = input_ids.shape[1]
        if length <= self.max_length:
            return input_ids, attention_mask
        lengths = attention_mask.sum(dim=1)
        too_long = int((lengths > self.max_length).sum())
        if too_long:
            logger.warning(
                "%d quer%s longer than the text tower's context of %d tokens (up to %d); truncated",
                too_long,
                "y is" if too_long == 1 else "ies are",
                self.max_length,
                int(lengths.max()),
            )
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        last = input_ids[rows, (lengths - 1).clamp(min=0)]
        new_ids = input_ids[:, : self.max_length].clone()
        new_mask = attention_mask[:, : self.max_length].clone()
        cut = lengths > self.max_length
        new_ids[cut, -1] = last[cut]
        return new_ids, new_mask

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TextFeatures:
        """Encode tokenised queries.

        Args:
            input_ids: ``(queries, length)`` text-tower token ids, right padded.
            attention_mask: ``(queries, length)`` 0/1; all ones when omitted.

        Returns:
            :class:`TextFeatures` of at most ``max_length`` tokens per query.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        input_ids, attention_mask = self.truncate(input_ids, attention_mask)
        with _grad_context(self.backbone):
            outputs = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return TextFeatures(
            token_features=outputs.last_hidden_state,
            pooled=outputs.pooler_output,
            mask=attention_mask.bool(),
        )
