"""Features of a frozen vision tower, kept for the frames it has already encoded.

A training stage with a frozen vision tower encodes the same frames again every time a video is
sampled: in the synthetic recipe each video's frames go through the tower tens of times. The
tower's output for a frame depends only on the frame's pixels, so :class:`FrameFeatureCache`
keeps it, keyed by a hash of the normalised pixels, and encodes only the frames it has not seen.
It holds at most ``max_bytes`` of features and forgets the least recently used first.

The cache is attached to a :class:`~salova.model.towers.VisionTower` (``tower.feature_cache``);
the tower refuses it while any of its weights trains, since the kept features would go stale.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

import torch

__all__ = ["FrameFeatureCache"]


def frame_keys(pixel_values: torch.Tensor) -> list[bytes]:
    """A 16-byte hash of each frame's bytes."""
    rows = pixel_values.detach().cpu().contiguous()
    flat = rows.reshape(rows.shape[0], -1).view(torch.uint8).numpy()
    return [hashlib.blake2b(memoryview(row), digest_size=16).digest() for row in flat]


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


class FrameFeatureCache:
    """Least-recently-used store of per-frame tower features, keyed by the frames' pixels.

    Args:
        max_bytes: the most feature bytes kept (> 0).

    Attributes:
        hits: frames that needed no encoding (kept, or repeated within one call).
        misses: frames that were encoded.
    """

    def __init__(self, max_bytes: int):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _keep(self, key: bytes, features: torch.Tensor) -> None:
        if _nbytes(features) > self.max_bytes:
            return
        self._entries[key] = features
        self.bytes += _nbytes(features)
        while self.bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self.bytes -= _nbytes(dropped)

    def features(self, pixel_values: torch.Tensor, encode: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The features of ``pixel_values``: kept ones looked up, the others encoded in one call and kept.

        Args:
            pixel_values: ``(frames, ...)`` the tower's input.
            encode: the tower's encoder, ``(n, ...) -> (n, tokens, hidden)``.

        Returns:
            ``(frames, tokens, hidden)`` in frame order.
        """
        if pixel_values.shape[0] == 0:
            return encode(pixel_values)
        keys = frame_keys(pixel_values)
        found: dict[bytes, torch.Tensor] = {}
        missing: dict[bytes, int] = {}  # a frame repeated within the call is encoded once
        for index, key in enumerate(keys):
            if key in found or key in missing:
                continue
            if key in self._entries:
                self._entries.move_to_end(key)
                found[key] = self._entries[key]
            else:
                missing[key] = index
        if missing:
            encoded = encode(pixel_values[list(missing.values())])
            for key, features in zip(missing, encoded, strict=True):
                found[key] = features
                self._keep(key, features.detach().clone())
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        return torch.stack([found[key] for key in keys])
