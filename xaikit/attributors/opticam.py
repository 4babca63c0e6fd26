"""Opti-CAM (thesis ch. 2, §2.3; Zhang, Torres et al., CVIU 2024).

``S(x; u) = sum_k softmax(u)_k A^k`` (eq. 2.4, h = identity: a convex combination of non-negative
maps), ``F(u) = g_c(f(x * n(up(S(x; u)))))`` (eq. 2.6), ``u* = argmax_u F`` (eq. 2.5) with Adam
(lr 0.1, at most 100 steps, stop when the loss changes by less than 1e-10; §2.5.1).

The whole batch is optimized at once: one forward/backward per step for all images.  Adam is
element-wise and each image has its own ``u``, so the result equals per-image optimization; an
image whose loss has converged is frozen (its ``u`` no longer changes) while the others go on.
``explain(...).extras["history"]`` is the (steps + 1, B) tensor of objective values F (row 0 = the uniform
initialization; frozen images repeat their last value) and ``extras["steps"]`` the (B,) steps taken.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from ..core.conventions import (Preset, Space, check_count, choice, class_score, one_of, paper, presets_doc,
                                resolve_preset)
from .base import check_bool, check_number, register, upsample
from .cam import CAMFamily, combine

NORMALIZATIONS = ("range", "max", "sigmoid")
OBJECTIVES = ("mask", "diff")
STOP_RULES = ("tol", "rise")

#: Opti-CAM's presets: the thesis' text (§2.5.1, xaikit's defaults) and the official code
OPTICAM_PRESETS = {
    "paper": Preset("thesis §2.3-2.5.1 (Zhang, Torres et al., CVIU 2024): Adam lr 0.1, at most 100 steps, stop "
                    "when F changes by less than 1e-10"),
    "official": Preset("hanwei0912/OptiCAM util.py Basic_OptCAM.forward with generate_opticam.py's arguments "
                       "(max_iter=50, learning_rate=0.1, name_f='logit_predict', name_loss='plain', "
                       "name_norm='max_min'); the thesis author's ftorres11/saliencysense "
                       "lib/opticam/opticam_resnet.py Basic_OptCAM is called with the same (routines/generation/"
                       "cam_generation.py)",
                       {"relu_features": True, "stop": "rise", "max_iter": 50, "upsample_first": True},
                       "ReLU on the features before combining; every max_iter // 10 steps the loss is compared "
                       "with the previous check and the optimization stops when it rose (per image here; the "
                       "code compares the sum over its batch of 5, identical for one image); the returned map is "
                       "the min-max of the upsampled combination (as during the optimization)."),
}


def _normalize(S: torch.Tensor, how: str) -> torch.Tensor:
    """Per-image normalization n of (B, H, W) maps (thesis eq. 2.9-2.11), differentiable."""
    how = one_of("normalization", how, NORMALIZATIONS)
    flat = S.flatten(1)
    if how == "range":
        lo = flat.min(1, keepdim=True).values
        hi = flat.max(1, keepdim=True).values
        out = (flat - lo) / (hi - lo).clamp_min(1e-12)
    elif how == "max":
        out = flat / flat.max(1, keepdim=True).values.clamp_min(1e-12)
    else:
        out = torch.sigmoid(flat)
    return out.view_as(S)


@register("opticam", "opti_cam")
class OptiCAM(CAMFamily):
    """Opti-CAM (Zhang, Torres et al., CVIU 2024; thesis eq. 2.4-2.7): CAM weights optimized per image.

    The weights ``softmax(u)`` of the layer's feature maps are found by gradient ascent (Adam) on the
    class score of the image masked by the normalized, upsampled map (options of thesis Table 2.8).

    Every term is per image, yet in float32 a map can depend on which images share the call: a batch's
    convolutions round differently, and a hundred Adam steps amplify it (maps of a batch of 8 and of the same
    images in smaller calls differ by up to 0.03 on the synthetic ResNet-18, calls of 1, and 0.31 on
    EfficientNet-Lite0 at 224 px, calls of 2; in float64 they are identical). The same call on the same machine
    gives the same map; the tables explain their images in fixed batches.

    Args:
        preset: ``"paper"`` (default: the options' defaults below) or ``"official"`` (section Presets); an
            option passed explicitly wins over the preset.
        normalization: n of the map before masking: ``"range"`` (default; min-max, eq. 2.9), ``"max"``
            (eq. 2.10) or ``"sigmoid"`` (eq. 2.11).
        objective: ``"mask"`` (default; F = g_c of the masked image, eq. 2.6) or ``"diff"`` (F = -|g_c(x) -
            g_c(masked)|, eq. 2.12).
        score: g_c: ``"logit"`` (default, y_c), ``"softmax"`` or ``"log_softmax"``.
        lr: Adam's learning rate, > 0; default 0.1 (§2.5.1).
        max_iter: maximum number of optimization steps, >= 0; default 100 (§2.5.1).
        tol: with ``stop="tol"``, stop (per image) when F changes by less than this, >= 0; default 1e-10
            (§2.5.1).
        stop: the stopping rule: ``"tol"`` (default; ``tol``, §2.5.1) or ``"rise"`` (the official code: every
            ``max(1, max_iter // 10)`` steps, stop when the objective fell since the previous check, keeping
            the weights of that step; ``tol`` unused).
        relu_features: ReLU on the layer's feature maps before they are combined (the official code's
            ``relu(activations)``); default False (eq. 2.4 as written).
        upsample_first: the final map is the combination upsampled to the input size, then min-max
            normalized (the official code returns the mask it optimized); default False (normalize at the
            layer's resolution, then upsample). ``explain`` maps are then at the input size.
        mask_space: where the mask multiplies: ``"pixel"`` (default; the official code masks the [0, 1]
            image and normalizes inside the network, hanwei0912/OptiCAM ``Preprocessing_Layer``; masked pixels
            are black, as in :mod:`xaikit.metrics`, so Opti-CAM optimizes what AD/AG/AI measure) or
            ``"normalized"`` (alias ``"input"``: masked pixels become the dataset mean).
        align_corners: bilinear upsampling of the map with ``align_corners`` (default False).
        relu: ``h`` = ReLU on the final map; default False (a convex combination of non-negative maps).
        twin: run the masked images on the model's inference twin (default True; gradients flow to ``u``
            through it as through the model); False: on the model itself. Always in fp32, whatever the
            forward precision setting (:mod:`xaikit.models.fast`): the ascent follows bf16's rounding noise
            to other weights (maps Pearson 0.95 to the fp32 maps after 10 steps on EfficientNet-Lite0, below
            the 0.999 bar of ``tests/test_precision.py``).
        batch_size: accepted for a uniform interface; the whole batch is optimized at once.
        reshape: tokens -> (B, C, h, w) for transformer layers.

    ``explain(...).extras``: ``"weights"`` (B, K) = softmax(u), ``"u"`` (B, K), ``"history"`` (steps + 1, B)
    the objective F per step, ``"steps"`` (B,) the steps taken per image.

{presets}"""

    needs_grads = False
    reduced_precision = False  # the optimization amplifies bf16's noise (docstring, ``twin``)

    def __init__(self, model: nn.Module, layer=None, *, preset: str = "paper", normalization: str = paper("range"),
                 objective: str = paper("mask"), score: str = paper("logit"), lr: float = paper(0.1),
                 max_iter: int = paper(100), tol: float = paper(1e-10), stop: str = paper("tol"),
                 relu_features: bool = paper(False), upsample_first: bool = paper(False),
                 mask_space: str = paper("pixel"), align_corners: bool = paper(False), relu: bool = False,
                 twin: bool = True,
                 batch_size: int | None = None, reshape: Callable | None = None):
        preset, o = resolve_preset("opticam", OPTICAM_PRESETS, preset, dict(
            normalization=normalization, objective=objective, score=score, lr=lr, max_iter=max_iter, tol=tol,
            stop=stop, relu_features=relu_features, upsample_first=upsample_first, mask_space=mask_space,
            align_corners=align_corners))
        super().__init__(model, layer, relu=relu, score=o["score"], batch_size=batch_size, reshape=reshape)
        space = choice("space", o["mask_space"], "mask_space")
        self._space = Space(space, self.info)
        self._set_options(preset=preset,
                          normalization=one_of("normalization", o["normalization"], NORMALIZATIONS),
                          objective=one_of("objective", o["objective"], OBJECTIVES),
                          lr=check_number("lr", o["lr"], 0, low_open=True),
                          max_iter=check_count("max_iter", o["max_iter"], 0),
                          tol=check_number("tol", o["tol"], 0), stop=one_of("stop", o["stop"], STOP_RULES),
                          relu_features=check_bool("relu_features", o["relu_features"]),
                          upsample_first=check_bool("upsample_first", o["upsample_first"]), mask_space=space,
                          align_corners=check_bool("align_corners", o["align_corners"]), twin=check_bool("twin", twin))

    def _maps_combined(self, A, extras):
        return A.clamp_min(0) if self.relu_features else A

    def objective_value(self, A, x, u, target, y0, net: nn.Module | None = None):
        """F (B,) for weights u (B, K): eq. 2.6 ("mask") or eq. 2.12 ("diff"); ``net`` defaults to
        :meth:`fast` of ``x``."""
        net = self.fast(x) if net is None else net
        S = combine(u.softmax(1), A, relu=False)
        m = _normalize(upsample(S, x.shape[-2:], align_corners=self.align_corners), self.normalization)
        s = class_score(net(self._space.mask(x, m)), target, self.score)
        return s if self.objective == "mask" else -(y0 - s).abs()

    def weights(self, A, G, x, logits, target, extras=None):
        B, K = A.shape[:2]
        A = self._maps_combined(A.clone(), extras)  # a normal tensor (features come from inference mode)
        y0 = class_score(logits, target, self.score).detach().clone()
        u = torch.zeros(B, K, device=A.device, requires_grad=True)
        opt = torch.optim.Adam([u], lr=float(self.lr))
        # the bookkeeping stays on the device: the loop waits for it only every `period` steps, to stop early
        active = torch.ones(B, dtype=torch.bool, device=A.device)
        steps = torch.zeros(B, dtype=torch.long, device=A.device)
        hist, alive = [], []
        prev = None
        period = max(1, int(self.max_iter) // 10)
        checked = torch.full((B,), float("-inf"), device=A.device)  # F at the previous check of the "rise" rule
        net = self.fast(x)
        params = [p for p in self.model.parameters() if p.requires_grad]
        req = [p.requires_grad for p in params]
        try:
            for p in params:  # no parameter gradients are computed nor left behind
                p.requires_grad_(False)
            with torch.enable_grad():
                for it in range(int(self.max_iter) + 1):
                    F = self.objective_value(A, x, u, target, y0, net)
                    Fd = F.detach()
                    if prev is not None:
                        Fd = torch.where(active, Fd, hist[-1])
                        if self.stop == "tol":
                            newly = (Fd - prev).abs() < float(self.tol)
                            active = active & ~newly
                    if self.stop == "rise" and it < int(self.max_iter) and it % period == 0:
                        # the official rule: the loss (= const - F) rose since the last check -> keep this step
                        rose = active & (Fd < checked)
                        active = active & ~rose
                        checked = torch.where(active, Fd, checked)
                    hist.append(Fd)
                    alive.append(active.any())
                    prev = Fd
                    if it == int(self.max_iter) or (it % period == 0 and not bool(alive[-1])):
                        break
                    # once every image is frozen the steps below change nothing (u is restored, steps adds 0)
                    # and only repeat F; those rows are cut from the history after the loop
                    opt.zero_grad(set_to_none=True)
                    (-F * active.float()).sum().backward()
                    before = u.detach().clone()
                    opt.step()
                    with torch.no_grad():
                        u.copy_(torch.where(active[:, None], u, before))
                    steps += active.long()
        finally:
            for p, r in zip(params, req):
                p.requires_grad_(r)
        ended = torch.stack(alive).logical_not().nonzero()  # the first step after which no image was active
        if ended.numel():
            hist = hist[:int(ended[0, 0]) + 1]
        if extras is not None:
            extras.update(u=u.detach(), history=torch.stack(hist), steps=steps)
        return u.detach().softmax(1)


OptiCAM.__doc__ = OptiCAM.__doc__.replace("{presets}", presets_doc(OPTICAM_PRESETS))
