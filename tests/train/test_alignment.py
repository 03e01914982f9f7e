"""The word-alignment objective: content words, the loss, and a stage that aligns without the LLM."""

from __future__ import annotations

import pytest
import torch
from train_helpers import components, losses, salova_config, trained_weights, write_yaml

from salova.cli import main
from salova.errors import DataError
from salova.train import config_from_dict, load_trained, run_stage
from salova.train.alignment import alignment_loss, content_vocabulary
from salova.train.logs import read_metrics


def test_content_words_are_the_tokens_few_answers_hold():
    answers = [[1, 2, 3, 3], [1, 2, 4], [1, 5]]
    assert content_vocabulary(answers, 0.5).tolist() == [3, 4, 5]  # 2 is in 2 of 3, 1 in all
    assert content_vocabulary(answers, 0.7).tolist() == [2, 3, 4, 5]
    with pytest.raises(DataError, match="no answers"):
        content_vocabulary([], 0.5)
    with pytest.raises(DataError, match="no token is held by at most 0.3"):
        content_vocabulary([[1], [1]], 0.3)


def test_the_loss_pulls_present_words_and_pushes_absent_ones_over_the_margin():
    closeness = torch.tensor([1.0, 0.9, 0.1, 0.5])
    present = torch.tensor([True, False, False, False])
    loss, hits = alignment_loss(closeness, present, margin=0.2)
    assert loss.item() == pytest.approx((0.7 + 0.0 + 0.3) / 3)  # the present word costs nothing
    assert hits == 1
    loss, hits = alignment_loss(torch.tensor([0.5, 0.9, 0.1, 0.1]), present, margin=0.95)
    assert loss.item() == pytest.approx(0.5) and hits == 0  # below the margin the absent words are free


def test_an_alignment_stage_trains_connector_and_projector_without_running_the_llm(
    synthetic, tmp_path, monkeypatch, capsys
):
    start = tmp_path / "start"
    run_stage(
        config_from_dict(
            salova_config(
                1,
                start,
                synthetic.data,
                source=components(synthetic.stage0, synthetic.llm),
                objective="retrieval",
                trainable=["router"],
                max_steps=1,
            )
        )
    )
    aligned = tmp_path / "aligned"
    config = salova_config(
        1,
        aligned,
        synthetic.data,
        source={"init_from": str(start)},
        objective="alignment",
        trainable=["connector", "projector"],
        max_steps=24,
        data={"records": str(synthetic.data), "task": "captions", "sample_unit": "video"},
        global_batch_size=2,
        micro_batch_size=1,
    )
    llm = load_trained(start).model.language_model
    calls = []
    monkeypatch.setattr(type(llm), "forward", lambda *args, **kwargs: calls.append(1))
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--stage", "1", "--config", str(write_yaml(tmp_path / "align.yaml", config)), "--no-progress"])
    assert exit_info.value.code == 0
    assert not calls  # the LLM never ran
    closing = capsys.readouterr().out.strip().splitlines()[-1]
    assert closing.startswith(f"stage 1: 24 steps -> {aligned}") and "alignment_loss" in closing
    assert "word_recall" in closing
    alignment = losses(aligned, "alignment_loss")
    assert sum(alignment[-4:]) < 0.8 * sum(alignment[:4])
    metrics = read_metrics(aligned)
    assert all(0 <= m["word_recall"] <= 1 for m in metrics) and "lm_loss" not in metrics[-1]
    assert metrics[-1]["word_recall"] > metrics[0]["word_recall"]
    before, after = trained_weights(start), trained_weights(aligned)
    changed = {name.split(".")[0] for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"connector", "projector"}  # the router, frozen here, is saved as it was
    assert load_trained(aligned).model.config.similarity_loss_weight == 1.0
