"""What the HTTP routes call: uploads, indexing state, asks and OpenAI-style chat, over one
:class:`~salova.infer.VideoAssistant`.

Routes stay thin; everything they need is a method here, raising :class:`ApiError` (an HTTP status,
a message and a type) for the client's mistakes. Asks run in worker threads, ``ask_concurrency``
at a time, and wait for their turn in the event loop, so the loop itself never blocks on a model.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from salova.errors import NotIndexedError, UploadError, UploadTooLargeError, VideoError
from salova.infer import Answer, VideoAssistant, resolve_model
from salova.serve.config import ServerSettings
from salova.serve.jobs import IndexingService, JobState
from salova.serve.schemas import (
    AskResponse,
    ChatChoice,
    ChatChoiceMessage,
    ChatCompletionResponse,
    ChatMessage,
    ModelCard,
    SegmentOut,
    TimelineSegment,
    Usage,
    VideoOut,
)
from salova.serve.store import StoredVideo, VideoStore, is_video_id
from salova.serve.streams import request_selector

__all__ = ["ApiError", "VideoService", "VIDEO_URL_PREFIX"]

logger = logging.getLogger(__name__)

VIDEO_URL_PREFIX = "salova://videos/"
"""How a chat message refers to an uploaded video: ``salova://videos/<id>``."""
HEARTBEAT = ": keep-alive\n\n"


class ApiError(Exception):
    """A request the server refuses: ``status`` (4xx), a message for the client and an error type."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code


async def _upload_chunks(upload: UploadFile, size: int) -> AsyncIterator[bytes]:
    while chunk := await upload.read(size):
        yield chunk


def _words(text: str) -> int:
    return len(text.split())


class VideoService:
    """The server's state: settings, assistant, stored videos and the indexing worker.

    Args:
        settings: the server settings.
        assistant: the answering assistant; loaded from ``settings.model`` when omitted.
    """

    def __init__(self, settings: ServerSettings, assistant: VideoAssistant | None = None):
        self.settings = settings
        self.assistant = assistant or VideoAssistant.from_model(settings.model, settings.assistant)
        self.store = VideoStore(settings.data_dir)
        self.jobs = IndexingService(
            resolve_model(settings.model),
            self.assistant.config,
            threads=settings.index_threads,
            niceness=settings.index_niceness,
            on_done=self._loaded,
        )
        name = self.assistant.pipeline_name
        self.model_id = "salova" if name == "salova" else f"salova-{name}"
        self.started = int(time.time())
        self._ask_limiter = anyio.CapacityLimiter(settings.ask_concurrency)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the indexing worker and queue every stored video (found in the cache at once when indexed)."""
        self.jobs.start()
        for stored in self.store.all():
            self.jobs.submit(stored.id, stored.path)

    def close(self) -> None:
        self.jobs.close()

    def _loaded(self, video_id: str, path) -> None:
        if self.assistant.lookup(path) is None:
            raise NotIndexedError(f"video {video_id}: the indexing worker stored no index")

    # ----------------------------------------------------------------- videos

    def stored(self, video_id: str) -> StoredVideo:
        """The stored video, or a 400 (not an id) / 404 (unknown id)."""
        if not is_video_id(video_id):
            raise ApiError(
                400, f"invalid video id {video_id[:80]!r}: ids look like v_<32 hex digits>", code="invalid_video_id"
            )
        stored = self.store.get(video_id)
        if stored is None:
            raise ApiError(404, f"no video with id {video_id}", "not_found", "video_not_found")
        return stored

    def _job(self, video_id: str) -> JobState:
        return self.jobs.state(video_id) or JobState(video_id)

    async def describe(self, stored: StoredVideo) -> VideoOut:
        """The video's record; with its segments when it is ready."""
        job = self._job(stored.id)
        index = None
        if job.status == "ready":
            index = await anyio.to_thread.run_sync(self.assistant.lookup, stored.path)
        return VideoOut(
            id=stored.id,
            filename=stored.filename,
            size=stored.size,
            status=job.status,
            stage=job.stage,
            progress=job.progress,
            error=job.error,
            duration=None if index is None else index.duration,
            segments=None if index is None else [SegmentOut(**row) for row in index.segments_json()],
            pipeline=self.assistant.pipeline_name,
            created=stored.created,
        )

    async def upload(self, request: Request, filename: str | None) -> StoredVideo:
        """Store the request's body (raw bytes, or the ``file`` field of a multipart form) and queue it.

        Raises:
            ApiError: 411 (multipart without a length), 413 (too large), 415 (not a video), 400 (empty,
                malformed form, broken upload).
        """
        limit = self.settings.max_upload_bytes
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise ApiError(413, f"the upload exceeds the limit of {limit} bytes", code="upload_too_large")
        try:
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                if length is None:
                    raise ApiError(411, "a multipart upload needs a Content-Length header", code="length_required")
                async with request.form(max_files=1, max_fields=1) as form:
                    upload = form.get("file")
                    if not isinstance(upload, UploadFile):
                        raise ApiError(
                            400, "the multipart form needs a 'file' field holding the video", code="missing_file"
                        )
                    chunks = _upload_chunks(upload, self.settings.upload_chunk_bytes)
                    stored = await self.store.save(chunks, upload.filename or filename, limit)
            else:
                stored = await self.store.save(request.stream(), filename, limit)
        except UploadTooLargeError as exc:
            raise ApiError(413, str(exc), code="upload_too_large") from exc
        except VideoError as exc:
            raise ApiError(415, f"the upload is not a readable video: {exc.problem}", code="not_a_video") from exc
        except UploadError as exc:
            raise ApiError(400, str(exc), code="bad_upload") from exc
        except ClientDisconnect as exc:
            raise ApiError(400, "the upload broke off", code="bad_upload") from exc
        self.jobs.submit(stored.id, stored.path)
        return stored

    async def events(self, video_id: str) -> AsyncIterator[str]:
        """Server-sent events of a video's indexing: ``progress`` updates, then ``ready`` or ``failed``."""
        last, idle = -1, 0.0
        while True:
            job = self._job(video_id)
            if job.version != last:
                last, idle = job.version, 0.0
                event = job.status if job.finished else "progress"
                data = {k: getattr(job, k) for k in ("status", "stage", "progress", "segments", "error")}
                yield f"event: {event}\ndata: {json.dumps({'id': video_id, **data})}\n\n"
                if job.finished:
                    return
            elif idle >= self.settings.event_heartbeat_seconds:
                idle = 0.0
                yield HEARTBEAT
            await anyio.sleep(self.settings.event_poll_seconds)
            idle += self.settings.event_poll_seconds

    # ----------------------------------------------------------------- asking

    async def answer(
        self,
        video_id: str,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        top_k: int | None = None,
        max_new_tokens: int | None = None,
        selector: str | None = None,
        alpha: float | None = None,
    ) -> Answer:
        """Answer a question about a ready video (409 while it is not ready); ``selector`` and ``alpha``
        override the assistant's segment selector."""
        stored = self.stored(video_id)
        job = self._job(video_id)
        if job.status != "ready":
            detail = f": {job.error}" if job.error else ""
            raise ApiError(409, f"video {video_id} is {job.status}, not ready{detail}", code="video_not_ready")

        def run() -> Answer:
            index = self.assistant.lookup(stored.path)
            if index is None:
                raise ApiError(409, f"video {video_id} has no index any more; upload it again", code="video_not_ready")
            return self.assistant.ask(
                question,
                video=index,
                history=history,
                top_k=top_k,
                max_new_tokens=max_new_tokens,
                selector=request_selector(self.assistant, selector, alpha),
            )

        return await anyio.to_thread.run_sync(run, limiter=self._ask_limiter)

    @staticmethod
    def ask_response(video_id: str, answer: Answer) -> AskResponse:
        body = answer.to_dict()
        return AskResponse(
            video_id=video_id,
            answer=body["answer"],
            pipeline=body["pipeline"],
            segments=body["segments"],
            timings=body["timings"],
            timeline=TimelineSegment.rows(answer),
        )

    # ----------------------------------------------------------------- OpenAI compatibility

    def model_card(self) -> ModelCard:
        return ModelCard(id=self.model_id, created=self.started)

    @staticmethod
    def parse_chat(messages: Sequence[ChatMessage]) -> tuple[str, str, list[tuple[str, str]]]:
        """``(video_id, question, history)`` from chat messages (system messages are ignored).

        The video is the last ``video_url`` part; the question is the text of the last message,
        which must come from the user; earlier user/assistant messages pair into the history.
        """
        videos: list[str] = []
        turns: list[tuple[str, str]] = []
        for message in messages:
            if message.role in ("system", "developer"):
                continue
            parts = [message.content] if isinstance(message.content, str) else (message.content or [])
            texts = []
            for part in parts:
                if isinstance(part, str):
                    texts.append(part)
                elif part.type == "text":
                    texts.append(part.text)
                else:
                    videos.append(part.video_url.url.removeprefix(VIDEO_URL_PREFIX))
            turns.append((message.role, "\n".join(t for t in texts if t.strip())))
        if not videos:
            raise ApiError(
                400,
                "no video in the messages: add a content part "
                f'{{"type": "video_url", "video_url": {{"url": "{VIDEO_URL_PREFIX}<id>"}}}} to a user message',
                code="missing_video",
            )
        if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
            raise ApiError(
                400, "the last message must be a user message with text (the question)", code="missing_question"
            )
        history, pending = [], None
        for role, text in turns[:-1]:
            if role == "user":
                pending = text
            elif pending is not None:
                history.append((pending, text))
                pending = None
        return videos[-1], turns[-1][1], history

    def completion(self, model: str, video_id: str, question: str, answer: Answer) -> ChatCompletionResponse:
        body = answer.to_dict()
        prompt, completion = _words(question), _words(answer.text)
        return ChatCompletionResponse(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=model,
            choices=[ChatChoice(message=ChatChoiceMessage(content=answer.text))],
            usage=Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion),
            salova={"video_id": video_id, **{k: v for k, v in body.items() if k != "answer"}},
        )

    @staticmethod
    async def completion_chunks(response: ChatCompletionResponse) -> AsyncIterator[str]:
        """The completion as an OpenAI stream: one content chunk, a final chunk, ``[DONE]``."""
        base: dict[str, Any] = {
            "id": response.id,
            "object": "chat.completion.chunk",
            "created": response.created,
            "model": response.model,
        }
        content = response.choices[0].message.content
        first = {"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}
        last = {"index": 0, "delta": {}, "finish_reason": "stop"}
        yield f"data: {json.dumps({**base, 'choices': [first]})}\n\n"
        yield f"data: {json.dumps({**base, 'choices': [last], 'salova': response.salova})}\n\n"
        yield "data: [DONE]\n\n"
