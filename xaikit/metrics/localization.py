"""Interpretable object localization (thesis §1.3.3.4, eq. 1.16–1.22) and the pointing game.

Boxes follow ``xaikit.data.base``: per image a (K, 4) tensor ``x0, y0, x1, y1`` in pixels, x1/y1
exclusive; pixel (i, j) is inside when ``x0 <= j + 0.5 < x1`` and ``y0 <= i + 0.5 < y1``.
The predicted box B_p is the bounding box of the largest 8-connected component of
``{S > mean(S)}`` (eq. notation of §1.3.3.4). Images without (target-class) boxes give NaN and are
left out of the means.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from ..core.devices import back
from ..errors import ConfigError, InputError
from ._common import check_bool, check_target, number, reduce_dict

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


def _point_hits(sal: torch.Tensor, bx: list, tolerance: float) -> torch.Tensor:
    """SP per image: argmax pixel within ``tolerance`` px (Euclidean) of a box; NaN without boxes."""
    B, H, W = sal.shape
    idx = sal.reshape(B, -1).argmax(1)
    py, px = (idx // W).float() + 0.5, (idx % W).float() + 0.5
    hits = torch.full((B,), float("nan"))
    for i, b in enumerate(bx):
        if b.numel():
            dx = torch.clamp(torch.maximum(b[:, 0] - px[i], px[i] - b[:, 2]), min=0)
            dy = torch.clamp(torch.maximum(b[:, 1] - py[i], py[i] - b[:, 3]), min=0)
            if tolerance <= 0:  # literally inside (half-open box)
                inside = (px[i] >= b[:, 0]) & (px[i] < b[:, 2]) & (py[i] >= b[:, 1]) & (py[i] < b[:, 3])
            else:
                inside = (dx ** 2 + dy ** 2).sqrt() <= tolerance
            hits[i] = float(inside.any())
    return hits


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


def localization(sal, boxes, probs=None, target=None, *, box_labels=None, tolerance: float = 15,
                 etas=None, deltas=(0.3, 0.5, 0.7), iou_threshold: float | None = None,
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
    NaN. ``target`` is the ground-truth class (B,); None -> argmax of ``probs``. With ``box_labels``
    only boxes of the target class count. A constant map has an empty ``{S > mean}``: no predicted
    box (IoU 0, |B_p| = 0) and its argmax is the first pixel.

    Args:
        sal: (B, H, W) saliency maps in [0, 1], finite, on any device (results come back on it).
        boxes: per image a (K, 4) tensor of xyxy boxes in pixels (``Batch.boxes``); K = 0 allowed.
        probs: (B, C) softmax probabilities of the model on the images (default None: OM and SM are NaN).
        target: the ground-truth class per image (int or (B,) class indices); None = argmax of ``probs``.
        box_labels: per image the (K,) classes of the boxes; only boxes of the target class count
            (default None: every box).
        tolerance: SP's distance in pixels, a finite number >= 0 (default 15, Zhang et al. 2017;
            0 = literally inside, thesis eq. 1.21).
        etas: BA's thresholds η in [0, 1] (default 0, 0.01, .., 0.99, Choe et al. 2020).
        deltas: BA's IoU thresholds δ in [0, 1] (default 0.3, 0.5, 0.7, Choe et al. 2020).
        iou_threshold: None (default: OM/LE with the IoU itself, thesis eq. 1.16–1.17) or a number in
            (0, 1] (0.5: ILSVRC's rule 1[IoU >= 0.5]).
        reduce: True (default): means over the images with boxes; False: per-image tensors plus
            ``BA_hits`` (B, len(etas), len(deltas)).

    Returns:
        ``{"OM", "LE", "F1", "BA", "SP", "EP", "SM"}``.
    """
    home = sal.device if isinstance(sal, torch.Tensor) else torch.device("cpu")
    tolerance = number("tolerance", tolerance, 0.0, hint="pixels from the box (Zhang et al.: 15; 0 = inside)")
    if iou_threshold is not None:
        iou_threshold = number("iou_threshold", iou_threshold, 0.0, strict=True, hint="0.5 is ILSVRC's rule")
        if iou_threshold > 1:
            raise ConfigError(f"iou_threshold={iou_threshold!r} must be in (0, 1] (0.5 is ILSVRC's rule)")
    etas = _unit_values("etas", etas, np.arange(0, 1, 0.01))
    deltas = _unit_values("deltas", deltas, None)
    check_bool("reduce", reduce)
    sal = _check(sal)  # the geometry runs on the CPU (connected components in NumPy)
    B, H, W = sal.shape
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

    ious = torch.zeros(B)
    area = torch.zeros(B)
    ba_hits = torch.zeros(B, len(etas), len(deltas))
    sn = sal.numpy()
    for i in range(B):
        bp = _largest_cc_box(sn[i] > sn[i].mean())
        ious[i] = _iou(bp, bx[i])
        area[i] = 0 if bp is None else (bp[2] - bp[0]) * (bp[3] - bp[1])
        for j, eta in enumerate(etas):
            iou_e = _iou(_largest_cc_box(sn[i] > eta), bx[i])
            ba_hits[i, j] = torch.from_numpy(iou_e >= deltas).float()
    ov = ious if iou_threshold is None else (ious >= iou_threshold).float()
    LE = (1 - ov) * 100
    if probs is not None and target is not None:
        correct = (probs.argmax(1) == target).float()
        OM = (1 - ov * correct) * 100
        pc = probs.gather(1, target[:, None])[:, 0]
        SM = torch.log(torch.clamp(area / (H * W), min=0.05)) - torch.log(pc.clamp(min=1e-12))
    else:
        OM, SM = nan.clone(), nan.clone()
    valid = ba_hits[has]
    if valid.shape[0]:
        best = valid.mean(0).argmax(0)                        # best η per δ (over the batch)
        BA_img = ba_hits[torch.arange(B)[:, None], best[None], torch.arange(len(deltas))[None]].mean(1) * 100
    else:
        BA_img = nan.clone()
    res = {"OM": OM, "LE": LE, "F1": F1 * 100, "BA": BA_img, "SP": _point_hits(sal, bx, tolerance) * 100,
           "EP": P * 100, "SM": SM}
    res = {k: torch.where(has, v, nan) for k, v in res.items()}
    if not reduce:
        res["BA_hits"] = ba_hits
        return back(res, home)  # results go back to the device of the maps
    return reduce_dict(res, True)


def pointing_game(sal, boxes, target, *, box_labels=None, tolerance: float = 15, reduce: bool = True):
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
    hits = _point_hits(sal, bx, tolerance)
    if not reduce:
        return back(hits * 100, home)
    per = {}
    for c in torch.unique(target).tolist():
        h = hits[(target == c) & ~torch.isnan(hits)]
        if h.numel():
            per[int(c)] = float(h.mean() * 100)
    sp = float(np.mean(list(per.values()))) if per else math.nan
    return {"SP": sp, "per_category": per}
