"""Interpretable object recognition: Average Drop / Increase / Gain, the bounding-box study, ADCC.

p = probability of the target class on ``x``, o = probability on the masked image ``x ⊙ S`` (thesis
§1.3.3.2). AD and AG are ratios of probabilities: these metrics always score with the softmax.

They run at fp32 whatever the precision setting (:mod:`xaikit.models.fast`): they make one masked forward per
image and mask, so a reduced precision saves next to nothing, and AG divides by 1 - p, which amplifies the
rounding of bf16: on Lite0 at 128 px (chelsea, p = 0.88) bf16 moved the masked probability by 0.004 and AG by
3.5 points for that image, 1.7 over two photos (issue 24 asks for 0.5; ``tests/test_precision.py``).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..core.conventions import (Preset, Space, check_images, check_maps, class_score, one_of, paper, presets_doc,
                                resolve_preset)
from ..core.devices import runs_on_model
from ..core.targets import resolve_target
from ..errors import InputError
from ._common import (batch_size_for, check_bool, check_model, check_target, eval_guard, model_logits, reduce_dict,
                      runner)
from .localization import box_masks


def _ad_ag_ai(p: torch.Tensor, o: torch.Tensor) -> dict:
    """Per-image AD (eq. 1.10), AI (eq. 1.11), AG (eq. 2.8), in percent.

    Edge cases: p = 0 gives AD = 0 (nothing to lose), p = 1 gives AG = 0 (nothing to gain).
    """
    d = p - o
    ad = torch.where(p > 0, d.clamp(min=0) / p.clamp(min=1e-12), torch.zeros_like(p)) * 100
    ag = torch.where(p < 1, (-d).clamp(min=0) / (1 - p).clamp(min=1e-12), torch.zeros_like(p)) * 100
    ai = (p < o).to(p.dtype) * 100
    return {"AD": ad, "AG": ag, "AI": ai}


def _clean(model, x, target, batch_size, twin, what):
    """(run, p-logits, target, batch size) after the clean forward; options checked first."""
    run = runner(model, x, twin, what, setting="fp32")  # fp32 always: the module docstring says why
    bs = batch_size_for(batch_size, x, run)
    out = model_logits(run, x, bs, f"model(x) on the clean images ({what})")
    t = resolve_target(check_target(target, x.shape[0], out.shape[1]), out)
    return run, out, t, bs


@runs_on_model("x", "sal", "target")
@torch.no_grad()
def recognition(model, x, sal, target=None, *, reduce: bool = True, space: str = "pixel",
                batch_size: int | None = None, twin: bool = True) -> dict:
    """Average Drop, Average Gain, Average Increase of masking ``x`` by ``sal`` (percent).

    AD (thesis eq. 1.10) and AI (eq. 1.11, Chattopadhyay et al. 2018), AG (eq. 2.8, Opti-CAM).
    A constant map c masks every pixel alike: the result is defined (for c = 0 the masked image is
    black). Probabilities, not logits (AD/AG are ratios).

    Args:
        model: the classifier (``nn.Module``), run in eval mode and left as it was found.
        x: (B, 3, H, W) normalized images, on any device (results come back on it).
        sal: (B, H, W) saliency maps in [0, 1] at the input size.
        target: None = the class predicted on ``x`` (the ADCC code); an int or (B,) class indices (the
            thesis uses the ground-truth labels: pass them).
        reduce: True (default): means over the images as floats; False: per-image tensors, plus ``p``
            and ``o`` (target probability on the image and on the masked image) and ``target``.
        space: where ``x ⊙ S`` is taken: ``"pixel"`` (default: the [0, 1] image, masked pixels go black,
            as the thesis' Opti-CAM code; needs ``model.xaikit``) or ``"normalized"`` (the model's input
            tensor, masked pixels go to the dataset mean, as the ADCC code and pytorch-grad-cam).
        batch_size: images per forward chunk (>= 1); None picks one from the image size.
        twin: run the forwards on :func:`xaikit.models.inference_twin` of the model (default True) or
            on the model itself.

    Returns:
        ``{"AD", "AG", "AI"}`` (floats, or (B,) tensors with ``p``, ``o``, ``target`` when not reduced).
    """
    check_bool("reduce", reduce)
    model = check_model(model)
    x = check_images(x)
    sal = check_maps(sal, x)
    sp = Space(space, getattr(model, "xaikit", None))
    t = check_target(target, x.shape[0])
    with eval_guard(model):
        run, out, t, bs = _clean(model, x, t, batch_size, twin, "recognition")
        p = class_score(out, t, "softmax")
        o = class_score(model_logits(run, sp.mask(x, sal), bs, "model(x ⊙ S) (recognition)"), t, "softmax")
    res = _ad_ag_ai(p, o)
    if not reduce:
        res.update(p=p, o=o, target=t)
    return reduce_dict(res, reduce)


@runs_on_model("x", "sal", "boxes", "target", "box_labels")
@torch.no_grad()
def box_study(model, x, sal, boxes, target=None, *, box_labels=None, reduce: bool = True,
              space: str = "pixel", batch_size: int | None = None, twin: bool = True) -> dict:
    """Thesis Table 2.5: AD/AG/AI when masking by the box, its complement, and combinations.

    Keys: ``"S:=B"`` (the union B of the ground-truth boxes as saliency map), ``"S:=I-B"`` (its
    complement), ``"S"`` (the map itself), ``"B&S"`` (B ⊙ S) and ``"S-B"`` (S ⊙ (1 - B)); each holds
    a :func:`recognition`-style dict. An image without boxes has B = ∅: "S:=B" masks everything (o is
    the score of a black image) and "B&S" too.

    Args:
        model, x, sal, target, reduce, space, batch_size, twin: as :func:`recognition`.
        boxes: per image a (K, 4) tensor of xyxy boxes in pixels (``Batch.boxes``).
        box_labels: per image the (K,) classes of the boxes; when given only boxes of the target class
            count (default None: every box).

    Returns:
        ``{key: {"AD", "AG", "AI"}}`` (plus ``p``, ``o`` per image when not reduced).
    """
    check_bool("reduce", reduce)
    model = check_model(model)
    x = check_images(x)
    sal = check_maps(sal, x)
    sp = Space(space, getattr(model, "xaikit", None))
    t = check_target(target, x.shape[0])
    with eval_guard(model):
        run, out, t, bs = _clean(model, x, t, batch_size, twin, "box_study")
        p = class_score(out, t, "softmax")
        Bm = box_masks(boxes, x.shape[-2:], labels=box_labels, target=t).to(x)
        masks = {"S:=B": Bm, "S:=I-B": 1 - Bm, "S": sal, "B&S": Bm * sal, "S-B": sal * (1 - Bm)}
        xs = torch.cat([sp.mask(x, m) for m in masks.values()])
        o = class_score(model_logits(run, xs, bs, "model(x ⊙ mask) (box_study)"), t.repeat(len(masks)),
                        "softmax").view(len(masks), -1)
    res = {}
    for i, k in enumerate(masks):
        r = _ad_ag_ai(p, o[i])
        if not reduce:
            r.update(p=p, o=o[i])
        res[k] = reduce_dict(r, reduce)
    return res


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a.flatten(1) - a.flatten(1).mean(1, keepdim=True)
    b = b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1) / den.clamp(min=1e-30), torch.full_like(den, float("nan")))


#: ADCC's presets: the papers' text (xaikit's defaults) and the two codes that produced published ADCC numbers
ADCC_PRESETS = {
    "paper": Preset("Poppi et al. 2021 eq. 1-4 and thesis eq. 1.12-1.14 as written: the target's probability, "
                    "the same class re-explained, masking the [0, 1] image, the mean of per-image ADCC"),
    "adcc": Preset("aimagelab/ADCC metrics/adcc.py ADCC with metrics/average_drop.py average_drop, "
                   "metrics/coherency.py coherency and metrics/complexity.py complexity",
                   {"space": "normalized", "ad_reference": "max", "coherency_target": "pred"},
                   "AD divides by the maximum probability on x (the prediction's), the coherency re-explains the "
                   "class predicted on x, the explanation map is image * saliency on the normalized tensor; ADCC "
                   "per image, averaged."),
    "vit_reciprocam": Preset("sybyun/vitcam src/vit_recipro_cam_metric.py ADCC",
                             {"space": "normalized", "aggregate": "dataset", "map_resolution": "native",
                              "mask_upsample": "bicubic_pil"},
                             "ADCC = the harmonic mean of the dataset means of coherency, 1 - complexity and "
                             "1 - AD; coherency (Pearson) and complexity on the method's own 14x14 maps; the "
                             "mask is that map resized by PIL's bicubic (Image.resize(BICUBIC)) on the "
                             "normalized tensor; the labels as target."),
}


def adcc_native(options: Mapping) -> bool:
    """Whether :func:`adcc` called with ``options`` compares the method's own maps (``map_resolution=
    "native"``): the option when passed, else its ``preset``'s, else the paper's ``"input"``. A caller that
    precomputes input-size maps must then leave ``sal`` to the attributor."""
    preset = ADCC_PRESETS.get(options.get("preset", "paper"))
    default = (preset.options if preset is not None else {}).get("map_resolution", "input")
    return options.get("map_resolution", default) == "native"


def pil_bicubic_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) matrix of Pillow's bicubic resampling along one axis (``Image.resize(..., BICUBIC)`` of a
    float 'F' image, Resample.c ``precompute_coeffs``): the cubic kernel with a = -0.5, support scaled by the
    down-sampling factor, windows truncated at the borders and renormalized (torch's bicubic uses a = -0.75
    and replicates the border)."""
    def cubic(v):
        v = abs(v)
        a = -0.5
        if v < 1.0:
            return ((a + 2.0) * v - (a + 3.0)) * v * v + 1
        if v < 2.0:
            return (((v - 5) * v + 8) * v - 4) * a
        return 0.0

    scale = n_in / n_out
    fscale = max(scale, 1.0)
    support = 2.0 * fscale
    W = torch.zeros(n_out, n_in, dtype=torch.float64)
    for o in range(n_out):
        center = (o + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        ws = [cubic((j + lo - center + 0.5) / fscale) for j in range(hi - lo)]
        tot = sum(ws)
        for j, w in enumerate(ws):
            W[o, lo + j] = w / tot if tot != 0 else w
    return W


def resize_maps(maps: torch.Tensor, size, how: str = "bilinear") -> torch.Tensor:
    """(B, h, w) maps resized to ``size`` = (H, W): ``"bilinear"`` (``align_corners=False``) or
    ``"bicubic_pil"`` (:func:`pil_bicubic_matrix`; may overshoot [0, 1] as Pillow's does)."""
    H, W = int(size[0]), int(size[1])
    if tuple(maps.shape[-2:]) == (H, W):
        return maps
    if how == "bilinear":
        return F.interpolate(maps[:, None].float(), size=(H, W), mode="bilinear", align_corners=False)[:, 0]
    Wy = pil_bicubic_matrix(maps.shape[-2], H).to(maps.device)
    Wx = pil_bicubic_matrix(maps.shape[-1], W).to(maps.device)
    return torch.einsum("yh,bhw,xw->byx", Wy, maps.double(), Wx).to(torch.float32)


def _native_maps(explainer, xx, tt, what):
    explain = getattr(explainer, "explain", None)
    if not callable(explain):
        raise InputError(f"adcc(map_resolution='native') needs an attributor (explainer.explain(x, target) -> "
                         f"Explanation at the method's own resolution), got {type(explainer).__name__}")
    maps = explain(xx, tt).maps.detach().float()
    if maps.dim() != 3 or maps.shape[0] != xx.shape[0] or not bool(torch.isfinite(maps).all()):
        raise InputError(f"{what}: the explanation maps must be finite (B, h, w), got {tuple(maps.shape)}")
    return maps.to(xx.device)


@runs_on_model("x", "sal", "target")
def adcc(model, explainer, x, target=None, *, preset: str = "paper", sal=None, reduce: bool = True,
         space: str = paper("pixel"), ad_reference: str = paper("target"), coherency_target: str = paper("same"),
         aggregate: str = paper("image"), map_resolution: str = paper("input"),
         mask_upsample: str = paper("bilinear"), batch_size: int | None = None, twin: bool = True) -> dict:
    """ADCC (Poppi et al. 2021; thesis eq. 1.12–1.14, ViT-ReciproCAM eq. 1), in percent.

    ``explainer(x, target) -> (B,H,W)`` in [0,1] is called on ``x`` (unless ``sal`` is given) and
    again on the explanation map ``x ⊙ S`` for the same target (it *re-explains* the masked image).

    - Coherency = (ρ + 1) / 2 with ρ the Pearson correlation of the two maps (eq. 1.12, rescaled to
      [0,1] as the official code does); a constant map has no correlation: Coherency = 0.
    - Complexity = ‖S‖₁ / (HW) (eq. 1.13, mean absolute value as in the official code).
    - AD = [p - o]₊ / p (eq. 1.10).
    - ADCC = 3 / (1/Coherency + 1/(1 - Complexity) + 1/(1 - AD)) (harmonic mean; 0 when any of
      Coherency, 1 - Complexity, 1 - AD is 0).

    Args:
        model: the classifier (``nn.Module``), in eval mode during the call (the explainer's calls too)
            and left as it was found (modes and ``.grad`` fields).
        explainer: ``explainer(x, target) -> (B, H, W)`` maps in [0, 1], e.g. an attributor.
        x: (B, 3, H, W) normalized images, on any device.
        target: None = the class predicted on ``x``, as the ADCC reference code; an int or (B,) classes.
        preset: ``"paper"`` (default: the options' defaults below), ``"adcc"`` or ``"vit_reciprocam"`` (section
            Presets); an option passed explicitly wins over the preset.
        sal: precomputed ``explainer(x, target)`` (default None: computed); with ``map_resolution="native"``
            the maps at the method's own resolution.
        reduce: True (default): means over images; False: per-image tensors plus ``target``.
        space: where ``x ⊙ S`` is taken, as :func:`recognition` (default ``"pixel"``; the ADCC code
            uses ``"normalized"``).
        ad_reference: p of AD: ``"target"`` (default; the target's probability on x, eq. 1.10) or ``"max"``
            (the largest probability on x, aimagelab's ``average_drop``).
        coherency_target: the class re-explained on ``x ⊙ S``: ``"same"`` (default; the target, eq. 1.12) or
            ``"pred"`` (the class predicted on x, aimagelab's ``coherency``).
        aggregate: the reduced ADCC: ``"image"`` (default; the mean of per-image harmonic means) or
            ``"dataset"`` (the harmonic mean of the means of coherency, 1 - complexity and 1 - AD, vitcam's
            ``ADCC``). Per-image values (``reduce=False``) are per-image harmonic means either way.
        map_resolution: ``"input"`` (default; the maps at the input size, ``explainer(x, target)``) or
            ``"native"`` (coherency and complexity on ``explainer.explain(x, target).maps``, the method's own
            resolution, e.g. ViT-ReciproCAM's 14x14; the mask is that map resized by ``mask_upsample``).
        mask_upsample: with ``map_resolution="native"``, how the map is resized to mask the image:
            ``"bilinear"`` (default) or ``"bicubic_pil"`` (Pillow's bicubic, :func:`pil_bicubic_matrix`).
        batch_size: images per forward chunk (>= 1); None picks one from the image size.
        twin: the model's forwards on :func:`xaikit.models.inference_twin` (default True) or on the model.

    Returns:
        ``{"AD", "AI", "Coherency", "Complexity", "ADCC"}`` (floats, or (B,) tensors when not reduced).

    """
    preset, o = resolve_preset("adcc", ADCC_PRESETS, preset, dict(
        space=space, ad_reference=ad_reference, coherency_target=coherency_target, aggregate=aggregate,
        map_resolution=map_resolution, mask_upsample=mask_upsample))
    ad_ref = one_of("ad_reference", o["ad_reference"], ("target", "max"))
    coh_t = one_of("coherency_target", o["coherency_target"], ("same", "pred"))
    agg = one_of("aggregate", o["aggregate"], ("image", "dataset"))
    native = one_of("map_resolution", o["map_resolution"], ("input", "native")) == "native"
    how = one_of("mask_upsample", o["mask_upsample"], ("bilinear", "bicubic_pil"))
    check_bool("reduce", reduce)
    model = check_model(model)
    if not callable(explainer):
        raise InputError(f"explainer must be callable as explainer(x, target), got {type(explainer).__name__}")
    x = check_images(x)
    sp = Space(o["space"], getattr(model, "xaikit", None))
    t = check_target(target, x.shape[0])
    with eval_guard(model, getattr(explainer, "model", None)):
        with torch.no_grad():
            run, out, t, bs = _clean(model, x, t, batch_size, twin, "adcc")
        if native:
            s0 = _native_maps(explainer, x, t, "explainer.explain(x)") if sal is None else torch.as_tensor(sal)
            s0 = check_maps(s0, s0[:, None].expand(-1, 3, -1, -1), name="sal").to(x.device).float()
            mask = resize_maps(s0, x.shape[-2:], how).to(x.dtype)
        else:
            if sal is None:
                sal = check_maps(explainer(x, t), x, name="explainer(x)")
            s0 = mask = check_maps(sal, x)
        xm = sp.mask(x, mask)
        t2 = t if coh_t == "same" else out.argmax(-1)
        if native:
            s1 = _native_maps(explainer, xm, t2, "explainer.explain(x ⊙ S)")
        else:
            s1 = check_maps(explainer(xm, t2), x, name="explainer(x ⊙ S)")
        with torch.no_grad():
            probs = out.softmax(-1)
            p = probs.max(-1).values if ad_ref == "max" else class_score(out, t, "softmax")
            o_ = class_score(model_logits(run, xm, bs, "model(x ⊙ S) (adcc)"), t, "softmax")
    rec = _ad_ag_ai(p, o_)
    ad = rec["AD"] / 100
    coh = ((_pearson(s0, s1) + 1) / 2).nan_to_num(0.0)
    com = s0.abs().flatten(1).mean(1)
    score = _harmonic(coh, 1 - com, 1 - ad)
    res = {"AD": rec["AD"], "AI": rec["AI"], "Coherency": coh * 100, "Complexity": com * 100,
           "ADCC": score * 100}
    if not reduce:
        res.update(target=t)
        return res
    out_ = reduce_dict(res, True)
    if agg == "dataset":
        out_["ADCC"] = adcc_of_means(out_["Coherency"], out_["Complexity"], out_["AD"])
    return out_


def adcc_of_means(coherency, complexity, ad):
    """ADCC of a whole dataset as sybyun/vitcam computes it (``aggregate="dataset"``): the harmonic mean of the
    dataset means of coherency, 1 - complexity and 1 - AD, all in percent; 0 when a term is <= 0.  Numbers
    give a float; arrays of means (a bootstrap's resamples) give a NumPy array, element by element."""
    c, x, a = (torch.as_tensor(np.asarray(v, dtype=np.float64)) for v in (coherency, complexity, ad))
    out = _harmonic(c / 100, 1 - x / 100, 1 - a / 100) * 100
    return float(out) if out.dim() == 0 else out.numpy()


def _harmonic(a, b, c):
    """3 / (1/a + 1/b + 1/c); 0 where any term is <= 0."""
    terms = torch.stack([torch.as_tensor(a), torch.as_tensor(b), torch.as_tensor(c)])
    ok = (terms > 0).all(0)
    return torch.where(ok, 3 / (1 / terms.clamp(min=1e-12)).sum(0), torch.zeros_like(terms[0]))


adcc.__doc__ += presets_doc(ADCC_PRESETS)
