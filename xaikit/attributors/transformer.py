"""Transformer-specific attributions for timm ViT / DeiT: raw attention, attention rollout,
Chefer et al.'s two methods (``tibav``: the LRP-based transformer attribution of CVPR 2021; ``chefer``: the
gradient-weighted attention rule of ICCV 2021), and ViT-ReciproCAM.

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

from ..core.conventions import Preset, check_count, choice, class_score, one_of, paper, presets_doc, resolve_preset
from ..core.targets import resolve_target
from ..errors import ConfigError, InputError
from ..models.fast import autocast_of, full_precision, inference_twin
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


def _cls_readout(model) -> bool:
    """Whether the logits of ``model`` read only the first token of the last block (a timm ViT/DeiT with a
    [CLS] token and ``global_pool="token"``, no attention pooling, the stock head, not replaced on the instance)."""
    from timm.models.vision_transformer import VisionTransformer

    head = getattr(getattr(model, "forward_head", None), "__func__", None)
    return (head is VisionTransformer.forward_head and getattr(model, "attn_pool", None) is None
            and getattr(model, "global_pool", None) == "token" and getattr(model, "cls_token", None) is not None
            and all(_plain_attention(b.attn) for b in model.blocks[-1:]))


def _plain_attention(attn) -> bool:
    """timm's own ``Attention`` (whose forward :func:`_cls_attention` repeats for one query token)."""
    from timm.models.vision_transformer import Attention

    return type(attn) is Attention and getattr(attn, "gate", None) is None


def _plain_qkv(attn) -> bool:
    """A linear qkv projection followed by no query/key normalization: qkv(m . x) = m . (x W^T) + b reaches the
    attention logits as it is (:meth:`ViTReciproCAM._factored_head`)."""
    same = (nn.Identity,)
    return (_plain_attention(attn) and type(attn.qkv) is nn.Linear
            and isinstance(getattr(attn, "q_norm", nn.Identity()), same)
            and isinstance(getattr(attn, "k_norm", nn.Identity()), same))


def _block_rest(blk, base: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The rest of a timm ``Block`` after its attention output ``a``: first residual onto ``base``, then the MLP
    with its residual (eval mode: no drop path)."""
    y = base + blk.ls1(a)
    return y + blk.ls2(blk.mlp(blk.norm2(y)))


def _cls_attention(attn, h: torch.Tensor) -> torch.Tensor:
    """timm ``Attention`` on (n, N, C) tokens ``h`` for the first (query) token only: (n, 1, C_out), equal to
    ``attn(h)[:, :1]`` up to rounding; every token is still a key and a value."""
    n, N, _ = h.shape
    H, d = attn.num_heads, attn.head_dim
    qkv = attn.qkv(h).view(n, N, 3, H, d)
    same = nn.Identity()
    q = getattr(attn, "q_norm", same)(qkv[:, :1, 0].transpose(1, 2))  # (n, H, 1, d)
    k = getattr(attn, "k_norm", same)(qkv[:, :, 1].transpose(1, 2))   # (n, H, N, d)
    v = qkv[:, :, 2].transpose(1, 2)
    a = attn.attn_drop(((q * attn.scale) @ k.transpose(-2, -1)).softmax(-1))
    o = getattr(attn, "norm", same)((a @ v).transpose(1, 2).reshape(n, 1, H * d))
    return attn.proj_drop(attn.proj(o))


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


@register("chefer", "generic_attention")
class Chefer(_ViTAttributor):
    """Generic attention explainability (Chefer, Gur & Wolf, ICCV 2021, eq. 5-6): gradient-weighted attention.

    The rule of "Generic Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder
    Transformers" (ICCV 2021, often "Chefer et al. 2021b"): R = I; for each block
    A_bar = E_h[(grad_A . A)^+] on the *raw attention* A, R <- R + A_bar R; the map is R[CLS, patches]. One
    forward + one backward for the whole batch. This is **not** the TIBAV / "Relevance" method of their CVPR
    2021 paper (thesis Tables 2.2/2.4/2.7, ViT-ReciproCAM Table 1), which weights the attention's LRP
    relevance and rolls it out differently: that one is ``tibav`` (:class:`TIBAV`).

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


# ------------------------------------------------------------------------------------------ TIBAV
def _sdiv(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b as the LRP code's ``safe_divide``: the denominator gets + 1e-9, and the quotient is 0 where b = 0."""
    den = b.clamp(min=1e-9) + b.clamp(max=1e-9)
    den = den + den.eq(0).to(den.dtype) * 1e-9
    return a / den * b.ne(0).to(b.dtype)


def lrp_linear(R: torch.Tensor, X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Relevance of the input X (..., n) of a linear layer with weight W (m, n), from the relevance R (..., m)
    of its output: the alpha-beta rule with alpha = 1, beta = 0 (positive inputs through positive weights plus
    negative inputs through negative weights; the bias takes none)."""
    pw, nw = W.clamp(min=0), W.clamp(max=0)
    px, nx = X.clamp(min=0), X.clamp(max=0)
    S = _sdiv(R, px @ pw.T + nx @ nw.T)
    return px * (S @ pw) + nx * (S @ nw)


def lrp_add(R: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple:
    """Relevance of the two terms of ``a + b`` (a residual connection): z-rule shares, then rescaled per
    image so that each branch keeps its share |sum| / (|sum_a| + |sum_b|) of the image's total relevance."""
    S = _sdiv(R, a + b)
    ra, rb = a * S, b * S
    dims = tuple(range(1, R.dim()))
    sa, sb, total = ra.sum(dims, keepdim=True), rb.sum(dims, keepdim=True), R.sum(dims, keepdim=True)
    fa = _sdiv(sa.abs(), sa.abs() + sb.abs()) * total
    fb = _sdiv(sb.abs(), sa.abs() + sb.abs()) * total
    return ra * _sdiv(fa, sa), rb * _sdiv(fb, sb)


def lrp_clone(X: torch.Tensor, *Rs: torch.Tensor) -> torch.Tensor:
    """Relevance of a tensor X used by several branches with relevances Rs (their sum, as X (sum R / X))."""
    return X * sum(_sdiv(r, X) for r in Rs)


def lrp_matmul(R: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple:
    """Relevance of both factors of ``a @ b`` (z-rule on the bilinear product, each factor as an input)."""
    S = _sdiv(R, a @ b)
    return a * (S @ b.transpose(-2, -1)), b * (a.transpose(-2, -1) @ S)


class _Tap:
    """Forward hooks recording what the LRP rules need: each block's input, the inputs/outputs of ``qkv``,
    ``proj``, ``fc1``, ``fc2`` and the head's input."""

    def __init__(self, model):
        self.model, self.rec, self.handles = model, {}, []

    def _io(self, key, keep_out=False):
        def hook(module, args, out):
            self.rec[key] = (args[0].detach(), out.detach() if keep_out else None)
        return hook

    def __enter__(self):
        m = self.model
        for i, blk in enumerate(m.blocks):
            self.handles.append(blk.register_forward_pre_hook(
                lambda mod, args, i=i: self.rec.__setitem__(("in", i), args[0].detach())))
            self.handles.append(blk.attn.qkv.register_forward_hook(self._io(("qkv", i), True)))
            self.handles.append(blk.attn.proj.register_forward_hook(self._io(("proj", i), True)))
            self.handles.append(blk.mlp.fc1.register_forward_hook(self._io(("fc1", i))))
            self.handles.append(blk.mlp.fc2.register_forward_hook(self._io(("fc2", i), True)))
        self.handles.append(m.head.register_forward_hook(self._io("head")))
        return self.rec

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def _is_identity(m) -> bool:
    return m is None or isinstance(m, nn.Identity)


@register("tibav", "transformer_attribution", "relevance")
class TIBAV(_ViTAttributor):
    """Transformer attribution, "TIBAV" (Chefer, Gur & Wolf, CVPR 2021): LRP relevance x gradient of
    each attention map, head mean, rolled out.

    The method of "Transformer Interpretability Beyond Attention Visualization" (thesis Tables 2.2/2.4/2.7
    "TIBAV"; "Relevance" in ViT-ReciproCAM's Table 1), as the authors' ``baselines/ViT/ViT_LRP.py``
    ``VisionTransformer.relprop(method="transformer_attribution")`` computes it, on timm's
    ``VisionTransformer`` as it is (forward hooks, no modified model):

    1. One forward; the gradient of the target's logit with respect to every block's attention
       probabilities A_b.
    2. LRP from the head down, starting from the one-hot relevance of the target: the alpha-beta rule
       (alpha = 1, beta = 0) through every linear layer (head, ``fc2``, ``fc1``, ``proj``, ``qkv``); relevance
       passes unchanged through LayerNorm, GELU, softmax and dropout; the [CLS] pooling keeps the [CLS] row;
       each residual sum splits relevance by the z-rule, rescaled per image so that each branch keeps its share
       |sum| / (|sum_a| + |sum_b|) of the total; a tensor used twice (the residual's fork) sums its
       relevances. In the attention, ``A @ V`` and ``q @ k^T`` are z-rule products whose two factors each get
       half of the relevance; R(A_b) is the attention half.
    3. Per block, A_bar_b = E_heads[(grad A_b . R(A_b))^+]; rollout without renormalization,
       C = (A_bar_L + I) ... (A_bar_s + I) from ``start_block`` s; the map is C[CLS, patches].

    Distinct from ``chefer`` (:class:`Chefer`), the gradient-weighted *raw attention* rule of their ICCV 2021
    "generic attention" paper. Supported: timm ViT/DeiT with a [CLS] token pooled by ``global_pool="token"``,
    a linear head, and no LayerScale, q/k norm or attention gate (ViT-B, DeiT-B/S/T, xaikit's
    ``deit_tiny_synth``); anything else is refused at construction. One forward and one backward for the
    batch, then the relevance pass; every image gets its own one-hot start (the authors' code explains one
    image at a time).

    Args:
        start_block: first block of the rollout, in 0..depth-1 (negative from the end); default 0 (the
            authors' ``start_layer=0``).
        batch_size: accepted for a uniform interface; one forward and one backward for the batch.

    ``explain(...).extras``: ``"relevance"`` (B, depth) the total relevance reaching each block's input
    (conservation check: about 1 per image at the top block).
    """

    def __init__(self, model: nn.Module, layer=None, *, start_block: int = 0, batch_size: int | None = None):
        super().__init__(model, layer, batch_size=batch_size)
        self._check_architecture(model)
        self._set_options(start_block=_block_index("start_block", start_block, self.depth))

    def _check_architecture(self, model) -> None:
        def refuse(what):
            raise ConfigError(f"tibav: {what}; the LRP rules of Chefer et al. cover timm ViT/DeiT with a class token "
                              "pooled by global_pool='token', a linear head and plain pre-norm blocks (use chefer, "
                              "rollout or vit_reciprocam for other transformers)")
        if getattr(model, "global_pool", "token") != "token" or getattr(model, "cls_token", None) is None:
            refuse(f"global_pool={getattr(model, 'global_pool', None)!r} or no class token")
        if not isinstance(getattr(model, "head", None), nn.Linear):
            refuse("the head is not a single nn.Linear")
        if getattr(model, "head_dist", None) is not None:
            refuse("distilled DeiT (a second head on the distillation token)")
        for name in ("fc_norm", "norm_pre"):
            if not _is_identity(getattr(model, name, None)):
                refuse(f"model.{name} is not an identity")
        for i, b in enumerate(model.blocks):
            at, mlp = b.attn, getattr(b, "mlp", None)
            ok = (isinstance(getattr(at, "qkv", None), nn.Linear) and isinstance(getattr(at, "proj", None), nn.Linear)
                  and mlp is not None and isinstance(getattr(mlp, "fc1", None), nn.Linear)
                  and isinstance(getattr(mlp, "fc2", None), nn.Linear))
            if not ok:
                refuse(f"block {i} has no qkv/proj/fc1/fc2 linear layers")
            for name in ("q_norm", "k_norm", "norm"):
                if not _is_identity(getattr(at, name, None)):
                    refuse(f"block {i}'s attention has a non-identity {name}")
            if getattr(at, "gate", None) is not None:
                refuse(f"block {i}'s attention is gated")
            for name in ("ls1", "ls2"):
                if not _is_identity(getattr(b, name, None)):
                    refuse(f"block {i} has LayerScale ({name})")
            if not _is_identity(getattr(mlp, "norm", None)):
                refuse(f"block {i}'s MLP has a norm layer")

    def _attribute(self, x, t):
        model = self.model
        with _Tap(model) as rec:
            logits, t, store = self._forward(x, t, grad=True)
        with torch.enable_grad():
            grads = torch.autograd.grad(class_score(logits, t, "logit").sum(), store)
        B, H, N, _ = store[0].shape
        dt = x.dtype
        R = F.one_hot(t, logits.shape[-1]).to(dt)                             # one-hot start (B, C)
        pooled, _ = rec["head"]
        R = lrp_linear(R, pooled, model.head.weight.to(dt))                  # (B, D)
        # the [CLS] pooling (index_select): the [CLS] row keeps X0 (R / X0), X0 = the final norm's [CLS] output;
        # the final LayerNorm passes relevance unchanged
        Rt = torch.zeros(B, N, pooled.shape[-1], dtype=dt, device=x.device)
        Rt[:, 0] = pooled * _sdiv(R, pooled)
        start = int(self.start_block) % self.depth
        cams, totals = [None] * self.depth, torch.zeros(B, self.depth, dtype=dt, device=x.device)
        for i in reversed(range(start, self.depth)):
            blk = model.blocks[i]
            x_in = rec[("in", i)]
            n1, qkv = rec[("qkv", i)]
            o, p = rec[("proj", i)]
            n2, _ = rec[("fc1", i)]
            g, f2 = rec[("fc2", i)]
            x1 = x_in + p
            # x_out = x1 + mlp(norm2(x1))
            r_res, r_mlp = lrp_add(Rt, x1, f2)
            r_mlp = lrp_linear(r_mlp, g, blk.mlp.fc2.weight.to(dt))
            r_mlp = lrp_linear(r_mlp, n2, blk.mlp.fc1.weight.to(dt))
            Rt = lrp_clone(x1, r_res, r_mlp)
            # x1 = x_in + attn(norm1(x_in))
            r_res, r_att = lrp_add(Rt, x_in, p)
            r_att = lrp_linear(r_att, o, blk.attn.proj.weight.to(dt))          # (B, N, D) = b n (h d)
            hd = r_att.shape[-1] // H
            r_att = r_att.view(B, N, H, hd).transpose(1, 2)                    # b h n d
            q, k, v = qkv.view(B, N, 3, H, -1).permute(2, 0, 3, 1, 4).unbind(0)
            A = store[i].detach()
            r_A, r_v = lrp_matmul(r_att, A, v)
            r_A, r_v = r_A / 2, r_v / 2
            cams[i] = (grads[i] * r_A).clamp(min=0).mean(1)                    # E_h[(grad A . R(A))^+]
            r_q, r_k = lrp_matmul(r_A, q, k.transpose(-2, -1))                 # softmax: relevance unchanged
            r_q, r_k = r_q / 2, r_k.transpose(-2, -1) / 2
            r_qkv = torch.stack([r_q, r_k, r_v]).permute(1, 3, 0, 2, 4).reshape(B, N, 3 * H * hd)
            r_n1 = lrp_linear(r_qkv, n1, blk.attn.qkv.weight.to(dt))
            Rt = lrp_clone(x_in, r_res, r_n1)
            totals[:, i] = Rt.flatten(1).sum(1)
        eye = torch.eye(N, dtype=dt, device=x.device)
        joint = cams[start] + eye
        for i in range(start + 1, self.depth):
            joint = (cams[i] + eye) @ joint
        return Explanation(self._grid(joint[:, 0]), t, logits.detach(), {"relevance": totals})


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


#: ViT-ReciproCAM's presets: the paper's text as xaikit reads it, and the authors' code
RECIPROCAM_PRESETS = {
    "paper": Preset("Byun & Lee 2023, Sec. 3 and Fig. 2a: the first LayerNorm of the last block; xaikit feeds the "
                    "masked LayerNorm output to that block's residual too"),
    "vitcam": Preset("sybyun/vitcam src/vit_recipro_cam.py ViTReciproCam (block_index=-2, is_gaussian=True, "
                     "cls_token=True)", {"block": -2, "residual": "input"},
                     "The hook replaces the output of blocks[-2].norm1 by the masked copies, so that block's "
                     "attention sees them while its residual adds the unmasked block input; then blocks[-1], the "
                     "final norm and head. The paper's §4.3 also says the skip connection keeps the unmodified "
                     "features."),
}
RESIDUALS = ("masked", "input")


@register("vit_reciprocam", "vitreciprocam", "reciprocam_vit")
class ViTReciproCAM(_ViTAttributor):
    """ViT-ReciproCAM (Byun & Lee 2023, eq. 2-4): gradient-free, attention-free token masking.

    The network is split at ``tap``; for each of the h*w tokens a masked copy F . M^n of the features F at
    the tap keeps only the ``kernel`` neighbourhood (and the prefix tokens when ``cls_token``) and runs
    through the rest H of the network; y_c^n = score(H(F . M^n))_c (eq. 4); the map is Y_c reshaped to
    (h, w), min-max normalized (eq. 3) by the base.  All h*w masked copies of all images run through H in
    chunks of ``batch_size``, on the model itself (a transformer has no inference twin: nothing to fold), in
    fp32 whatever the forward precision setting (:mod:`xaikit.models.fast`): the scores of the masked copies
    differ by little more than bf16's rounding (on xaikit's DeiT trained on synthetic scenes, p = 0.98, they
    span 1e-5 to 4e-4 over the tokens while bf16 moves them by up to 5e-4: maps Pearson 0.01-0.92 to the fp32
    ones, far below the 0.999 bar of ``tests/test_precision.py``). The masked passes go through the same
    path as the other methods' (``reduced_precision`` = False asks it for fp32).

    Args:
        preset: ``"paper"`` (default: the options' defaults below) or ``"vitcam"`` (section Presets); an option
            passed explicitly wins over the preset.
        tap: where the network is split: ``"norm1"`` (default, Fig. 2a: the output of block ``block``'s
            first LayerNorm; H = that block's attention and MLP with residuals, then the later blocks, the
            final norm and head) or ``"block"`` (Fig. 2b, Table 4: the input of block ``block``, i.e. the
            output of the block before; H = block ``block`` and the later ones).
        block: the block at which the network is split, in 0..depth-1 or negative from the end; default -1
            (the last block: with ``tap="block"`` the output of block[-2]); the authors' code uses -2 with
            ``tap="norm1"``.
        residual: with ``tap="norm1"``, what the split block's first residual connection adds to its attention
            output: ``"masked"`` (default; the masked LayerNorm output) or ``"input"`` (the block's unmasked
            input, as the authors' code, whose hook replaces only the LayerNorm's output).
        kernel: spatial masks: ``"gaussian"`` (default; the 3x3 Gaussian [[1,2,1],[2,4,2],[1,2,1]]/16) or
            ``"single"`` (one token), see :func:`reciprocam_masks`.
        cls_token: keep the [CLS] (prefix) tokens in every masked copy (default True); False zeroes them
            (Table 3).
        score: y_c: ``"softmax"`` (default, eq. 4), ``"logit"`` or ``"log_softmax"``.
        batch_size: masked copies per chunk through H; None: from the image size.

    ``explain(...).extras``: ``"grid"`` (h, w) the token grid, ``"n_forward"`` the masked copies run through
    H (h*w per image).

{presets}"""

    reduced_precision = False  # bf16's rounding swamps the scores of the masked copies (docstring)

    def __init__(self, model: nn.Module, layer=None, *, preset: str = "paper", tap: str = paper("norm1"),
                 block: int = paper(-1), residual: str = paper("masked"), kernel: str = paper("gaussian"),
                 cls_token: bool = paper(True), score: str = paper("softmax"), batch_size: int | None = None):
        super().__init__(model, layer, batch_size=batch_size)
        preset, o = resolve_preset("vit_reciprocam", RECIPROCAM_PRESETS, preset, dict(
            tap=tap, block=block, residual=residual, kernel=kernel, cls_token=cls_token, score=score))
        tap = one_of("tap", o["tap"], ("norm1", "block"))
        kernel = one_of("kernel", o["kernel"], ("gaussian", "single"))
        block = _block_index("block", o["block"], self.depth)
        if self.depth < 2 and tap == "block" and block % self.depth == 0:
            raise ConfigError("tap='block' needs at least 2 blocks")
        for attr in ("norm", "forward_head"):
            if not hasattr(model, attr):
                raise ConfigError(f"vit_reciprocam needs a timm VisionTransformer (missing `{attr}`)")
        self._set_options(preset=preset, tap=tap, block=block, residual=one_of("residual", o["residual"], RESIDUALS),
                          kernel=kernel, cls_token=check_bool("cls_token", o["cls_token"]),
                          score=choice("score", o["score"], "score"))

    def _head(self, y, x_in=None):
        """H of eq. 4 applied to (n, N, C) features at the tap; ``x_in`` (n, N, C): the split block's unmasked
        input, added by its first residual with ``residual="input"``.  Where the model's logits read only the
        [CLS] token (:func:`_cls_readout`), the last block computes its attention and MLP for that token alone
        (the other tokens' outputs are never read)."""
        b = int(self.block) % self.depth
        blocks = self.model.blocks
        last = self.depth - 1 if _cls_readout(self.model) else None
        if self.tap == "norm1":
            blk = blocks[b]
            base = x_in if (self.residual == "input" and x_in is not None) else y
            if b == last:
                y = _block_rest(blk, base[:, :1], _cls_attention(blk.attn, y))
                return self.model.forward_head(self.model.norm(y))
            y = _block_rest(blk, base, blk.attn(y))
            b += 1
        for i in range(b, self.depth):
            blk = blocks[i]
            y = _block_rest(blk, y[:, :1], _cls_attention(blk.attn, blk.norm1(y))) if i == last else blk(y)
        return self.model.forward_head(self.model.norm(y))

    def _factored_head(self, blk, proj, Mc, base):
        """Logits (c, K) of c masked copies F . M of one image split at the last block's LayerNorm, from
        ``proj`` = F W^T (N, 3A), the bias-free query-key-value projection of its unmasked features, the
        masks ``Mc`` (c, N) and the [CLS] residual ``base`` (c, C).  With per-token mask values m_j,
        q = m_0 Pq_0 + b_q, k_j = m_j Pk_j + b_k, v_j = m_j Pv_j + b_v, so the [CLS] row of the attention is
        softmax(m_j q.Pk_j + q.b_k) and its output sum_j a_j m_j Pv_j + b_v: a few (c, heads, N) products
        instead of a (c, N, 3A) projection per chunk.  Equal to :meth:`_head` up to rounding."""
        attn = blk.attn
        H, d = attn.num_heads, attn.head_dim
        A = H * d
        N = proj.shape[0]
        bias = attn.qkv.bias if attn.qkv.bias is not None else proj.new_zeros(3 * A)
        pk, pv = proj[:, A:2 * A].reshape(N, H, d), proj[:, 2 * A:].reshape(N, H, d)
        bk, bv = bias[A:2 * A].reshape(H, d), bias[2 * A:]
        q = ((Mc[:, :1] * proj[0, :A] + bias[:A]) * attn.scale).reshape(-1, H, d)    # (c, H, d)
        logit = Mc[:, None, :] * torch.einsum("chd,nhd->chn", q, pk) + torch.einsum("chd,hd->ch", q, bk)[..., None]
        a = attn.attn_drop(logit.softmax(-1))                                        # (c, H, N)
        o = torch.einsum("chn,nhd->chd", a * Mc[:, None, :], pv).reshape(-1, 1, A) + bv
        a = attn.proj_drop(attn.proj(getattr(attn, "norm", nn.Identity())(o)))
        return self.model.forward_head(self.model.norm(_block_rest(blk, base[:, None], a)))

    def features(self, x):
        """(clean logits (B, K), tap features F (B, N, C)) of a normalized batch ``x``, on the model's device."""
        x = self._prepare(x)
        with model_guard(self.model):
            logits, f, _ = self._features(x)
        return logits, f

    def _features(self, x):
        """(clean logits, tap features F, the split block's input) of a prepared batch."""
        blk = self.model.blocks[int(self.block) % self.depth]
        store = {}

        def pre(module, args):
            store["in"] = args[0]

        hnd = blk.register_forward_pre_hook(pre)
        try:
            with torch.no_grad():
                logits = self.model(x)
        finally:
            hnd.remove()
        f = x_in = store["in"]
        if self.tap == "norm1":
            with torch.no_grad():
                f = blk.norm1(x_in)
        return logits, f, x_in

    def _attribute(self, x, t):
        logits, f, x_in = self._features(x)
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
        scores = torch.empty(B, n, dtype=f.dtype, device=f.device)
        # the masked copies go through H on the model's inference path (xaikit.models.fast): the autocast of its
        # checked reduced-precision twin when the method allows a reduced precision (it does not: docstring)
        net = inference_twin(self.model, x, precision=self.precision_setting)
        reduced = full_precision(net) is not net
        # split at the last block's LayerNorm with a [CLS] readout: a copy's tokens enter only that block's
        # linear query-key-value projection, scaled by the mask, so one projection per image serves all its
        # h*w copies (_factored_head)
        blk = self.model.blocks[int(self.block) % self.depth]
        factor = (self.tap == "norm1" and int(self.block) % self.depth == self.depth - 1
                  and _cls_readout(self.model) and _plain_qkv(blk.attn))
        # chunks of c copies of one image, the last one padded by repeating its final copy: copy m of an image is
        # always row m % c of a (c, ...) product (the [CLS]-only layers' products are a few rows, whose rounding
        # depends on the row's place), so a map does not depend on the other images of the call
        c = min(self.batch_size, n)
        with torch.no_grad(), autocast_of(net):
            for b in range(B):
                proj = F.linear(f[b], blk.attn.qkv.weight) if factor else None
                for s in range(0, n, c):
                    Mc = M[torch.arange(s, s + c, device=f.device).clamp_(max=n - 1)]
                    if factor:
                        base = (f[b, 0] * Mc[:, :1]) if self.residual == "masked" else x_in[b, 0].expand(c, -1)
                        lg = self._factored_head(blk, proj, Mc, base)
                    else:
                        fm = f[b] * Mc[:, :, None]  # eq. 2
                        lg = self._head(fm, x_in[b].expand_as(fm))
                    sc = class_score(lg.float() if reduced else lg, t[b].expand(c), self.score)
                    scores[b, s:s + c] = sc[:n - s].to(scores.dtype)
        return Explanation(scores.view(B, h, w), t, logits, {"grid": (int(h), int(w)), "n_forward": int(pairs)})


ViTReciproCAM.__doc__ = ViTReciproCAM.__doc__.replace("{presets}", presets_doc(RECIPROCAM_PRESETS))
