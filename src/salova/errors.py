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
