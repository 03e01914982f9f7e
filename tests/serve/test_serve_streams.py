"""Live streams over real HTTP: push bytes while asking, status, limits and errors; the ask
endpoints' selector option."""

from __future__ import annotations

import time

import pytest

from salova.serve.streams import StreamSettings
from salova.synth import SynthConfig
from salova.synth.live import write_live_stream

STREAM = SynthConfig(seed=8, minutes=3, fps=2, width=64, height=64, min_scene_sec=8, questions_per_video=0)
WAIT_SECONDS = 120.0


@pytest.fixture(scope="module")
def stream_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("stream") / "live.ts"
    write_live_stream(path, STREAM)
    return path.read_bytes()


def wait_for(client, stream_id: str, condition) -> dict:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        state = client.get(f"/v1/streams/{stream_id}").json()
        if condition(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"stream {stream_id} never reached the expected state: {state}")


def test_push_and_ask_while_the_stream_plays(tiny_server, stream_bytes):
    with tiny_server.client() as client:
        created = client.post("/v1/streams", json={"queries": ["Where is the star?"], "window": 2, "budget": 3})
        assert created.status_code == 201, created.text
        stream = created.json()
        assert stream["status"] == "waiting" and stream["window"] == 2 and stream["budget"] == 3
        stream_id = stream["id"]
        early = client.post(f"/v1/streams/{stream_id}/ask", json={"question": "What is shown?"})
        assert early.status_code == 409 and early.json()["error"]["code"] == "stream_not_ready"

        half = len(stream_bytes) // 2
        pushed = client.post(f"/v1/streams/{stream_id}/data", content=stream_bytes[:half])
        assert pushed.status_code == 200 and pushed.json()["received_bytes"] == half
        running = wait_for(client, stream_id, lambda s: s["segments_seen"] >= 3)
        assert running["status"] == "running"
        mid = client.post(f"/v1/streams/{stream_id}/ask", json={"question": "Where is the star?", "top_k": 2})
        assert mid.status_code == 200, mid.text
        mid_body = mid.json()
        assert 0 < mid_body["seen_until"] < STREAM.minutes * 60
        assert len(mid_body["timeline"]) <= 5 and sum(s["used"] for s in mid_body["timeline"]) <= 2
        assert all(s["end"] <= mid_body["seen_until"] + 1e-3 for s in mid_body["segments"])

        rest = client.post(f"/v1/streams/{stream_id}/data", params={"end": "true"}, content=stream_bytes[half:])
        assert rest.status_code == 200
        ended = wait_for(client, stream_id, lambda s: s["status"] in ("ended", "failed"))
        assert ended["status"] == "ended" and ended["error"] is None
        assert ended["seen_until"] == pytest.approx(STREAM.minutes * 60, abs=0.6)
        assert len(ended["memory"]) <= 5 < ended["segments_seen"]
        assert [m["window"] for m in ended["memory"]][-2:] == [True, True]
        final = client.post(f"/v1/streams/{stream_id}/ask", json={"question": "Where is the star?", "selector": "seal"})
        assert final.status_code == 200 and final.json()["seen_until"] == ended["seen_until"]
        late = client.post(f"/v1/streams/{stream_id}/data", content=b"more")
        assert late.status_code == 409 and late.json()["error"]["code"] == "stream_ended"
        assert client.delete(f"/v1/streams/{stream_id}").status_code == 204
        assert client.get(f"/v1/streams/{stream_id}").status_code == 404


def test_stream_requests_are_checked(tiny_server):
    with tiny_server.client() as client:
        bad = client.get("/v1/streams/..%2Fetc")
        assert bad.status_code in (400, 404)
        assert client.get("/v1/streams/s_" + "0" * 32).json()["error"]["code"] == "stream_not_found"
        assert client.get("/v1/streams/v_" + "0" * 32).json()["error"]["code"] == "invalid_stream_id"
        assert client.post("/v1/streams", json={"window": 0}).status_code == 422
        assert client.post("/v1/streams", json={"unknown": 1}).status_code == 422
        opened = []
        for _ in range(StreamSettings().max_streams):
            response = client.post("/v1/streams", json={})
            assert response.status_code == 201
            opened.append(response.json()["id"])
        refused = client.post("/v1/streams", json={})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_streams"
        for stream_id in opened:
            assert client.delete(f"/v1/streams/{stream_id}").status_code == 204
        again = client.post("/v1/streams", json={})
        assert again.status_code == 201
        assert client.delete(f"/v1/streams/{again.json()['id']}").status_code == 204


def test_video_ask_and_chat_accept_a_selector(tiny_server, bikes_video):
    url = f"/v1/videos/{bikes_video['id']}/ask"
    with tiny_server.client() as client:
        topk = client.post(url, json={"question": "What happens?", "top_k": 2, "selector": "topk"}).json()
        seal = client.post(url, json={"question": "What happens?", "top_k": 2, "selector": "seal", "alpha": 0.5}).json()
        assert len(seal["segments"]) == 2 and [s["score"] for s in seal["timeline"]] == [
            s["score"] for s in topk["timeline"]
        ]
        assert client.post(url, json={"question": "q", "selector": "mmr"}).status_code == 422
        assert client.post(url, json={"question": "q", "alpha": 2}).status_code == 422
        chat = client.post(
            "/v1/chat/completions",
            json={
                "model": "salova",
                "selector": "seal",
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "What happens?"},
                    {"type": "video_url", "video_url": {"url": f"salova://videos/{bikes_video['id']}"}},
                ]}],
            },
        )  # fmt: skip
        assert chat.status_code == 200 and chat.json()["salova"]["segments"]
