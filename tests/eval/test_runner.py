"""The runner: resumable predictions files, refusal to mix runs, rescoring without re-asking.

The model here is a scripted stand-in (it answers from a table and can be made to fail), so that
the tests can stop a run at an exact question; real models run in test_end_to_end.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import FIXTURES

from salova.errors import EvalError, ResultsMismatchError
from salova.eval import LoadOptions, evaluate, get_task, load_docs, read_predictions, score_predictions
from salova.eval.adapters import EvalModel, EvalResponse, RoutedSegment
from salova.eval.runner import PREDICTIONS_NAME

VIDEOS = ["fixtureVid1.mp4", "fixtureVid2.mp4", "fixtureVid3.mp4"]


class Scripted:
    """Answers each prompt with the next scripted response; raises once ``fail_after`` answers were given."""

    def __init__(self, responses: dict[str, str], fail_after: int | None = None, name: str = "scripted"):
        self.responses, self.fail_after, self.name = responses, fail_after, name
        self.asked: list[tuple[str, str | None]] = []

    def describe(self):
        return {"model": self.name}

    def answer(self, video, prompt, *, query=None, top_k=None, max_new_tokens=16, evidence=()):
        if self.fail_after is not None and len(self.asked) >= self.fail_after:
            raise KeyboardInterrupt("stopped")
        self.asked.append((Path(video).name, query))
        question = next(q for q in self.responses if q in prompt)
        return EvalResponse(self.responses[question], (RoutedSegment(0.0, 4.0, 0.5, True),))


RESPONSES = {
    "Christmas tree": "C",
    "genre of this video": "The answer is (A).",
    "boy hold": "b",
    "balloon flies away": "I am not sure what happens in this clip at all, sorry about that.",
    "final score": "D. 0-0.",
}


def test_scripted_model_fits_the_protocol():
    assert isinstance(Scripted({}), EvalModel)


def test_a_stopped_run_resumes_without_asking_again(place_videos, tmp_path):
    options = LoadOptions(videos=place_videos(VIDEOS))
    annotations = FIXTURES / "videomme/test.json"
    first = Scripted(RESPONSES, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        evaluate("videomme", annotations, first, tmp_path / "run", options)
    header, done = read_predictions(tmp_path / "run" / PREDICTIONS_NAME)
    assert sorted(done) == ["001-1", "001-2", "301-1"] and header["task"] == "videomme"
    # The questions of one video are asked together, and the router reads the bare question.
    assert [video for video, _ in first.asked] == ["fixtureVid1.mp4", "fixtureVid1.mp4", "fixtureVid2.mp4"]
    assert first.asked[2][1] == "What does the boy hold in his hand at the beginning of the video?"

    second = Scripted(RESPONSES)
    report = evaluate("videomme", annotations, second, tmp_path / "run", options)
    assert [video for video, _ in second.asked] == ["fixtureVid2.mp4", "fixtureVid3.mp4"]
    assert (report.overall.correct, report.overall.counted) == (3, 5)  # C, A, D right; "b" and no letter wrong
    assert (tmp_path / "run" / "report.md").is_file()
    assert json.loads((tmp_path / "run" / "report.json").read_text())["overall"]["correct"] == 3


def test_a_line_torn_by_a_crash_is_dropped_and_asked_again(place_videos, tmp_path):
    options = LoadOptions(videos=place_videos(VIDEOS))
    evaluate("videomme", FIXTURES / "videomme/test.json", Scripted(RESPONSES), tmp_path / "run", options)
    path = tmp_path / "run" / PREDICTIONS_NAME
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # cut mid-line, no newline
    again = Scripted(RESPONSES)
    evaluate("videomme", FIXTURES / "videomme/test.json", again, tmp_path / "run", options)
    assert [video for video, _ in again.asked] == ["fixtureVid3.mp4"]
    assert len(path.read_text().splitlines()) == len(lines)


def test_a_results_folder_of_another_run_is_refused(place_videos, tmp_path):
    options = LoadOptions(videos=place_videos(VIDEOS))
    annotations = FIXTURES / "videomme/test.json"
    evaluate("videomme", annotations, Scripted(RESPONSES), tmp_path / "run", options)
    with pytest.raises(ResultsMismatchError, match=r"other settings \(differs in \['model'\]\)"):
        evaluate("videomme", annotations, Scripted(RESPONSES, name="other"), tmp_path / "run", options)
    with pytest.raises(ResultsMismatchError, match=r"differs in \['limit', 'questions'\]"):
        evaluate("videomme", annotations, Scripted(RESPONSES), tmp_path / "run", options, limit=2)


def test_rescoring_under_the_official_convention_needs_no_model(place_videos, tmp_path):
    options = LoadOptions(videos=place_videos(VIDEOS))
    annotations = FIXTURES / "videomme/test.json"
    evaluate("videomme", annotations, Scripted(RESPONSES), tmp_path / "run", options)
    spec = get_task("videomme")
    docs = load_docs(spec, annotations, options)
    _, predictions = read_predictions(tmp_path / "run" / PREDICTIONS_NAME)
    official = score_predictions(spec, docs, predictions, "videomme-official")
    # "b" and the sentence without a capital A-D are unanswered: left out, not wrong.
    assert (official.overall.correct, official.overall.counted, official.overall.questions) == (3, 3, 5)
    assert official.convention == "videomme-official"
    with pytest.raises(EvalError, match="1 questions have no prediction"):
        score_predictions(spec, docs, {k: v for k, v in predictions.items() if k != "601-1"}, "lmms-eval")
