"""Spatio-Temporal Connector (paper section 4.1.1 and Appendix C) and dynamic token drop.

Each segment ``v_i`` of ``T_i`` frames arrives as ``T_i x P`` pooled patch tokens (``P = 144`` for
CLIP-L-336). The connector

1. adds a learned spatial embedding per pooled-grid cell and a learned temporal embedding per
   frame index inside the segment (``connector_max_frames`` rows; longer segments read the table
   stretched over their length, see :func:`salova.model.layers.position_coordinates`);
2. in training only, drops a random share of the tokens, the rate growing with the segment's own
   length (:func:`token_drop_rate`); kept tokens stay in their original order;
3. flattens the tokens and resamples them with a Perceiver resampler (Flamingo): ``L + 1`` learned
   latents (``L = 256`` plus one routing latent) cross-attend to ``[tokens; latents]`` for 2 layers.

The output per segment is one routing token ``R_i`` (from the routing latent, index 0) and ``L``
latent tokens. Segments of different lengths are padded into batches with the padding masked out
of attention, so a segment's output never depends on the other segments of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from salova.model.configuration_salova import SalovaConfig
from salova.model.layers import MultiHeadAttention, lookup_positions, position_coordinates

__all__ = [
    "ConnectorOutput",
    "SpatioTemporalConnector",
    "PerceiverLayer",
    "token_drop_rate",
    "kept_token_counts",
    "drop_tokens",
]

# Index of the routing latent among the connector's latents; the other L follow it.
ROUTING_LATENT_INDEX = 0


def token_drop_rate(num_frames: torch.Tensor, max_rate: float, full_rate_frames: int) -> torch.Tensor:
    """Drop rate of each segment from its own length.

    ``rate(T) = max_rate * min(T / full_rate_frames, 1)``: zero for an empty segment, rising
    linearly, capped at the stage's ``max_rate`` (paper section 4.1.1: "dynamically adjusted based
    on the length of the input sequence T_i"; paper Table 5 gives the maxima per stage).

    Args:
        num_frames: ``(segments,)`` frames per segment.
        max_rate: the stage's maximum rate in ``[0, 1)``.
        full_rate_frames: segment length at which the maximum is reached.

    Returns:
        ``(segments,)`` float rates, monotone non-decreasing in ``num_frames``.
    """
    return max_rate * (num_frames.to(torch.float32) / full_rate_frames).clamp(max=1.0)


def kept_token_counts(num_tokens: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
    """Tokens kept per segment: ``num_tokens - floor(rate * num_tokens)``, at least one.

    Args:
        num_tokens: ``(segments,)`` tokens per segment before the drop.
        rates: ``(segments,)`` drop rates.

    Returns:
        ``(segments,)`` long counts.
    """
    dropped = (rates * num_tokens.to(torch.float32)).floor().long()
    return (num_tokens - dropped).clamp(min=1)


def drop_tokens(tokens: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep a uniformly random subset of ``keep[i]`` valid tokens of each row, in their original order.

    Args:
        tokens: ``(segments, length, dim)`` padded tokens.
        mask: ``(segments, length)`` bool, ``True`` on valid tokens.
        keep: ``(segments,)`` tokens to keep per row, ``1 <= keep[i] <= mask[i].sum()``.

    Returns:
        ``(tokens, mask)`` of length ``keep.max()``: the kept tokens packed to the front of each row
        in their original relative order, and the new validity mask.
    """
    segments, length, dim = tokens.shape
    scores = torch.rand(segments, length, device=tokens.device).masked_fill(~mask, -1.0)
    order = scores.argsort(dim=1, descending=True)
    positions = torch.arange(length, device=tokens.device).expand(segments, length)
    ranks = torch.empty_like(order).scatter_(1, order, positions)
    kept = ranks < keep[:, None]
    # A stable sort of the 0/1 flags moves kept tokens to the front without reordering them.
    packed = kept.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, : int(keep.max())]
    new_tokens = tokens.gather(1, packed[..., None].expand(-1, -1, dim))
    new_mask = torch.arange(packed.shape[1], device=tokens.device)[None, :] < keep[:, None]
    return new_tokens, new_mask


@dataclass
class ConnectorOutput:
    """Output of :class:`SpatioTemporalConnector`.

    Attributes:
        routing_tokens: ``(segments, hidden)`` one routing token ``R_i`` per segment.
        latents: ``(segments, num_latents, hidden)`` the ``L`` latent tokens per segment.
        kept_tokens: ``(segments,)`` media tokens each segment kept after the drop.
        drop_rates: ``(segments,)`` drop rate applied to each segment (all zero in eval).
    """

    routing_tokens: torch.Tensor
    latents: torch.Tensor
    kept_tokens: torch.Tensor
    drop_rates: torch.Tensor


class PerceiverLayer(nn.Module):
    """One resampler layer: latents attend to ``[media; latents]``, then a feed-forward block.

    Adapted from lucidrains/flamingo-pytorch ``PerceiverAttention``/``FeedForward`` (as in the
    released code): pre-norms on both streams, bias-free projections, GELU feed-forward.
    """

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, ff_mult: int):
        super().__init__()
        self.norm_media = nn.LayerNorm(hidden_size)
        self.norm_latents = nn.LayerNorm(hidden_size)
        self.attention = MultiHeadAttention(hidden_size, hidden_size, num_heads, head_dim, bias=False)
        self.feed_forward = nn.Sequential(
            nn.LayerNorm(hidden_size),
            nn.Linear(hidden_size, ff_mult * hidden_size, bias=False),
            nn.GELU(),
            nn.Linear(ff_mult * hidden_size, hidden_size, bias=False),
        )

    def forward(self, media: torch.Tensor, media_mask: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """
        Args:
            media: ``(segments, tokens, hidden)``.
            media_mask: ``(segments, tokens)`` bool, ``True`` on real tokens.
            latents: ``(segments, latents, hidden)``.

        Returns:
            Updated ``(segments, latents, hidden)``.
        """
        attention = self.attention
        normed_media, normed_latents = self.norm_media(media), self.norm_latents(latents)
        # Keys and values are [media; latents]; project each stream, then join the narrow projections.
        keys = torch.cat([attention.k_proj(normed_media), attention.k_proj(normed_latents)], dim=1)
        values = torch.cat([attention.v_proj(normed_media), attention.v_proj(normed_latents)], dim=1)
        key_mask = torch.cat([media_mask, media_mask.new_ones(latents.shape[:2])], dim=1)
        latents = latents + attention.attend(attention.q_proj(normed_latents), keys, values, key_mask)
        return latents + self.feed_forward(latents)


class SpatioTemporalConnector(nn.Module):
    """Perceiver resampler over the flattened tokens of each variable-length segment.

    Args:
        config: the SALOVA config (``connector_*`` fields, ``tokens_per_frame``) and
            ``vision_hidden_size``, the width of the vision tower's tokens.
    """

    def __init__(self, config: SalovaConfig, vision_hidden_size: int):
        super().__init__()
        hidden = config.connector_hidden_size
        self.tokens_per_frame = config.tokens_per_frame
        self.max_token_drop = config.connector_max_token_drop
        self.full_drop_frames = config.connector_full_drop_frames
        self.chunk_tokens = config.connector_chunk_tokens
        self.spatial_embedding = nn.Parameter(torch.empty(config.tokens_per_frame, vision_hidden_size))
        self.temporal_embedding = nn.Parameter(torch.empty(config.connector_max_frames, vision_hidden_size))
        # The released code has no projection (vision width == connector width); other towers need one.
        self.input_projection = nn.Identity() if vision_hidden_size == hidden else nn.Linear(vision_hidden_size, hidden)
        self.latents = nn.Parameter(torch.empty(config.connector_num_latents + 1, hidden))
        self.layers = nn.ModuleList(
            PerceiverLayer(hidden, config.connector_num_heads, config.connector_head_dim, config.connector_ff_mult)
            for _ in range(config.connector_num_layers)
        )
        self.norm = nn.LayerNorm(hidden)

    def chunk_ranges(self, frames_per_segment: list[int]) -> list[tuple[int, int]]:
        """Group consecutive segments so that each padded batch holds at most ``chunk_tokens`` tokens.

        A segment longer than the budget forms a batch of its own.

        Returns:
            ``[(start, end), ...]`` segment index ranges covering all segments in order.
        """
        ranges = []
        start, longest = 0, 0
        for index, frames in enumerate(frames_per_segment):
            candidate = max(longest, frames)
            if index > start and (index - start + 1) * candidate * self.tokens_per_frame > self.chunk_tokens:
                ranges.append((start, index))
                start, candidate = index, frames
            longest = candidate
        ranges.append((start, len(frames_per_segment)))
        return ranges

    def embed(self, segments: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pad segments into a batch and add the spatial and temporal embeddings.

        Args:
            segments: per segment ``(frames_i, tokens_per_frame, vision_hidden)``.

        Returns:
            ``(tokens, mask, num_frames)``: ``(segments, max_frames * tokens_per_frame, vision_hidden)``
            flattened frame-major, the ``(segments, max_frames * tokens_per_frame)`` validity mask and
            ``(segments,)`` frame counts.
        """
        num_frames = torch.tensor([len(s) for s in segments], device=segments[0].device)
        padded = pad_sequence(segments, batch_first=True)  # (segments, max_frames, P, vision_hidden)
        count, max_frames, per_frame, dim = padded.shape
        frame_index = torch.arange(max_frames, device=padded.device).expand(count, max_frames)
        coordinates = position_coordinates(frame_index, num_frames[:, None], self.temporal_embedding.shape[0])
        temporal = lookup_positions(self.temporal_embedding, coordinates)  # (segments, max_frames, dim)
        padded = padded + self.spatial_embedding[None, None] + temporal[:, :, None]
        tokens = padded.reshape(count, max_frames * per_frame, dim)
        positions = torch.arange(max_frames * per_frame, device=padded.device)
        mask = positions[None, :] < (num_frames * per_frame)[:, None]
        return tokens, mask, num_frames

    def resample(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Run the resampler.

        Args:
            tokens: ``(segments, length, vision_hidden)``.
            mask: ``(segments, length)`` bool.

        Returns:
            ``(segments, num_latents + 1, hidden)``, normalised.
        """
        media = self.input_projection(tokens)
        latents = self.latents.expand(tokens.shape[0], -1, -1)
        for layer in self.layers:
            latents = layer(media, mask, latents)
        return self.norm(latents)

    def forward(
        self, frame_features: torch.Tensor, frames_per_segment: torch.Tensor, allow_drop: bool = True
    ) -> ConnectorOutput:
        """Encode segments.

        Args:
            frame_features: ``(total_frames, tokens_per_frame, vision_hidden)`` pooled tokens of all
                frames, segment after segment.
            frames_per_segment: ``(segments,)`` frames of each segment, each >= 1, summing to
                ``total_frames``.
            allow_drop: let the token drop run; it runs only when this is set and the module is in
                training mode with ``connector_max_token_drop > 0``.

        Returns:
            :class:`ConnectorOutput`.

        Raises:
            ValueError: the frame counts do not match the features.
        """
        counts = [int(n) for n in frames_per_segment]
        if not counts or min(counts) < 1 or sum(counts) != frame_features.shape[0]:
            raise ValueError(
                "frames_per_segment must hold one count >= 1 per segment summing to the "
                f"{frame_features.shape[0]} frames given, got {counts[:10]}{'...' if len(counts) > 10 else ''}"
            )
        if frame_features.shape[1] != self.tokens_per_frame:
            raise ValueError(f"expected {self.tokens_per_frame} tokens per frame, got {frame_features.shape[1]}")
        per_segment = list(frame_features.split(counts))
        max_rate = self.max_token_drop if (self.training and allow_drop) else 0.0
        outputs, kept, rates = [], [], []
        for start, end in self.chunk_ranges(counts):
            tokens, mask, num_frames = self.embed(per_segment[start:end])
            rate = token_drop_rate(num_frames, max_rate, self.full_drop_frames)
            keep = kept_token_counts(num_frames * self.tokens_per_frame, rate)
            if max_rate > 0:
                tokens, mask = drop_tokens(tokens, mask, keep)
            outputs.append(self.resample(tokens, mask))
            kept.append(keep)
            rates.append(rate)
        latents = torch.cat(outputs)
        # Contiguous copies: encodings are cached (e.g. with safetensors) and split per video.
        return ConnectorOutput(
            routing_tokens=latents[:, ROUTING_LATENT_INDEX].contiguous(),
            latents=latents[:, ROUTING_LATENT_INDEX + 1 :].contiguous(),
            kept_tokens=torch.cat(kept),
            drop_rates=torch.cat(rates),
        )
