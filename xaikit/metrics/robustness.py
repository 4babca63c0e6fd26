"""Robustness: Max-Sensitivity (Yeh et al. 2019), with Quantus' definition and thesis §2.7 settings."""
from __future__ import annotations

import torch

from ..core.devices import on_model
from ..errors import InputError
from ._common import batch_for, check_images, chunks, logits, resolve_target


def _explain(explainer, x, t, batch_size):
    outs = []
    for sl in chunks(x.shape[0], batch_for(batch_size, x), desc="max-sensitivity"):
        e = explainer(x[sl], t[sl])
        if not isinstance(e, torch.Tensor):
            e = torch.as_tensor(e)
        outs.append(e.detach().float().reshape(e.shape[0], -1).to(x.device))
    return torch.cat(outs)


def max_sensitivity(explainer, x, target=None, radius: float = 0.2, n: int = 10, seed: int = 0,
                    model=None, sal=None, noise=None, batch_size: int | None = None, reduce: bool = False):
    """Max-Sensitivity per image: max_j ‖e(x + δ_j) - e(x)‖_F / ‖e(x)‖_F, δ_j ~ U[-r, r]^{C×H×W}.

    As Quantus' ``MaxSensitivity`` (uniform noise on every input value of the *normalized* tensor,
    Frobenius norms, no normalization of the maps); thesis §2.7 uses ``radius=0.2`` (Quantus'
    ``lower_bound``), ``n=10`` samples. Lower is better. ``explainer(x, target) -> (B,H,W)``;
    ``target=None`` needs ``model`` (predicted class). ``sal`` reuses precomputed e(x). ``noise``
    (n, B, C, H, W) replaces the seeded draws (to reproduce another tool's random numbers).
    All n·B perturbed images are explained in chunks of ``batch_size``.
    A zero map e(x) = 0 has no relative sensitivity: NaN.
    """
    x = check_images(x)
    B = x.shape[0]
    if target is None:
        if model is None:
            raise InputError("max_sensitivity(target=None) needs model= to find the predicted class.")
        target = logits(model, on_model(model, x), batch_size).argmax(-1).to(x.device)
    t = torch.as_tensor(target, device=x.device).long().reshape(-1).expand(B)
    e0 = (_explain(explainer, x, t, batch_size) if sal is None
          else torch.as_tensor(sal).detach().float().reshape(B, -1).to(x.device))
    if torch.isnan(e0).any():
        raise InputError("the explanation e(x) contains NaN; fix the method or use torch.nan_to_num.")
    if noise is None:
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        noise = (torch.rand((int(n),) + tuple(x.shape), generator=g) * 2 - 1) * radius
    noise = torch.as_tensor(noise, dtype=x.dtype).to(x.device)
    if noise.shape[1:] != x.shape:
        raise InputError(f"noise must be (n, *x.shape) = (n, {tuple(x.shape)}), got {tuple(noise.shape)}.")
    n = noise.shape[0]
    xp = (x[None] + noise).reshape(n * B, *x.shape[1:])
    ep = _explain(explainer, xp, t.repeat(n), batch_size).view(n, B, -1)
    den = e0.norm(dim=1)
    sens = (ep - e0[None]).norm(dim=2) / den[None]
    ms = torch.where(den > 0, sens.max(0)[0], torch.full_like(den, float("nan")))
    return float(torch.nanmean(ms)) if reduce else ms
