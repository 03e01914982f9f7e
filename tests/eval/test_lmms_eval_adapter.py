"""lmms-eval evaluates a SALOVA checkpoint through its own registry and evaluator, in-process.

The task is a small local copy of lmms-eval's ``videomme`` task: the synthetic benchmark's rows as
a local JSON dataset, and lmms-eval's own Video-MME functions for the prompt, the answer parsing and
the aggregation (only ``doc_to_visual`` is local: it returns the row's video path). ``--model
salova`` is found through the ``lmms_eval.models`` entry point, declared by a stand-in
distribution on ``sys.path`` exactly as salova's installed metadata declares it.

The checkpoint's language model is the tiny one with its output layer reduced to the sign of one
hidden unit, so that it answers with option letters ("AAAA..." here) rather than noise: lmms-eval
parses and scores real letter answers, and its responses and score must equal ``salova eval``'s
question by question.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
import torch
import yaml
from eval_helpers import lmms_eval_root

from salova.eval import LoadOptions, evaluate
from salova.eval.adapters import assistant_eval_model, load_checkpoint

TASK = "salova_synth_videomme"
ENTRY_POINT = "salova = salova.eval.lmms_eval_adapter:lmms_eval_manifest"


@pytest.fixture(scope="module")
def letter_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny checkpoint whose LLM writes only A or B (by the sign of one normalised hidden unit)."""
    model, processor = load_checkpoint(tiny_checkpoint)
    llm = model.language_model
    embeddings = llm.get_input_embeddings().weight  # tied with the output layer in the tiny Llama
    assert embeddings.data_ptr() == llm.get_output_embeddings().weight.data_ptr()
    a, b = processor.tokenizer.convert_tokens_to_ids(["A", "B"])
    with torch.no_grad():
        llm.model.norm.weight.zero_()
        llm.model.norm.weight[0] = 50.0
        embeddings[:, 0] = 0.0
        embeddings[a, 0], embeddings[b, 0] = 1.0, -1.0
    folder = tmp_path_factory.mktemp("letter-ckpt")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _local_task(folder: Path, rows: list[dict]) -> Path:
    """A task folder for lmms-eval's TaskManager: our rows, lmms-eval's Video-MME functions and kwargs."""
    official = lmms_eval_root() / "tasks/videomme/videomme.yaml"
    text = "\n".join(line for line in official.read_text().splitlines() if "!function" not in line)
    videomme = yaml.safe_load(text)
    folder.mkdir(parents=True)
    (folder / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "utils.py").write_text(
        "from lmms_eval.tasks.videomme.utils import (\n"
        "    videomme_aggregate_results,\n    videomme_doc_to_text,\n    videomme_process_results,\n)\n\n\n"
        "def doc_to_visual(doc):\n    return [doc['video_path']]\n"
    )
    spec = {
        "task": TASK,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(folder / "data.jsonl")}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_target": "answer",
        "generation_kwargs": videomme["generation_kwargs"],
        "metric_list": [{"metric": "videomme_perception_score", "higher_is_better": True}],
        "lmms_eval_specific_kwargs": videomme["lmms_eval_specific_kwargs"],
    }
    body = yaml.safe_dump(spec, sort_keys=False)
    body += "doc_to_visual: !function utils.doc_to_visual\ndoc_to_text: !function utils.videomme_doc_to_text\n"
    body += "process_results: !function utils.videomme_process_results\n"
    body = body.replace(
        "  higher_is_better: true\n",
        "  higher_is_better: true\n  aggregation: !function utils.videomme_aggregate_results\n",
    )
    (folder / f"{TASK}.yaml").write_text(body)
    return folder


def _entry_point_distribution(folder: Path) -> Path:
    info = folder / "salova_lmms_entry_point-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: salova-lmms-entry-point\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[lmms_eval.models]\n{ENTRY_POINT}\n")
    return folder


def test_lmms_eval_scores_salova_like_salova_eval(synth_bench, letter_checkpoint, tmp_path, monkeypatch):
    lmms_eval_root()  # skips when lmms-eval is not installed
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.syspath_prepend(str(_entry_point_distribution(tmp_path / "plugin")))
    found = importlib.metadata.entry_points(group="lmms_eval.models")
    assert any(ep.name == "salova" and ep.value == ENTRY_POINT.split(" = ")[1] for ep in found)

    import lmms_eval.models
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    lmms_eval.models.MODEL_REGISTRY_V2.load_entrypoint_manifests(overwrite=True)  # as lmms-eval does at import
    from salova.eval.lmms_eval_adapter import SalovaLMMS

    assert lmms_eval.models.get_model("salova") is SalovaLMMS

    rows = json.loads((synth_bench / "videomme.json").read_text())
    rows = [dict(row, video_path=str(synth_bench / "data" / f"{row['videoID']}.mp4")) for row in rows]
    tasks = _local_task(tmp_path / "tasks", rows)
    cache = tmp_path / "cache"
    results = simple_evaluate(
        model="salova",
        model_args=f"pretrained={letter_checkpoint},cache_dir={cache}",
        tasks=[TASK],
        task_manager=TaskManager(include_path=str(tasks), model_name="salova"),
        bootstrap_iters=0,
        log_samples=True,
    )
    lmms_score = results["results"][TASK]["videomme_perception_score,none"]
    samples = {s["doc"]["question_id"]: s for s in results["samples"][TASK]}

    report = evaluate(
        "videomme",
        synth_bench / "videomme.json",
        assistant_eval_model(letter_checkpoint, cache_dir=cache),
        tmp_path / "salova-eval",
        LoadOptions(videos=synth_bench / "data"),
    )
    predictions = [
        json.loads(line) for line in (tmp_path / "salova-eval/predictions.jsonl").read_text().splitlines()[1:]
    ]
    assert len(samples) == len(predictions) == 12
    responses = {p["question_id"]: p["response"] for p in predictions}
    for question_id, sample in samples.items():
        assert sample["resps"][0][0] == responses[question_id]
    assert {text[:1] for text in responses.values()} <= {"A", "B"}
    assert lmms_score == pytest.approx(report.overall.accuracy)
    # The prompts lmms-eval built are the ones salova eval builds.
    from salova.eval import load_docs

    docs = load_docs("videomme", synth_bench / "videomme.json", LoadOptions(videos=synth_bench / "data"))
    assert all(samples[doc.question_id]["arguments"][0] == doc.prompt for doc in docs)
