"""Stage 0's attribute loss: what the synthetic world knows of a scene, read off the vision tower.

Contrastive pre-training from scratch on a few thousand synthetic captions learns to match them by
background and colour, which is enough to tell most captions of a batch apart, and never learns
to see an object's shape. Yet the router must find "the scene with a purple star" among a long
video's other purple objects. A real CLIP has learnt shapes from hundreds of millions of pairs;
here the world's own labels stand in for that scale: linear heads on the features SALOVA reads
(the penultimate layer's patch tokens, mean-pooled) predict each frame's background colour and
pattern and which shapes, colours and sizes its objects have.
The heads only train the tower; the saved folder is a plain CLIP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import CLIPModel
from transformers.models.clip.modeling_clip import CLIPOutput

from salova.model.configuration_salova import SalovaConfig
from salova.synth import SynthScene
from salova.synth.vocab import COLORS, PATTERNS, SHAPES, SIZES
from salova.train.config import ATTRIBUTE_NAMES

__all__ = ["ATTRIBUTE_GROUPS", "AttributeGroup", "scene_attributes", "attribute_loss", "AttributeClip"]


@dataclass(frozen=True)
class AttributeGroup:
    """A block of the attribute vector: one value per scene (background) or one per object."""

    name: str
    values: tuple[str, ...]


_VALUES = {
    "background": tuple(COLORS),
    "pattern": PATTERNS,
    "shape": SHAPES,
    "color": tuple(COLORS),
    "size": tuple(SIZES),
}
ATTRIBUTE_GROUPS: tuple[AttributeGroup, ...] = tuple(AttributeGroup(name, _VALUES[name]) for name in ATTRIBUTE_NAMES)
"""The blocks of the attribute vector, in the order of ``ATTRIBUTE_NAMES`` (the config's keys)."""
NUM_ATTRIBUTES = sum(len(group.values) for group in ATTRIBUTE_GROUPS)


def _blocks():
    start = 0
    for group in ATTRIBUTE_GROUPS:
        yield group, slice(start, start + len(group.values))
        start += len(group.values)


def scene_attributes(scene: SynthScene) -> np.ndarray:
    """The scene as a multi-hot float32 vector laid out by :data:`ATTRIBUTE_GROUPS`."""
    present = {
        "background": {scene.background.color},
        "pattern": {scene.background.pattern},
        "shape": {o.shape for o in scene.objects},
        "color": {o.color for o in scene.objects},
        "size": {o.size for o in scene.objects},
    }
    vector = np.zeros(NUM_ATTRIBUTES, np.float32)
    for group, block in _blocks():
        vector[block] = [value in present[group.name] for value in group.values]
    return vector


def attribute_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: Mapping[str, float] | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over the groups of the softmax cross-entropy against the true values, shared evenly
    among them when several hold (a scene's objects' shapes, colours and sizes).

    Args:
        logits: ``(frames, NUM_ATTRIBUTES)`` scores.
        targets: multi-hot vectors of :func:`scene_attributes`.
        weights: weight per group name (a missing group weighs 0); all 1 when ``None``.

    Returns:
        The weighted loss and, per group, the share of frames whose best-scored value is a true one.
    """
    loss = logits.new_zeros(())
    accuracy = {}
    for group, block in _blocks():
        scores, truth = logits[:, block], targets[:, block]
        weight = 1.0 if weights is None else weights.get(group.name, 0.0)
        if weight:
            loss = loss + weight * nn.functional.cross_entropy(scores, truth / truth.sum(dim=1, keepdim=True))
        best = scores.detach().argmax(dim=1, keepdim=True)
        accuracy[group.name] = float(truth.gather(1, best).mean())
    return loss, accuracy


class AttributeClip(nn.Module):
    """A CLIP pair with linear attribute heads, for stage 0 training only (save ``.clip``).

    While :attr:`warming_up` is set, the loss is the attribute loss under ``warmup_weights`` alone;
    otherwise InfoNCE plus the attribute loss under ``weights``.
    """

    def __init__(
        self,
        clip: CLIPModel,
        weights: Mapping[str, float],
        feature_layer: int = SalovaConfig.vision_feature_layer,
        warmup_weights: Mapping[str, float] | None = None,
    ):
        super().__init__()
        self.clip = clip
        self.weights = dict(weights)
        self.warmup_weights = dict(warmup_weights or {})
        self.warming_up = False
        self.feature_layer = feature_layer
        self.heads = nn.Linear(clip.config.vision_config.hidden_size, NUM_ATTRIBUTES)

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        attributes: torch.Tensor,
    ) -> tuple[torch.Tensor, CLIPOutput, torch.Tensor, dict[str, float]]:
        """Returns the loss to train on, the pair's InfoNCE output, the weighted attribute loss and
        each group's accuracy."""
        out = self.clip(
            pixel_values=pixel_values,
            input_ids=input_ids,
            attention_mask=attention_mask,
            return_loss=True,
            output_hidden_states=True,
        )
        features = out.vision_model_output.hidden_states[self.feature_layer][:, 1:].mean(dim=1)
        weights = self.warmup_weights if self.warming_up else self.weights
        attribute, accuracy = attribute_loss(self.heads(features), attributes, weights)
        loss = attribute if self.warming_up else out.loss + attribute
        return loss, out, attribute, accuracy
