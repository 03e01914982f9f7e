"""The exception hierarchy of salova.

Library code raises these (or plain ``ValueError``/``TypeError`` for bad arguments);
only the command line turns a :class:`SalovaError` into a one-line ``error:`` message
and exit code 2. Every message names the thing that is wrong (usually a file) and why.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "SalovaError",
    "PathError",
    "ConfigError",
    "CheckpointError",
    "DataError",
    "CorpusError",
    "CorpusMismatchError",
    "VideoError",
    "VideoNotFoundError",
    "VideoPermissionError",
    "VideoDecodeError",
    "NoVideoStreamError",
    "VideoTooLargeError",
    "CorruptVideoError",
    "RecordError",
    "ModelFolderError",
    "CaptionerError",
    "EngineError",
    "BuildOutputError",
    "BuildMismatchError",
    "AnnotationError",
    "EvalError",
    "ResultsMismatchError",
    "MissingDependencyError",
    "CacheError",
    "ModelSpecError",
    "BundledModelError",
    "NotIndexedError",
    "UploadError",
    "UploadTooLargeError",
]


class SalovaError(Exception):
    """Base class of every error salova raises on purpose."""


class ConfigError(SalovaError, ValueError):
    """A configuration value or file is invalid."""


class CheckpointError(SalovaError):
    """A checkpoint folder is missing, incomplete or does not match the model."""


class PathError(SalovaError):
    """Something is wrong with a file or folder: ``path`` names it, ``problem`` says what."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DataError(SalovaError):
    """A data record or data file is malformed."""


class CorpusError(DataError, PathError):
    """A synthetic corpus folder or file cannot be written or read."""


class CorpusMismatchError(CorpusError, ConfigError):
    """The folder already holds a corpus made with a different config."""


class VideoError(PathError):
    """A video file cannot be used."""


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The path does not exist or is not a regular file."""


class VideoPermissionError(VideoError, PermissionError):
    """The file exists but cannot be read."""


class VideoDecodeError(VideoError):
    """The file is not a decodable video (empty, not a media file, truncated...)."""


class NoVideoStreamError(VideoDecodeError):
    """The file is a media file without a video stream (for example audio only)."""


class VideoTooLargeError(VideoError):
    """The frame size exceeds the configured limit."""


class CorruptVideoError(VideoDecodeError):
    """Frames failed to decode and strict decoding was asked for."""


class RecordError(DataError):
    """A data record (see :mod:`salova.data.schema`) breaks the schema; the message names the
    record and the field."""


class ModelFolderError(CheckpointError, PathError):
    """A local model folder (captioner, V2T or T2T model) is missing or cannot be loaded."""


class CaptionerError(SalovaError):
    """A captioner could not caption a segment. ``endpoint`` names the server for remote
    captioners (else ``None``); ``status`` is the last HTTP status seen, if any."""

    def __init__(self, message: str, *, endpoint: str | None = None, status: int | None = None):
        self.endpoint = endpoint
        self.status = status
        super().__init__(message)


class EngineError(SalovaError):
    """An execution engine (local worker processes or Ray) cannot start or lost its workers."""


class BuildOutputError(DataError, PathError):
    """A data-build output folder cannot be used (not a folder, not writable, foreign content)."""


class BuildMismatchError(BuildOutputError, ConfigError):
    """The output folder already holds a data build made with different settings."""


class AnnotationError(DataError, PathError):
    """A benchmark annotation file is missing, unreadable or not in the benchmark's official format;
    the message names the file and, where it applies, the row and field."""


class EvalError(SalovaError):
    """An evaluation run cannot go on (for example a model that answers nothing usable)."""


class ResultsMismatchError(EvalError, PathError, ConfigError):
    """A partial results file was written by a run with other settings (benchmark, model,
    convention...); resuming would mix them."""


class MissingDependencyError(SalovaError, ImportError):
    """An optional package needed by the requested feature is not installed; the message says
    what to install."""


class CacheError(PathError):
    """The feature cache folder (or one of its entries) cannot be read or written."""


class ModelSpecError(ConfigError):
    """A model argument names neither a SALOVA checkpoint folder nor a known pipeline."""


class BundledModelError(SalovaError):
    """A model shipped inside a Python package (OCR, MiniLM, SmolLM2) is missing or cannot be loaded."""


class NotIndexedError(SalovaError):
    """A question was asked before any video was indexed."""


class UploadError(SalovaError):
    """An uploaded file was refused (empty, or the upload broke off)."""


class UploadTooLargeError(UploadError):
    """An upload exceeds the server's size limit; ``limit`` is the limit in bytes."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"the upload exceeds the limit of {limit} bytes")
