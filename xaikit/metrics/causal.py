"""Causal metrics: insertion, deletion (Petsiuk et al. 2018; thesis Alg. 1–2), over-all (Group-CAM
§4.3) and AOPC (Samek et al. 2016, as Quantus' ``RegionPerturbation``; thesis §2.7).

Every (image, step) pair is one row of a flat work list evaluated in chunks of ``batch_size``:
pixels are ordered once per image (``argsort``), their rank is scattered back to pixel positions,
and the mask of step i is ``rank < count_i`` — one comparison per chunk, no loop over steps.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core.devices import runs_on_model
from ..errors import InputError
from ..models.fast import inference_twin
from ._common import (SCORES, Space, batch_for, check_choice, check_images, check_sal, chunks, gaussian_blur,
                      logits, resolve_target, to_score)

SUBSTRATES = ("black", "blur")


def pixel_ranks(sal: torch.Tensor) -> torch.Tensor:
    """(B,H,W) -> (B,HW) rank of each pixel in decreasing saliency (ties: raster order)."""
    B = sal.shape[0]
    flat = sal.reshape(B, -1)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(flat.shape[1], device=sal.device).expand(B, -1).contiguous())
    return rank


def step_counts(n_pixels: int, steps: int) -> torch.Tensor:
    """Pixels changed after step i = 0..steps: ``min(i * ceil(HW / steps), HW)`` (224 px per step at
    224x224 with ``steps=224``, as in the thesis)."""
    if int(steps) < 1:
        raise InputError(f"steps must be a positive integer, got {steps}.")
    per = math.ceil(n_pixels / int(steps))
    return (torch.arange(int(steps) + 1) * per).clamp(max=n_pixels)


def auc(curves: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under curves sampled at equally spaced points of [0, 1] (RISE's ``auc``)."""
    n = curves.shape[-1] - 1
    return (curves.sum(-1) - curves[..., 0] / 2 - curves[..., -1] / 2) / n


def _substrate(x_sp: torch.Tensor, substrate: str, klen: int, sigma: float) -> torch.Tensor:
    check_choice("substrate", substrate, SUBSTRATES)
    return torch.zeros_like(x_sp) if substrate == "black" else gaussian_blur(x_sp, klen, sigma)


@torch.no_grad()
def _causal(model, x, sal, target, steps, substrate, insert, score, batch_size, space, klen, sigma,
            return_curves, desc):
    x = check_images(x)
    sal = check_sal(sal, x)
    check_choice("score", score, SCORES)
    sp = Space(model, space)
    model = inference_twin(model, x)  # BatchNorm folded, channels-last: the same outputs, faster
    B, C, H, W = x.shape
    t = resolve_target(target, logits(model, x, batch_size))
    x_sp = sp.to_space(x)
    base = _substrate(x_sp, substrate, klen, sigma)
    # insertion: pixels come from x into the substrate; deletion: from the substrate into x.
    # The masks are binary and the normalization per-channel affine, so selecting between the two
    # images already mapped to the model's input equals mapping the blend: done once, not per chunk.
    src, dst = (x_sp, base) if insert else (base, x_sp)
    src, dst = sp.to_input(src), sp.to_input(dst)
    rank = pixel_ranks(sal)
    counts = step_counts(H * W, steps).to(x.device)
    n = counts.numel()
    curves = torch.empty(B * n, device=x.device)
    for sl in chunks(B * n, batch_for(batch_size, x), desc=desc):
        k = torch.arange(sl.start, sl.stop, device=x.device)
        img, step = k // n, k % n
        m = (rank[img] < counts[step, None]).view(-1, 1, H, W)
        xin = torch.where(m, src[img], dst[img])
        curves[sl] = to_score(model(xin).float(), score).gather(1, t[img, None])[:, 0]
    curves = curves.view(B, n)
    a = auc(curves)
    if return_curves:
        return {"auc": a, "curves": curves, "counts": counts, "target": t}
    return a


@runs_on_model("x", "sal", "target")
def insertion(model, x, sal, target=None, steps: int = 224, substrate: str = "blur",
              score: str = "prob", batch_size: int | None = None, space: str = "pixel", klen: int = 11,
              sigma: float = 5.0, return_curves: bool = False):
    """Insertion AUC per image (thesis Alg. 1): start from the ``substrate`` (Gaussian blur, RISE's
    kernel 11 / σ 5, or black) and put back the pixels of ``x`` by decreasing saliency, ``steps``
    steps (curve of ``steps + 1`` points, first = substrate, last = x). Higher is better.

    Returns (B,) AUCs in [0, 1] for probabilities, or with ``return_curves=True`` a dict
    ``{"auc", "curves" (B, steps+1), "counts" (steps+1,) pixels inserted, "target"}``.
    Pixel ties (a constant map) are broken in raster order, so constant maps give a defined value.
    """
    return _causal(model, x, sal, target, steps, substrate, True, score, batch_size, space, klen, sigma,
                   return_curves, "insertion")


@runs_on_model("x", "sal", "target")
def deletion(model, x, sal, target=None, steps: int = 224, substrate: str = "black",
             score: str = "prob", batch_size: int | None = None, space: str = "pixel", klen: int = 11,
             sigma: float = 5.0, return_curves: bool = False):
    """Deletion AUC per image (thesis Alg. 2): replace the pixels of ``x`` by the ``substrate``
    (black = 0 in ``space``, default as the thesis; ``"blur"`` as Group-CAM's text) by decreasing
    saliency. Lower is better. Same returns and options as :func:`insertion`."""
    return _causal(model, x, sal, target, steps, substrate, False, score, batch_size, space, klen, sigma,
                   return_curves, "deletion")


@runs_on_model("x", "sal", "target")
def overall(model, x, sal, target=None, steps: int = 224, deletion_substrate: str = "black", **kw):
    """Group-CAM's over-all score per image: AUC(insertion) - AUC(deletion) (§4.3). Higher is better."""
    kw.pop("return_curves", None)
    return (insertion(model, x, sal, target, steps=steps, **kw)
            - deletion(model, x, sal, target, steps=steps, substrate=deletion_substrate, **kw))


def _baseline(x: torch.Tensor, baseline, model) -> torch.Tensor:
    """Replacement value per image/channel broadcastable to x, in the normalized input space."""
    if baseline == "min":        # Quantus' "black": the image's minimum value
        return x.flatten(1).min(1)[0].view(-1, 1, 1, 1)
    if baseline == "zero":
        return torch.zeros(1, 1, 1, 1, dtype=x.dtype, device=x.device)
    if baseline == "black":      # pixel black (0 in [0,1]) in the model's input space
        return Space(model, "pixel").to_input(torch.zeros(1, x.shape[1], 1, 1, dtype=x.dtype, device=x.device))
    if isinstance(baseline, (int, float)):
        return torch.full((1, 1, 1, 1), float(baseline), dtype=x.dtype, device=x.device)
    raise InputError(f"baseline={baseline!r}: use 'min' (Quantus' 'black'), 'zero', 'black' or a number.")


@runs_on_model("x", "sal", "target")
@torch.no_grad()
def aopc(model, x, sal, target=None, patch_size: int = 14, regions: int = 10, baseline="min",
         score: str = "prob", batch_size: int | None = None, return_curves: bool = False):
    """Area over the MoRF perturbation curve (Samek et al. 2016), per image. Higher is better.

    Non-overlapping ``patch_size`` patches are ranked by their summed saliency; the first k patches
    (k = 1..``regions``) are set to ``baseline`` in the normalized input (default ``"min"``, the
    per-image minimum, which is Quantus' ``perturb_baseline="black"``). The thesis' settings
    (§2.7, Quantus ``RegionPerturbation``): patch 14, 10 regions. With drops
    d_k = f(x) - f(x_k) (Quantus' curve), AOPC = Σ_{k=0..L} d_k / (L + 1), d_0 = 0 (Samek eq. 12).
    Border patches of sizes not divisible by ``patch_size`` are partial (sums over the pixels inside).
    """
    x = check_images(x)
    sal = check_sal(sal, x)
    check_choice("score", score, SCORES)
    B, C, H, W = x.shape
    ps = int(patch_size)
    model = inference_twin(model, x)
    out = logits(model, x, batch_size)
    t = resolve_target(target, out)
    f0 = to_score(out, score).gather(1, t[:, None])[:, 0]
    gh, gw = math.ceil(H / ps), math.ceil(W / ps)
    pad = (0, gw * ps - W, 0, gh * ps - H)
    sums = F.avg_pool2d(F.pad(sal[:, None], pad), ps)[:, 0].reshape(B, -1)  # ∝ patch sums
    L = min(int(regions), gh * gw)
    prank = pixel_ranks(sums.view(B, gh, gw))                                 # patch ranks (B, gh*gw)
    base = _baseline(x, baseline, model).expand(B, C, 1, 1)
    ks = torch.arange(1, L + 1, device=x.device)
    drops = torch.empty(B * L, device=x.device)
    for sl in chunks(B * L, batch_for(batch_size, x), desc="aopc"):
        i = torch.arange(sl.start, sl.stop, device=x.device)
        img, k = i // L, ks[i % L]
        pm = (prank[img] < k[:, None]).view(-1, 1, gh, gw).to(x.dtype)
        m = pm.repeat_interleave(ps, 2).repeat_interleave(ps, 3)[..., :H, :W]
        xin = m * base[img] + (1 - m) * x[img]
        drops[sl] = f0[img] - to_score(model(xin).float(), score).gather(1, t[img, None])[:, 0]
    drops = drops.view(B, L)
    a = drops.sum(1) / (L + 1)
    if return_curves:
        return {"aopc": a, "curves": drops, "target": t}
    return a
