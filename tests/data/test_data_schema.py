"""The record schema: validation, file formats, and the supervision rules behind ``labels``."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from salova.data.schema import Provenance, Record, Scene, Turn, read_records, write_records
from salova.data.supervision import evidence_matrix, supervise, threshold_union
from salova.errors import ConfigError, PathError, RecordError


def make_record(**changes) -> Record:
    """Two segments, caption record, T2T and V2T scores; labels follow the paper's rule."""
    sen = ((1.0, 0.81), (0.8, 1.0))
    lb = ((0.05, 0.18), (0.19, -0.2))
    fields = {
        "id": "clips/a",
        "video": "clips/a.mp4",
        "task": "captions",
        "fps": 25.0,
        "duration_sec": 10.0,
        "scenes": (Scene(0, 100, 0.0, 4.0), Scene(100, 250, 4.0, 10.0)),
        "conversations": (
            Turn("human", "Describe this clip."),
            Turn("gpt", "A red car."),
            Turn("human", "Describe it."),
            Turn("gpt", "A blue boat."),
        ),
        "queries": ("A red car.", "A blue boat."),
        "sen_sim": sen,
        "lb_sim": lb,
        "labels": ((1, 1), (1, 1)),
        "provenance": Provenance(captioner="synthetic", v2t_model="/m/clip", t2t_model="bundled:all-MiniLM-L6-v2"),
    }
    fields.update(changes)
    return Record(**fields)


def test_labels_are_the_union_of_strictly_exceeded_thresholds():
    # 0.8 T2T and 0.18 V2T sit exactly on the thresholds: not positive (the released code uses >).
    positive = threshold_union([[1.0, 0.81], [0.8, 1.0]], [[0.05, 0.18], [0.19, -0.2]])
    assert positive.tolist() == [[True, True], [True, True]]
    only_text = threshold_union([[1.0, 0.8], [0.5, 1.0]], None)
    assert only_text.tolist() == [[True, False], [False, True]]
    only_video = threshold_union(None, [[0.18, 0.181]], v2t_threshold=0.18)
    assert only_video.tolist() == [[False, True]]
    with pytest.raises(ValueError, match="at least one"):
        threshold_union(None, None)
    with pytest.raises(ValueError, match="must match"):
        threshold_union([[0.1, 0.2]], [[0.1]])


def test_qa_label_rules_combine_evidence_and_scores():
    sen = [[0.9, 0.1, 0.85], [0.1, 0.2, 0.3]]
    evidence = [[1, 2], [0]]
    rule = {name: supervise(sen, None, evidence=evidence, rule=name).tolist() for name in ("scores", "evidence")}
    assert rule["scores"] == [[1, 0, 1], [0, 0, 0]]
    assert rule["evidence"] == [[0, 1, 1], [1, 0, 0]]
    # Intersection where it is not empty; the evidence itself where it is (query 1 scores nothing).
    assert supervise(sen, None, evidence=evidence, rule="evidence_and_scores").tolist() == [[0, 0, 1], [1, 0, 0]]
    assert supervise(sen, None, evidence=evidence, rule="evidence_or_scores").tolist() == [[1, 1, 1], [1, 0, 0]]
    assert supervise(None, None, evidence=[[1]], rule="evidence", num_segments=2).tolist() == [[0, 1]]
    with pytest.raises(ConfigError, match="unknown label rule 'best'"):
        supervise(sen, None, rule="best")
    with pytest.raises(ConfigError, match="needs the evidence"):
        supervise(sen, None, rule="evidence_and_scores")
    with pytest.raises(ValueError, match="outside 0..1"):
        evidence_matrix([[2]], 2)


def test_record_round_trips_through_dict_and_json():
    record = make_record()
    data = json.loads(json.dumps(record.to_dict()))
    assert data["conversations"][1] == {"from": "gpt", "value": "A red car."}
    assert Record.from_dict(data) == record
    assert record.positives(0) == [0, 1] and record.answers() == ["A red car.", "A blue boat."]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("scenes"), "missing field 'scenes'"),
        (lambda d: d.update(task="summary"), "task must be one of"),
        (lambda d: d["scenes"][1].update(start_frame=90), "scene 1 starts before scene 0 ends"),
        (lambda d: d["scenes"][0].update(end_sec=0.0), "needs 0 <= start < end"),
        (lambda d: d["sen_sim"].pop(), "sen_sim has 1 rows"),
        (lambda d: d["lb_sim"][0].append(0.3), r"lb_sim\[0\] must list one score per segment"),
        (lambda d: d["lb_sim"][0].__setitem__(0, "high"), "not a finite number"),
        (lambda d: d["labels"][0].__setitem__(0, 0), "labels differ from label rule 'scores'"),
        (lambda d: d["labels"][0].__setitem__(0, 2), "0/1 matrix"),
        (lambda d: d["conversations"].reverse(), "human/gpt pairs"),
        (lambda d: d["queries"].reverse(), "queries of a caption record are its captions"),
        (lambda d: d["conversations"][0].update({"from": "system"}), "'from' must be"),
        (lambda d: d["provenance"].update(label_rule="magic"), "unknown label_rule 'magic'"),
        (lambda d: d.update(fps=0), "fps and duration_sec must be > 0"),
        (lambda d: d.update(evidence=[[5], [0]]), "evidence names a segment outside"),
    ],
)
def test_malformed_records_are_rejected_with_the_field_named(mutate, message):
    data = make_record().to_dict()
    data = copy.deepcopy(data)
    mutate(data)
    with pytest.raises(RecordError, match=message):
        Record.from_dict(data)


def test_qa_record_needs_a_question_and_takes_its_evidence_rule():
    qa = make_record(
        task="qa",
        conversations=(Turn("human", "What is red?\nA. car\nB. boat"), Turn("gpt", "A")),
        queries=("What is red? car",),
        sen_sim=((0.5, 0.2),),
        lb_sim=None,
        labels=((1, 0),),
        evidence=((0,),),
        provenance=Provenance("synthetic", None, "bundled", label_rule="evidence_and_scores"),
    )
    assert Record.from_dict(qa.to_dict()) == qa
    empty = qa.to_dict() | {"conversations": [], "queries": [], "sen_sim": [], "labels": [], "evidence": []}
    with pytest.raises(RecordError, match="at least one question"):
        Record.from_dict(empty)


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_record_files_round_trip(tmp_path, suffix):
    records = [make_record(), make_record(id="clips/b", lb_sim=None, labels=((1, 1), (0, 1)), meta={"k": [1]})]
    path = tmp_path / f"records{suffix}"
    assert write_records(path, records) == 2
    assert read_records(path) == records
    assert not list(tmp_path.glob(".*.part"))


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(make_record().to_dict())
    path.write_text(good + "\n{not json\n")
    with pytest.raises(RecordError, match=r"bad.jsonl:2: not JSON"):
        read_records(path)
    with pytest.raises(PathError, match="unknown file type"):
        read_records(tmp_path / "records.csv")


def test_rounded_scores_keep_labels_reproducible():
    # Labels are derived from the stored (rounded) scores, so re-deriving them is exact.
    scores = np.round(np.array([[0.8000004, 0.7999996]]), 6)
    assert supervise(scores, None).tolist() == [[0, 0]]
