"""Fixtures of the model tests (the helpers they import live in ``model_helpers``)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import make_model

from salova.model import SalovaForCausalLM
from threads import torch_threads


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seeded, single-threaded tests: the tiny models are thousands of small ops, which gain nothing
    from intra-op threads and stall badly when the machine's cores are shared."""
    with torch_threads(1):
        torch.manual_seed(0)
        yield


@pytest.fixture
def tiny_model() -> SalovaForCausalLM:
    """The ``tiny`` preset (Llama LLM, CLIP towers) in eval mode."""
    return make_model()
