"""Opti-CAM (thesis ch. 2, §2.3; Zhang, Torres et al., CVIU 2024).

``S(x; u) = sum_k softmax(u)_k A^k`` (eq. 2.4, h = identity: a convex combination of non-negative
maps), ``F(u) = g_c(f(x * n(up(S(x; u)))))`` (eq. 2.6), ``u* = argmax_u F`` (eq. 2.5) with Adam
(lr 0.1, at most 100 steps, stop when the loss changes by less than 1e-10; §2.5.1).

Options (all of Table 2.8): ``normalization`` = ``"range"`` (eq. 2.9, default) | ``"max"``
(eq. 2.10) | ``"sigmoid"`` (eq. 2.11); ``objective`` = ``"mask"`` (eq. 2.6, default) | ``"diff"``
(eq. 2.12); ``score`` = ``"logit"`` (g_c = y_c, default) | ``"softmax"`` | ``"log_softmax"``;
``mask_space`` = ``"pixel"`` (default: the official code masks the [0, 1] image and normalizes
inside the network, hanwei0912/OptiCAM ``Preprocessing_Layer``; masked pixels are black, the same
convention as :mod:`xaikit.metrics`, so Opti-CAM optimizes exactly what AD/AG/AI measure) |
``"input"`` (the normalized tensor, masked pixels become the dataset mean).

The whole batch is optimized at once: one forward/backward per step for all images.  Adam is
element-wise and each image has its own ``u``, so the result equals per-image optimization; an
image whose loss has converged is frozen (its ``u`` no longer changes) while the others go on.
After a call, ``history`` is the (steps + 1, B) tensor of objective values F (row 0 = the uniform
initialization; frozen images repeat their last value) and ``steps`` the (B,) steps taken.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import class_score, register, upsample
from .cam import CAMFamily, combine, mask_input


def _normalize(S: torch.Tensor, how: str) -> torch.Tensor:
    """Per-image normalization n of (B, H, W) maps (thesis eq. 2.9-2.11), differentiable."""
    flat = S.flatten(1)
    if how == "range":
        lo = flat.min(1, keepdim=True).values
        hi = flat.max(1, keepdim=True).values
        out = (flat - lo) / (hi - lo).clamp_min(1e-12)
    elif how == "max":
        out = flat / flat.max(1, keepdim=True).values.clamp_min(1e-12)
    elif how == "sigmoid":
        out = torch.sigmoid(flat)
    else:
        raise ConfigError(f"opticam: normalization={how!r}; use 'range', 'max' or 'sigmoid'")
    return out.view_as(S)


@register("opticam", "opti_cam")
class OptiCAM(CAMFamily):
    """Opti-CAM saliency (thesis eq. 2.4-2.7, options of Table 2.8)."""

    needs_grads = False
    defaults = {"relu": False, "score": "logit", "normalization": "range", "objective": "mask",
                "lr": 0.1, "max_iter": 100, "tol": 1e-10, "mask_space": "pixel",
                "align_corners": False, "return_history": False}

    def __init__(self, model, layer=None, **options):
        super().__init__(model, layer=layer, **options)
        if self.objective not in ("mask", "diff"):
            raise ConfigError(f"opticam: objective={self.objective!r}; use 'mask' (eq. 2.6) or 'diff' (eq. 2.12)")
        _normalize(torch.ones(1, 1, 1), self.normalization)  # validates the name
        self.history = None
        self.steps = None

    def objective_value(self, A, x, u, target, y0):
        """F (B,) for weights u (B, K): eq. 2.6 ("mask") or eq. 2.12 ("diff")."""
        S = combine(u.softmax(1), A, relu=False)
        m = _normalize(upsample(S, x.shape[-2:], align_corners=self.align_corners), self.normalization)
        s = class_score(self.fast(x)(mask_input(x, m, self.info, self.mask_space)), target, self.score)
        return s if self.objective == "mask" else -(y0 - s).abs()

    def weights(self, A, G, x, logits, target):
        B, K = A.shape[:2]
        A = A.clone()  # a normal tensor (features come from inference mode)
        y0 = class_score(logits, target, self.score).detach().clone()
        u = torch.zeros(B, K, device=A.device, requires_grad=True)
        opt = torch.optim.Adam([u], lr=float(self.lr))
        active = torch.ones(B, dtype=torch.bool, device=A.device)
        steps = torch.zeros(B, dtype=torch.long)
        hist = []
        prev = None
        params = [p for p in self.model.parameters() if p.requires_grad]
        req = [p.requires_grad for p in params]
        try:
            for p in params:  # no parameter gradients are computed nor left behind
                p.requires_grad_(False)
            with torch.enable_grad():
                for it in range(int(self.max_iter) + 1):
                    F = self.objective_value(A, x, u, target, y0)
                    Fd = F.detach().cpu()
                    if prev is not None:
                        Fd = torch.where(active.cpu(), Fd, hist[-1])
                        newly = (Fd - prev).abs() < float(self.tol)
                        active &= ~newly.to(active.device)
                    hist.append(Fd)
                    prev = Fd
                    if it == int(self.max_iter) or not bool(active.any()):
                        break
                    opt.zero_grad(set_to_none=True)
                    (-F * active.float()).sum().backward()
                    frozen = u.detach()[~active].clone()
                    opt.step()
                    if frozen.numel():
                        with torch.no_grad():
                            u[~active] = frozen
                    steps += active.cpu().long()
        finally:
            for p, r in zip(params, req):
                p.requires_grad_(r)
        self.history = torch.stack(hist)
        self.steps = steps
        self.u = u.detach()
        return u.detach().softmax(1)

    def explain(self, x, target=None, upsample: bool = False, normalize: bool = True):
        """As :meth:`Attributor.explain`; with ``return_history=True`` returns ``(maps, history)``."""
        out = super().explain(x, target, upsample=upsample, normalize=normalize)
        return (out, self.history) if self.return_history else out

    def __call__(self, x, target=None):
        out = super().explain(x, target, upsample=True)
        out = out.clamp_(0.0, 1.0)
        return (out, self.history) if self.return_history else out
