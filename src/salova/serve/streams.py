"""Live streams on the server: a client pushes a video as it is being made and asks about it at any time.

======  ==================================  ===============================================
POST    ``/v1/streams``                     open a stream (standing queries, window, budget)
POST    ``/v1/streams/{id}/data``           push bytes (MPEG-TS, Matroska or fragmented MP4); any
                                            number of requests, chunked bodies welcome; ``?end=true``
                                            marks the last
POST    ``/v1/streams/{id}/end``            no more data
GET     ``/v1/streams/{id}``                segments seen, seconds seen, the memory's segments
POST    ``/v1/streams/{id}/ask``            answer from what has been seen so far
DELETE  ``/v1/streams/{id}``                stop and forget the stream
======  ==================================  ===============================================

The bytes go through a bounded in-memory pipe (:class:`~salova.video.live.PushStream`) to a
:class:`~salova.infer.stream.StreamSession` reading in a thread of its own: nothing is written to
disk, and a push waits while the pipe is full, so neither memory nor disk grows with the length of a
stream. The server never opens a path or URL a client names; streams come in as request bodies.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

import anyio
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from salova.errors import ConfigError, NotIndexedError
from salova.infer import VideoAssistant
from salova.infer.stream import StreamConfig, StreamSession
from salova.model.selection import SelectorConfig
from salova.serve.schemas import MAX_QUESTION_CHARS, MAX_TOP_K, Question, TimelineSegment, Turn
from salova.video.live import PushStream

__all__ = [
    "StreamSettings",
    "StreamCreate",
    "StreamOut",
    "StreamAskRequest",
    "StreamAskResponse",
    "StreamService",
    "install_stream_routes",
    "is_stream_id",
]

logger = logging.getLogger(__name__)

STREAM_ID_PREFIX = "s_"
_STREAM_ID_HEX = 32
MAX_STANDING_QUERIES = 8
"""Most standing queries a stream may be opened with."""
MAX_MEMORY_SEGMENTS = 512
"""Largest window or budget a request may ask for."""


@dataclass(frozen=True)
class StreamSettings:
    """Limits of the live streams a server accepts."""

    max_streams: int = 4
    """Streams open at once (each holds a decoder, a reader thread and a memory)."""
    buffer_bytes: int = 8 << 20
    """Bytes buffered per stream between the pushes and the decoder; a push waits while it is full."""
    push_timeout_seconds: float = 60.0
    """A push that cannot hand a chunk to a full buffer for this long fails (the reader is stuck)."""
    stream: StreamConfig = field(default_factory=StreamConfig)
    """Default window, budget and memory selector of a stream."""

    def __post_init__(self) -> None:
        if self.max_streams < 1 or self.buffer_bytes < 1 or self.push_timeout_seconds <= 0:
            raise ConfigError("max_streams and buffer_bytes must be >= 1 and push_timeout_seconds > 0")


def is_stream_id(value: str) -> bool:
    """Whether ``value`` looks like an id this server makes (``s_`` and 32 hex digits)."""
    body = value.removeprefix(STREAM_ID_PREFIX)
    return (
        value.startswith(STREAM_ID_PREFIX)
        and len(body) == _STREAM_ID_HEX
        and all(c in "0123456789abcdef" for c in body)
    )


class StreamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: Annotated[list[Question], Field(max_length=MAX_STANDING_QUERIES)] = []
    """Standing questions: the memory keeps segments relevant to them (none: the most diverse)."""
    window: Annotated[int, Field(ge=1, le=MAX_MEMORY_SEGMENTS)] | None = None
    budget: Annotated[int, Field(ge=1, le=MAX_MEMORY_SEGMENTS)] | None = None
    format: Literal["mpegts", "matroska", "mp4"] | None = None
    """Container of the pushed bytes; probed when omitted."""


class MemorySegment(BaseModel):
    index: int
    start: float
    end: float
    window: bool


class StreamOut(BaseModel):
    id: str
    status: Literal["waiting", "running", "ended", "failed"]
    """``waiting`` for bytes, ``running``, ``ended`` (the stream is over; asks still work), ``failed``."""
    received_bytes: int
    segments_seen: int
    seen_until: float
    """Seconds of the stream covered by the memory."""
    memory: list[MemorySegment]
    window: int
    budget: int
    queries: list[str]
    error: str | None = None
    created: float


class StreamAskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] | None = None
    selector: Literal["topk", "seal"] | None = None
    """How the segments read are chosen among the memory's; the server's default when omitted."""
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    history: Annotated[list[Turn], Field(max_length=64)] = []


class StreamAskResponse(BaseModel):
    stream_id: str
    answer: Annotated[str, Field(max_length=MAX_QUESTION_CHARS * 4)]
    pipeline: str
    segments: list[dict[str, float]]
    timings: dict[str, float]
    timeline: list[TimelineSegment]
    """The memory's segments with their scores; ``index`` is the segment's position in the stream."""
    seen_until: float
    segments_seen: int


@dataclass
class _Live:
    id: str
    session: StreamSession
    pipe: PushStream
    thread: threading.Thread
    created: float


class StreamApiError(Exception):
    """A refused stream request (turned into the server's JSON error by the app's handler)."""

    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def request_selector(assistant: VideoAssistant, name: str | None, alpha: float | None) -> SelectorConfig:
    """The selector of a request: the assistant's, with the name and alpha the request gives."""
    base = assistant.selector(name)
    return base if alpha is None else SelectorConfig(**{**base.to_dict(), "alpha": alpha})


class StreamService:
    """The server's live streams.

    Args:
        assistant: answers (its pipeline encodes the segments).
        settings: limits and stream defaults.
    """

    def __init__(self, assistant: VideoAssistant, settings: StreamSettings | None = None):
        self.assistant = assistant
        self.settings = settings or StreamSettings()
        self._streams: dict[str, _Live] = {}
        self._lock = threading.Lock()

    def _get(self, stream_id: str) -> _Live:
        if not is_stream_id(stream_id):
            raise StreamApiError(
                400, f"invalid stream id {stream_id[:80]!r}: ids look like s_<32 hex digits>", "invalid_stream_id"
            )
        with self._lock:
            live = self._streams.get(stream_id)
        if live is None:
            raise StreamApiError(404, f"no stream with id {stream_id}", "stream_not_found")
        return live

    def create(self, body: StreamCreate) -> StreamOut:
        """Open a stream; its reader waits for the first bytes."""
        with self._lock:
            if len(self._streams) >= self.settings.max_streams:
                raise StreamApiError(
                    429, f"{self.settings.max_streams} streams are open; end one first", "too_many_streams"
                )
            defaults = self.settings.stream
            window = body.window or defaults.window
            config = replace(
                defaults,
                window=window,
                budget=body.budget or defaults.budget,
                step=min(defaults.step, window),
                live=replace(defaults.live, format=body.format),
            )
            stream_id = STREAM_ID_PREFIX + secrets.token_hex(_STREAM_ID_HEX // 2)
            session = StreamSession(self.assistant, config, body.queries)
            pipe = PushStream(self.settings.buffer_bytes)
            thread = session.start(pipe)
            self._streams[stream_id] = _Live(stream_id, session, pipe, thread, time.time())
        return self.describe(stream_id)

    def describe(self, stream_id: str) -> StreamOut:
        live = self._get(stream_id)
        state = live.session.state()
        if state.error is not None:
            status = "failed"
        elif state.finished:
            status = "ended"
        elif live.pipe.received == 0:
            status = "waiting"
        else:
            status = "running"
        return StreamOut(
            id=live.id,
            status=status,
            received_bytes=live.pipe.received,
            segments_seen=state.segments_seen,
            seen_until=round(state.seen_until, 3),
            memory=[
                MemorySegment(index=i, start=round(s, 3), end=round(e, 3), window=i in state.window)
                for i, s, e in state.memory
            ],
            window=live.session.config.window,
            budget=live.session.config.budget,
            queries=list(live.session.queries),
            error=state.error,
            created=live.created,
        )

    async def push(self, stream_id: str, request: Request, end: bool) -> StreamOut:
        """Hand the request body to the stream's reader, chunk by chunk (waiting while its buffer is full)."""
        live = self._get(stream_id)
        if live.pipe.ended:
            raise StreamApiError(409, f"stream {stream_id} has ended; open a new one", "stream_ended")
        timeout = self.settings.push_timeout_seconds
        try:
            async for chunk in request.stream():
                if chunk:
                    await anyio.to_thread.run_sync(lambda c=chunk: live.pipe.write(c, timeout))
        except ClientDisconnect as exc:
            raise StreamApiError(400, "the push broke off", "bad_push") from exc
        except TimeoutError as exc:
            raise StreamApiError(503, f"stream {stream_id} is not reading: {exc}", "stream_stalled") from exc
        except ValueError as exc:
            raise StreamApiError(409, f"stream {stream_id}: {exc}", "stream_ended") from exc
        if end:
            live.pipe.end()
        return self.describe(stream_id)

    def end(self, stream_id: str) -> StreamOut:
        """No more bytes will come; the reader finishes what is buffered."""
        self._get(stream_id).pipe.end()
        return self.describe(stream_id)

    async def ask(self, stream_id: str, body: StreamAskRequest) -> StreamAskResponse:
        """Answer from the memory as it is now (409 while no segment has completed)."""
        live = self._get(stream_id)
        selector = request_selector(self.assistant, body.selector, body.alpha)
        history = [(turn.question, turn.answer) for turn in body.history]

        def run():
            return live.session.ask(body.question, history=history, top_k=body.top_k, selector=selector)

        try:
            answer = await anyio.to_thread.run_sync(run)
        except NotIndexedError as exc:
            raise StreamApiError(409, str(exc), "stream_not_ready") from exc
        data = answer.to_dict()
        return StreamAskResponse(
            stream_id=stream_id,
            answer=data["answer"],
            pipeline=data["pipeline"],
            segments=data["segments"],
            timings=data["timings"],
            timeline=TimelineSegment.rows(answer),
            seen_until=data["seen_until"],
            segments_seen=data["segments_seen"],
        )

    def delete(self, stream_id: str) -> None:
        live = self._get(stream_id)
        live.pipe.cancel()
        with self._lock:
            self._streams.pop(stream_id, None)

    def close(self) -> None:
        """Cancel every stream (server shutdown)."""
        with self._lock:
            streams, self._streams = list(self._streams.values()), {}
        for live in streams:
            live.pipe.cancel()


def install_stream_routes(app: FastAPI, service: StreamService, prefix: str, dependencies: list) -> None:
    """Add the ``/streams`` routes to ``app`` (see the module notes)."""
    from fastapi.responses import JSONResponse

    @app.exception_handler(StreamApiError)
    async def stream_error(request: Request, exc: StreamApiError) -> JSONResponse:
        error_type = "not_found" if exc.status == 404 else "invalid_request_error"
        return JSONResponse({"error": {"message": exc.message, "type": error_type, "code": exc.code}}, exc.status)

    @app.post(prefix + "/streams", status_code=201, response_model=StreamOut, dependencies=dependencies)
    async def open_stream(body: StreamCreate) -> StreamOut:
        """Open a live stream; push its bytes to ``/streams/{id}/data``."""
        return service.create(body)

    @app.get(prefix + "/streams/{stream_id}", response_model=StreamOut, dependencies=dependencies)
    async def get_stream(stream_id: str) -> StreamOut:
        return service.describe(stream_id)

    @app.post(prefix + "/streams/{stream_id}/data", response_model=StreamOut, dependencies=dependencies)
    async def push_data(stream_id: str, request: Request, end: bool = False) -> StreamOut:
        """Append the raw body to the stream (MPEG-TS, Matroska or fragmented MP4); ``?end=true`` after the last."""
        return await service.push(stream_id, request, end)

    @app.post(prefix + "/streams/{stream_id}/end", response_model=StreamOut, dependencies=dependencies)
    async def end_stream(stream_id: str) -> StreamOut:
        return service.end(stream_id)

    @app.post(prefix + "/streams/{stream_id}/ask", response_model=StreamAskResponse, dependencies=dependencies)
    async def ask_stream(stream_id: str, body: StreamAskRequest) -> StreamAskResponse:
        """Answer from what the stream has shown so far."""
        return await service.ask(stream_id, body)

    @app.delete(prefix + "/streams/{stream_id}", status_code=204, dependencies=dependencies)
    async def delete_stream(stream_id: str) -> None:
        service.delete(stream_id)
