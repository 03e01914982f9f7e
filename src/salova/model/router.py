"""Segment Retrieval Router (paper section 4.1.2 and Appendix C).

The routing tokens ``R = {R_i}`` of a video's segments are the queries of a 2-layer, single-head
transformer whose keys and values are the sentence features ``S`` of one text query (the text
tower's tokens projected to ``d_model``, preceded by its projected pooled feature). Each layer is
cross-attention (the segment's position embedding added to the query side, DETR style) and a
PReLU feed-forward, each with a residual and a post-norm; there is no extra outer residual and
no unused second encoder (defects of the released code). The score of segment ``i`` for a query
is ``cos(routed R_i, projected pooled text) * exp(logit_scale)``, used as the logit of a
binary relevance classifier.

Segments do not attend to each other, so a segment's score does not depend on which other
segments are scored with it. The segment-position table has ``router_max_segments`` rows; a
video with more segments reads it stretched over its segment count (any count works).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from salova.model.configuration_salova import SalovaConfig
from salova.model.layers import MultiHeadAttention, lookup_positions, position_coordinates
from salova.model.towers import TextFeatures

__all__ = ["RouterOutput", "RouterLayer", "SegmentRetrievalRouter"]


@dataclass
class RouterOutput:
    """Scores of one video's segments for its queries.

    Attributes:
        logits: ``(queries, segments)`` ``cosine * exp(logit_scale)``, the BCE logits.
        cosine: ``(queries, segments)`` the unscaled cosine similarities.
    """

    logits: torch.Tensor
    cosine: torch.Tensor


class RouterLayer(nn.Module):
    """Cross-attention from routing tokens to sentence features, then a PReLU feed-forward (post-norm)."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, dropout: float):
        super().__init__()
        self.cross_attention = MultiHeadAttention(
            hidden_size, hidden_size, num_heads, hidden_size // num_heads, bias=True, dropout=dropout
        )
        self.attention_norm = nn.LayerNorm(hidden_size)
        self.feed_forward = nn.Sequential(
            nn.Linear(hidden_size, intermediate_size),
            nn.PReLU(),
            nn.Dropout(dropout),
            nn.Linear(intermediate_size, hidden_size),
        )
        self.feed_forward_norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, tokens: torch.Tensor, positions: torch.Tensor, sentence: torch.Tensor, sentence_mask: torch.Tensor
    ) -> torch.Tensor:
        """
        Args:
            tokens: ``(queries, segments, hidden)`` routing tokens.
            positions: ``(segments, hidden)`` segment-position embeddings, added to the attention queries.
            sentence: ``(queries, text_length, hidden)`` sentence features (keys and values).
            sentence_mask: ``(queries, text_length)`` bool.

        Returns:
            ``(queries, segments, hidden)``.
        """
        attended = self.cross_attention(tokens + positions, sentence, sentence, sentence_mask)
        tokens = self.attention_norm(tokens + self.dropout(attended))
        return self.feed_forward_norm(tokens + self.dropout(self.feed_forward(tokens)))


class SegmentRetrievalRouter(nn.Module):
    """Scores every segment of a video for every text query.

    Args:
        config: the SALOVA config (``router_*`` fields).
        text_hidden_size: width of the text tower's features.
    """

    def __init__(self, config: SalovaConfig, text_hidden_size: int):
        super().__init__()
        hidden = config.router_hidden_size
        self.logit_scale_init = config.router_logit_scale_init
        self.text_projection = nn.Linear(text_hidden_size, hidden)
        self.segment_position = nn.Parameter(torch.empty(config.router_max_segments, hidden))
        self.layers = nn.ModuleList(
            RouterLayer(hidden, config.router_num_heads, config.router_intermediate_size, config.router_dropout)
            for _ in range(config.router_num_layers)
        )
        self.logit_scale = nn.Parameter(torch.empty(()))

    def segment_positions(self, num_segments: int) -> torch.Tensor:
        """Position embeddings of ``num_segments`` segments in temporal order.

        Returns:
            ``(num_segments, hidden)``: table rows, stretched when the video has more segments than rows.
        """
        index = torch.arange(num_segments, device=self.segment_position.device)
        coordinates = position_coordinates(index, torch.tensor(num_segments), self.segment_position.shape[0])
        return lookup_positions(self.segment_position, coordinates)

    def sentence_features(self, text: TextFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """Project the text tower's output into the router's space.

        Returns:
            ``(sentence, mask)``: ``(queries, 1 + text_length, hidden)`` with the projected pooled feature
            first, and its ``(queries, 1 + text_length)`` bool mask.
        """
        tokens = torch.cat([text.pooled[:, None], text.token_features], dim=1)
        mask = torch.cat([text.mask.new_ones(text.mask.shape[0], 1), text.mask], dim=1)
        return self.text_projection(tokens), mask

    def forward(self, routing_tokens: torch.Tensor, text: TextFeatures) -> RouterOutput:
        """Score one video's segments.

        Args:
            routing_tokens: ``(segments, hidden)`` the video's routing tokens in temporal order.
            text: the encoded queries about this video (``queries`` rows).

        Returns:
            :class:`RouterOutput` with ``(queries, segments)`` scores.
        """
        sentence, mask = self.sentence_features(text)
        num_queries, num_segments = sentence.shape[0], routing_tokens.shape[0]
        positions = self.segment_positions(num_segments)
        tokens = routing_tokens[None].expand(num_queries, -1, -1)
        for layer in self.layers:
            tokens = layer(tokens, positions, sentence, mask)
        pooled_text = sentence[:, 0]  # (queries, hidden)
        cosine = torch.einsum("qsd,qd->qs", F.normalize(tokens, dim=-1), F.normalize(pooled_text, dim=-1))
        return RouterOutput(logits=cosine * self.logit_scale.exp(), cosine=cosine)
