"""Scorers: T2T with the bundled MiniLM, V2T with a CLIP-family folder, both loaded by path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import CLIPModel, CLIPProcessor

from salova.data.scoring import BUNDLED_T2T_MODEL, ScoringConfig, TextTextScorer, VideoTextScorer, bundled_t2t_path
from salova.errors import ConfigError, ModelFolderError


@pytest.fixture(scope="module")
def minilm():
    return TextTextScorer(BUNDLED_T2T_MODEL)


def test_bundled_minilm_is_found_without_importing_its_package():
    folder = bundled_t2t_path()
    assert folder.name == "model" and (folder / "modules.json").is_file()


def test_t2t_scores_are_cosines_of_minilm_embeddings(minilm):
    captions = ["A red car drives down a street.", "A blue boat sails on a lake.", "A red car is driving on a road."]
    scores = minilm.score(captions, captions)
    assert scores.shape == (3, 3)
    np.testing.assert_allclose(np.diag(scores), 1.0, atol=1e-6)
    np.testing.assert_allclose(scores, scores.T, atol=1e-6)
    assert scores[0, 2] > 0.8 > scores[0, 1]  # paraphrase vs unrelated, around τ_T2T
    queries = ["Which vehicle is red?"]
    direct = minilm.model.encode(queries + captions, normalize_embeddings=True)
    np.testing.assert_allclose(minilm.score(queries, captions)[0], direct[1:] @ direct[0], atol=2e-6)
    assert np.array_equal(minilm.score(queries, captions, decimals=3), np.round(minilm.score(queries, captions), 3))


def test_v2t_scores_are_cosines_of_mean_frame_embeddings(tiny_clip):
    scorer = VideoTextScorer(str(tiny_clip), frames_per_segment=3)
    rng = np.random.default_rng(0)
    segments = [rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for n in (1, 3, 7)]
    texts = ["a red square", "a green circle moving left"]
    scores = scorer.score(texts, segments)
    assert scores.shape == (2, 3) and np.all(np.abs(scores) <= 1.0)

    # The same numbers straight from the saved CLIP: frames 0, 3, 6 of the 7-frame segment.
    model, processor = CLIPModel.from_pretrained(tiny_clip).eval(), CLIPProcessor.from_pretrained(tiny_clip)
    with torch.no_grad():
        text = model.get_text_features(**processor(text=texts, padding=True, return_tensors="pt")).pooler_output
        text = torch.nn.functional.normalize(text, dim=-1)
        means = []
        for frames in (segments[0], segments[1], segments[2][[0, 3, 6]]):
            image = model.get_image_features(**processor(images=list(frames), return_tensors="pt")).pooler_output
            means.append(torch.nn.functional.normalize(image, dim=-1).mean(0))
        expected = text @ torch.nn.functional.normalize(torch.stack(means), dim=-1).T
    np.testing.assert_allclose(scores, expected.numpy(), atol=2e-6)


def test_long_texts_are_truncated_to_the_text_tower(tiny_clip):
    scorer = VideoTextScorer(str(tiny_clip))
    assert scorer.max_text_tokens == 64
    long_text = "a very long caption " * 100
    assert scorer.embed_texts([long_text]).shape == (1, 16)


def test_model_folders_are_checked(tmp_path, tiny_clip):
    with pytest.raises(ModelFolderError, match=r"no such V2T model \(CLIP family\) folder"):
        VideoTextScorer(str(tmp_path / "nope"))
    with pytest.raises(ModelFolderError, match="BertModel has no get_image_features/get_text_features"):
        VideoTextScorer(str(bundled_t2t_path()))  # a text-only model
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFolderError, match=r"cannot load a V2T model \(CLIP family\)"):
        VideoTextScorer(str(tmp_path / "empty"))
    with pytest.raises(ModelFolderError, match=r"no such T2T model folder"):
        TextTextScorer(str(tmp_path / "nope"))


def test_scoring_config_is_validated():
    with pytest.raises(ConfigError, match="at least one of v2t_model and t2t_model"):
        ScoringConfig(v2t_model=None, t2t_model=None)
    with pytest.raises(ConfigError, match="cosines in"):
        ScoringConfig(t2t_threshold=1.5)
    assert ScoringConfig().t2t_model == BUNDLED_T2T_MODEL
    assert (ScoringConfig().v2t_threshold, ScoringConfig().t2t_threshold) == (0.18, 0.8)
