"""Word alignment (``objective: alignment``, ours): the connector and projector learn to hand the LLM
tokens that look like the words of a segment's caption, without running the LLM.

The LLM reads a segment through its projected routing token and latents. The paper aligns them in
stage 1 with the LM loss on captions through the frozen LLM, over hundreds of thousands of
captions. On two CPU cores the synthetic preset can afford a few thousand LLM passes, and there a
small LLM learns the captions' template long before it learns to read the video: its captions
come out the same whatever segment it is shown (docs/training.md, "Reading the video").

This objective costs no LLM pass. For a caption and the segments it describes, let ``P`` be the
projected tokens of those segments (routing token and latents, as FocusFast gives them to the
LLM), ``W`` the caption's content words and ``C`` all content words, ``e_w`` the LLM's input
embedding of word ``w`` and ``c_w = max_j cos(P_j, e_w)``:

    L = mean_{w in W} (1 - c_w)                    each of its words has a token close to it
      + mean_{w in C - W} relu(c_w - margin)       no token is close to a word it does not hold
      + norm_weight * mean_j (|P_j| - mean_{w in C} |e_w|)^2

A content word is a token that at most ``max_document_frequency`` of the training answers hold
(:func:`content_vocabulary`); words every caption holds ("a", "background") tell no segment from
another. A pretrained LLM copies words from its context readily; once the segments arrive as
near-words, the LM stages teach it to read them in a few hundred steps instead of never.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from salova.errors import DataError
from salova.train.config import AlignmentConfig

__all__ = ["content_vocabulary", "AlignmentOutput", "alignment_loss", "WordAlignment"]


def content_vocabulary(answers: Iterable[Sequence[int]], max_document_frequency: float) -> torch.Tensor:
    """The content words of a set of answers: token ids held by at most that share of them.

    Args:
        answers: token ids of each answer.
        max_document_frequency: the largest share of answers a content word may appear in.

    Returns:
        Sorted ``(V,)`` long tensor.

    Raises:
        DataError: no answer, or no token is rare enough (with ``objective: alignment``: the
            records hold no caption words to align with).
    """
    counts: Counter[int] = Counter()
    total = 0
    for ids in answers:
        counts.update(set(int(i) for i in ids))
        total += 1
    if not total:
        raise DataError("no answers to take content words from")
    words = sorted(token for token, count in counts.items() if count <= max_document_frequency * total)
    if not words:
        raise DataError(
            f"no token is held by at most {max_document_frequency:g} of the {total} answers; "
            "raise alignment.max_document_frequency"
        )
    return torch.tensor(words, dtype=torch.long)


@dataclass
class AlignmentOutput:
    """What :class:`WordAlignment` computes for a micro-batch."""

    loss: torch.Tensor
    """``similarity_loss_weight * similarity_loss + weight * alignment_loss``."""
    alignment_loss: torch.Tensor
    similarity_loss: torch.Tensor
    router_logits: tuple[torch.Tensor, ...]
    word_hits: int
    """Caption words ranked among the caption's own number of best-matching content words."""
    words: int
    """Caption words scored."""


def alignment_loss(closeness: torch.Tensor, present: torch.Tensor, margin: float) -> tuple[torch.Tensor, int]:
    """The word terms of the loss for one caption.

    Args:
        closeness: ``(V,)`` ``c_w``: each content word's best cosine over the caption's tokens.
        present: ``(V,)`` bool, the caption's own content words (at least one).
        margin: cosine under which an absent word costs nothing.

    Returns:
        ``(loss, hits)``: hits counts the present words among the ``|W|`` closest content words.
    """
    pull = (1 - closeness[present]).mean()
    absent = ~present
    push = F.relu(closeness[absent] - margin).mean() if bool(absent.any()) else closeness.new_zeros(())
    ranked = closeness.detach().topk(int(present.sum())).indices
    return pull + push, int(present[ranked].sum())


class WordAlignment(nn.Module):
    """A SALOVA model under the alignment objective (the module docstring): similarity loss of the
    router plus the word-alignment loss of the projected segments.

    Args:
        model: a :class:`~salova.model.SalovaForCausalLM` (its LLM is not run).
        vocabulary: the content words (:func:`content_vocabulary`), LLM token ids.
        config: the objective's settings.
    """

    def __init__(self, model: nn.Module, vocabulary: torch.Tensor, config: AlignmentConfig):
        super().__init__()
        self.model = model
        self.config = config
        self.register_buffer("vocabulary", vocabulary.clone(), persistent=False)
        # The LLM does not train under this objective, so its word embeddings are fixed.
        embeddings = model.get_input_embeddings().weight.detach()[vocabulary].float()
        self.register_buffer("word_directions", F.normalize(embeddings, dim=-1), persistent=False)
        self.register_buffer("word_norm", embeddings.norm(dim=-1).mean(), persistent=False)

    def forward(
        self,
        *,
        pixel_values: torch.Tensor,
        frames_per_segment: torch.Tensor,
        segments_per_video: torch.Tensor,
        query_input_ids: torch.Tensor,
        query_attention_mask: torch.Tensor,
        queries_per_video: torch.Tensor,
        segment_labels: Sequence[torch.Tensor],
        answer_ids: Sequence[Sequence[torch.Tensor]],
        **unused: object,
    ) -> AlignmentOutput:
        """Encode, route and align.

        Args:
            pixel_values, frames_per_segment, segments_per_video, query_*: as the processor packs them.
            segment_labels: per video ``(queries, segments)`` 0/1: which segments each caption describes.
            answer_ids: per video, per query, the caption's LLM token ids.
            **unused: the other processor outputs (the LLM prompt), which this objective does not read.
        """
        model = self.model
        encodings = model.encode_segments(pixel_values, frames_per_segment, segments_per_video, token_drop=True)
        scores = model.score_segments(encodings, query_input_ids, query_attention_mask, queries_per_video)
        similarity = model.compute_similarity_loss(scores, segment_labels)
        terms, norms = [], []
        hits = count = 0
        for video, labels, answers in zip(encodings.split(), segment_labels, answer_ids, strict=True):
            tokens = torch.cat([video.routing_tokens[:, None], video.latents], dim=1)  # (segments, 1 + L, d)
            projected = model.projector(tokens).float()
            closeness = (F.normalize(projected, dim=-1) @ self.word_directions.T).amax(dim=1)  # (segments, V)
            for row, ids in zip(torch.as_tensor(labels).bool(), answers, strict=True):
                present = torch.isin(self.vocabulary, ids.to(self.vocabulary.device))
                if not bool(row.any()) or not bool(present.any()):
                    continue
                row = row.to(closeness.device)
                term, row_hits = alignment_loss(closeness[row].amax(dim=0), present, self.config.margin)
                terms.append(term)
                norms.append(((projected[row].norm(dim=-1) - self.word_norm) ** 2).mean())
                hits += row_hits
                count += int(present.sum())
        if terms:
            aligned = torch.stack(terms).mean() + self.config.norm_weight * torch.stack(norms).mean()
        else:  # nothing to align in this micro-batch: a zero that still reaches every parameter
            aligned = 0.0 * projected.sum()
        loss = model.config.similarity_loss_weight * similarity + self.config.weight * aligned
        return AlignmentOutput(
            loss=loss,
            alignment_loss=aligned,
            similarity_loss=similarity,
            router_logits=scores.logits,
            word_hits=hits,
            words=count,
        )
