"""Interpretable object recognition: Average Drop / Increase / Gain, the bounding-box study, ADCC.

p = probability of the target class on ``x``, o = probability on the masked image ``x ⊙ S`` (thesis
§1.3.3.2). AD and AG are ratios of probabilities: these metrics always score with the softmax.
"""
from __future__ import annotations

import torch

from ..core.conventions import Space, check_images, check_maps, class_score
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
    bs = batch_size_for(batch_size, x)
    run = runner(model, x, twin)
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


@runs_on_model("x", "sal", "target")
def adcc(model, explainer, x, target=None, *, sal=None, reduce: bool = True, space: str = "pixel",
         batch_size: int | None = None, twin: bool = True) -> dict:
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
        sal: precomputed ``explainer(x, target)`` (default None: computed).
        reduce: True (default): means over images; False: per-image tensors plus ``target``.
        space: where ``x ⊙ S`` is taken, as :func:`recognition` (default ``"pixel"``; the ADCC code
            uses ``"normalized"``).
        batch_size: images per forward chunk (>= 1); None picks one from the image size.
        twin: the model's forwards on :func:`xaikit.models.inference_twin` (default True) or on the model.

    Returns:
        ``{"AD", "AI", "Coherency", "Complexity", "ADCC"}`` (floats, or (B,) tensors when not reduced).
    """
    check_bool("reduce", reduce)
    model = check_model(model)
    if not callable(explainer):
        raise InputError(f"explainer must be callable as explainer(x, target), got {type(explainer).__name__}")
    x = check_images(x)
    sp = Space(space, getattr(model, "xaikit", None))
    t = check_target(target, x.shape[0])
    with eval_guard(model, getattr(explainer, "model", None)):
        with torch.no_grad():
            run, out, t, bs = _clean(model, x, t, batch_size, twin, "adcc")
        if sal is None:
            sal = check_maps(explainer(x, t), x, name="explainer(x)")
        sal = check_maps(sal, x)
        xm = sp.mask(x, sal)
        sal2 = check_maps(explainer(xm, t), x, name="explainer(x ⊙ S)")
        with torch.no_grad():
            p = class_score(out, t, "softmax")
            o = class_score(model_logits(run, xm, bs, "model(x ⊙ S) (adcc)"), t, "softmax")
    rec = _ad_ag_ai(p, o)
    ad = rec["AD"] / 100
    coh = ((_pearson(sal, sal2) + 1) / 2).nan_to_num(0.0)
    com = sal.abs().flatten(1).mean(1)
    terms = torch.stack([coh, 1 - com, 1 - ad])
    ok = (terms > 0).all(0)
    score = torch.where(ok, 3 / (1 / terms.clamp(min=1e-12)).sum(0), torch.zeros_like(coh))
    res = {"AD": rec["AD"], "AI": rec["AI"], "Coherency": coh * 100, "Complexity": com * 100,
           "ADCC": score * 100}
    if not reduce:
        res.update(target=t)
    return reduce_dict(res, reduce)
