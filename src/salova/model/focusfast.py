"""FocusFast pathways (paper section 4.1.3): what the language model reads for each video.

* **fast**: the routing tokens of *all* ``N_v`` segments, in temporal order (global context);
* **focus**: the ``L`` latent tokens of the top-``K`` segments, in temporal order (local detail);
  optionally each focus segment is preceded by its time span as text tokens.

Both pass through the same 2-layer MLP projector (GELU) to the LLM width. The visual block
replaces the single video placeholder token of each prompt; with the processor's default prompt
the LLM reads ``fast -> focus -> question`` (paper Fig. 2), i.e. exactly ``N_v + K * L`` visual
tokens with ``K = min(top_k, N_v)``. The block order follows ``config.focusfast_pathways``.

Which segments are focus segments: in training they are taken from the relevance labels
(teacher forcing); otherwise from the router's scores. :func:`select_focus_segments` is the
one rule for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from salova.model.configuration_salova import SalovaConfig

__all__ = [
    "FocusFastProjector",
    "FocusFastInputs",
    "TokenType",
    "select_focus_segments",
    "build_visual_block",
    "splice_visual_blocks",
    "IGNORE_INDEX",
]

IGNORE_INDEX = -100  # label of positions without a language-modelling target (transformers' convention)


class TokenType:
    """Kinds of positions in the assembled LLM input (:attr:`FocusFastInputs.token_types`)."""

    PAD = -1
    TEXT = 0
    FAST = 1
    FOCUS = 2
    TIMESTAMP = 3


class FocusFastProjector(nn.Module):
    """2-layer MLP with GELU from the connector width to the LLM width (paper section 5.1).

    Args:
        config: the SALOVA config; reads ``connector_hidden_size``, ``projector_hidden_act`` and
            ``text_config.hidden_size``.
    """

    def __init__(self, config: SalovaConfig):
        super().__init__()
        llm_hidden = config.text_config.hidden_size
        self.linear_1 = nn.Linear(config.connector_hidden_size, llm_hidden)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(llm_hidden, llm_hidden)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(..., connector_hidden) -> (..., llm_hidden)``."""
        return self.linear_2(self.act(self.linear_1(features)))


@dataclass
class FocusFastInputs(ModelOutput):
    """The language model's input for a batch, after the video placeholders are replaced.

    Args:
        inputs_embeds (`torch.FloatTensor` of shape `(batch, length, llm_hidden)`):
            Embeddings, left padded.
        attention_mask (`torch.LongTensor` of shape `(batch, length)`):
            1 on real positions.
        position_ids (`torch.LongTensor` of shape `(batch, length)`):
            Positions counted over real positions only.
        labels (`torch.LongTensor` of shape `(batch, length)`, *optional*):
            Text labels with ``-100`` on visual, timestamp and padding positions.
        token_types (`torch.LongTensor` of shape `(batch, length)`):
            :class:`TokenType` of each position.
    """

    inputs_embeds: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None
    position_ids: torch.LongTensor | None = None
    labels: torch.LongTensor | None = None
    token_types: torch.LongTensor | None = None


def select_focus_segments(
    num_segments: int,
    top_k: int,
    scores: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Indices of the ``min(top_k, num_segments)`` focus segments of one video, in temporal order.

    Segments are ranked by the number of queries that label them relevant (teacher forcing,
    when ``labels`` are given), then by their best router score over the queries, then by
    position. With labels only, ties keep the earlier segment.

    Args:
        num_segments: ``N_v``.
        top_k: ``K`` asked for.
        scores: ``(queries, num_segments)`` router logits, or ``None``.
        labels: ``(queries, num_segments)`` 0/1 relevance, or ``None``.

    Returns:
        ``(min(top_k, num_segments),)`` long, ascending.

    Raises:
        ValueError: a choice is needed (``num_segments > top_k``) but neither scores nor labels are given.
    """
    device = None
    for source in (scores, labels):
        if source is not None:
            device = source.device
            if source.ndim != 2 or source.shape[1] != num_segments:
                raise ValueError(f"scores/labels must have shape (queries, {num_segments}), got {tuple(source.shape)}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if num_segments <= top_k:
        return torch.arange(num_segments, device=device)
    if scores is None and labels is None:
        raise ValueError(
            f"choosing {top_k} of {num_segments} segments needs router scores (pass a query) or segment labels"
        )
    order = torch.arange(num_segments, device=device)
    if scores is not None:
        order = scores.detach().max(dim=0).values.argsort(descending=True, stable=True)
    if labels is not None:
        votes = labels.detach().sum(dim=0)[order]
        order = order[votes.argsort(descending=True, stable=True)]
    return order[:top_k].sort().values


def build_visual_block(
    fast: torch.Tensor,
    focus: torch.Tensor,
    pathways: list[str],
    timestamps: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate one video's projected pathways in the configured order.

    Args:
        fast: ``(num_segments, llm_hidden)`` projected routing tokens.
        focus: ``(K, num_latents, llm_hidden)`` projected latents of the focus segments, temporal order.
        pathways: order of the blocks, e.g. ``["fast", "focus"]``.
        timestamps: ``K`` embedded time spans ``(length_k, llm_hidden)`` put before each focus segment,
            or ``None``.

    Returns:
        ``(block, token_types)``: ``(block_length, llm_hidden)`` and ``(block_length,)`` :class:`TokenType`.
    """
    parts, types = [], []

    def add(part: torch.Tensor, kind: int) -> None:
        parts.append(part)
        types.append(torch.full((part.shape[0],), kind, dtype=torch.long, device=part.device))

    for pathway in pathways:
        if pathway == "fast":
            add(fast, TokenType.FAST)
            continue
        for index, latents in enumerate(focus):
            if timestamps is not None:
                add(timestamps[index], TokenType.TIMESTAMP)
            add(latents, TokenType.FOCUS)
    return torch.cat(parts), torch.cat(types)


def splice_visual_blocks(
    input_ids: torch.Tensor,
    text_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor | None,
    video_token_id: int,
    blocks: list[tuple[torch.Tensor, torch.Tensor]],
) -> FocusFastInputs:
    """Replace each sample's single video placeholder with its visual block and left-pad the batch.

    Args:
        input_ids: ``(batch, length)`` prompt ids, one ``video_token_id`` per sample.
        text_embeds: ``(batch, length, llm_hidden)`` their embeddings (the placeholder's row is ignored).
        attention_mask: ``(batch, length)`` 0/1; padding may be on either side.
        labels: ``(batch, length)`` or ``None``.
        video_token_id: the placeholder id.
        blocks: per sample, ``(block, token_types)`` from :func:`build_visual_block`.

    Returns:
        :class:`FocusFastInputs`.

    Raises:
        ValueError: a sample does not hold exactly one placeholder, or the counts disagree.
    """
    if len(blocks) != input_ids.shape[0]:
        raise ValueError(f"got {len(blocks)} videos for {input_ids.shape[0]} prompts")
    rows = []
    for index, (block, block_types) in enumerate(blocks):
        valid = attention_mask[index].bool()
        ids, embeds = input_ids[index][valid], text_embeds[index][valid]
        places = (ids == video_token_id).nonzero().flatten()
        if places.numel() != 1:
            raise ValueError(
                f"Video placeholders and videos do not match: prompt {index} holds {places.numel()} "
                f"placeholder tokens (id {video_token_id}), expected 1"
            )
        cut = int(places[0])
        text_types = torch.full_like(ids, TokenType.TEXT)
        row_embeds = torch.cat([embeds[:cut], block.to(embeds.dtype), embeds[cut + 1 :]])
        row_types = torch.cat([text_types[:cut], block_types, text_types[cut + 1 :]])
        row_labels = None
        if labels is not None:
            text_labels = labels[index][valid]
            ignored = torch.full_like(block_types, IGNORE_INDEX)
            row_labels = torch.cat([text_labels[:cut], ignored, text_labels[cut + 1 :]])
        rows.append((row_embeds, row_types, row_labels))

    length = max(row[0].shape[0] for row in rows)
    batch, hidden = len(rows), text_embeds.shape[-1]
    embeds_out = text_embeds.new_zeros(batch, length, hidden)
    types_out = torch.full((batch, length), TokenType.PAD, dtype=torch.long, device=input_ids.device)
    labels_out = None if labels is None else torch.full_like(types_out, IGNORE_INDEX)
    for index, (row_embeds, row_types, row_labels) in enumerate(rows):
        start = length - row_embeds.shape[0]
        embeds_out[index, start:] = row_embeds
        types_out[index, start:] = row_types
        if labels_out is not None:
            labels_out[index, start:] = row_labels
    mask_out = (types_out != TokenType.PAD).long()
    position_ids = (mask_out.cumsum(dim=1) - 1).clamp(min=0)
    return FocusFastInputs(
        inputs_embeds=embeds_out,
        attention_mask=mask_out,
        position_ids=position_ids,
        labels=labels_out,
        token_types=types_out,
    )
