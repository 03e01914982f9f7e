"""The HTTP server: a FastAPI app over one :class:`~salova.infer.VideoAssistant`.

Endpoints (OpenAPI docs at ``/docs``):

======  =================================  ================================================
POST    ``/v1/videos``                     upload a video (raw body or multipart ``file``);
                                           202, indexing starts in the background
GET     ``/v1/videos``                     list uploaded videos
GET     ``/v1/videos/{id}``                a video: status, progress, segments when ready
GET     ``/v1/videos/{id}/events``         indexing progress as server-sent events
GET     ``/v1/videos/{id}/file``           the video file (range requests, for the player)
POST    ``/v1/videos/{id}/ask``            answer a question: text, segments, timings, timeline
POST    ``/v1/chat/completions``           OpenAI-compatible chat about a video
GET     ``/v1/models``                     OpenAI-compatible model list
GET     ``/v1/health``                     liveness and the pipeline in use
GET     ``/``                              the web page
======  =================================  ================================================

Every error is JSON, ``{"error": {"message", "type", "code"}}``, with a 4xx status for the
client's mistakes. With an API key set, every ``/v1`` request must carry it.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

import salova
from salova.infer import VideoAssistant
from salova.serve.config import ServerSettings
from salova.serve.schemas import (
    AskRequest,
    AskResponse,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ErrorResponse,
    ModelList,
    VideoList,
    VideoOut,
)
from salova.serve.service import ApiError, VideoService
from salova.serve.streams import StreamService, install_stream_routes

__all__ = ["create_app", "API_PREFIX"]

logger = logging.getLogger(__name__)

API_PREFIX = "/v1"
STATIC_DIR = Path(__file__).parent / "static"
_ERROR_TYPES = {
    401: "authentication_error",
    404: "not_found",
    405: "invalid_request_error",
    413: "invalid_request_error",
}
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 409, 411, 413, 415, 422)}


def _error(status: int, message: str, type_: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "code": code}}, status_code=status)


class ApiKeyMiddleware:
    """Refuses ``/v1`` requests without the API key (``Authorization: Bearer`` or ``X-API-Key``)
    before anything else reads them; compares in constant time."""

    def __init__(self, app: ASGIApp, api_key: str):
        self.app = app
        self.key = api_key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX + "/"):
            headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
            given = headers.get("x-api-key", b"")
            authorization = headers.get("authorization", b"")
            if authorization[:7].lower() == b"bearer ":
                given = authorization[7:].strip()
            if not secrets.compare_digest(given, self.key):
                await _error(401, "missing or invalid API key", "authentication_error", "invalid_api_key")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.type, exc.code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
        return _error(exc.status_code, message, _ERROR_TYPES.get(exc.status_code, "invalid_request_error"))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "the request body is not valid JSON", "invalid_request_error", "json_invalid")
        first = errors[0] if errors else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return _error(
            422, f"{where or 'request'}: {first.get('msg', 'invalid')}", "invalid_request_error", "invalid_body"
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal server error", "server_error")


def create_app(settings: ServerSettings | None = None, *, assistant: VideoAssistant | None = None) -> FastAPI:
    """Build the app; the model loads now, the indexing worker starts with the app's lifespan.

    Args:
        settings: server settings (defaults: loopback data folder under the cache, default model).
        assistant: an already loaded assistant (otherwise loaded from ``settings.model``).

    Returns:
        The FastAPI app, for ``uvicorn.run(app, ...)``.

    Raises:
        ModelSpecError, CheckpointError, BundledModelError: the model cannot be loaded.
    """
    settings = settings or ServerSettings()
    service = VideoService(settings, assistant)
    streams = StreamService(service.assistant, settings.streams)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.start()
        try:
            yield
        finally:
            streams.close()
            service.close()

    app = FastAPI(
        title="SALOVA",
        version=salova.__version__,
        summary="Ask questions about long videos: upload, index once, ask; OpenAI-compatible chat.",
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.service = service
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key)
    _install_error_handlers(app)
    # Declared for the OpenAPI docs' "Authorize" button; ApiKeyMiddleware enforces the key.
    docs_auth = [Security(HTTPBearer(auto_error=False)), Security(APIKeyHeader(name="X-API-Key", auto_error=False))]

    @app.get(API_PREFIX + "/health", dependencies=docs_auth)
    async def health() -> dict:
        return {
            "status": "ok",
            "pipeline": service.assistant.pipeline_name,
            "model": service.assistant.pipeline.describe(),
        }

    @app.post(API_PREFIX + "/videos", status_code=202, response_model=VideoOut, dependencies=docs_auth)
    async def upload_video(request: Request, filename: str | None = None) -> VideoOut:
        """Upload a video as the raw request body (``?filename=`` names it) or as the ``file`` field of a
        multipart form. Answers 202 at once; follow ``/v1/videos/{id}/events`` for indexing progress."""
        return await service.describe(await service.upload(request, filename))

    @app.get(API_PREFIX + "/videos", response_model=VideoList, dependencies=docs_auth)
    async def list_videos() -> VideoList:
        return VideoList(data=[await service.describe(stored) for stored in service.store.all()])

    @app.get(API_PREFIX + "/videos/{video_id}", response_model=VideoOut, dependencies=docs_auth)
    async def get_video(video_id: str) -> VideoOut:
        return await service.describe(service.stored(video_id))

    @app.get(API_PREFIX + "/videos/{video_id}/events", dependencies=docs_auth, response_class=StreamingResponse)
    async def video_events(video_id: str) -> StreamingResponse:
        """Server-sent events: ``progress`` while indexing, then one ``ready`` or ``failed``."""
        service.stored(video_id)
        return StreamingResponse(
            service.events(video_id), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.get(API_PREFIX + "/videos/{video_id}/file", dependencies=docs_auth, response_class=FileResponse)
    async def video_file(video_id: str) -> FileResponse:
        stored = service.stored(video_id)
        return FileResponse(stored.path, media_type=stored.media_type)

    @app.post(API_PREFIX + "/videos/{video_id}/ask", response_model=AskResponse, dependencies=docs_auth)
    async def ask(video_id: str, body: AskRequest) -> AskResponse:
        history = [(turn.question, turn.answer) for turn in body.history]
        answer = await service.answer(video_id, body.question, history, body.top_k, None, body.selector, body.alpha)
        return service.ask_response(video_id, answer)

    @app.post(API_PREFIX + "/chat/completions", response_model=ChatCompletionResponse, dependencies=docs_auth)
    async def chat_completions(body: ChatCompletionRequest):
        """OpenAI-compatible: the user message carries ``{"type": "video_url", "video_url": {"url":
        "salova://videos/<id>"}}``; answers in the ``chat.completion`` shape (``stream`` supported)."""
        video_id, question, history = service.parse_chat(body.messages)
        answer = await service.answer(
            video_id, question, history, body.top_k, body.max_tokens, body.selector, body.alpha
        )
        response = service.completion(body.model, video_id, question, answer)
        if body.stream:
            return StreamingResponse(service.completion_chunks(response), media_type="text/event-stream")
        return response

    install_stream_routes(app, streams, API_PREFIX, docs_auth)

    @app.get(API_PREFIX + "/models", response_model=ModelList, dependencies=docs_auth)
    async def models() -> ModelList:
        return ModelList(data=[service.model_card()])

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
