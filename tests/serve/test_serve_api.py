"""The HTTP API over real HTTP: upload, progress events, ask, OpenAI-compatible chat, the file, the docs."""

from __future__ import annotations

import json

import openai
import pytest


def _events(text: str) -> list[tuple[str, dict]]:
    """(event, data) of each event of a server-sent-events body; comment lines (heartbeats) skipped."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_multipart_upload_streams_progress_until_ready(tiny_server, bikes_path):
    with tiny_server.client() as client:
        files = {"file": ("clip.mp4", bikes_path.read_bytes(), "video/mp4")}
        created = client.post("/v1/videos", files=files)
        assert created.status_code == 202
        video = created.json()
        assert video["filename"] == "clip.mp4" and video["status"] in ("queued", "indexing", "ready")
        assert video["size"] == bikes_path.stat().st_size
        events = _events(client.get(f"/v1/videos/{video['id']}/events").text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "ready" and set(kinds[:-1]) <= {"progress"}
    assert events[-1][1]["segments"] == 4 and events[-1][1]["progress"] == 1.0


def test_indexed_video_lists_its_segments(tiny_server, bikes_video):
    assert bikes_video["status"] == "ready" and bikes_video["pipeline"] == "salova"
    assert [s["index"] for s in bikes_video["segments"]] == [0, 1, 2, 3]
    assert bikes_video["duration"] == pytest.approx(10.0)
    with tiny_server.client() as client:
        listed = client.get("/v1/videos").json()
    assert bikes_video["id"] in [v["id"] for v in listed["data"]]


def test_ask_returns_answer_segments_timings_and_timeline(tiny_server, bikes_video):
    with tiny_server.client() as client:
        response = client.post(f"/v1/videos/{bikes_video['id']}/ask", json={"question": "What happens?", "top_k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["pipeline"] == "salova" and isinstance(body["answer"], str)
    assert len(body["segments"]) == 2 and len(body["timeline"]) == 4
    used = [(s["start"], s["end"]) for s in body["timeline"] if s["used"]]
    assert used == [(s["start"], s["end"]) for s in body["segments"]]
    assert {"index", "route", "generate", "total"} <= set(body["timings"])


def test_openai_client_chats_about_a_video(tiny_server, bikes_video):
    client = openai.OpenAI(base_url=f"{tiny_server.url}/v1", api_key="unused", max_retries=0)
    video = {"type": "video_url", "video_url": {"url": f"salova://videos/{bikes_video['id']}"}}
    first = client.chat.completions.create(
        model="salova", messages=[{"role": "user", "content": [{"type": "text", "text": "What happens?"}, video]}]
    )
    assert first.object == "chat.completion" and first.model == "salova"
    assert isinstance(first.choices[0].message.content, str) and first.choices[0].finish_reason == "stop"
    assert first.model_extra["salova"]["video_id"] == bikes_video["id"]
    assert first.model_extra["salova"]["pipeline"] == "salova"
    follow_up = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What happens?"}, video]},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And then?"},
    ]
    stream = client.chat.completions.create(model="salova", messages=follow_up, stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
    assert [m.id for m in client.models.list()] == ["salova"]


def test_video_file_is_served_with_range_requests(tiny_server, bikes_video, bikes_path):
    with tiny_server.client() as client:
        whole = client.get(f"/v1/videos/{bikes_video['id']}/file")
        part = client.get(f"/v1/videos/{bikes_video['id']}/file", headers={"Range": "bytes=100-199"})
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.content == bikes_path.read_bytes()
    assert part.status_code == 206 and part.content == bikes_path.read_bytes()[100:200]


def test_openapi_docs_and_page_are_served(tiny_server):
    with tiny_server.client() as client:
        spec = client.get("/openapi.json").json()
        docs = client.get("/docs")
        page = client.get("/")
        script = client.get("/static/app.js")
    assert {"/v1/videos", "/v1/videos/{video_id}/ask", "/v1/chat/completions"} <= set(spec["paths"])
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert page.status_code == 200 and 'id="timeline"' in page.text
    assert script.status_code == 200 and "drawTimeline" in script.text
