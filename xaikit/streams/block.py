"""Cross-attention blocks of CA-Stream (thesis ch.3, eqs. 3.1-3.4, 3.7, 3.8).

A block takes the stream's query ``q_l`` (B, d_l) and the stage features ``F_l`` (B, d_l, h, w)
and returns the next query ``q_{l+1} = W_l CA_l(q_l, F_l)`` (B, d_{l+1}) together with the
attention weights ``a`` (B, h, w) used for pooling.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..errors import InputError


def cross_attention(q: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-query cross attention, eqs. (3.1) and (3.3).

    ``a = softmax(F q / sqrt(d))`` over the p = h*w spatial positions and ``CA(q, F) = F^T a``,
    i.e. the attention-weighted average of the patch features (eq. 3.4).

    q: (B, d); feats: (B, d, h, w). Returns (pooled (B, d), attention (B, h, w)).
    With q = 0 the attention is uniform and the result is exactly GAP.
    """
    b, d, h, w = feats.shape
    f = feats.reshape(b, d, h * w)                                    # F^T: (B, d, p)
    logits = torch.bmm(q.unsqueeze(1), f).squeeze(1) / math.sqrt(d)  # F q / sqrt(d): (B, p)
    a = torch.softmax(logits, dim=-1)
    pooled = torch.bmm(f, a.unsqueeze(-1)).squeeze(-1)               # F^T a: (B, d)
    return pooled, a.reshape(b, h, w)


class CABlock(nn.Module):
    """Vanilla CA block: cross attention (3.3) followed by the projection ``W_l`` of eq. (3.7).

    ``q_{l+1} = W_l CA_l(q_l, F_l) + b_l`` with ``W_l`` in R^{d_{l+1} x d_l} (nn.Linear, with bias as
    in the authors' code).
    """

    def __init__(self, dim: int, out_dim: int, bias: bool = True):
        super().__init__()
        self.dim, self.out_dim = int(dim), int(out_dim)
        self.proj = nn.Linear(self.dim, self.out_dim, bias=bias)

    def attend(self, q: torch.Tensor, feats: torch.Tensor):
        return cross_attention(q, feats)

    def forward(self, q: torch.Tensor, feats: torch.Tensor):
        if feats.dim() != 4 or feats.shape[1] != self.dim:
            raise InputError(f"CA block expects features (B, {self.dim}, h, w), got {tuple(feats.shape)}; "
                             "the backbone's stage widths changed since the stream was built - rewrap the model")
        pooled, a = self.attend(q, feats)
        return self.proj(pooled), a


class ProjCABlock(CABlock):
    """PROJ->CA block, eq. (3.8): ``CA(q, F) = (F W^V)^T h(F W^K q)`` then ``W_l`` of eq. (3.7).

    Computed with associativity, ``F (W^K q)`` and ``W^V^T (F^T a)``, which is exact and costs
    O(p d + d^2) instead of O(p d^2). The key projection has no bias: a bias ``b`` would add the
    same ``b . q`` to every position, which the softmax ignores. The value bias is kept: since
    ``sum(a) = 1`` it adds ``b_V`` to the pooled vector.
    """

    def __init__(self, dim: int, out_dim: int, bias: bool = True):
        super().__init__(dim, out_dim, bias)
        self.key = nn.Linear(self.dim, self.dim, bias=False)    # rows of F W^K = W^K-projected keys
        self.value = nn.Linear(self.dim, self.dim, bias=True)

    def attend(self, q: torch.Tensor, feats: torch.Tensor):
        # F W^K q with W^K acting on feature rows:  (F K^T) q = F (K^T q),  K = key.weight
        qk = q @ self.key.weight                                  # (B, d) = (K^T q)^T
        b, d, h, w = feats.shape
        f = feats.reshape(b, d, h * w)
        logits = torch.bmm(qk.unsqueeze(1), f).squeeze(1) / math.sqrt(d)
        a = torch.softmax(logits, dim=-1)
        pooled = torch.bmm(f, a.unsqueeze(-1)).squeeze(-1)     # F^T a
        return self.value(pooled), a.reshape(b, h, w)           # (F V^T + 1 b^T)^T a = V F^T a + b
