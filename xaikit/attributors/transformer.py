"""Transformer-specific attributions for timm ViT / DeiT: raw attention, attention rollout,
Chefer et al.'s gradient-weighted relevance, and ViT-ReciproCAM.

Attention probabilities are captured by :func:`capture_attention`: timm's fused attention
(``scaled_dot_product_attention``) never materializes them, so during the call every block's
``attn.fused_attn`` is switched off and a forward hook on ``attn.attn_drop`` (identity in eval mode)
records ``softmax(q k^T / sqrt(d))`` of shape (B, heads, N, N); the flag is restored afterwards.
Maps live on the patch grid (h, w) (prefix tokens dropped) and are upsampled bilinearly by the base.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, InputError
from .base import Attributor, class_score, register, resolve_target


def _blocks(model):
    blocks = getattr(model, "blocks", None)
    if blocks is None or len(blocks) == 0:
        raise ConfigError(f"{type(model).__name__} has no `blocks`: the transformer methods need a timm "
                          "VisionTransformer/DeiT (load it with xaikit.models.load('vit_...' or 'deit_...'))")
    for i, b in enumerate(blocks):
        attn = getattr(b, "attn", None)
        if attn is None or not hasattr(attn, "attn_drop") or not hasattr(attn, "fused_attn"):
            raise ConfigError(f"block {i} of {type(model).__name__} has no timm-style `attn` module with "
                              "`attn_drop` and `fused_attn`; attention capture supports timm ViT/DeiT blocks")
    return blocks


@contextlib.contextmanager
def capture_attention(model: nn.Module, grad: bool = False):
    """Context manager yielding a list that fills with each block's attention (B, heads, N, N).

    With ``grad=True`` each recorded tensor is made a differentiable leaf of the downstream graph
    (even for frozen models), so ``torch.autograd.grad(score, attentions)`` gives d score / d A."""
    blocks = _blocks(model)
    store: list = [None] * len(blocks)
    saved, handles = [], []

    def make_hook(i):
        def hook(module, inputs, out):
            if grad and torch.is_grad_enabled() and not out.requires_grad:
                out = out.detach().requires_grad_(True)
            store[i] = out
            return out
        return hook

    try:
        for i, b in enumerate(blocks):
            saved.append((b.attn, b.attn.fused_attn))
            b.attn.fused_attn = False
            handles.append(b.attn.attn_drop.register_forward_hook(make_hook(i)))
        yield store
    finally:
        for h in handles:
            h.remove()
        for attn, flag in saved:
            attn.fused_attn = flag


def _fuse_heads(a: torch.Tensor, head_fusion: str) -> torch.Tensor:
    if head_fusion == "mean":
        return a.mean(1)
    if head_fusion == "max":
        return a.amax(1)
    if head_fusion == "min":
        return a.amin(1)
    raise ConfigError(f"head_fusion={head_fusion!r}; use 'mean', 'max' or 'min'")


def rollout_matrix(attentions, residual: bool = True, head_fusion: str = "mean",
                   discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020, Sec. 3): A_hat_l = 0.5 A_l + 0.5 I (``residual``),
    rows renormalized, joint = A_hat_L ... A_hat_1.  ``attentions``: list of (B, heads, N, N) or
    (B, N, N).  ``discard_ratio`` zeroes that fraction of the lowest fused weights per row
    (jacobgil's variant; 0 = the paper)."""
    joint = None
    for a in attentions:
        a = _fuse_heads(a, head_fusion) if a.dim() == 4 else a
        if discard_ratio > 0:
            k = int(a.shape[-1] * discard_ratio)
            if k > 0:
                low = a.topk(k, dim=-1, largest=False).indices
                keep_cls = torch.zeros_like(a, dtype=torch.bool)
                keep_cls[..., 0] = True
                drop = torch.zeros_like(a, dtype=torch.bool).scatter_(-1, low, True) & ~keep_cls
                a = a.masked_fill(drop, 0.0)
        if residual:
            a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else a @ joint
    return joint


class _ViTAttributor(Attributor):
    uses_layer = False

    def __init__(self, model, layer=None, **options):
        super().__init__(model, layer=None, **options)
        if not self.info.is_vit:
            raise ConfigError(f"{self.name} explains vision transformers only; {self.info.name!r} is not one "
                              "(use a CAM or gradient method for CNNs)")
        _blocks(model)

    def _grid(self, cls_row: torch.Tensor) -> torch.Tensor:
        """(B, N) row over all tokens -> (B, h, w) over the patch grid."""
        return self.info.reshape(cls_row[:, :, None])[:, 0]

    def _forward(self, x, t, grad=False):
        with capture_attention(self.model, grad=grad) as store, torch.set_grad_enabled(grad):
            logits = self.model(x)
        t = resolve_target(t, logits)
        self.last_logits, self.last_target = logits.detach(), t
        return logits, t, store


@register("raw_attention", "attention")
class RawAttention(_ViTAttributor):
    """Raw attention (Dosovitskiy et al. 2020; thesis Sec. 1.3): the [CLS] row of block ``block``'s
    attention (default the last), heads fused by ``head_fusion`` (mean), over the patch tokens.
    Class-agnostic: ``target`` is only recorded."""

    defaults = {"block": -1, "head_fusion": "mean"}

    def attentions(self, x) -> list:
        """Every block's attention probabilities (B, heads, N, N) for a normalized batch ``x``."""
        from .base import check_input

        x = check_input(x, self.model)
        with torch.no_grad():
            _, _, store = self._forward(x, None)
        return [a.detach() for a in store]

    def _attribute(self, x, t):
        _, _, store = self._forward(x, t)
        a = _fuse_heads(store[int(self.block)], self.head_fusion)
        return self._grid(a[:, 0])


@register("rollout", "attention_rollout")
class Rollout(_ViTAttributor):
    """Attention rollout (Abnar & Zuidema 2020) from block ``start_block`` to the last, residual-aware
    (see :func:`rollout_matrix`); the map is the [CLS] row of the joint attention over the patches.
    Class-agnostic."""

    defaults = {"head_fusion": "mean", "discard_ratio": 0.0, "start_block": 0, "residual": True}

    def _attribute(self, x, t):
        _, _, store = self._forward(x, t)
        joint = rollout_matrix(store[int(self.start_block):], self.residual, self.head_fusion,
                               float(self.discard_ratio))
        return self._grid(joint[:, 0])


@register("chefer", "tibav", "transformer_attribution")
class Chefer(_ViTAttributor):
    """Class-specific relevance of Chefer, Gur & Wolf, implemented with the gradient-weighted attention
    rule of their "Generic Attention-model Explainability" (ICCV 2021, eq. 5-6), not the full LRP of
    the CVPR 2021 TIBAV paper: R = I; for each block A_bar = E_h[(grad_A . A)^+], R <- R + A_bar R;
    the map is R[CLS, patches].  ``score``: the target ``logit`` (as their code) or ``softmax``.
    One forward + one backward for the whole batch."""

    defaults = {"score": "logit", "start_block": 0}

    def _attribute(self, x, t):
        logits, t, store = self._forward(x, t, grad=True)
        with torch.enable_grad():
            s = class_score(logits, t, self.score).sum()
            grads = torch.autograd.grad(s, store, allow_unused=True)
        B, _, N, _ = store[0].shape
        R = torch.eye(N, dtype=x.dtype, device=x.device).expand(B, N, N).clone()
        for a, g in list(zip(store, grads))[int(self.start_block):]:
            if g is None:
                continue
            abar = (g * a.detach()).clamp(min=0).mean(1)
            R = R + abar @ R
        return self._grid(R[:, 0])


def reciprocam_masks(h: int, w: int, kernel: str = "gaussian") -> torch.Tensor:
    """(h*w, h, w) spatial token masks of ViT-ReciproCAM (Sec. 3.1): mask n is centred on token n,
    either a single token (``"single"``, Dirac delta) or the 3x3 Gaussian
    [[1,2,1],[2,4,2],[1,2,1]] / 16 (``"gaussian"``, zero outside the grid)."""
    eye = torch.eye(h * w).view(h * w, 1, h, w)
    if kernel == "single":
        return eye[:, 0]
    if kernel == "gaussian":
        k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
        return F.conv2d(eye, k.view(1, 1, 3, 3), padding=1)[:, 0]
    raise ConfigError(f"vit_reciprocam: kernel={kernel!r}; use 'gaussian' or 'single'")


@register("vit_reciprocam", "vitreciprocam", "reciprocam_vit")
class ViTReciproCAM(_ViTAttributor):
    """ViT-ReciproCAM (Byun & Lee 2023, eq. 2-4): gradient-free, attention-free.

    The network is split at ``tap``: ``"norm1"`` (default, Fig. 2a) = the output F of the first
    LayerNorm of the last block; the rest H is that block's attention and MLP applied to the masked F
    (residuals included, as the authors' OpenVINO/OTX implementation), then the final norm and head.
    ``"block"`` (Fig. 2b, Table 4) = the output of block[-2], and H is the whole last block.
    For each of the h*w tokens a masked copy F . M^n keeps only the ``kernel`` neighbourhood
    (``"gaussian"`` 3x3, default, or ``"single"`` token, see :func:`reciprocam_masks`) and, with
    ``cls_token=True`` (default), the [CLS] (prefix) tokens; ``cls_token=False`` zeroes them (Table 3).
    y_c^n = softmax(H(F . M^n))_c (``score="softmax"``, eq. 4; ``"logit"`` available); the map is
    Y_c reshaped to (h, w), min-max normalized (eq. 3) by the base.  All h*w masked copies of all
    images run through H in chunks of ``batch_size``.
    """

    defaults = {"tap": "norm1", "kernel": "gaussian", "cls_token": True, "score": "softmax"}

    def __init__(self, model, layer=None, **options):
        super().__init__(model, layer=None, **options)
        if self.tap not in ("norm1", "block"):
            raise ConfigError(f"vit_reciprocam: tap={self.tap!r}; use 'norm1' or 'block'")
        reciprocam_masks(1, 1, self.kernel)
        if len(model.blocks) < 2 and self.tap == "block":
            raise ConfigError("vit_reciprocam: tap='block' needs at least 2 blocks")
        for attr in ("norm", "forward_head"):
            if not hasattr(model, attr):
                raise ConfigError(f"vit_reciprocam needs a timm VisionTransformer (missing `{attr}`)")

    def _head(self, y):
        """H of eq. 4 applied to (n, N, C) features at the tap."""
        blk = self.model.blocks[-1]
        if self.tap == "norm1":
            y = y + blk.ls1(blk.attn(y))
            y = y + blk.ls2(blk.mlp(blk.norm2(y)))
        else:
            y = blk(y)
        return self.model.forward_head(self.model.norm(y))

    def features(self, x):
        """(clean logits (B, K), tap features F (B, N, C))."""
        blk = self.model.blocks[-1]
        store = {}

        def pre(module, args):
            store["in"] = args[0]

        hnd = blk.register_forward_pre_hook(pre)
        try:
            with torch.no_grad():
                logits = self.model(x)
        finally:
            hnd.remove()
        f = store["in"]
        if self.tap == "norm1":
            with torch.no_grad():
                f = blk.norm1(f)
        return logits, f

    def _attribute(self, x, t):
        logits, f = self.features(x)
        t = resolve_target(t, logits)
        self.last_logits, self.last_target = logits, t
        B, N, C = f.shape
        p = self.info.num_prefix_tokens
        if self.info.grid_size is not None and self.info.grid_size[0] * self.info.grid_size[1] == N - p:
            h, w = self.info.grid_size
        else:
            h = w = int(round((N - p) ** 0.5))
            if h * w != N - p:
                raise InputError(f"vit_reciprocam: {N - p} patch tokens do not form a square grid")
        spatial = reciprocam_masks(h, w, self.kernel).view(h * w, h * w).to(f)
        prefix = torch.full((h * w, p), 1.0 if self.cls_token else 0.0).to(f)
        M = torch.cat([prefix, spatial], 1)  # (hw, N)
        n = h * w
        pairs = B * n
        scores = torch.empty(pairs, dtype=f.dtype, device=f.device)
        with torch.no_grad():
            for s in range(0, pairs, self.batch_size):
                idx = torch.arange(s, min(pairs, s + self.batch_size), device=f.device)
                b, m = idx // n, idx % n
                fm = f[b] * M[m][:, :, None]  # eq. 2
                scores[idx] = class_score(self._head(fm), t[b], self.score)
        return scores.view(B, h, w)
