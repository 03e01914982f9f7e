"""Building blocks shared by the ST-Connector and the SR-Router.

* :class:`MultiHeadAttention`: cross-attention on ``torch.nn.functional.scaled_dot_product_attention``
  with a boolean key mask, so that padded keys get exactly zero weight.
* :func:`lookup_positions`: reads a learned position table at any number of positions, including
  more positions than the table has rows (the table is then resampled linearly, as ViT position
  embeddings are interpolated for larger images). This is how the temporal embedding of the
  connector and the segment-position table of the router avoid the released code's crashes
  past their sizes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MultiHeadAttention", "position_coordinates", "lookup_positions"]


class MultiHeadAttention(nn.Module):
    """Multi-head attention from ``queries`` to ``keys``/``values`` with a key padding mask.

    Args:
        query_dim: width of the query stream.
        key_dim: width of the key/value stream.
        num_heads: attention heads.
        head_dim: width of one head; the inner width is ``num_heads * head_dim``.
        bias: whether the four projections have biases.
        dropout: attention-probability dropout, active only in training.
    """

    def __init__(self, query_dim: int, key_dim: int, num_heads: int, head_dim: int, bias: bool, dropout: float = 0.0):
        super().__init__()
        inner_dim = num_heads * head_dim
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.dropout = dropout
        self.q_proj = nn.Linear(query_dim, inner_dim, bias=bias)
        self.k_proj = nn.Linear(key_dim, inner_dim, bias=bias)
        self.v_proj = nn.Linear(key_dim, inner_dim, bias=bias)
        self.o_proj = nn.Linear(inner_dim, query_dim, bias=bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend from every query to the unmasked keys.

        Args:
            queries: ``(batch, num_queries, query_dim)``.
            keys: ``(batch, num_keys, key_dim)``.
            values: ``(batch, num_keys, key_dim)``.
            key_mask: ``(batch, num_keys)`` bool, ``True`` for keys that take part; every row needs
                at least one ``True``.

        Returns:
            ``(batch, num_queries, query_dim)``.
        """
        return self.attend(self.q_proj(queries), self.k_proj(keys), self.v_proj(values), key_mask)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attention over already projected ``q`` ``(batch, num_queries, inner)`` and ``k``/``v``
        ``(batch, num_keys, inner)``; returns the output projection ``(batch, num_queries, query_dim)``.

        Callers that build keys from several streams project each stream and concatenate the
        (narrower) projections, instead of concatenating the wide inputs.
        """
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            self._split_heads(q),  # (batch, heads, num_queries, head_dim)
            self._split_heads(k),  # (batch, heads, num_keys, head_dim)
            self._split_heads(v),
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        batch, _, num_queries, _ = out.shape
        out = out.transpose(1, 2).reshape(batch, num_queries, self.num_heads * self.head_dim)
        return self.o_proj(out)


def position_coordinates(index: torch.Tensor, length: torch.Tensor, table_size: int) -> torch.Tensor:
    """Fractional table row for position ``index`` of a sequence of ``length`` items.

    Sequences that fit the table read row ``index`` exactly. Longer sequences read the table
    stretched over their length: ``index * (table_size - 1) / (length - 1)``, so the first item
    reads row 0, the last item the last row, and the order of positions is kept.

    Args:
        index: integer positions, any shape.
        length: the sequence length of each position (same shape as ``index``, or broadcastable).
        table_size: rows of the table.

    Returns:
        Float coordinates in ``[0, table_size - 1]``, the shape of ``index``.
    """
    index = index.to(torch.float32)
    length = torch.as_tensor(length, device=index.device).to(torch.float32).expand_as(index)
    stretched = index * (table_size - 1) / (length - 1).clamp(min=1.0)
    return torch.where(length <= table_size, index, stretched)


def lookup_positions(table: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` at fractional ``coordinates``, linearly interpolated.

    Args:
        table: ``(table_size, dim)``.
        coordinates: float coordinates in ``[0, table_size - 1]``, any shape ``S``.

    Returns:
        ``(*S, dim)``; integer coordinates return the rows exactly.
    """
    lower = coordinates.floor().long().clamp(0, table.shape[0] - 1)
    upper = (lower + 1).clamp(max=table.shape[0] - 1)
    weight = (coordinates - lower.to(coordinates.dtype)).unsqueeze(-1).to(table.dtype)
    return table[lower] * (1 - weight) + table[upper] * weight
