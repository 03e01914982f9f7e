"""Request and response bodies of the HTTP API (pydantic models; they make the OpenAPI docs).

The chat-completion models follow OpenAI's ``/v1/chat/completions`` shapes, so that existing
OpenAI clients work; a video is referenced by a content part
``{"type": "video_url", "video_url": {"url": "salova://videos/<id>"}}`` in a user message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_QUESTION_CHARS",
    "MAX_TOP_K",
    "ErrorDetail",
    "ErrorResponse",
    "SegmentOut",
    "TimelineSegment",
    "VideoOut",
    "VideoList",
    "Turn",
    "AskRequest",
    "AskResponse",
    "TextPart",
    "VideoUrl",
    "VideoPart",
    "ChatMessage",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ModelCard",
    "ModelList",
]

MAX_QUESTION_CHARS = 4000
"""Longest question (and earlier turn) accepted, in characters."""
MAX_TOP_K = 64
"""Largest ``top_k`` a request may ask for."""
MAX_NEW_TOKENS = 1024
"""Largest ``max_tokens`` a request may ask for."""
MAX_TURNS = 64
"""Most earlier turns a request may carry."""

Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]


class ErrorDetail(BaseModel):
    message: str
    type: str
    """Machine-readable kind: ``invalid_request_error``, ``not_found``, ``authentication_error``..."""
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: ``{"error": {"message": ..., "type": ..., "code": ...}}``."""

    error: ErrorDetail


class SegmentOut(BaseModel):
    index: int
    start: float
    end: float
    text: str | None = None
    """On-screen text read in the segment (pipelines that read text)."""


class TimelineSegment(BaseModel):
    index: int
    start: float
    end: float
    score: float
    used: bool
    """The answer was generated from this segment."""

    @classmethod
    def rows(cls, answer: Any) -> list[TimelineSegment]:
        """Every segment of an :class:`~salova.infer.Answer`'s timeline, ``used`` where it was read."""
        used = {segment.index for segment in answer.segments}
        return [cls(**s.to_dict(), index=s.index, used=s.index in used) for s in answer.timeline]


class VideoOut(BaseModel):
    id: str
    filename: str
    size: int
    """Bytes."""
    status: Literal["queued", "indexing", "ready", "failed"]
    stage: str | None = None
    """Indexing stage: ``hashing``, ``decoding``, ``cached`` or ``done``."""
    progress: float | None = None
    """Share of the video indexed, 0-1, when known."""
    error: str | None = None
    duration: float | None = None
    segments: list[SegmentOut] | None = None
    """When ready."""
    pipeline: str
    created: float


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[VideoOut]


class Turn(BaseModel):
    question: Question
    answer: Annotated[str, Field(max_length=MAX_QUESTION_CHARS)]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] | None = None
    """Segments to read; the server's default when omitted."""
    history: Annotated[list[Turn], Field(max_length=MAX_TURNS)] = []
    """Earlier turns of the conversation, oldest first."""
    selector: Literal["topk", "seal"] | None = None
    """How the segments read are chosen: ``topk`` (best scored) or ``seal`` (relevant and not
    redundant); the server's default when omitted."""
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    """``seal``: the weight of relevance against redundancy; the server's default when omitted."""


class AskResponse(BaseModel):
    video_id: str
    answer: str
    pipeline: str
    segments: list[dict[str, float]]
    """The segments read: ``start``, ``end`` (seconds), ``score``."""
    timings: dict[str, float]
    timeline: list[TimelineSegment]
    """Every segment with its score; ``used`` marks those read."""


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class VideoUrl(BaseModel):
    url: str
    """``salova://videos/<id>`` (or the bare id)."""


class VideoPart(BaseModel):
    type: Literal["video_url"]
    video_url: VideoUrl


ContentPart = Annotated[TextPart | VideoPart, Field(discriminator="type")]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_QUESTION_CHARS)] | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI chat-completion request; sampling options are accepted and ignored (answers are greedy);
    ``model`` is echoed back (the server answers with the one model it loaded)."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=2 * MAX_TURNS + 2)]
    stream: bool = False
    max_tokens: Annotated[int, Field(ge=1, le=MAX_NEW_TOKENS)] | None = None
    """Longest answer in tokens; the server's default when omitted."""
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] | None = None
    """Extension: segments to read."""
    selector: Literal["topk", "seal"] | None = None
    """Extension: how the segments read are chosen."""
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    """Extension: ``seal``'s relevance weight."""


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatChoiceMessage
    finish_reason: Literal["stop", "length"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    salova: dict[str, Any]
    """Extension: ``video_id``, ``pipeline``, ``segments`` used and ``timings``."""


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "salova"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
