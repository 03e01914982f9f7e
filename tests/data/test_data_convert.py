"""Converters: released-code JSON and public SceneWalk rows, both ways, and the convert-data command."""

from __future__ import annotations

import copy
import json

import pytest

from salova.cli import main
from salova.data.convert import (
    convert_file,
    detect_format,
    from_released,
    from_scenewalk_rows,
    parse_timecode,
    timecode,
    to_released,
    to_scenewalk_rows,
)
from salova.data.schema import read_objects, read_records
from salova.errors import RecordError

RELEASED = {
    "id": "yt_0001",
    "video": "yt_01/yt_0001.mp4",
    "total_time": 24,
    "clip_num": 3,
    "scenes": [
        {"start_frame": 0, "end_frame": 240, "start_fps": 30, "end_fps": 30},
        {"start_frame": 240, "end_frame": 510, "start_fps": 30, "end_fps": 30},
        {"start_frame": 510, "end_frame": 720, "start_fps": 30, "end_fps": 30},
    ],
    "conversations": [
        {"from": "human", "value": "<image>\nDescribe this video clip in detail."},
        {"from": "gpt", "value": "A man in a red coat walks along a snowy street."},
        {"from": "human", "value": "<image>\nWhat happens in this clip?"},
        {"from": "gpt", "value": "The man enters a bakery and greets the baker."},
        {"from": "human", "value": "<image>\nDescribe the scene."},
        {"from": "gpt", "value": "A man in a red coat walks back out into the snow."},
    ],
    "sen_sim": [[1.0, 0.41, 0.86], [0.41, 1.0, 0.38], [0.86, 0.38, 1.0]],
    "lb_sim": [[0.22, 0.11, 0.19], [0.09, 0.24, 0.1], [0.2, 0.12, 0.23]],
}
"""A stage 1.5 object in the released loader's layout (clip_num pairs, frame rates per scene)."""


def scenewalk_rows() -> list[dict]:
    """The three clips of one video as public SceneWalk rows."""
    captions = ["A chef slices onions.", "The chef fries the onions.", "A plate of fried onions."]
    stamps = [
        (0, 125, "00:00:00.000", "00:00:05.000"),
        (125, 400, "00:00:05.000", "00:00:16.000"),
        (400, 530, "00:00:16.000", "00:00:21.200"),
    ]
    t2t = [[1.0, 0.72, 0.55], [0.72, 1.0, 0.83], [0.55, 0.83, 1.0]]
    v2t = [[0.25, 0.1, 0.05], [0.12, 0.27, 0.19], [0.02, 0.16, 0.3]]
    return [
        {
            "id": f"cook42_{i}",
            "url": "https://www.youtube.com/watch?v=cook42",
            "time_stamp": {
                "duration": round((end - start) / 25),
                "end_fps": 25,
                "end_frame": end,
                "end_time": t1,
                "start_fps": 25,
                "start_frame": start,
                "start_time": t0,
            },
            "v2t_score": v2t[i],
            "t2t_score": t2t[i],
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe this video clip in detail."},
                {"from": "gpt", "value": captions[i]},
            ],
        }
        for i, (start, end, t0, t1) in enumerate(stamps)
    ]


def test_released_object_round_trips_and_reads_frame_rates_as_rates():
    record = from_released(copy.deepcopy(RELEASED))
    assert record.task == "captions" and record.num_segments == 3 and record.fps == 30.0
    assert [(s.start_sec, s.end_sec) for s in record.scenes] == [(0.0, 8.0), (8.0, 17.0), (17.0, 24.0)]
    assert record.prompts()[0] == "Describe this video clip in detail."  # placeholder stripped
    assert record.queries == tuple(record.answers())
    # sen 0.86 > 0.8 links clips 0 and 2; lb 0.19/0.2 > 0.18 as well; 0.22 etc. on the diagonal.
    assert [record.positives(q) for q in range(3)] == [[0, 2], [1], [0, 2]]
    assert record.provenance.captioner == "released"
    assert to_released(record) == RELEASED


def test_released_extra_fields_and_missing_optional_fields_survive():
    original = copy.deepcopy(RELEASED)
    del original["total_time"]
    original["source"] = "movie"
    original["scenes"][1]["start_time"] = "00:00:08.000"
    original["conversations"][2]["value"] = "What happens in this clip?"  # no placeholder on this turn
    assert to_released(from_released(copy.deepcopy(original))) == original


def test_released_qa_object_reads_questions_as_queries():
    qa = {
        "id": "v1",
        "video": "v1.mp4",
        "scenes": RELEASED["scenes"],
        "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is the coat?"},
            {"from": "gpt", "value": "Red."},
            {"from": "human", "value": "Where does he go?"},
            {"from": "gpt", "value": "Into a bakery."},
        ],
        "lb_sim": [[0.3, 0.1, 0.25], [0.05, 0.4, 0.1]],
    }
    record = from_released(copy.deepcopy(qa))
    assert record.task == "qa" and record.queries == ("What colour is the coat?", "Where does he go?")
    assert [record.positives(q) for q in range(2)] == [[0, 2], [1]]
    assert to_released(record) == qa
    with pytest.raises(RecordError, match="SceneWalk rows hold caption records only"):
        to_scenewalk_rows(record)


def test_scenewalk_rows_round_trip_as_one_record_per_video():
    rows = scenewalk_rows()
    other = copy.deepcopy(rows[0]) | {"id": "dog7_0", "url": "https://www.youtube.com/watch?v=dog7"}
    other["v2t_score"], other["t2t_score"] = [0.3], [1.0]
    shuffled = [rows[2], other, rows[0], rows[1]]
    records = from_scenewalk_rows(shuffled)
    assert [r.id for r in records] == ["cook42", "dog7"]
    cook = records[0]
    assert [(s.start_frame, s.end_sec) for s in cook.scenes] == [(0, 5.0), (125, 16.0), (400, 21.2)]
    assert cook.fps == 25.0 and cook.duration_sec == 21.2
    assert [cook.positives(q) for q in range(3)] == [[0], [1, 2], [1, 2]]
    assert to_scenewalk_rows(cook) == rows
    assert to_scenewalk_rows(records[1]) == [other]


def test_built_record_survives_both_formats(reference_build):
    record = read_records(reference_build / "captions.jsonl")[0]
    assert from_released(json.loads(json.dumps(to_released(record, salova_fields=True)))) == record
    plain = from_released(to_released(record))
    assert (plain.scenes, plain.sen_sim, plain.lb_sim, plain.labels) == (
        record.scenes,
        record.sen_sim,
        record.lb_sim,
        record.labels,
    )
    back = from_scenewalk_rows(to_scenewalk_rows(record))[0]
    assert back.id == record.id and back.conversations == record.conversations
    assert (back.scenes, back.sen_sim, back.lb_sim, back.labels) == (
        record.scenes,
        record.sen_sim,
        record.lb_sim,
        record.labels,
    )
    qa = read_records(reference_build / "qa.jsonl")[0]
    assert from_released(to_released(qa, salova_fields=True)) == qa


def test_timecodes():
    assert timecode(0) == "00:00:00.000" and timecode(3725.5) == "01:02:05.500"
    assert parse_timecode("01:02:05.500") == 3725.5 and parse_timecode("05.25") == 5.25
    with pytest.raises(RecordError, match="not a timecode"):
        parse_timecode("1h2m")


@pytest.mark.parametrize("suffix", [".parquet", ".json"])
def test_convert_files_between_all_formats(tmp_path, reference_build, suffix):
    source = reference_build / "captions.jsonl"
    released = tmp_path / f"released{suffix}"
    rows = tmp_path / f"rows{suffix}"
    back = tmp_path / "back.jsonl"
    assert convert_file(source, released, "released", salova_fields=True) == 4
    assert detect_format(read_objects(released)[0]) == "released"
    assert convert_file(released, back, "salova") == 4
    assert back.read_bytes() == source.read_bytes()
    assert convert_file(source, rows, "scenewalk") == 4
    assert detect_format(read_objects(rows)[0]) == "scenewalk"
    assert [r.scenes for r in read_records(source)] == [r.scenes for r in from_scenewalk_rows(read_objects(rows))]


def test_convert_data_command(tmp_path, reference_build, capsys):
    target = tmp_path / "released.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["convert-data", str(reference_build / "qa.jsonl"), str(target), "--to", "released"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"{target}: 4 videos as released"
    objects = json.loads(target.read_text())
    assert [o["clip_num"] for o in objects] == [len(o["conversations"]) // 2 for o in objects]
    assert all(o["conversations"][0]["value"].startswith("<image>\n") for o in objects)
    with pytest.raises(SystemExit) as exit_info:
        main(["convert-data", str(reference_build / "qa.jsonl"), str(tmp_path / "rows.jsonl"), "--to", "scenewalk"])
    assert exit_info.value.code == 2
    assert "error: record synth-11-00000: SceneWalk rows hold caption records only" in capsys.readouterr().err
