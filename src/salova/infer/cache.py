"""On-disk cache of video indexes, keyed by the video's content hash and the model's identity.

Layout::

    <root>/<sha[:2]>/<sha>/<identity_key>.safetensors

``sha`` is the SHA-256 of the video file's bytes, so a renamed or copied file hits the cache and
an edited one misses it. ``identity_key`` hashes a JSON description of everything that shaped the
stored features: the pipeline, the weights of the modules that ran (vision tower and connector,
or the OCR and embedding models) and the ingest settings. One file holds an entry: its tensors,
and in the safetensors header the entry's metadata (JSON) and a checksum over metadata and
tensor bytes. An entry is written under a temporary name and moved into place, so readers never
see a part. On reading, an entry that does not parse, was written by another format version,
describes another video or identity, or fails its checksum is logged, deleted and reported as
missing, so that the caller rebuilds it; it is never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from salova import fileio
from salova.bundled import CACHE_DIR_ENV, default_cache_dir  # noqa: F401 - re-exported
from salova.errors import CacheError

__all__ = [
    "CACHE_FORMAT",
    "CACHE_FORMAT_VERSION",
    "CacheEntry",
    "FeatureCache",
    "default_cache_dir",
    "file_sha256",
    "identity_key",
    "tensors_digest",
]

logger = logging.getLogger(__name__)

CACHE_FORMAT = "salova-index"
"""Format tag stored in every entry."""
CACHE_FORMAT_VERSION = 1
"""Bumped whenever the stored layout changes; entries of other versions are rebuilt."""
HASH_CHUNK_BYTES = 1 << 20
"""Read size while hashing a file."""
IDENTITY_KEY_CHARS = 32
"""Hex characters of an identity hash used in file names (128 bits)."""
_META_KEY = "salova"
_CHECKSUM_KEY = "checksum"
_ENTRY_SUFFIX = ".safetensors"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def identity_key(identity: Mapping[str, Any]) -> str:
    """The file-name hash of an identity description (canonical JSON, SHA-256, 128 bits)."""
    return hashlib.sha256(_canonical(dict(identity))).hexdigest()[:IDENTITY_KEY_CHARS]


def tensors_digest(tensors: Mapping[str, torch.Tensor], prefix: bytes = b"") -> str:
    """SHA-256 over ``prefix`` and every tensor's name, dtype, shape and bytes, in name order.

    Used as an entry's checksum and to fingerprint model weights.
    """
    digest = hashlib.sha256(prefix)
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(_canonical([name, str(tensor.dtype), list(tensor.shape)]))
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """A loaded entry: its tensors and the metadata stored with them."""

    path: Path
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


class FeatureCache:
    """Entries of video features on disk; see the module docstring for layout and checks.

    Args:
        root: the cache folder (created on the first write).

    Example:
        >>> cache = FeatureCache("runs/feature-cache")  # doctest: +SKIP
        >>> cache.store(sha, {"pipeline": "salova"}, {"x": torch.zeros(2)}, {"segments": 2})  # doctest: +SKIP
        >>> cache.load(sha, {"pipeline": "salova"}).meta["segments"]  # doctest: +SKIP
        2
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def path(self, video_sha256: str, identity: Mapping[str, Any]) -> Path:
        """Where the entry of this video and identity lives."""
        if len(video_sha256) != hashlib.sha256().digest_size * 2 or not all(
            c in "0123456789abcdef" for c in video_sha256
        ):
            raise ValueError(f"video_sha256 must be 64 lowercase hex digits, got {video_sha256!r}")
        return self.root / video_sha256[:2] / video_sha256 / f"{identity_key(identity)}{_ENTRY_SUFFIX}"

    def load(self, video_sha256: str, identity: Mapping[str, Any]) -> CacheEntry | None:
        """The valid entry of this video and identity, or ``None`` (missing, or found bad and deleted).

        Raises:
            CacheError: a bad entry cannot be deleted.
        """
        path = self.path(video_sha256, identity)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                header = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
            meta = json.loads(header[_META_KEY])
            checksum = header[_CHECKSUM_KEY]
        except (SafetensorError, OSError, KeyError, ValueError, TypeError) as exc:
            return self._discard(path, f"unreadable ({exc})")
        if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
            return self._discard(path, "not a salova index entry")
        if meta.get("version") != CACHE_FORMAT_VERSION:
            return self._discard(path, f"format version {meta.get('version')!r}, expected {CACHE_FORMAT_VERSION}")
        if meta.get("video_sha256") != video_sha256 or meta.get("identity") != json.loads(_canonical(dict(identity))):
            return self._discard(path, "describes another video or model")
        if tensors_digest(tensors, _canonical(meta)) != checksum:
            return self._discard(path, "checksum mismatch (corrupted)")
        return CacheEntry(path=path, tensors=tensors, meta=meta)

    def store(
        self,
        video_sha256: str,
        identity: Mapping[str, Any],
        tensors: Mapping[str, torch.Tensor],
        meta: Mapping[str, Any],
    ) -> Path:
        """Write an entry atomically (replacing any entry of the same key) and return its path.

        Args:
            video_sha256: the video's content hash.
            identity: JSON-ready description of what produced the features.
            tensors: the features (moved to CPU, made contiguous).
            meta: JSON-ready metadata stored with them.

        Raises:
            CacheError: the entry cannot be written.
        """
        path = self.path(video_sha256, identity)
        full_meta = {
            **dict(meta),
            "format": CACHE_FORMAT,
            "version": CACHE_FORMAT_VERSION,
            "video_sha256": video_sha256,
            "identity": json.loads(_canonical(dict(identity))),
            "created": time.time(),
        }
        stored = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
        header = {_META_KEY: _canonical(full_meta).decode("utf-8")}
        header[_CHECKSUM_KEY] = tensors_digest(stored, _canonical(full_meta))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fileio.remove_stale_parts(path)
            with fileio.atomic_path(path) as temp:
                save_file(stored, str(temp), metadata=header)
        except OSError as exc:
            raise CacheError(path, f"cannot write the index entry: {exc.strerror or exc}") from exc
        return path

    def _discard(self, path: Path, reason: str) -> None:
        logger.warning("index cache entry %s is invalid (%s); it is deleted and will be rebuilt", path, reason)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise CacheError(path, f"invalid entry cannot be deleted: {exc.strerror or exc}") from exc
        return None
