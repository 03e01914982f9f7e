"""The assistant: index a long video once, then answer questions about it.

Public entry points:

- :class:`VideoAssistant` — ``index(video)``, ``ask(question)``, ``chat(video)``; returns :class:`Answer`.
- :func:`load_pipeline` / :func:`resolve_model` — what ``--model`` names: a SALOVA checkpoint
  folder, ``tiny``, or the training-free ``text-rag`` pipeline (the default until a SALOVA
  checkpoint ships).
- :class:`FeatureCache` — the on-disk index cache (safetensors with a checksum).
- :class:`StreamSession` — answers about a live video from a bounded memory (SEAL's streaming mode).

Example:
    >>> from salova.infer import AssistantConfig, VideoAssistant
    >>> assistant = VideoAssistant.from_model("text-rag", AssistantConfig(top_k=3))  # doctest: +SKIP
    >>> assistant.index("lecture.mp4")  # doctest: +SKIP
    >>> print(assistant.ask("When is the word AGENDA shown?").to_dict())  # doctest: +SKIP
"""

from salova.infer.assistant import Answer, ChatSession, ScoredSegment, VideoAssistant
from salova.infer.cache import CacheEntry, FeatureCache, default_cache_dir, file_sha256
from salova.infer.config import AssistantConfig, OcrConfig, TextRagConfig
from salova.infer.index import IndexProgress, Pipeline, VideoIndex
from salova.infer.models import MODEL_NAMES, SHIPPED_CHECKPOINT, ModelSpec, default_model, load_pipeline, resolve_model
from salova.infer.stream import StreamAnswer, StreamConfig, StreamSession

__all__ = [
    "Answer",
    "AssistantConfig",
    "CacheEntry",
    "ChatSession",
    "FeatureCache",
    "IndexProgress",
    "MODEL_NAMES",
    "ModelSpec",
    "OcrConfig",
    "Pipeline",
    "SHIPPED_CHECKPOINT",
    "ScoredSegment",
    "StreamAnswer",
    "StreamConfig",
    "StreamSession",
    "TextRagConfig",
    "VideoAssistant",
    "VideoIndex",
    "default_cache_dir",
    "default_model",
    "file_sha256",
    "load_pipeline",
    "resolve_model",
]
