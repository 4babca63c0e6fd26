"""Robustness: Max-Sensitivity (Yeh et al. 2019), with Quantus' definition and thesis §2.7 settings."""
from __future__ import annotations

import torch

from ..core.conventions import check_images, chunks
from ..core.devices import back, on_model
from ..errors import InputError
from ._common import (batch_size_for, check_bool, check_model, check_target, count, eval_guard, model_logits, number,
                      runner)


def _explain(explainer, x, t, batch_size, what):
    outs = []
    for sl in chunks(x.shape[0], batch_size, desc="max-sensitivity"):
        e = explainer(x[sl], t[sl])
        if not isinstance(e, torch.Tensor):
            e = torch.as_tensor(e)
        if e.dim() == 0 or e.shape[0] != sl.stop - sl.start:
            raise InputError(f"{what} returned shape {tuple(e.shape)}; expected one map per image "
                             f"({sl.stop - sl.start}, H, W)")
        outs.append(e.detach().float().reshape(e.shape[0], -1).to(x.device))
    e = torch.cat(outs)
    _finite(e, what)
    return e


def _finite(e: torch.Tensor, what: str) -> None:
    if not bool(torch.isfinite(e).all()):
        bad = (~torch.isfinite(e)).flatten(1).any(1).nonzero().flatten().tolist()
        raise InputError(f"{what} contains NaN or infinite values (maps {bad[:10]}); fix the method or use "
                         "torch.nan_to_num")


def max_sensitivity(explainer, x, target=None, *, radius: float = 0.2, n: int = 10, seed: int = 0, model=None,
                    sal=None, noise=None, batch_size: int | None = None, reduce: bool = False,
                    twin: bool = True):
    """Max-Sensitivity per image: max_j ‖e(x + δ_j) - e(x)‖_F / ‖e(x)‖_F, δ_j ~ U[-r, r]^{C×H×W}.

    As Quantus' ``MaxSensitivity`` (uniform noise on every input value of the *normalized* tensor,
    Frobenius norms, no normalization of the maps). Lower is better. All n·B perturbed images are
    explained in chunks of ``batch_size``. A zero map e(x) = 0 has no relative sensitivity: NaN.

    Args:
        explainer: ``explainer(x, target) -> (B, H, W)`` maps, e.g. an attributor.
        x: (B, 3, H, W) normalized images; the explainer sees them on this device, results come back on it.
        target: the explained class: an int or (B,) class indices; None = the class ``model`` predicts on
            ``x`` (then ``model`` is needed).
        radius: half-width r of the uniform noise, a finite number >= 0 (default 0.2: thesis §2.7, Quantus'
            ``lower_bound=0.2``).
        n: number of noise samples, a whole number >= 1 (default 10, Quantus' ``nr_samples=10``).
        seed: seed of xaikit's own draws (a whole number >= 0, default 0).
        model: the classifier, needed only for ``target=None``; like the explainer's ``.model``, it is in
            eval mode during the call and left as it was found (modes, ``.grad`` fields).
        sal: precomputed e(x) (default None: computed).
        noise: (n, B, C, H, W) finite noise replacing the seeded draws (to reproduce another tool's random
            numbers); ``n`` and ``radius`` are then not used.
        batch_size: images per explainer call (>= 1); None picks one from the image size.
        reduce: False (default): (B,) values; True: their mean (NaN left out) as a float.
        twin: the prediction's forward on :func:`xaikit.models.inference_twin` (default True) or on the model.

    Returns:
        (B,) Max-Sensitivity on the device of ``x``, or a float with ``reduce=True``.
    """
    radius = number("radius", radius, 0.0, hint="the half-width of the uniform noise (thesis: 0.2)")
    n = count("n", n, 1, "the number of noise samples (thesis: 10)")
    seed = count("seed", seed, 0)
    check_bool("reduce", reduce)
    check_bool("twin", twin)
    if not callable(explainer):
        raise InputError(f"explainer must be callable as explainer(x, target), got {type(explainer).__name__}")
    x = check_images(x)
    B = x.shape[0]
    bs = batch_size_for(batch_size, x)
    if model is not None:
        model = check_model(model)
    # the range of classes, where the model's or the attributor's metadata says it (no extra forward)
    classes = getattr(getattr(model, "xaikit", None), "num_classes", None) or getattr(explainer, "num_classes", None)
    t = check_target(target, B, classes if isinstance(classes, int) else None, x.device)
    with eval_guard(model, getattr(explainer, "model", None)):
        if t is None:
            if model is None:
                raise InputError("max_sensitivity(target=None) needs model= to find the predicted class; or pass "
                                 "the classes as target=")
            with torch.no_grad():
                xm = on_model(model, x)
                t = back(model_logits(runner(model, xm, twin, "max_sensitivity"), xm, bs,
                                      "model(x) (max_sensitivity's prediction)").argmax(-1), x)
        if sal is None:
            e0 = _explain(explainer, x, t, bs, "the explanation e(x)")
        else:
            e0 = torch.as_tensor(sal).detach().float()
            if e0.dim() == 0 or e0.shape[0] != B:
                raise InputError(f"sal must hold one map per image ({B}, H, W), got shape {tuple(e0.shape)}")
            e0 = e0.reshape(B, -1).to(x.device)
            _finite(e0, "the explanation e(x) (sal)")
        if noise is None:
            g = torch.Generator(device="cpu").manual_seed(seed)
            noise = (torch.rand((n,) + tuple(x.shape), generator=g) * 2 - 1) * radius
        noise = torch.as_tensor(noise, dtype=x.dtype).to(x.device)
        if noise.dim() != 5 or noise.shape[1:] != x.shape:
            raise InputError(f"noise must be (n, *x.shape) = (n, {tuple(x.shape)}), got {tuple(noise.shape)}.")
        if not bool(torch.isfinite(noise).all()):
            raise InputError("noise contains NaN or infinite values")
        k = noise.shape[0]
        xp = (x[None] + noise).reshape(k * B, *x.shape[1:])
        ep = _explain(explainer, xp, t.repeat(k), bs, "the explanations e(x + δ) of the perturbed images").view(k, B, -1)
    den = e0.norm(dim=1)
    sens = (ep - e0[None]).norm(dim=2) / den[None]
    ms = torch.where(den > 0, sens.max(0)[0], torch.full_like(den, float("nan")))
    return float(torch.nanmean(ms)) if reduce else ms
