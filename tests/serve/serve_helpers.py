"""Helpers of the server tests: a real server (uvicorn on 127.0.0.1, an ephemeral port, in a background
thread), started per test module or session. Each server starts its own indexing worker process, as in
production. (A module with a unique name rather than ``conftest``, so that tests can import it whatever
other test folders hold.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from salova.infer import AssistantConfig, default_cache_dir
from salova.serve import ServerSettings, create_app

STARTUP_SECONDS = 120.0
READY_SECONDS = 180.0
API_KEY = "test-key-3f9a"
UPLOAD_LIMIT = 4 << 20
"""Upload limit of the tiny test server (the load test's 4-minute video takes 1.5 MB)."""


class LiveServer:
    """A running server: ``url``, its ``app`` and an ``httpx`` client factory."""

    def __init__(self, app, server: uvicorn.Server, thread: threading.Thread):
        self.app = app
        self.server = server
        self.thread = thread
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120.0, **kwargs)

    @property
    def data_dir(self) -> Path:
        return self.app.state.service.settings.data_dir

    def upload(self, path: Path, headers: dict | None = None) -> dict:
        """Upload a file as the raw body and wait until it is indexed; returns the video record."""
        with self.client(headers=headers) as client:
            response = client.post("/v1/videos", params={"filename": path.name}, content=path.read_bytes())
            assert response.status_code == 202, response.text
            return self.wait_ready(response.json()["id"], headers)

    def wait_ready(self, video_id: str, headers: dict | None = None) -> dict:
        deadline = time.monotonic() + READY_SECONDS
        with self.client(headers=headers) as client:
            while time.monotonic() < deadline:
                video = client.get(f"/v1/videos/{video_id}").json()
                if video["status"] in ("ready", "failed"):
                    assert video["status"] == "ready", video
                    return video
                time.sleep(0.2)
        raise AssertionError(f"video {video_id} not indexed within {READY_SECONDS} s")


@contextmanager
def live_server(settings: ServerSettings) -> Iterator[LiveServer]:
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(app, server, thread)
    finally:
        server.should_exit = True
        thread.join(60)


def settings_for(tmp: Path, model: str, **overrides) -> ServerSettings:
    assistant = AssistantConfig(cache_dir=tmp / "cache", models_dir=default_cache_dir() / "models", max_new_tokens=8)
    return ServerSettings(data_dir=tmp / "data", model=model, assistant=assistant, **overrides)
