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

from ..core.conventions import check_count, choice, class_score, one_of
from ..core.targets import resolve_target
from ..errors import ConfigError, InputError
from ..models.hooks import model_guard
from .base import Attributor, Explanation, check_bool, check_number, register

HEAD_FUSIONS = ("mean", "max", "min")


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
    head_fusion = one_of("head_fusion", head_fusion, HEAD_FUSIONS)
    if head_fusion == "mean":
        return a.mean(1)
    if head_fusion == "max":
        return a.amax(1)
    return a.amin(1)


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


def _block_index(name: str, value, depth: int) -> int:
    """A block index of a model with ``depth`` blocks (negative counts from the end) as a non-negative int."""
    v = check_count(name, value, minimum=-(2 ** 62))  # a whole number; the range is checked next
    if not -depth <= v < depth:
        raise ConfigError(f"{name}={value!r} is out of range: this model has {depth} blocks (use 0..{depth - 1}, "
                          f"or -{depth}..-1 from the end)")
    return v


class _ViTAttributor(Attributor):
    """Base of the transformer methods: checks that the model is a timm ViT/DeiT."""

    uses_layer = False

    def __init__(self, model: nn.Module, layer=None, *, batch_size: int | None = None):
        super().__init__(model, None, batch_size=batch_size)
        if not self.info.is_vit:
            raise ConfigError(f"{self.name} explains vision transformers only; {self.info.name!r} is not one "
                              "(use a CAM or gradient method for CNNs)")
        self.depth = len(_blocks(model))

    def _grid(self, cls_row: torch.Tensor) -> torch.Tensor:
        """(B, N) row over all tokens -> (B, h, w) over the patch grid."""
        return self.info.reshape(cls_row[:, :, None])[:, 0]

    def _forward(self, x, t, grad=False):
        """(logits, target, attentions) of one forward pass capturing every block's attention."""
        with capture_attention(self.model, grad=grad) as store, torch.set_grad_enabled(grad):
            logits = self.model(x)
        return logits, resolve_target(t, logits), store


@register("raw_attention", "attention")
class RawAttention(_ViTAttributor):
    """Raw attention (Dosovitskiy et al., ICLR 2021; thesis Sec. 1.3): the [CLS] row of one block's attention.

    The [CLS] row of block ``block``'s attention probabilities, heads fused by ``head_fusion``, over the patch
    tokens. Class-agnostic: ``target`` is only recorded.

    Args:
        block: the block whose attention is read: an index in 0..depth-1, or negative from the end; default
            -1 (the last block).
        head_fusion: how the heads are fused: ``"mean"`` (default), ``"max"`` or ``"min"``.
        batch_size: accepted for a uniform interface; one forward pass for the batch.

    ``explain(...).extras``: ``"block"`` the (non-negative) block read.
    """

    def __init__(self, model: nn.Module, layer=None, *, block: int = -1, head_fusion: str = "mean",
                 batch_size: int | None = None):
        super().__init__(model, layer, batch_size=batch_size)
        self._set_options(block=_block_index("block", block, self.depth),
                          head_fusion=one_of("head_fusion", head_fusion, HEAD_FUSIONS))

    def attentions(self, x) -> list:
        """Every block's attention probabilities (B, heads, N, N) for a normalized batch ``x``, on the
        model's device."""
        x = self._prepare(x)
        with torch.no_grad(), model_guard(self.model):
            _, _, store = self._forward(x, None)
        return [a.detach() for a in store]

    def _attribute(self, x, t):
        logits, t, store = self._forward(x, t)
        b = int(self.block) % self.depth
        a = _fuse_heads(store[b], self.head_fusion)
        return Explanation(self._grid(a[:, 0]), t, logits, {"block": b})


@register("rollout", "attention_rollout")
class Rollout(_ViTAttributor):
    """Attention rollout (Abnar & Zuidema, ACL 2020): the [CLS] row of the product of residual-aware attentions.

    From block ``start_block`` to the last (see :func:`rollout_matrix`); the map is the [CLS] row of the
    joint attention over the patches. Class-agnostic: ``target`` is only recorded.

    Args:
        head_fusion: how the heads are fused: ``"mean"`` (default; the paper), ``"max"`` or ``"min"``.
        discard_ratio: fraction of the lowest fused weights zeroed per row (jacobgil's
            vit-explain variant), in [0, 1); default 0 (the paper).
        start_block: first block of the product, in 0..depth-1 (negative from the end); default 0.
        residual: add the identity for the residual connections, 0.5 A + 0.5 I (default True, the paper).
        batch_size: accepted for a uniform interface; one forward pass for the batch.

    ``explain(...).extras``: empty.
    """

    def __init__(self, model: nn.Module, layer=None, *, head_fusion: str = "mean", discard_ratio: float = 0.0,
                 start_block: int = 0, residual: bool = True, batch_size: int | None = None):
        super().__init__(model, layer, batch_size=batch_size)
        self._set_options(head_fusion=one_of("head_fusion", head_fusion, HEAD_FUSIONS),
                          discard_ratio=check_number("discard_ratio", discard_ratio, 0, 1, high_open=True),
                          start_block=_block_index("start_block", start_block, self.depth),
                          residual=check_bool("residual", residual))

    def _attribute(self, x, t):
        logits, t, store = self._forward(x, t)
        joint = rollout_matrix(store[int(self.start_block):], self.residual, self.head_fusion,
                               float(self.discard_ratio))
        return Explanation(self._grid(joint[:, 0]), t, logits, {})


@register("chefer", "tibav", "transformer_attribution")
class Chefer(_ViTAttributor):
    """Gradient-weighted attention relevance (Chefer, Gur & Wolf, ICCV 2021, eq. 5-6), class-specific.

    Implemented with the gradient-weighted attention rule of their "Generic Attention-model Explainability"
    (ICCV 2021), not the full LRP of the CVPR 2021 TIBAV paper: R = I; for each block
    A_bar = E_h[(grad_A . A)^+], R <- R + A_bar R; the map is R[CLS, patches].  One forward + one backward
    for the whole batch.

    Args:
        score: the class score differentiated: ``"logit"`` (default; as their code), ``"softmax"`` or
            ``"log_softmax"``.
        start_block: first block of the relevance update, in 0..depth-1 (negative from the end); default 0.
        batch_size: accepted for a uniform interface; one forward and one backward for the batch.

    ``explain(...).extras``: empty.
    """

    def __init__(self, model: nn.Module, layer=None, *, score: str = "logit", start_block: int = 0,
                 batch_size: int | None = None):
        super().__init__(model, layer, batch_size=batch_size)
        self._set_options(score=choice("score", score, "score"),
                          start_block=_block_index("start_block", start_block, self.depth))

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
        return Explanation(self._grid(R[:, 0]), t, logits.detach(), {})


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
    raise ConfigError(f"kernel={kernel!r} is not one of ['gaussian', 'single']")


@register("vit_reciprocam", "vitreciprocam", "reciprocam_vit")
class ViTReciproCAM(_ViTAttributor):
    """ViT-ReciproCAM (Byun & Lee 2023, eq. 2-4): gradient-free, attention-free token masking.

    The network is split at ``tap``; for each of the h*w tokens a masked copy F . M^n of the features F at
    the tap keeps only the ``kernel`` neighbourhood (and the prefix tokens when ``cls_token``) and runs
    through the rest H of the network; y_c^n = score(H(F . M^n))_c (eq. 4); the map is Y_c reshaped to
    (h, w), min-max normalized (eq. 3) by the base.  All h*w masked copies of all images run through H in
    chunks of ``batch_size``, on the model itself (a transformer has no inference twin: nothing to fold).

    Args:
        tap: where the network is split: ``"norm1"`` (default, Fig. 2a: the output of the last block's
            first LayerNorm; H = that block's attention and MLP with residuals, as the authors'
            OpenVINO/OTX implementation, then the final norm and head) or ``"block"`` (Fig. 2b, Table 4:
            the output of block[-2]; H = the whole last block).
        kernel: spatial masks: ``"gaussian"`` (default; the 3x3 Gaussian [[1,2,1],[2,4,2],[1,2,1]]/16) or
            ``"single"`` (one token), see :func:`reciprocam_masks`.
        cls_token: keep the [CLS] (prefix) tokens in every masked copy (default True); False zeroes them
            (Table 3).
        score: y_c: ``"softmax"`` (default, eq. 4), ``"logit"`` or ``"log_softmax"``.
        batch_size: masked copies per chunk through H; None: from the image size.

    ``explain(...).extras``: ``"grid"`` (h, w) the token grid, ``"n_forward"`` the masked copies run through
    H (h*w per image).
    """

    def __init__(self, model: nn.Module, layer=None, *, tap: str = "norm1", kernel: str = "gaussian",
                 cls_token: bool = True, score: str = "softmax", batch_size: int | None = None):
        super().__init__(model, layer, batch_size=batch_size)
        tap = one_of("tap", tap, ("norm1", "block"))
        kernel = one_of("kernel", kernel, ("gaussian", "single"))
        if self.depth < 2 and tap == "block":
            raise ConfigError("tap='block' needs at least 2 blocks")
        for attr in ("norm", "forward_head"):
            if not hasattr(model, attr):
                raise ConfigError(f"vit_reciprocam needs a timm VisionTransformer (missing `{attr}`)")
        self._set_options(tap=tap, kernel=kernel, cls_token=check_bool("cls_token", cls_token),
                          score=choice("score", score, "score"))

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
        """(clean logits (B, K), tap features F (B, N, C)) of a normalized batch ``x``, on the model's device."""
        x = self._prepare(x)
        with model_guard(self.model):
            return self._features(x)

    def _features(self, x):
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
        logits, f = self._features(x)
        t = resolve_target(t, logits)
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
                scores[idx] = class_score(self._head(fm), t[b], self.score).to(scores.dtype)
        return Explanation(scores.view(B, h, w), t, logits, {"grid": (int(h), int(w)), "n_forward": int(pairs)})
