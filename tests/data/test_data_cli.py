"""The data commands as a user meets them: build-data (including an OpenAI-compatible captioning
server), data-stats with its plot, and the errors they print."""

from __future__ import annotations

import json

import pytest
from chat_server import ChatServer

from salova.cli import main
from salova.data.schema import Provenance, Record, Scene, Turn, read_records
from salova.data.stats import compute_stats, format_stats

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_build_data_without_v2t_supervises_from_t2t(tmp_path, corpus_copy, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        ["build-data", corpus_copy, out, "--v2t-model", "none", "--json", "--no-progress"], capsys
    )
    assert code == 0
    summary = json.loads(stdout)
    assert (summary["built"], summary["failed"], summary["records"]) == (4, {}, {"captions": 4})
    for record in read_records(out / "captions.jsonl"):
        assert record.lb_sim is None and record.provenance.v2t_model is None
        assert [record.labels[q][q] for q in range(record.num_queries)] == [1] * record.num_queries
        assert record.labels == tuple(tuple(int(v > 0.8) for v in row) for row in record.sen_sim)


def test_build_data_reports_failures_and_exits_1(tmp_path, corpus_copy, capsys):
    (corpus_copy / "broken.mp4").write_bytes(b"\x00" * 64)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(["build-data", corpus_copy, out, "--v2t-model", "none", "--no-progress"], capsys)
    assert code == 1
    assert stdout.splitlines() == [
        f"{out}: 5 videos (4 built, 0 already done, 1 failed)",
        f"  captions       4 records  {out / 'captions.jsonl'}",
    ]
    assert stderr.splitlines()[0].startswith("failed: broken: VideoDecodeError: ")
    assert stderr.splitlines()[1].startswith("error: 1 videos failed")


def test_build_data_refuses_other_settings_in_one_line(tmp_path, corpus_copy, capsys):
    out = tmp_path / "out"
    args = ["build-data", corpus_copy, out, "--v2t-model", "none", "--task", "qa", "--no-progress"]
    assert run_cli(args, capsys)[0] == 0
    code, _, stderr = run_cli([*args, "--seed", "3"], capsys)
    assert code == 2
    assert stderr == f"error: {out}: holds a data build with other settings (differs in ['seed']); use a new folder\n"


def test_build_data_with_an_openai_compatible_captioner(tmp_path, corpus_copy, capsys, monkeypatch):
    monkeypatch.setenv("VLM_KEY", "secret-token")
    out = tmp_path / "out"
    with ChatServer(script=[502]) as server:
        args = [
            "build-data",
            corpus_copy,
            out,
            "--v2t-model",
            "none",
            "--captioner",
            "openai",
            "--base-url",
            server.url,
            "--captioner-model",
            "tiny-vlm",
            "--api-key-env",
            "VLM_KEY",
            "--caption-frames",
            "2",
            "--frame-size",
            "32",
            "--retries",
            "2",
            "--no-progress",
        ]
        code, _, _ = run_cli(args, capsys)
    assert code == 0
    records = read_records(out / "captions.jsonl")
    assert sum(r.num_segments for r in records) == len(server.requests) - 1  # one 502 retried
    for record in records:
        assert record.answers() == [f"caption of: {prompt}" for prompt in record.prompts()]
        assert record.provenance.captioner == f"openai:tiny-vlm@{server.url}"
    assert all(h["Authorization"] == "Bearer secret-token" for h in server.headers)
    assert "secret-token" not in (out / "manifest.json").read_text() + (out / "captions.jsonl").read_text()


def test_build_data_with_a_local_vlm_on_one_file(tmp_path, videos_dir, tiny_vlm, tiny_clip, capsys):
    out = tmp_path / "out"
    video = videos_dir / "synth-11-00001.mp4"
    args = [
        "build-data",
        video,
        out,
        "--captioner",
        "hf",
        "--captioner-model",
        tiny_vlm,
        "--caption-frames",
        "2",
        "--max-new-tokens",
        "6",
        "--v2t-model",
        tiny_clip,
        "--frame-size",
        "32",
        "--no-progress",
    ]
    assert run_cli(args, capsys)[0] == 0
    (record,) = read_records(out / "captions.jsonl")
    assert (record.id, record.video, record.num_segments) == ("synth-11-00001", "synth-11-00001.mp4", 6)
    assert all(0 < len(caption.split()) <= 6 for caption in record.answers())
    assert record.provenance.captioner == f"hf:{tiny_vlm.resolve()}" and record.lb_sim is not None


def test_stats_follow_the_records(reference_build, synth_corpus):
    captions = read_records(reference_build / "captions.jsonl")
    stats = compute_stats(captions + read_records(reference_build / "qa.jsonl"))  # a video counts once
    segments = sum(r.num_segments for r in captions)  # a scene may hold more than one segment
    words = [len(text.split()) for r in captions for text in r.answers()]
    assert (stats.videos, stats.segments, stats.captions) == (4, segments, segments)
    assert stats.hours == pytest.approx(4 * 45 / 3600)
    assert stats.mean_segment_sec == pytest.approx(180 / segments)
    assert stats.mean_caption_words == pytest.approx(sum(words) / len(words))
    assert stats.questions == sum(len(v.questions) for v in synth_corpus.videos)
    assert [b["videos"] for b in stats.buckets] == [4, 0, 0]


def test_duration_buckets_follow_the_paper():
    def record(video_id: str, seconds: float, segments: int) -> Record:
        step = seconds / segments
        scenes = tuple(Scene(i * 10, (i + 1) * 10, i * step, (i + 1) * step) for i in range(segments))
        turns = tuple(t for i in range(segments) for t in (Turn("human", "Describe."), Turn("gpt", f"Scene {i} here.")))
        return Record(
            id=video_id,
            video=f"{video_id}.mp4",
            task="captions",
            fps=10.0,
            duration_sec=seconds,
            scenes=scenes,
            conversations=turns,
            queries=tuple(f"Scene {i} here." for i in range(segments)),
            sen_sim=tuple(tuple(float(i == j) for j in range(segments)) for i in range(segments)),
            lb_sim=None,
            labels=tuple(tuple(int(i == j) for j in range(segments)) for i in range(segments)),
            provenance=Provenance("synthetic", None, "bundled"),
        )

    stats = compute_stats([record("a", 100, 2), record("b", 240, 3), record("c", 599, 1), record("d", 2280, 4)])
    assert [(b["name"], b["videos"], b["segments"]) for b in stats.buckets] == [
        ("short", 1, 2),
        ("long", 2, 4),
        ("extreme-long", 1, 4),
    ]
    assert stats.mean_caption_words == 3.0 and stats.mean_positives_per_query == 1.0
    text = format_stats(stats)
    assert "  long            240-600 s            2   50.0%         4   40.0%" in text


def test_data_stats_prints_and_plots(tmp_path, reference_build, capsys):
    plot = tmp_path / "stats.png"
    code, stdout, _ = run_cli(["data-stats", reference_build, "--plot", plot], capsys)
    assert code == 0
    assert stdout.splitlines()[0] == "videos            4"
    segments = sum(r.num_segments for r in read_records(reference_build / "captions.jsonl"))
    assert f"captions          {segments}  (" in stdout and f"plot              {plot}" in stdout
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    code, stdout, _ = run_cli(["data-stats", reference_build / "qa.jsonl", "--no-plot", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["questions"] == 12 and json.loads(stdout)["plot"] is None
    code, _, stderr = run_cli(["data-stats", tmp_path], capsys)
    assert code == 2 and "holds no captions.jsonl or qa.jsonl" in stderr
