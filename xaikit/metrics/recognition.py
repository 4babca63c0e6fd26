"""Interpretable object recognition: Average Drop / Increase / Gain, the bounding-box study, ADCC.

p = score of the target class on ``x``, o = score on the masked image ``x ⊙ S`` (thesis §1.3.3.2).
"""
from __future__ import annotations

import torch

from ..core.devices import runs_on_model
from ._common import Space, check_images, check_sal, logits, reduce_dict, resolve_target
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


def _probs(model, xs: torch.Tensor, t: torch.Tensor, batch_size: int) -> torch.Tensor:
    return logits(model, xs, batch_size).softmax(-1).gather(1, t[:, None])[:, 0]


@runs_on_model("x", "sal", "target")
@torch.no_grad()
def recognition(model, x, sal, target=None, reduce: bool = True, space: str = "pixel",
                batch_size: int | None = None) -> dict:
    """Average Drop, Average Gain, Average Increase of masking ``x`` by ``sal`` (percent).

    AD (thesis eq. 1.10) and AI (eq. 1.11, Chattopadhyay et al. 2018), AG (eq. 2.8, Opti-CAM).
    ``target=None`` uses the predicted class (the thesis uses ground truth: pass labels).
    ``reduce=False`` returns per-image tensors, plus ``p`` and ``o`` (target probability on the
    image and on the masked image). A constant map c masks every pixel alike: the result is
    defined (for c = 0 the masked image is black). Probabilities, not logits (AD/AG are ratios).
    """
    x = check_images(x)
    sal = check_sal(sal, x)
    sp = Space(model, space)
    out = logits(model, x, batch_size)
    t = resolve_target(target, out)
    p = out.softmax(-1).gather(1, t[:, None])[:, 0]
    o = _probs(model, sp.mask(x, sal), t, batch_size)
    res = _ad_ag_ai(p, o)
    if not reduce:
        res.update(p=p, o=o, target=t)
    return reduce_dict(res, reduce)


@runs_on_model("x", "sal", "boxes", "target", "box_labels")
@torch.no_grad()
def box_study(model, x, sal, boxes, target=None, box_labels=None, reduce: bool = True,
              space: str = "pixel", batch_size: int | None = None) -> dict:
    """Thesis Table 2.5: AD/AG/AI when masking by the box, its complement, and combinations.

    Keys: ``"S:=B"`` (the union B of the ground-truth boxes as saliency map), ``"S:=I-B"`` (its
    complement), ``"S"`` (the map itself), ``"B&S"`` (B ⊙ S) and ``"S-B"`` (S ⊙ (1 - B)); each holds
    a :func:`recognition`-style dict. ``boxes``: per image (K, 4) xyxy pixels (``Batch.boxes``); when
    ``box_labels`` is given only boxes of the target class are used. An image without boxes has
    B = ∅: "S:=B" masks everything (o is the score of a black image) and "B&S" too.
    """
    x = check_images(x)
    sal = check_sal(sal, x)
    sp = Space(model, space)
    out = logits(model, x, batch_size)
    t = resolve_target(target, out)
    p = out.softmax(-1).gather(1, t[:, None])[:, 0]
    Bm = box_masks(boxes, x.shape[-2:], labels=box_labels, target=t).to(x)
    masks = {"S:=B": Bm, "S:=I-B": 1 - Bm, "S": sal, "B&S": Bm * sal, "S-B": sal * (1 - Bm)}
    xs = torch.cat([sp.mask(x, m) for m in masks.values()])
    o = _probs(model, xs, t.repeat(len(masks)), batch_size).view(len(masks), -1)
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
def adcc(model, explainer, x, target=None, sal=None, reduce: bool = True, space: str = "pixel",
         batch_size: int | None = None) -> dict:
    """ADCC (Poppi et al. 2021; thesis eq. 1.12–1.14, ViT-ReciproCAM eq. 1), in percent.

    ``explainer(x, target) -> (B,H,W)`` in [0,1] is called on ``x`` (unless ``sal`` is given) and
    again on the explanation map ``x ⊙ S`` for the same target (it *re-explains* the masked image).

    - Coherency = (ρ + 1) / 2 with ρ the Pearson correlation of the two maps (eq. 1.12, rescaled to
      [0,1] as the official code does); a constant map has no correlation: Coherency = 0.
    - Complexity = ‖S‖₁ / (HW) (eq. 1.13, mean absolute value as in the official code).
    - AD = [p - o]₊ / p (eq. 1.10).
    - ADCC = 3 / (1/Coherency + 1/(1 - Complexity) + 1/(1 - AD)) (harmonic mean; 0 when any of
      Coherency, 1 - Complexity, 1 - AD is 0).

    Returns per-image tensors (``reduce=False``) or means of ``AD, AI, Coherency, Complexity, ADCC``.
    ``target=None`` uses the predicted class, as the ADCC reference code does.
    """
    x = check_images(x)
    sp = Space(model, space)
    out = logits(model, x, batch_size)
    t = resolve_target(target, out)
    if sal is None:
        sal = explainer(x, t)
    sal = check_sal(sal, x)
    xm = sp.mask(x, sal)
    sal2 = check_sal(explainer(xm, t), x, name="explainer(x ⊙ S)")
    p = out.softmax(-1).gather(1, t[:, None])[:, 0]
    o = _probs(model, xm, t, batch_size)
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
