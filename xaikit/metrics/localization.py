"""Interpretable object localization (thesis §1.3.3.4, eq. 1.16–1.22) and the pointing game.

Boxes follow ``xaikit.data.base``: per image a (K, 4) tensor ``x0, y0, x1, y1`` in pixels, x1/y1
exclusive; pixel (i, j) is inside when ``x0 <= j + 0.5 < x1`` and ``y0 <= i + 0.5 < y1``.
The predicted box B_p is the bounding box of the largest 8-connected component of
``{S > mean(S)}`` (eq. notation of §1.3.3.4). Images without (target-class) boxes give NaN and are
left out of the means. ``preset="casme"`` reproduces the thesis author's scorers (:data:`LOCALIZATION_PRESETS`).
"""
from __future__ import annotations

import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..core.conventions import Preset, check_images, one_of, paper, presets_doc, resolve_preset
from ..core.devices import back, model_device, to_device
from ..errors import ConfigError, InputError
from ._common import (batch_size_for, check_bool, check_model, check_target, eval_guard, model_logits, number,
                      reduce_dict, runner)

#: localization's presets: the thesis' text (xaikit's defaults) and the scorers that produced its tables
LOCALIZATION_PRESETS = {
    "paper": Preset("thesis §1.3.3.4 eq. 1.16-1.22 as written: the box of the largest 8-connected component of "
                    "{S > mean}, IoU values, F1 on the union of the boxes, SP = the first argmax within 15 px, "
                    "EP = precision, SM with p_c of the whole image"),
    "casme": Preset("the thesis author's scorers: CASME's casme/tasks/imagenet/score_bboxes.py score, get_loc_scores, "
                    "compute_f1 and compute_saliency_metric with casme/model_basics.py binarize_mask and "
                    "get_rectangular_mask (copied in ftorres11/saliencysense lib/score_bboxes.py and used by "
                    "routines/evaluation/localization_evaluation.py), and saliencysense evaluation/pointingGame.py "
                    "standard_point_game and energy_point_game",
                    {"box_rule": "casme", "iou_threshold": 0.5, "iou_strict": True, "f1_boxes": "max",
                     "sm_input": "crop", "sp_ties": "any", "sp_rule": "saliencysense", "ep_rule": "saliencysense"},
                    "Box of the largest 4-connected component whose end is its last pixel (one row and column "
                    "short), OM/LE with 1[IoU > 0.5], F1 per box (max, 1e-6 terms), SM on the predicted box's crop "
                    "resized bicubically to the input size (needs model= and x=), SP a hit when any tied maximum "
                    "lies in a box with inclusive bounds and the row index compared with the box's x range (as "
                    "the code does), EP on the same transposed boxes. BA (Choe et al.'s wsoleval) is not "
                    "reproduced: the paper's rule."),
}
BOX_RULES = ("largest8", "casme")
SP_RULES = ("distance", "saliencysense")

_STRUCT8 = np.ones((3, 3), dtype=bool)


def _select_boxes(boxes, labels, target, B):
    if not isinstance(boxes, (list, tuple)) or len(boxes) != B:
        raise InputError(f"boxes must be a list of {B} tensors (K, 4) xyxy in pixels (Batch.boxes), "
                         f"got {type(boxes).__name__} of length {len(boxes) if hasattr(boxes, '__len__') else '?'}.")
    out = []
    for i, b in enumerate(boxes):
        b = torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4).cpu()
        if labels is not None and target is not None:
            lab = torch.as_tensor(labels[i]).reshape(-1).cpu()
            if lab.numel() != b.shape[0]:
                raise InputError(f"image {i}: {b.shape[0]} boxes but {lab.numel()} box labels.")
            b = b[lab == int(target[i])]
        out.append(b)
    return out


def box_masks(boxes, size, labels=None, target=None) -> torch.Tensor:
    """Union of each image's boxes rasterized at ``size`` = (H, W) -> (B, H, W) bool.

    With ``labels`` (``Batch.box_labels``) and ``target`` (B,), only boxes of the target class count.
    """
    H, W = int(size[0]), int(size[1])
    bx = _select_boxes(boxes, labels, target, len(boxes))
    ys = torch.arange(H, dtype=torch.float32) + 0.5
    xs = torch.arange(W, dtype=torch.float32) + 0.5
    out = torch.zeros(len(bx), H, W, dtype=torch.bool)
    for i, b in enumerate(bx):
        if b.numel():
            iny = (ys[None] >= b[:, 1:2]) & (ys[None] < b[:, 3:4])        # (K, H)
            inx = (xs[None] >= b[:, 0:1]) & (xs[None] < b[:, 2:3])        # (K, W)
            out[i] = (iny[:, :, None] & inx[:, None, :]).any(0)
    return out


def _largest_cc_box(mask: np.ndarray):
    """xyxy (exclusive) box of the largest 8-connected component of a bool mask, None if empty."""
    lab, n = ndimage.label(mask, structure=_STRUCT8)
    if n == 0:
        return None
    sizes = np.bincount(lab.ravel())[1:]
    sl = ndimage.find_objects((lab == (int(np.argmax(sizes)) + 1)).astype(np.int32))[0]
    return (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)


def _casme_box(mask: np.ndarray):
    """CASME's ``get_rectangular_mask`` (casme/model_basics.py): the largest 4-connected component (scipy's
    default structure, largest by pixel count; an empty mask selects the background, i.e. the whole image),
    then ``get_bounding_box``: start at the first pixel, *end at the last pixel's index*, used as an exclusive
    end (the box misses its last row and column). xyxy."""
    m = mask.astype(np.float64)
    lab, _ = ndimage.label(m)
    largest = int(np.argmax(np.bincount(lab.reshape(-1), weights=m.reshape(-1))))
    comp = lab == largest
    xs, ys = comp.any(0), comp.any(1)
    return (int(np.argmax(xs)), int(np.argmax(ys)), int(np.argmax(np.cumsum(xs))), int(np.argmax(np.cumsum(ys))))


def _iou(box, gts: torch.Tensor) -> float:
    """Max IoU of one xyxy box with (K,4) boxes; 0 when either side is empty."""
    if box is None or gts.numel() == 0:
        return 0.0
    b = torch.tensor(box, dtype=torch.float32)
    ix = (torch.minimum(b[2], gts[:, 2]) - torch.maximum(b[0], gts[:, 0])).clamp(min=0)
    iy = (torch.minimum(b[3], gts[:, 3]) - torch.maximum(b[1], gts[:, 1])).clamp(min=0)
    inter = ix * iy
    area = (b[2] - b[0]) * (b[3] - b[1]) + (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1]) - inter
    return float((inter / area.clamp(min=1e-12)).max())


def _point_hits(sal: torch.Tensor, bx: list, tolerance: float, ties: str = "first",
                rule: str = "distance") -> torch.Tensor:
    """SP per image; NaN without boxes. The maximum: the first argmax (``ties="first"``) or any pixel equal
    to the maximum (``"any"``). ``rule="distance"``: its centre within ``tolerance`` px (Euclidean) of a
    box (half-open box when 0); ``"saliencysense"``: pointingGame.py's test, inclusive bounds with the row
    index against the box's x range and the column against its y range."""
    B, H, W = sal.shape
    first = sal.reshape(B, -1).argmax(1)
    hits = torch.full((B,), float("nan"))
    for i, b in enumerate(bx):
        if not b.numel():
            continue
        if ties == "any":
            rr, cc = torch.nonzero(sal[i] == sal[i].max(), as_tuple=True)
        else:
            rr, cc = first[i:i + 1] // W, first[i:i + 1] % W
        rr, cc = rr.float()[:, None], cc.float()[:, None]                          # (P, 1) against (K,)
        if rule == "saliencysense":
            inside = (rr >= b[:, 0]) & (rr <= b[:, 2]) & (cc >= b[:, 1]) & (cc <= b[:, 3])
        else:
            py, px = rr + 0.5, cc + 0.5
            if tolerance <= 0:  # literally inside (half-open box)
                inside = (px >= b[:, 0]) & (px < b[:, 2]) & (py >= b[:, 1]) & (py < b[:, 3])
            else:
                dx = torch.clamp(torch.maximum(b[:, 0] - px, px - b[:, 2]), min=0)
                dy = torch.clamp(torch.maximum(b[:, 1] - py, py - b[:, 3]), min=0)
                inside = (dx ** 2 + dy ** 2).sqrt() <= tolerance
        hits[i] = float(inside.any())
    return hits


def _transposed_union(b: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """pointingGame.py's ``energy_point_game`` box mask: ``empty[box.xslice, box.yslice] = 1`` (rows from the
    x range, columns from the y range, integer slices)."""
    m = torch.zeros(H, W)
    for x0, y0, x1, y1 in b.tolist():
        m[int(x0):int(x1), int(y0):int(y1)] = 1
    return m


def _bicubic_crop(x: torch.Tensor, box, size) -> torch.Tensor:
    """The (3, h, w) crop of the normalized image ``x`` at the xyxy ``box``, resized to ``size`` by bicubic
    interpolation (a = -0.75, half-pixel centres, as ``cv2.resize(INTER_CUBIC)``); zeros when empty."""
    x0, y0, x1, y1 = (int(v) for v in box)
    crop = x[:, max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)]
    if (x1 - x0) * (y1 - y0) <= 0 or crop.shape[-1] == 0 or crop.shape[-2] == 0:
        return torch.zeros(x.shape[0], *size, dtype=x.dtype, device=x.device)
    return F.interpolate(crop[None], size=tuple(size), mode="bicubic", align_corners=False)[0]


def _check(sal):
    if not isinstance(sal, torch.Tensor) or sal.dim() not in (3, 4) or (sal.dim() == 4 and sal.shape[1] != 1):
        shape = tuple(sal.shape) if isinstance(sal, torch.Tensor) else type(sal).__name__
        raise InputError(f"sal must be a tensor (B, H, W) in [0, 1], got {shape}.")
    sal = sal[:, 0] if sal.dim() == 4 else sal
    sal = sal.detach().float().cpu()
    if not bool(torch.isfinite(sal).all()):
        bad = (~torch.isfinite(sal)).flatten(1).any(1).nonzero().flatten().tolist()
        raise InputError(f"sal contains NaN or infinite values (images {bad}); fix the saliency method or use "
                         "torch.nan_to_num(sal).")
    return sal


def _unit_values(name: str, values, default) -> np.ndarray:
    v = default if values is None else np.asarray(values, dtype=float).reshape(-1)
    if v.size == 0 or not np.isfinite(v).all() or (v < 0).any() or (v > 1).any():
        raise ConfigError(f"{name}={values!r} must be a non-empty list of numbers in [0, 1]")
    return v


def localization(sal, boxes, probs=None, target=None, *, preset: str = "paper", box_labels=None,
                 tolerance: float = paper(15), etas=None, deltas=(0.3, 0.5, 0.7),
                 iou_threshold: float | None = paper(None), iou_strict: bool = paper(False),
                 box_rule: str = paper("largest8"), f1_boxes: str = paper("union"), sp_ties: str = paper("first"),
                 sp_rule: str = paper("distance"), ep_rule: str = paper("union"), sm_input: str = paper("image"),
                 model=None, x=None, batch_size: int | None = None, twin: bool = True,
                 reduce: bool = True) -> dict:
    """OM, LE, F1, BA, SP, EP (percent) and SM of saliency maps against ground-truth boxes.

    - OM = 1 - max_B IoU(B, B_p)·1[c_p = c] (eq. 1.16), LE = 1 - max_B IoU(B, B_p) (eq. 1.17); with
      ``iou_threshold=0.5`` the IoU is replaced by 1[IoU ≥ 0.5] (ILSVRC's official rule). Lower is better.
    - F1 = 2PR/(P+R) with P = Σ_U S / Σ S (eq. 1.18) and R = Σ_U S / |U| (eq. 1.19); EP = P.
      An all-zero map gives P = R = F1 = 0.
    - BA: for each η in ``etas`` (default 0, 0.01, .., 0.99) and δ in ``deltas``, the hit
      1[max_B IoU(B_p^η, B) ≥ δ] (eq. 1.20); mean over images, max over η, mean over δ
      (Choe et al. 2020). Per image (``reduce=False``) at the η chosen on the whole batch.
    - SP: argmax pixel within ``tolerance`` px of a box (Zhang et al. 2017 use 15 px;
      ``tolerance=0`` is eq. 1.21 literally). Higher is better.
    - SM = log max(0.05, |B_p|/(hw)) - log p^c (eq. 1.22, unbounded, lower is better).

    ``probs`` (B, C) softmax outputs are needed for OM (c_p) and SM (p^c); without them those are
    NaN (unless ``model`` and ``x`` are given: then they are computed). ``target`` is the ground-truth class
    (B,); None -> argmax of ``probs``. With ``box_labels`` only boxes of the target class count. A constant
    map has an empty ``{S > mean}``: no predicted box (IoU 0, |B_p| = 0) and its argmax is the first pixel.

    Args:
        sal: (B, H, W) saliency maps in [0, 1], finite, on any device (results come back on it).
        boxes: per image a (K, 4) tensor of xyxy boxes in pixels (``Batch.boxes``); K = 0 allowed.
        probs: (B, C) softmax probabilities of the model on the images (default None: OM and SM are NaN,
            or computed from ``model`` and ``x`` when given).
        target: the ground-truth class per image (int or (B,) class indices); None = argmax of ``probs``.
        preset: ``"paper"`` (default: the options' defaults below) or ``"casme"`` (section Presets); an
            option passed explicitly wins over the preset.
        box_labels: per image the (K,) classes of the boxes; only boxes of the target class count
            (default None: every box).
        tolerance: SP's distance in pixels, a finite number >= 0 (default 15, Zhang et al. 2017;
            0 = literally inside, thesis eq. 1.21).
        etas: BA's thresholds η in [0, 1] (default 0, 0.01, .., 0.99, Choe et al. 2020).
        deltas: BA's IoU thresholds δ in [0, 1] (default 0.3, 0.5, 0.7, Choe et al. 2020).
        iou_threshold: None (default: OM/LE with the IoU itself, thesis eq. 1.16–1.17) or a number in
            (0, 1] (0.5: ILSVRC's rule 1[IoU >= 0.5]).
        iou_strict: with ``iou_threshold``, the hit is IoU > threshold (CASME's ``iou > 0.5``) instead of >=;
            default False.
        box_rule: the predicted box B_p: ``"largest8"`` (default; the bounding box of the largest
            8-connected component of {S > mean}) or ``"casme"`` (CASME's ``get_rectangular_mask``: the largest
            4-connected component, the box ending at its last pixel's index, used as exclusive; an empty
            {S > mean} gives the whole image minus its last row and column).
        f1_boxes: F1 against ``"union"`` (default; the union U of the boxes, eq. 1.18-1.19) or ``"max"`` (each
            box alone, the best one; CASME's ``compute_f1`` with its 1e-6 terms).
        sp_ties: SP's maximum: ``"first"`` (default; the first argmax in raster order) or ``"any"`` (a hit when
            any pixel equal to the maximum hits; saliencysense's ``np.where(S == S.max())``).
        sp_rule: ``"distance"`` (default; the pixel centre within ``tolerance``) or ``"saliencysense"``
            (pointingGame.py ``standard_point_game``: inclusive bounds, the row index against the box's x
            range and the column against its y range, no tolerance).
        ep_rule: EP on ``"union"`` (default; = P) or ``"saliencysense"`` (``energy_point_game``: the boxes'
            mask with rows from their x range and columns from their y range, Σ S M / (eps + Σ S)).
        sm_input: p^c of SM from ``"image"`` (default; ``probs``, eq. 1.22) or ``"crop"`` (CASME's
            ``compute_saliency_metric``: the model's probability on the normalized image cropped to B_p and
            resized bicubically to the input size, zeros for an empty box; needs ``model`` and ``x``).
        model: the classifier, for ``sm_input="crop"`` (and ``probs`` when not given); default None.
        x: (B, 3, H, W) the normalized images of the maps, with ``model``; default None.
        batch_size: crops per forward chunk (>= 1); None picks one from the image size.
        twin: the crops' forwards on :func:`xaikit.models.inference_twin` (default True) or on the model.
        reduce: True (default): means over the images with boxes; False: per-image tensors plus
            ``BA_hits`` (B, len(etas), len(deltas)).

    Returns:
        ``{"OM", "LE", "F1", "BA", "SP", "EP", "SM"}``.

    """
    preset, o = resolve_preset("localization", LOCALIZATION_PRESETS, preset, dict(
        tolerance=tolerance, iou_threshold=iou_threshold, iou_strict=iou_strict, box_rule=box_rule,
        f1_boxes=f1_boxes, sp_ties=sp_ties, sp_rule=sp_rule, ep_rule=ep_rule, sm_input=sm_input))
    home = sal.device if isinstance(sal, torch.Tensor) else torch.device("cpu")
    tolerance = number("tolerance", o["tolerance"], 0.0, hint="pixels from the box (Zhang et al.: 15; 0 = inside)")
    iou_threshold = o["iou_threshold"]
    if iou_threshold is not None:
        iou_threshold = number("iou_threshold", iou_threshold, 0.0, strict=True, hint="0.5 is ILSVRC's rule")
        if iou_threshold > 1:
            raise ConfigError(f"iou_threshold={iou_threshold!r} must be in (0, 1] (0.5 is ILSVRC's rule)")
    iou_strict = check_bool("iou_strict", o["iou_strict"])
    box_rule = one_of("box_rule", o["box_rule"], BOX_RULES)
    f1_boxes = one_of("f1_boxes", o["f1_boxes"], ("union", "max"))
    sp_ties = one_of("sp_ties", o["sp_ties"], ("first", "any"))
    sp_rule = one_of("sp_rule", o["sp_rule"], SP_RULES)
    ep_rule = one_of("ep_rule", o["ep_rule"], ("union", "saliencysense"))
    sm_input = one_of("sm_input", o["sm_input"], ("image", "crop"))
    etas = _unit_values("etas", etas, np.arange(0, 1, 0.01))
    deltas = _unit_values("deltas", deltas, None)
    check_bool("reduce", reduce)
    sal = _check(sal)  # the geometry runs on the CPU (connected components in NumPy)
    B, H, W = sal.shape
    if model is not None or x is not None or sm_input == "crop":
        if model is None or x is None:
            raise InputError("localization: model= and x= go together (sm_input='crop' needs both: SM scores the "
                             "crop of the predicted box)")
        model = check_model(model)
        x = check_images(x)
        if x.shape[0] != B or tuple(x.shape[-2:]) != (H, W):
            raise InputError(f"x has shape {tuple(x.shape)} but the maps are {(B, H, W)}")
    if probs is None and model is not None:
        with torch.no_grad(), eval_guard(model):
            xm = to_device(x, model_device(model))
            run = runner(model, xm, twin, "localization")
            probs = model_logits(run, xm, batch_size_for(batch_size, xm, run), "model(x) (localization)").softmax(-1)
    if probs is not None:
        probs = torch.as_tensor(probs).detach().float().cpu()
        if probs.dim() != 2 or probs.shape[0] != B:
            raise InputError(f"probs must be (B, C) = ({B}, C) softmax probabilities, got "
                             f"{tuple(probs.shape)}; pass the class labels as target=.")
        if not bool(torch.isfinite(probs).all()):
            raise InputError("probs contains NaN or infinite values; check the model's outputs")
    target = check_target(target, B, probs.shape[1] if probs is not None else None)
    if target is None and probs is not None:
        target = probs.argmax(1)
    if target is not None:
        target = target.cpu()
    if box_labels is not None and target is None:
        raise InputError("box_labels needs target (or probs) to pick the target-class boxes.")
    bx = _select_boxes(boxes, box_labels, target, B)
    U = box_masks(bx, (H, W)).float()
    has = torch.tensor([b.numel() > 0 for b in bx])
    nan = torch.full((B,), float("nan"))

    s_sum = sal.flatten(1).sum(1)
    inU = (sal * U).flatten(1).sum(1)
    P = torch.where(s_sum > 0, inU / s_sum.clamp(min=1e-12), torch.zeros(B))
    R = inU / U.flatten(1).sum(1).clamp(min=1)
    F1 = torch.where(P + R > 0, 2 * P * R / (P + R).clamp(min=1e-12), torch.zeros(B))
    if f1_boxes == "max":
        F1 = torch.zeros(B)
        for i, b in enumerate(bx):
            best = 0.0
            for box in b:
                area = float((box[2] - box[0]) * (box[3] - box[1]))
                if area == 0:
                    continue
                inside = float((sal[i] * box_masks([box[None]], (H, W))[0]).sum())
                prec = inside / (float(s_sum[i]) + 1e-6)
                rec = inside / area
                best = max(best, 2 * prec * rec / (prec + rec + 1e-6))
            F1[i] = best
    EP = P
    if ep_rule == "saliencysense":
        EP = torch.stack([(sal[i] * _transposed_union(b, H, W)).sum() / (sys.float_info.epsilon + s_sum[i])
                          for i, b in enumerate(bx)])

    ious = torch.zeros(B)
    area = torch.zeros(B)
    pred_boxes = []
    ba_hits = torch.zeros(B, len(etas), len(deltas))
    sn = sal.numpy()
    for i in range(B):
        bin_ = sn[i] > sn[i].mean()
        bp = _casme_box(bin_) if box_rule == "casme" else _largest_cc_box(bin_)
        pred_boxes.append(bp)
        ious[i] = _iou(bp, bx[i])
        area[i] = 0 if bp is None else (bp[2] - bp[0]) * (bp[3] - bp[1])
        for j, eta in enumerate(etas):
            iou_e = _iou(_largest_cc_box(sn[i] > eta), bx[i])
            ba_hits[i, j] = torch.from_numpy(iou_e >= deltas).float()
    if iou_threshold is None:
        ov = ious
    else:
        ov = ((ious > iou_threshold) if iou_strict else (ious >= iou_threshold)).float()
    LE = (1 - ov) * 100
    if probs is not None and target is not None:
        correct = (probs.argmax(1) == target).float()
        OM = (1 - ov * correct) * 100
        if sm_input == "crop":
            crops = torch.stack([_bicubic_crop(x[i].detach().cpu(), (0, 0, 0, 0) if bp is None else bp, (H, W))
                                 for i, bp in enumerate(pred_boxes)])
            with torch.no_grad(), eval_guard(model):
                cm = to_device(crops.to(x.dtype), model_device(model))
                run = runner(model, cm, twin, "localization crops")
                pc = model_logits(run, cm, batch_size_for(batch_size, cm, run),
                                  "model(crop of B_p) (localization SM)").softmax(-1).cpu()
            pc = pc.gather(1, target[:, None])[:, 0]
        else:
            pc = probs.gather(1, target[:, None])[:, 0]
        SM = torch.log(torch.clamp(area / (H * W), min=0.05, max=1.0)) - torch.log(pc.clamp(min=1e-12))
    else:
        OM, SM = nan.clone(), nan.clone()
    valid = ba_hits[has]
    if valid.shape[0]:
        best = valid.mean(0).argmax(0)                        # best η per δ (over the batch)
        BA_img = ba_hits[torch.arange(B)[:, None], best[None], torch.arange(len(deltas))[None]].mean(1) * 100
    else:
        BA_img = nan.clone()
    res = {"OM": OM, "LE": LE, "F1": F1 * 100, "BA": BA_img,
           "SP": _point_hits(sal, bx, tolerance, sp_ties, sp_rule) * 100, "EP": EP * 100, "SM": SM}
    res = {k: torch.where(has, v, nan) for k, v in res.items()}
    if not reduce:
        res["BA_hits"] = ba_hits
        return back(res, home)  # results go back to the device of the maps
    return reduce_dict(res, True)


localization.__doc__ += presets_doc(LOCALIZATION_PRESETS)


def pointing_game(sal, boxes, target, *, box_labels=None, tolerance: float = 15, sp_ties: str = "first",
                  sp_rule: str = "distance", reduce: bool = True):
    """Pointing game accuracy per category (Group-CAM §4.4): hits / (hits + misses) for each class,
    then the mean over classes (percent). ``sal[i]`` explains class ``target[i]``. Images without boxes
    are skipped.

    Args:
        sal: (B, H, W) saliency maps, finite, on any device (per-image results come back on it).
        boxes: per image a (K, 4) tensor of xyxy boxes in pixels (``Batch.boxes``).
        target: the class each map explains: an int or (B,) class indices (required).
        box_labels: per image the (K,) classes of the boxes; only boxes of the target class count
            (default None: every box).
        tolerance: the hit distance in pixels, a finite number >= 0 (default 15, Zhang et al. 2017 and
            Group-CAM's evaluation; 0 = literally inside).
        sp_ties: ``"first"`` (default; the first argmax) or ``"any"`` (any pixel equal to the maximum), as
            :func:`localization`.
        sp_rule: ``"distance"`` (default) or ``"saliencysense"``, as :func:`localization`.
        reduce: True (default): the per-category summary; False: per-image hits.

    Returns:
        ``{"SP", "per_category": {c: acc}}`` (percent), or (B,) per-image hits (100, 0, NaN without boxes).
    """
    home = sal.device if isinstance(sal, torch.Tensor) else torch.device("cpu")
    tolerance = number("tolerance", tolerance, 0.0, hint="pixels from the box (Zhang et al.: 15; 0 = inside)")
    check_bool("reduce", reduce)
    sal = _check(sal)
    B = sal.shape[0]
    if target is None:
        raise InputError("pointing_game needs target: the class each map explains (an int or (B,) classes)")
    target = check_target(target, B).cpu()
    bx = _select_boxes(boxes, box_labels, target, B)
    hits = _point_hits(sal, bx, tolerance, one_of("sp_ties", sp_ties, ("first", "any")),
                       one_of("sp_rule", sp_rule, SP_RULES))
    if not reduce:
        return back(hits * 100, home)
    per = {}
    for c in torch.unique(target).tolist():
        h = hits[(target == c) & ~torch.isnan(hits)]
        if h.numel():
            per[int(c)] = float(h.mean() * 100)
    sp = float(np.mean(list(per.values()))) if per else math.nan
    return {"SP": sp, "per_category": per}
