"""Settings of the HTTP server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from salova.errors import ConfigError
from salova.infer import AssistantConfig, default_cache_dir
from salova.serve.streams import StreamSettings

__all__ = ["ServerSettings", "DEFAULT_HOST", "DEFAULT_PORT"]

DEFAULT_HOST = "127.0.0.1"
"""Loopback only: exposing the server is an explicit choice (``--host 0.0.0.0``)."""
DEFAULT_PORT = 8000
GIB = 1 << 30


@dataclass(frozen=True)
class ServerSettings:
    """What :func:`~salova.serve.create_app` needs."""

    data_dir: Path = field(default_factory=lambda: default_cache_dir() / "server")
    """Uploaded videos live in ``videos/<id>/`` here."""
    model: str | None = None
    """``--model``: a SALOVA checkpoint folder, ``tiny``, ``text-rag``, or ``None`` for the default."""
    assistant: AssistantConfig = field(default_factory=AssistantConfig)
    api_key: str | None = None
    """When set, every ``/v1`` request must send ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    max_upload_bytes: int = 2 * GIB
    """Largest accepted upload; checked while the body streams in, before it is all received."""
    index_threads: int = 1
    """Torch and OCR threads of the indexing process, which runs beside the asks."""
    index_niceness: int = 10
    """CPU niceness added to the indexing process, so that asks win the cores while a video indexes."""
    ask_concurrency: int = 1
    """Asks answered at the same time (the others wait their turn without holding threads)."""
    upload_chunk_bytes: int = 1 << 20
    """Read size while copying an upload to disk."""
    event_poll_seconds: float = 0.1
    """How often a progress stream (server-sent events) looks for news."""
    event_heartbeat_seconds: float = 10.0
    """A progress stream with no news sends a comment line this often, so proxies keep it open."""
    streams: StreamSettings = field(default_factory=StreamSettings)
    """Live streams pushed to ``/v1/streams`` (see :mod:`salova.serve.streams`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("api_key must be a non-empty string or None")
        checks = (
            ("max_upload_bytes", self.max_upload_bytes >= 1, ">= 1"),
            ("index_threads", self.index_threads >= 1, ">= 1"),
            ("index_niceness", 0 <= self.index_niceness <= 19, "in [0, 19]"),
            ("ask_concurrency", self.ask_concurrency >= 1, ">= 1"),
            ("upload_chunk_bytes", self.upload_chunk_bytes >= 1, ">= 1"),
            ("event_poll_seconds", self.event_poll_seconds > 0, "> 0"),
            ("event_heartbeat_seconds", self.event_heartbeat_seconds > 0, "> 0"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{name} must be {expected}, got {getattr(self, name)!r}")
