"""The index cache: round trip, and every kind of bad entry detected, deleted and reported missing."""

from __future__ import annotations

import hashlib
import logging

import pytest
import torch

from salova.errors import CacheError
from salova.infer import cache as cache_module
from salova.infer.cache import FeatureCache, file_sha256, identity_key

SHA = hashlib.sha256(b"a video").hexdigest()
IDENTITY = {"pipeline": "salova", "weights": "abc", "ingest": {"fps": 1.0}}


@pytest.fixture
def cache(tmp_path) -> FeatureCache:
    return FeatureCache(tmp_path / "index")


@pytest.fixture
def stored(cache):
    tensors = {"routing_tokens": torch.randn(3, 8), "latents": torch.randn(3, 4, 8).to(torch.bfloat16)}
    path = cache.store(SHA, IDENTITY, tensors, {"spans": [[0, 1], [1, 2], [2, 3]], "texts": ["", "MANGO", ""]})
    return path, tensors


def test_round_trip_keeps_tensors_dtypes_and_metadata(cache, stored):
    path, tensors = stored
    assert path == cache.root / SHA[:2] / SHA / f"{identity_key(IDENTITY)}.safetensors"
    entry = cache.load(SHA, IDENTITY)
    assert entry is not None and entry.path == path
    assert set(entry.tensors) == set(tensors)
    for name, tensor in tensors.items():
        assert entry.tensors[name].dtype == tensor.dtype
        assert torch.equal(entry.tensors[name], tensor)
    assert entry.meta["texts"] == ["", "MANGO", ""] and entry.meta["video_sha256"] == SHA
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_other_identity_or_video_is_a_miss(cache, stored):
    assert cache.load(SHA, {**IDENTITY, "weights": "other"}) is None
    assert cache.load(hashlib.sha256(b"another video").hexdigest(), IDENTITY) is None
    assert cache.load(SHA, IDENTITY) is not None  # misses do not touch the entry


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_flip_last_byte, "checksum mismatch"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "unreadable"),
        (lambda p: p.write_bytes(b""), "unreadable"),
    ],
    ids=["flipped-byte", "truncated", "empty"],
)
def test_damaged_entry_is_deleted_with_a_warning(cache, stored, caplog, damage, reason):
    path, _ = stored
    damage(path)
    with caplog.at_level(logging.WARNING, logger="salova.infer.cache"):
        assert cache.load(SHA, IDENTITY) is None
    assert not path.exists()
    assert any(reason in record.getMessage() and str(path) in record.getMessage() for record in caplog.records)


def test_entry_moved_under_another_key_is_refused(cache, stored, caplog):
    path, _ = stored
    other = {**IDENTITY, "weights": "other"}
    moved = cache.path(SHA, other)
    path.rename(moved)
    with caplog.at_level(logging.WARNING, logger="salova.infer.cache"):
        assert cache.load(SHA, other) is None
    assert not moved.exists()
    assert "another video or model" in caplog.text


def test_entry_of_another_format_version_is_rebuilt(cache, stored, monkeypatch, caplog):
    monkeypatch.setattr(cache_module, "CACHE_FORMAT_VERSION", cache_module.CACHE_FORMAT_VERSION + 1)
    with caplog.at_level(logging.WARNING, logger="salova.infer.cache"):
        assert cache.load(SHA, IDENTITY) is None
    assert "format version" in caplog.text


def test_unwritable_cache_is_a_typed_error(tmp_path):
    blocker = tmp_path / "index"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(CacheError, match="cannot write the index entry"):
        FeatureCache(blocker).store(SHA, IDENTITY, {"x": torch.zeros(1)}, {})


def test_key_must_be_a_sha256(cache):
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        cache.path("../../etc", IDENTITY)


def test_file_sha256_hashes_the_bytes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 3_000_000)
    assert file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
