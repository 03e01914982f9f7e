"""Benchmark loaders read the official annotation formats and build lmms-eval's exact prompts.

Each task has a golden prompt (the exact text, written out) and an agreement test against
lmms-eval 0.7.3's own ``doc_to_text`` on every fixture row.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from eval_helpers import FIXTURES, lmms_eval_function, lmms_eval_module, lmms_eval_root, task_kwargs

from salova.errors import AnnotationError, ConfigError, VideoNotFoundError
from salova.eval import LoadOptions, get_task, list_tasks, load_docs


def _yaml(relative: str) -> dict:
    """A task YAML of lmms-eval without its ``!function`` lines (as lmms-eval itself reads them)."""
    text = (lmms_eval_root() / relative).read_text(encoding="utf-8")
    return yaml.safe_load("\n".join(line for line in text.splitlines() if "!function" not in line))


def _parquet(rows: list[dict], path: Path) -> Path:
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    return path


def test_registry_lists_the_benchmarks_and_names_them_in_errors():
    assert list_tasks() == [
        "activitynetqa",
        "longvideobench",
        "mlvu",
        "mvbench",
        "videomme",
        "videomme_w_subtitle",
    ]
    with pytest.raises(ConfigError, match=r"Unknown benchmark 'egoschema'; choose from \['activitynetqa'"):
        get_task("egoschema")


# ---------------------------------------------------------------------------------------------- Video-MME

VIDEOMME_VIDEOS = ["data/fixtureVid1.mp4", "fixtureVid2.MP4", "data/fixtureVid3.mkv"]

VIDEOMME_GOLDEN = (
    "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n"
    "What does the boy hold in his hand at the beginning of the video?\n"
    "A. A kite.\nB. A red balloon.\nC. A book.\nD. A bicycle helmet.\n"
    "\nAnswer with the option's letter from the given choices directly."
)


def test_videomme_loader_reads_the_official_rows(place_videos):
    videos = place_videos(VIDEOMME_VIDEOS)
    docs = load_docs("videomme", FIXTURES / "videomme/test.json", LoadOptions(videos=videos))
    assert [d.question_id for d in docs] == ["001-1", "001-2", "301-1", "301-2", "601-1"]
    assert [d.video.relative_to(videos).as_posix() for d in docs] == [
        "data/fixtureVid1.mp4",
        "data/fixtureVid1.mp4",
        "fixtureVid2.MP4",
        "fixtureVid2.MP4",
        "data/fixtureVid3.mkv",
    ]
    third = docs[2]
    assert third.prompt == VIDEOMME_GOLDEN
    assert third.question == "What does the boy hold in his hand at the beginning of the video?"
    assert (third.answer, third.choices) == ("B", "ABCD")
    assert dict(third.categories) == {
        "duration": "medium",
        "domain": "Film & Television",
        "sub_category": "Animation",
        "task_type": "Object Recognition",
    }


def test_videomme_parquet_and_json_give_the_same_documents(place_videos, tmp_path):
    videos = place_videos(VIDEOMME_VIDEOS)
    rows = json.loads((FIXTURES / "videomme/test.json").read_text())
    parquet = _parquet(rows, tmp_path / "test-00000-of-00001.parquet")
    assert load_docs("videomme", parquet, LoadOptions(videos=videos)) == load_docs(
        "videomme", FIXTURES / "videomme/test.json", LoadOptions(videos=videos)
    )


@pytest.mark.parametrize("variant", ["default", "llava_vid"])
def test_videomme_prompts_agree_with_lmms_eval(place_videos, variant):
    utils = lmms_eval_module("tasks/videomme/utils.py")
    kwargs = task_kwargs(_yaml("tasks/videomme/videomme.yaml")["lmms_eval_specific_kwargs"], variant)
    docs = load_docs(
        "videomme",
        FIXTURES / "videomme/test.json",
        LoadOptions(videos=place_videos(VIDEOMME_VIDEOS), prompt_variant=variant),
    )
    for doc in docs:
        assert doc.prompt == utils.videomme_doc_to_text(dict(doc.raw), kwargs)


def test_videomme_subtitle_prompt_agrees_with_lmms_eval(tmp_path, clip_file, monkeypatch):
    # lmms-eval reads videos and subtitles from $HF_HOME/videomme/{data,subtitle}.
    home = tmp_path / "hf"
    for relative in ("videomme/data/fixtureVid1.mp4", "videomme/data/fixtureVid2.mp4"):
        (home / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip_file, home / relative)
    (home / "videomme/subtitle").mkdir()
    shutil.copyfile(FIXTURES / "videomme/subtitle/fixtureVid1.srt", home / "videomme/subtitle/fixtureVid1.srt")
    monkeypatch.setenv("HF_HOME", str(home))
    utils = lmms_eval_module("tasks/videomme/utils.py", name="lmms_eval_videomme_utils_subtitles")
    kwargs = task_kwargs(_yaml("tasks/videomme/videomme_w_subtitle.yaml")["lmms_eval_specific_kwargs"])
    rows = json.loads((FIXTURES / "videomme/test.json").read_text())[:4]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    docs = load_docs("videomme_w_subtitle", path, LoadOptions(videos=home / "videomme/data"))
    assert docs[0].prompt.startswith(
        "This video's subtitles are listed below: \nChristmas trees came from Germany.\n"
        "They were decorated with apples,\ncandles and berries.\nSelect the best answer"
    )
    assert docs[2].prompt.startswith("This video's subtitles are listed below: \nNo subtitles available\nSelect")
    assert docs[2].prompt.endswith("D. A bicycle helmet.\nThe best answer is:")
    for doc in docs:
        assert doc.prompt == utils.videomme_doc_to_text_subtitle(dict(doc.raw), kwargs)


def test_missing_videos_fail_or_are_skipped(place_videos):
    videos = place_videos(["fixtureVid1.mp4"])
    with pytest.raises(VideoNotFoundError, match=r"video of question 301-1 not found .*3 of 5 questions lack"):
        load_docs("videomme", FIXTURES / "videomme/test.json", LoadOptions(videos=videos))
    docs = load_docs("videomme", FIXTURES / "videomme/test.json", LoadOptions(videos=videos, skip_missing_videos=True))
    assert [d.question_id for d in docs] == ["001-1", "001-2"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda row: row.pop("task_type"), r"row 0: missing field 'task_type'"),
        (lambda row: row.update(options="A. x"), r"row 0: field 'options' has type str"),
        (lambda row: row.update(answer="E"), r"row 0: answer 'E' is not one of the options' letters ABCD"),
    ],
)
def test_malformed_rows_name_the_row_and_field(place_videos, tmp_path, change, message):
    rows = json.loads((FIXTURES / "videomme/test.json").read_text())
    change(rows[0])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(AnnotationError, match=message):
        load_docs("videomme", path, LoadOptions(videos=place_videos(VIDEOMME_VIDEOS)))


def test_unreadable_annotation_files_are_annotation_errors(tmp_path, place_videos):
    videos = place_videos([])
    (tmp_path / "broken.json").write_text("[{")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty.json").write_text("[]")
    for name, message in [
        ("broken.json", "unreadable JSON"),
        ("notes.txt", "unsupported annotation file type"),
        ("empty.json", "holds no questions"),
        ("missing.json", "annotation file not found"),
    ]:
        with pytest.raises(AnnotationError, match=message):
            load_docs("videomme", tmp_path / name, LoadOptions(videos=videos))


# ---------------------------------------------------------------------------------------------- LongVideoBench

LONGVIDEOBENCH_GOLDEN = (
    "Does the woman wave before or after the car passes?\nA. before\nB. after\n"
    "Answer with the option's letter from the given choices directly.\n"
)


def test_longvideobench_reads_both_official_forms(place_videos, tmp_path):
    videos = place_videos(["videos/fixtureLVB1.mp4", "fixtureLVB2.mp4"])
    docs = load_docs("longvideobench", FIXTURES / "longvideobench/lvb_val.json", LoadOptions(videos=videos))
    assert [(d.question_id, d.answer, d.choices) for d in docs] == [
        ("fixtureLVB1_0", "A", "ABCD"),
        ("fixtureLVB2_1", "D", "ABCDE"),
        ("fixtureLVB2_2", "B", "AB"),
    ]
    assert docs[2].prompt == LONGVIDEOBENCH_GOLDEN
    assert dict(docs[0].categories) == {"duration_group": "600", "question_category": "TOS"}
    # The Parquet release flattens the options into option0..option4 ("N/A" when unused).
    flat = [dict(doc.raw) for doc in docs]
    assert flat[2]["option2"] == "N/A" and "candidates" not in flat[2]
    parquet = _parquet(flat, tmp_path / "validation-00000-of-00001.parquet")
    assert load_docs("longvideobench", parquet, LoadOptions(videos=videos)) == docs


def test_longvideobench_prompts_agree_with_lmms_eval(place_videos):
    doc_to_text = lmms_eval_function("tasks/longvideobench/utils.py", "longvideobench_doc_to_text", {})
    kwargs = task_kwargs(_yaml("tasks/longvideobench/longvideobench_val_v.yaml")["lmms_eval_specific_kwargs"])
    videos = place_videos(["fixtureLVB1.mp4", "fixtureLVB2.mp4"])
    for doc in load_docs("longvideobench", FIXTURES / "longvideobench/lvb_val.json", LoadOptions(videos=videos)):
        assert doc.prompt == doc_to_text(dict(doc.raw), kwargs)


# ---------------------------------------------------------------------------------------------- MLVU

MLVU_GOLDEN = (
    "What does the hand coming out of the computer do?\n(A) Delivers a product\n(B) Shakes the woman's hand\n"
    "(C) Takes the woman's credit card\n(D) Points at something on the screen\n"
    "\nOnly give the best option.\nBest option: ("
)


def test_mlvu_official_json_folder_becomes_lmms_eval_rows(place_videos):
    videos = place_videos(["video/1_plotQA/movie101_66.mp4", "video/2_needle/needle_32.mp4"])
    docs = load_docs("mlvu", FIXTURES / "mlvu/json", LoadOptions(videos=videos))  # 9_summary.json is skipped
    assert [(d.categories["task_type"], d.answer) for d in docs] == [("plotQA", "A"), ("plotQA", "C"), ("needle", "A")]
    assert docs[2].prompt == MLVU_GOLDEN
    assert docs[2].question == "What does the hand coming out of the computer do?"
    lmms_rows = load_docs("mlvu", FIXTURES / "mlvu/mlvu_dev.jsonl", LoadOptions(videos=videos))
    assert [d.prompt for d in lmms_rows] == [docs[0].prompt, docs[2].prompt]


def test_mlvu_prompts_agree_with_lmms_eval(place_videos):
    utils = lmms_eval_module("tasks/mlvu/utils.py")
    kwargs = task_kwargs(_yaml("tasks/mlvu/mlvu_dev.yaml")["lmms_eval_specific_kwargs"])
    videos = place_videos(["movie101_66.mp4", "needle_32.mp4"])
    for path in ("mlvu/json", "mlvu/mlvu_dev.jsonl"):
        for doc in load_docs("mlvu", FIXTURES / path, LoadOptions(videos=videos)):
            assert doc.prompt == utils.mlvu_doc_to_text(dict(doc.raw), kwargs)


# ---------------------------------------------------------------------------------------------- MVBench

MVBENCH_GOLDEN = (
    "Question:What did the person do first?\nOption:\n(A) Opened the door.\n(B) Sat on the bed.\n"
    "Only give the best option.\n"
)


def test_mvbench_reads_the_task_files_and_finds_task_folders(place_videos):
    videos = place_videos(
        [
            "star/Charades_segment/ZS9XR.mp4",
            "data0613/star/Charades_segment/fixtureSTAR.mp4",
            "perception/videos/video_10021.mp4",
        ]
    )
    docs = load_docs("mvbench", FIXTURES / "mvbench/json", LoadOptions(videos=videos))
    assert [(d.question_id, d.answer, d.choices) for d in docs] == [
        ("action_sequence/0", "A", "ABCD"),
        ("action_sequence/1", "B", "AB"),
        ("object_shuffle/0", "C", "ABC"),
    ]
    assert docs[1].prompt == MVBENCH_GOLDEN
    assert docs[1].video.relative_to(videos).as_posix() == "data0613/star/Charades_segment/fixtureSTAR.mp4"
    one = load_docs("mvbench", FIXTURES / "mvbench/json/object_shuffle.json", LoadOptions(videos=videos))
    assert [d.categories["task"] for d in one] == ["object_shuffle"]


def test_mvbench_prompts_agree_with_lmms_eval(place_videos):
    utils = lmms_eval_module("tasks/mvbench/utils.py")
    videos = place_videos(["ZS9XR.mp4", "fixtureSTAR.mp4", "video_10021.mp4"])
    for doc in load_docs("mvbench", FIXTURES / "mvbench/json", LoadOptions(videos=videos)):
        task = doc.categories["task"]
        kwargs = task_kwargs(_yaml(f"tasks/mvbench/mvbench_{task}.yaml")["lmms_eval_specific_kwargs"])
        assert doc.prompt == utils.mvbench_doc_to_text(dict(doc.raw), kwargs)


# ---------------------------------------------------------------------------------------------- ActivityNet-QA

ACTIVITYNETQA_GOLDEN = "Is the athlete wearing trousers? Answer the question using a single word or phrase."


def test_activitynetqa_joins_questions_and_answers(place_videos):
    videos = place_videos(["all_test/v_fixtureANQ1.mp4", "v_fixtureANQ2.webm"])
    docs = load_docs("activitynetqa", FIXTURES / "activitynetqa/test_q.json", LoadOptions(videos=videos))
    assert [(d.question_id, d.answer, d.categories["type"]) for d in docs] == [
        ("v_fixtureANQ1_0", "no", "yes/no"),
        ("v_fixtureANQ1_1", "white", "color"),
        ("v_fixtureANQ2_0", "2", "number"),
    ]
    assert docs[0].prompt == ACTIVITYNETQA_GOLDEN
    spec = get_task("activitynetqa")
    assert spec.score(docs[1], "White.", "lmms-eval").correct
    assert not spec.score(docs[1], "a white ball", "lmms-eval").correct
    assert "GPT judge" in spec.note


def test_activitynetqa_prompts_agree_with_lmms_eval(place_videos, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # lmms-eval's module reads it at import
    utils = lmms_eval_module("tasks/activitynetqa/utils.py")
    kwargs = task_kwargs(_yaml("tasks/activitynetqa/_default_template_yaml")["lmms_eval_specific_kwargs"])
    videos = place_videos(["v_fixtureANQ1.mp4", "v_fixtureANQ2.mp4"])
    for doc in load_docs("activitynetqa", FIXTURES / "activitynetqa/test_q.json", LoadOptions(videos=videos)):
        assert doc.prompt == utils.activitynetqa_doc_to_text(dict(doc.raw), kwargs)


def test_only_videomme_has_a_second_prompt_variant(place_videos):
    videos = place_videos(["v_fixtureANQ1.mp4"])
    with pytest.raises(ConfigError, match="only lmms-eval's default prompt"):
        load_docs(
            "activitynetqa", FIXTURES / "activitynetqa/test_q.json", LoadOptions(videos=videos, prompt_variant="x")
        )
