"""Typed outputs of :class:`~salova.model.SalovaForCausalLM` and of its public pieces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers.cache_utils import Cache
from transformers.utils import ModelOutput

__all__ = ["SegmentEncoding", "SegmentScores", "SalovaCausalLMOutput", "SalovaGenerateOutput", "SalovaAnswerScores"]


@dataclass
class SegmentEncoding(ModelOutput):
    """Per-segment encodings of one or more videos; what an index of a video caches.

    Args:
        routing_tokens (`torch.FloatTensor` of shape `(total_segments, hidden)`):
            One routing token ``R_i`` per segment, videos one after another, segments in temporal order.
        latents (`torch.FloatTensor` of shape `(total_segments, num_latents, hidden)`):
            The ``L`` latent tokens of each segment (the focus pathway's input).
        segments_per_video (`torch.LongTensor` of shape `(batch,)`):
            Segments of each video.
        kept_tokens (`torch.LongTensor` of shape `(total_segments,)`, *optional*):
            Media tokens each segment kept after the token drop (all of them in eval).
    """

    routing_tokens: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    segments_per_video: torch.LongTensor | None = None
    kept_tokens: torch.LongTensor | None = None

    @property
    def num_videos(self) -> int:
        return int(self.segments_per_video.numel())

    def split(self) -> list[SegmentEncoding]:
        """One :class:`SegmentEncoding` per video."""
        counts = [int(n) for n in self.segments_per_video]
        kept = self.kept_tokens.split(counts) if self.kept_tokens is not None else [None] * len(counts)
        return [
            SegmentEncoding(
                routing_tokens=routing,
                latents=latents,
                segments_per_video=self.segments_per_video.new_tensor([count]),
                kept_tokens=kept_i,
            )
            for routing, latents, count, kept_i in zip(
                self.routing_tokens.split(counts), self.latents.split(counts), counts, kept, strict=True
            )
        ]

    @classmethod
    def cat(cls, encodings: Sequence[SegmentEncoding], as_one_video: bool = False) -> SegmentEncoding:
        """Concatenate encodings: as separate videos of a batch, or (``as_one_video``) as consecutive
        segments of one video, e.g. a long video encoded a few segments at a time.
        """
        if not encodings:
            raise ValueError("cannot concatenate an empty list of segment encodings")
        segments = torch.cat([e.segments_per_video for e in encodings])
        kept = [e.kept_tokens for e in encodings]
        return cls(
            routing_tokens=torch.cat([e.routing_tokens for e in encodings]),
            latents=torch.cat([e.latents for e in encodings]),
            segments_per_video=segments.sum(dim=0, keepdim=True) if as_one_video else segments,
            kept_tokens=None if any(k is None for k in kept) else torch.cat(kept),
        )


@dataclass
class SegmentScores(ModelOutput):
    """Router scores of each video's segments for that video's queries.

    Args:
        logits (`tuple[torch.FloatTensor]`, one of shape `(num_queries_b, num_segments_b)` per video):
            ``cosine * exp(logit_scale)``; higher is more relevant.
        cosine (`tuple[torch.FloatTensor]`, same shapes):
            The unscaled cosine similarities.
    """

    logits: tuple[torch.FloatTensor, ...] | None = None
    cosine: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class SalovaCausalLMOutput(ModelOutput):
    """Output of :meth:`SalovaForCausalLM.forward`.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            ``lm_loss + similarity_loss_weight * similarity_loss`` (the terms that were computed).
        lm_loss (`torch.FloatTensor` of shape `()`, *optional*):
            Next-token cross-entropy of the answer tokens (given ``labels``).
        similarity_loss (`torch.FloatTensor` of shape `()`, *optional*):
            Paper Eq. 1 averaged over videos (given ``segment_labels``).
        logits (`torch.FloatTensor` of shape `(batch, length, vocab)`):
            LLM logits over the assembled sequence.
        router_logits (`tuple[torch.FloatTensor]`, `(num_queries_b, num_segments_b)` per video, *optional*):
            Router scores (given queries).
        selected_segments (`tuple[torch.LongTensor]`, `(K_b,)` per video):
            Focus segments read by the LLM, ascending.
        token_types (`torch.LongTensor` of shape `(batch, length)`):
            :class:`~salova.model.focusfast.TokenType` of each LLM position.
        past_key_values (`Cache`, *optional*):
            The LLM's cache when ``use_cache``.
    """

    loss: torch.FloatTensor | None = None
    lm_loss: torch.FloatTensor | None = None
    similarity_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    router_logits: tuple[torch.FloatTensor, ...] | None = None
    selected_segments: tuple[torch.LongTensor, ...] | None = None
    token_types: torch.LongTensor | None = None
    past_key_values: Cache | None = None


@dataclass
class SalovaGenerateOutput(ModelOutput):
    """Output of :meth:`SalovaForCausalLM.generate`.

    Args:
        sequences (`torch.LongTensor` of shape `(batch, new_tokens)`):
            Generated ids (the prompt is not repeated).
        selected_segments (`tuple[torch.LongTensor]`, `(K_b,)` per video):
            Segments the answer was generated from, ascending.
        segment_scores (`tuple[torch.FloatTensor]`, `(num_queries_b, num_segments_b)` per video, *optional*):
            Router scores that chose them (``None`` when no query was given).
    """

    sequences: torch.LongTensor | None = None
    selected_segments: tuple[torch.LongTensor, ...] | None = None
    segment_scores: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class SalovaAnswerScores(ModelOutput):
    """Output of :meth:`SalovaForCausalLM.score_answers`.

    Args:
        log_likelihoods (`torch.FloatTensor` of shape `(batch,)`):
            Summed log-probability of each prompt's answer tokens given the video and what precedes them.
        selected_segments (`tuple[torch.LongTensor]`, `(K_b,)` per video):
            Segments read, ascending.
        segment_scores (`tuple[torch.FloatTensor]`, `(num_queries_b, num_segments_b)` per video, *optional*):
            Router scores (``None`` when no query was given).
    """

    log_likelihoods: torch.FloatTensor | None = None
    selected_segments: tuple[torch.LongTensor, ...] | None = None
    segment_scores: tuple[torch.FloatTensor, ...] | None = None
