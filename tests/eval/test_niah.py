"""V-NIAH: needle videos from real footage, both scores per cell, the heatmap, resuming."""

from __future__ import annotations

import json

import pytest

from salova.eval.adapters import RoutedSegment, assistant_eval_model
from salova.eval.niah import BASELINE_VARIANT, NiahConfig, needle_retrieved, run_niah


def test_needle_retrieval_rules():
    routed = [RoutedSegment(0, 10, 0.1, False), RoutedSegment(10, 14, 0.9, True), RoutedSegment(14, 30, 0.2, True)]
    assert needle_retrieved((10.5, 14.5), routed)  # its segment (mostly 10-14) was read
    assert not needle_retrieved((2.0, 6.0), routed)  # its segment was not chosen
    uniform = [RoutedSegment(0, 30, None, True, (0.0, 7.5, 15.0, 22.5))]
    assert needle_retrieved((14.0, 18.0), uniform)  # a sampled frame falls inside it
    assert not needle_retrieved((8.0, 14.0), uniform)


@pytest.fixture(scope="module")
def niah_run(tmp_path_factory, tiny_checkpoint):
    out = tmp_path_factory.mktemp("niah")
    model = assistant_eval_model(tiny_checkpoint, cache_dir=out / "cache")
    config = NiahConfig(lengths=(16, 32), depths=(0.0, 1.0), haystack=("carphone",), width=160, height=120)
    return out, config, model, run_niah(model, out, config)


def test_every_cell_gets_both_scores_for_both_variants(niah_run):
    out, config, _, summary = niah_run
    cells = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()[1:]]
    assert len(cells) == 2 * 2 * 2
    assert {c["variant"] for c in cells} == {"16 frm (no router)", "SALOVA (1 fps + router)"}
    baseline = summary["variants"][BASELINE_VARIANT.name]
    for score in ("retrieved", "correct"):
        grid = baseline[score]["grid"]
        assert len(grid) == len(config.depths) and all(len(row) == len(config.lengths) for row in grid)
        assert 0.0 <= baseline[score]["mean"] <= 1.0
    # 16 frames over a 16 s haystack plus an 8 s needle: one frame every 1.5 s always lands in the needle.
    assert baseline["retrieved"]["grid"][0][0] == 1.0
    videos = sorted(p.name for p in (out / "videos").glob("*.mp4"))
    assert videos == [f"len{n:05d}-depth{d:03d}-needle0.mp4" for n in (16, 32) for d in (0, 100)]


def test_heatmap_and_tables_are_written(niah_run):
    out, *_ = niah_run
    png = (out / "niah.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    text = (out / "niah.md").read_text()
    assert text.startswith("# V-NIAH") and "| depth \\ frames | 16 | 32 |" in text
    assert json.loads((out / "niah.json").read_text())["lengths"] == [16, 32]


def test_a_finished_grid_is_not_run_again(niah_run, monkeypatch):
    out, config, model, summary = niah_run
    monkeypatch.setattr("salova.eval.niah._needle_video", lambda *a: pytest.fail("re-made a needle video"))
    assert run_niah(model, out, config)["variants"] == summary["variants"]
