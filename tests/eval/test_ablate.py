"""The ablation runner: the paper's Table 3 and Table 7 rows beside ours, on the synthetic benchmark."""

from __future__ import annotations

import json

import pytest

from salova.errors import ConfigError
from salova.eval.ablate import AblationConfig, ablation_rows, run_ablation
from salova.eval.adapters import assistant_eval_model


def test_rows_carry_the_papers_numbers():
    rows = {row.label: row for row in ablation_rows()}
    assert list(rows) == [
        "8 frm, no router",
        "16 frm, no router",
        "1 fps, no router",
        "1 fps + router (SALOVA)",
        "focus only",
        "fast only",
        "focus + fast",
        "K = 1",
        "K = 5",
        "K = 9",
        "K = 13",
    ]
    assert rows["8 frm, no router"].paper == (48.3, 42.0, 37.2, 42.5)
    assert rows["16 frm, no router"].paper == (50.0, 42.8, 38.0, 43.6)
    assert rows["focus only"].paper == (36.4, 38.6, 35.6, 36.9)
    assert rows["K = 9"].paper == rows["1 fps + router (SALOVA)"].paper == (48.3, 46.3, 41.1, 45.3)
    assert rows["fast only"].paper is None and rows["1 fps, no router"].paper is None
    focus = ablation_rows(("focus",))
    assert [row.label for row in focus] == ["router top-K (SALOVA)", "evidence forced in (oracle)"]
    assert AblationConfig().groups == ("frames", "pathways", "top-k")  # the paper's tables by default
    with pytest.raises(ConfigError, match="Unknown ablation groups"):
        AblationConfig(groups=("frames", "stages"))


def test_ablation_table_runs_each_distinct_variant_once_and_resumes(synth_bench, tiny_checkpoint, tmp_path):
    model = assistant_eval_model(tiny_checkpoint, cache_dir=tmp_path / "cache")
    summary = run_ablation(model, synth_bench, tmp_path / "ablate")
    runs = sorted(p.parent.name for p in (tmp_path / "ablate").glob("*/predictions.jsonl"))
    # 11 rows, 9 distinct runs: "1 fps + router", "focus + fast" and "K = 5" are one run (K = 5 by default).
    assert runs == [
        "1fps_norouter_fast-focus",
        "1fps_router_fast-focus_k1",
        "1fps_router_fast-focus_k13",
        "1fps_router_fast-focus_k5",
        "1fps_router_fast-focus_k9",
        "1fps_router_fast_k5",
        "1fps_router_focus_k5",
        "uniform16_norouter_fast-focus",
        "uniform8_norouter_fast-focus",
    ]
    assert all(len((tmp_path / "ablate" / run / "predictions.jsonl").read_text().splitlines()) == 13 for run in runs)
    by_label = {row["label"]: row for row in summary["rows"]}
    assert by_label["focus + fast"]["run"] == by_label["K = 5"]["run"] == "1fps_router_fast-focus_k5"
    assert [cell["questions"] for cell in by_label["8 frm, no router"]["ours"]] == [4, 4, 4, 12]
    assert by_label["8 frm, no router"]["router_top1"] is None and by_label["K = 1"]["router_top1"] is not None
    table = (tmp_path / "ablate" / "ablation.md").read_text().splitlines()
    assert table[4].startswith("| ablation | setting | paper S | paper M | paper L | paper overall | ours S")
    assert table[6].startswith("| Table 3: frame sampling | 8 frm, no router | 48.3 | 42.0 | 37.2 | 42.5 | ")
    assert any(line.startswith("| Table 7: top-K | K = 13 | 48.1 | 44.7 | 39.7 | 44.1 | ") for line in table)
    assert json.loads((tmp_path / "ablate" / "ablation.json").read_text()) == summary

    before = {run: (tmp_path / "ablate" / run / "predictions.jsonl").read_text() for run in runs}
    again = run_ablation(model, synth_bench, tmp_path / "ablate")
    assert again == summary
    assert before == {run: (tmp_path / "ablate" / run / "predictions.jsonl").read_text() for run in runs}


def test_the_focus_rows_read_the_router_choice_and_the_evidence(synth_bench, tiny_checkpoint, tmp_path, monkeypatch):
    import salova.eval.adapters as adapters

    read = {"router": [], "evidence": []}
    original = adapters.answer_from_encoding

    def spy(*args, **kwargs):
        response = original(*args, **kwargs)
        chosen = [(s.start, s.end) for s in response.segments if s.selected]
        read[kwargs["variant"].focus].append((chosen, list(kwargs["evidence"])))
        return response

    monkeypatch.setattr(adapters, "answer_from_encoding", spy)
    model = assistant_eval_model(tiny_checkpoint, cache_dir=tmp_path / "cache")
    summary = run_ablation(model, synth_bench, tmp_path / "ablate", AblationConfig(groups=("focus",), top_k=1))
    runs = sorted(p.parent.name for p in (tmp_path / "ablate").glob("*/predictions.jsonl"))
    assert runs == ["1fps_router_fast-focus_k1", "1fps_router_fast-focus_k1_evidence"]
    router, oracle = summary["rows"]
    assert oracle["variant"]["focus"] == "evidence" and oracle["run"] == runs[1]
    assert oracle["router_top1"] == router["router_top1"]  # the same router scores, another focus

    def on_evidence(chosen, evidence):
        return all(any(min(end, e) > max(start, s) for s, e in evidence) for start, end in chosen)

    assert len(read["router"]) == len(read["evidence"]) == 12
    assert all(on_evidence(*call) for call in read["evidence"])
    assert not all(on_evidence(*call) for call in read["router"])  # the tiny router misses some
    table = (tmp_path / "ablate" / "ablation.md").read_text()
    assert "| focus (ours) | evidence forced in (oracle) | – | – | – | – | " in table
