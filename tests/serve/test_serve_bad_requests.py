"""Bad requests get a 4xx with a JSON error and change nothing on the server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serve_helpers import API_KEY, UPLOAD_LIMIT, live_server, settings_for

UNKNOWN_ID = "v_" + "0" * 32
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500
"""An mp4 signature and nothing else."""


def _snapshot(server) -> tuple:
    """Everything a request could change: the files under the data folder and the video list."""
    files = sorted(
        (str(p.relative_to(server.data_dir)), p.stat().st_size) for p in Path(server.data_dir).rglob("*") if p.is_file()
    )
    with server.client(headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        videos = sorted(v["id"] for v in client.get("/v1/videos").json()["data"])
    return files, videos


def _assert_json_error(response, status: int | None = None) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str)
    return error


@pytest.fixture
def unchanged(tiny_server, bikes_video):
    before = _snapshot(tiny_server)
    yield
    assert _snapshot(tiny_server) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/videos/{UNKNOWN_ID}"),
        ("POST", f"/v1/videos/{UNKNOWN_ID}/ask"),
        ("GET", f"/v1/videos/{UNKNOWN_ID}/events"),
        ("GET", f"/v1/videos/{UNKNOWN_ID}/file"),
        ("GET", "/v1/videos/..%2F..%2F..%2Fetc%2Fpasswd"),
        ("GET", "/v1/videos/%2e%2e/file"),
        ("GET", "/v1/videos/..%5c..%5cmeta.json/file"),
        ("POST", "/v1/videos/%2Fetc%2Fpasswd/ask"),
        ("GET", "/v1/videos/v_../file"),
        ("GET", "/static/..%2F..%2F..%2Fpyproject.toml"),
        ("GET", "/v1/nothing-here"),
    ],
)
def test_unknown_ids_and_traversal_attempts(tiny_server, unchanged, method, path):
    with tiny_server.client() as client:
        response = client.request(method, path, json={"question": "x"} if method == "POST" else None)
    error = _assert_json_error(response)
    assert "root:" not in response.text and "[project]" not in response.text
    assert error["type"] in ("not_found", "invalid_request_error")


def test_traversal_in_a_chat_video_reference(tiny_server, unchanged):
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What?"},
            {"type": "video_url", "video_url": {"url": "salova://videos/../../etc/passwd"}},
        ],
    }
    with tiny_server.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "salova", "messages": [message]})
    assert _assert_json_error(response, 400)["code"] == "invalid_video_id"


def test_oversized_uploads_are_refused_while_streaming(tiny_server, unchanged):
    body = os.urandom(UPLOAD_LIMIT + (1 << 20))

    def chunked():  # no Content-Length: the limit must hold while the body streams in
        for start in range(0, len(body), 1 << 16):
            yield body[start : start + (1 << 16)]

    with tiny_server.client() as client:
        declared = client.post("/v1/videos", content=body)
        streamed = client.post("/v1/videos", content=chunked())
        multipart = client.post("/v1/videos", files={"file": ("big.mp4", body, "video/mp4")})
    for response in (declared, streamed, multipart):
        assert _assert_json_error(response, 413)["code"] == "upload_too_large"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"this is not a video\n" * 100}, 415, "not_a_video"),
        (
            {"files": {"file": ("notes.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500, "video/mp4")}},
            415,
            "not_a_video",
        ),
        ({"content": b""}, 400, "bad_upload"),
        ({"files": {"other": ("a.mp4", b"data", "video/mp4")}}, 400, "missing_file"),
    ],
    ids=["text-as-raw-body", "fake-mp4-multipart", "empty", "no-file-field"],
)
def test_non_video_uploads_are_refused_and_removed(tiny_server, unchanged, kwargs, status, code):
    with tiny_server.client() as client:
        response = client.post("/v1/videos", params={"filename": "x.mp4"}, **kwargs)
    assert _assert_json_error(response, status)["code"] == code
    assert not [p for p in (tiny_server.data_dir / "videos").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"question": "unterminated', 400),
        (b"[1, 2", 400),
        (b'{"question": 42}', 422),
        (b'{"question": ""}', 422),
        (b'{"question": "ok", "top_k": 0}', 422),
        (b'{"question": "ok", "unexpected": true}', 422),
        (b'{"question": "' + b"x" * 5000 + b'"}', 422),
    ],
)
def test_malformed_or_invalid_json(tiny_server, bikes_video, unchanged, body, status):
    with tiny_server.client() as client:
        response = client.post(
            f"/v1/videos/{bikes_video['id']}/ask", content=body, headers={"Content-Type": "application/json"}
        )
        chat = client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    _assert_json_error(response, status)
    _assert_json_error(chat)


def test_chat_without_a_video_or_question(tiny_server, bikes_video, unchanged):
    video = {"type": "video_url", "video_url": {"url": f"salova://videos/{bikes_video['id']}"}}
    with tiny_server.client() as client:
        no_video = client.post(
            "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "Hi?"}]}
        )
        no_question = client.post(
            "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": [video]}]}
        )
    assert _assert_json_error(no_video, 400)["code"] == "missing_video"
    assert _assert_json_error(no_question, 400)["code"] == "missing_question"


def test_api_key_is_required_on_every_api_route(tmp_path, bikes_path):
    with live_server(settings_for(tmp_path, "tiny", api_key=API_KEY)) as server:
        before = sorted(p.name for p in (server.data_dir / "videos").iterdir())
        with server.client() as client:
            attempts = [
                client.get("/v1/videos"),
                client.get("/v1/health"),
                client.post("/v1/videos", content=bikes_path.read_bytes()),
                client.post(f"/v1/videos/{UNKNOWN_ID}/ask", json={"question": "x"}),
                client.post("/v1/chat/completions", content=b"{broken"),
                client.get("/v1/videos", headers={"Authorization": "Bearer wrong-key"}),
                client.get("/v1/videos", headers={"X-API-Key": API_KEY[:-1]}),
            ]
            for response in attempts:
                assert _assert_json_error(response, 401)["type"] == "authentication_error"
            assert sorted(p.name for p in (server.data_dir / "videos").iterdir()) == before
            assert client.get("/").status_code == 200  # the page is public; it asks for the key
            assert client.get("/v1/health", headers={"X-API-Key": API_KEY}).status_code == 200
            video = server.upload(bikes_path, headers={"Authorization": f"Bearer {API_KEY}"})
            assert video["status"] == "ready"
