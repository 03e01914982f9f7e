"""Similarity loss (paper Eq. 1) against hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from salova.model import margin_ranking_loss, similarity_loss

# Two queries, three segments.
LOGITS = [[0.3, 0.2, 0.6], [0.1, 0.4, 0.35]]
LABELS = [[1, 0, 0], [0, 1, 1]]


def test_margin_loss_matches_hand_computation_with_pairs_within_each_query():
    # Query 0: positive 0.3 vs negatives 0.2 and 0.6 -> max(0, .2 - .1) = .1 and max(0, .2 + .3) = .5
    # Query 1: positives 0.4, 0.35 vs negative 0.1 -> max(0, .2 - .3) = 0 and max(0, .2 - .25) = 0
    # Four pairs: (0.1 + 0.5 + 0 + 0) / 4 = 0.15. (Pairing across queries, as the released code did,
    # would also pair 0.4 with 0.6 and give 1.5 / 9.)
    loss, pairs = margin_ranking_loss(torch.tensor(LOGITS), torch.tensor(LABELS), margin=0.2)
    assert pairs == 4
    assert loss.item() == pytest.approx(0.15, abs=1e-6)


def test_similarity_loss_is_bce_plus_margin():
    def bce(s: float, y: int) -> float:
        p = 1 / (1 + math.exp(-s))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected_bce = (
        sum(bce(s, y) for row_s, row_y in zip(LOGITS, LABELS, strict=True) for s, y in zip(row_s, row_y, strict=True))
        / 6
    )
    out = similarity_loss(torch.tensor(LOGITS), torch.tensor(LABELS), margin=0.2)
    assert out.bce.item() == pytest.approx(expected_bce, abs=1e-6)
    assert out.loss.item() == pytest.approx(expected_bce + 0.15, abs=1e-6)


def test_queries_without_pairs_contribute_nothing_but_keep_the_graph():
    logits = torch.tensor([[0.5, 0.7]], requires_grad=True)
    loss, pairs = margin_ranking_loss(logits, torch.tensor([[1, 1]]), margin=0.2)
    assert pairs == 0 and loss.item() == 0.0
    loss.backward()  # no error: the zero is connected to the scores
    assert logits.grad is not None


def test_margin_gradient_pushes_positives_up_and_negatives_down():
    logits = torch.tensor([[0.3, 0.2, 0.6]], requires_grad=True)
    loss, _ = margin_ranking_loss(logits, torch.tensor([[1, 0, 0]]), margin=0.2)
    loss.backward()
    assert logits.grad[0, 0] < 0 < logits.grad[0, 1]


@pytest.mark.parametrize(
    ("labels", "message"),
    [([[1, 0]], r"must have the scores' shape"), ([[0.5, 0, 1]], "must be 0/1")],
)
def test_invalid_labels_raise(labels, message):
    with pytest.raises(ValueError, match=message):
        similarity_loss(torch.zeros(1, 3), torch.tensor(labels), margin=0.2)
