"""Causal metrics: insertion, deletion (Petsiuk et al. 2018; thesis Alg. 1–2), over-all (Group-CAM
§4.3) and AOPC (Samek et al. 2016, as Quantus' ``RegionPerturbation``; thesis §2.7).

:func:`insertion`, :func:`deletion` and :func:`aopc` return one number per image; :func:`insertion_curves`,
:func:`deletion_curves` and :func:`aopc_curves` return the same numbers with the curves behind them, as a
:class:`Curves`.

Every (image, step) pair is one row of a flat work list evaluated in chunks of ``batch_size``:
pixels are ordered once per image (``argsort``), their rank is scattered back to pixel positions,
and the mask of step i is ``rank < count_i`` — one comparison per chunk, no loop over steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..core.conventions import (Preset, Space, check_images, check_maps, choice, chunks, class_score, gaussian_blur,
                                one_of, paper, presets_doc, resolve_preset)
from ..core.devices import runs_on_model
from ..core.targets import resolve_target
from ..errors import ConfigError
from ._common import (batch_size_for, check_finite, check_model, check_substrate, check_target, count, eval_guard,
                      exact, model_logits, nonfinite_rows, number, runner, substrate_values, unchecked_logits)

_STEPS_HINT = ("the curve has steps + 1 points, ceil(H*W / steps) pixels apart; steps >= H*W puts one pixel "
               "per step (the thesis: 224 at 224x224)")


@dataclass(frozen=True)
class Curves:
    """The curves behind a causal metric, and its per-image value.

    From :func:`insertion_curves` / :func:`deletion_curves`: ``auc`` (B,) trapezoidal area under each
    curve (what :func:`insertion` / :func:`deletion` return), ``curves`` (B, n) the target's score after
    each step (n = steps + 1, steps capped at H·W; first point: nothing changed yet), ``counts`` (n,)
    pixels inserted or deleted at each point, ``target`` (B,) the classes scored.

    From :func:`aopc_curves`: ``aopc`` (B,) (what :func:`aopc` returns), ``curves`` (B, L) the drops
    f(x) - f(x_k), ``regions`` (L,) patches perturbed at each point (1..L), ``target`` (B,).

    The fields a metric does not fill are None. Tensors are on the device of the images.
    """

    curves: torch.Tensor
    target: torch.Tensor
    auc: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    aopc: torch.Tensor | None = None
    regions: torch.Tensor | None = None

    def to(self, device) -> "Curves":
        """A copy with every tensor on ``device``."""
        return Curves(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                         for f in fields(self)})


# ---------------------------------------------------------------------------------------- helpers
def pixel_ranks(sal: torch.Tensor) -> torch.Tensor:
    """(B,H,W) -> (B,HW) rank of each pixel in decreasing saliency (ties: raster order)."""
    B = sal.shape[0]
    flat = sal.reshape(B, -1)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(flat.shape[1], device=sal.device).expand(B, -1).contiguous())
    return rank


def step_counts(n_pixels: int, steps: int, pixels_per_step: int | None = None) -> torch.Tensor:
    """Pixels changed after step i = 0..n: ``min(i * p, HW)``. By default p = ``ceil(HW / steps)`` (224 px
    per step at 224x224 with ``steps=224``, as in the thesis), ``steps`` capped at ``n_pixels`` (beyond one
    pixel per step, more steps would only repeat the last point and shift the AUC). With
    ``pixels_per_step`` = p (the ``step`` of RISE's ``CausalMetric``), n = ``ceil(HW / p)`` steps and
    ``steps`` is not used."""
    n_pixels = count("n_pixels", n_pixels)
    if pixels_per_step is not None:
        per = count("pixels_per_step", pixels_per_step, 1, "pixels changed per step (RISE: 224 or 1792)")
        steps = math.ceil(n_pixels / per)
    else:
        steps = min(count("steps", steps, 1, _STEPS_HINT), n_pixels)
        per = math.ceil(n_pixels / steps)
    return (torch.arange(steps + 1) * per).clamp(max=n_pixels)


def auc(curves: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under curves sampled at equally spaced points of [0, 1] (RISE's ``auc``)."""
    n = curves.shape[-1] - 1
    return (curves.sum(-1) - curves[..., 0] / 2 - curves[..., -1] / 2) / n


def _klen(klen) -> int:
    k = count("klen", klen, 1, "the blur kernel size, a positive odd integer (RISE: 11)")
    if k % 2 == 0:
        raise ConfigError(f"klen={klen!r} must be odd (the kernel is centred on the pixel): use {k + 1} or {k - 1}"
                          if k > 1 else f"klen={klen!r} must be a positive odd integer")
    return k


# --------------------------------------------------------------------------------------------- presets
_RISE_SRC = ("eclique/RISE evaluation.py CausalMetric.evaluate with Evaluation.ipynb's settings (gkern(11, 5), "
             "CausalMetric(model, mode, 224 * 8, ...) for the dataset, softmax model)")
_AUTHOR_SRC = ("ftorres11/CA_Stream engine/evaluation.py interpretable_recognition + "
               "engine/interpretable/ins_del.py CausalMetric.evaluate (identical in ftorres11/saliencysense "
               "routines/evaluation/interpretable_evaluation.py)")
_GROUPCAM_SRC = ("wofmanaf/Group-CAM ins_del_gc.py CausalMetric.evaluate at commit 80836e6 / cc85ed2 (2021-06, "
                 "the code of the paper's text)")
_COMMON = {
    "rise": dict(pixels_per_step=1792, kernel="gkern", klen=11, sigma=5.0, blur_padding="zeros",
                 space="normalized", score="softmax", target_rule="pred"),
    "author": dict(pixels_per_step=1792, kernel="gkern", klen=5, sigma=5.0, blur_padding="zeros",
                   space="normalized", score="softmax", target_rule="given"),
    "groupcam": dict(pixels_per_step=1792, kernel="gaussian", klen=51, sigma=50.0, blur_padding="reflect",
                     space="normalized", score="softmax", target_rule="pred"),
}
_NOTES = {
    "rise": ("Blur = conv2d of the normalized tensor with RISE's nearly flat gkern (zero padding), deletion to "
             "torch.zeros_like (the dataset-mean colour), the class predicted on the clean image. The notebook's "
             "single-image demo uses 224 px per step (pixels_per_step=224)."),
    "author": ("gkern(5, 5) (a 5x5 box of 0.04) with padding 2 on the normalized tensor, 1792 px per step "
               "(imsize * 8), deletion to zeros (the mean colour), the labels passed as target "
               "(--lab groundtruth)."),
    "groupcam": ("kornia gaussian_blur2d(51, 50) (reflect border) of the normalized tensor, 1792 px per step "
                 "(224 * 8; the repository's later ins_del_gc.py uses 224 * 2 = 448: pixels_per_step=448), "
                 "deletion to torch.zeros_like (the mean colour; the paper's text says a blurred image and 1 % "
                 "steps), the predicted class."),
}
_PAPER = Preset("thesis Alg. 1-2 and §2.4 (RISE's protocol as the text states it): 224 steps, insertion from "
                "a Gaussian blur (11, σ 5) of the [0, 1] image, deletion to black, the target given")


def _presets(deletion_key: str | None) -> dict:
    out = {"paper": _PAPER}
    for name, src in (("rise", _RISE_SRC), ("author", _AUTHOR_SRC), ("groupcam", _GROUPCAM_SRC)):
        opts = dict(_COMMON[name])
        if deletion_key:
            opts[deletion_key] = "mean"
        out[name] = Preset(src, opts, _NOTES[name])
    return out


#: presets of :func:`insertion` / :func:`insertion_curves`
INSERTION_PRESETS = _presets(None)
#: presets of :func:`deletion` / :func:`deletion_curves`
DELETION_PRESETS = _presets("substrate")
#: presets of :func:`overall`
OVERALL_PRESETS = _presets("deletion_substrate")
TARGET_RULES = ("given", "pred")


# ----------------------------------------------------------------------------------- insertion/deletion
@runs_on_model("x", "sal", "target")
def _causal(model, x, sal, target=None, *, insert: bool, steps, substrate, score, batch_size, space, klen,
            sigma, twin, pixels_per_step=None, kernel="gaussian", blur_padding="zeros",
            target_rule="given") -> dict:
    name = "insertion" if insert else "deletion"
    steps = count("steps", steps, 1, _STEPS_HINT)
    if pixels_per_step is not None:
        pixels_per_step = count("pixels_per_step", pixels_per_step, 1, "pixels changed per step (RISE: 224 or 1792)")
    score = choice("score", score, "score")
    klen = _klen(klen)
    sigma = number("sigma", sigma, 0.0, strict=True, hint="the blur's standard deviation in pixels (RISE: 5)")
    kernel = choice("kernel", kernel, "kernel")
    blur_padding = choice("padding", blur_padding, "blur_padding")
    target_rule = one_of("target_rule", target_rule, TARGET_RULES)
    subst = check_substrate("substrate", substrate)
    model = check_model(model)
    x = check_images(x)
    sal = check_maps(sal, x)
    info = getattr(model, "xaikit", None)
    sp = Space(space, info)
    B, C, H, W = x.shape
    t = check_target(target, B)
    with torch.no_grad(), eval_guard(model):
        run = runner(model, x, twin, name)  # BatchNorm folded, channels-last: the same outputs, faster
        bs = batch_size_for(batch_size, x, run)
        out = model_logits(exact(run), x, bs, f"model(x) on the clean images ({name})")  # fp32: the target
        t = check_target(t, B, out.shape[1])
        t = resolve_target(None if target_rule == "pred" else t, out)
        x_sp = sp.to_space(x)
        # the masks are binary: the space only decides where the blur is computed; the other substrates
        # are values of the normalized input (xaikit.core.conventions.substrate)
        if subst == "blur":
            base = sp.to_input(gaussian_blur(x_sp, klen, sigma, padding=blur_padding, kernel=kernel))
        else:
            base = substrate_values(x, subst, info).expand_as(x)
        # insertion: pixels come from x into the substrate; deletion: from the substrate into x.
        # Selecting between the two images already in the model's input space equals mapping the
        # blend (binary masks, per-channel affine normalization): done once, not per chunk.
        xin_all = sp.to_input(x_sp)
        src, dst = (xin_all, base) if insert else (base, xin_all)
        rank = pixel_ranks(sal)
        counts = step_counts(H * W, steps, pixels_per_step).to(x.device)
        n = counts.numel()
        curves = torch.empty(B * n, device=x.device)
        bad = torch.zeros(B * n, dtype=torch.bool, device=x.device)
        for sl in chunks(B * n, bs, desc=name):  # nothing in the loop waits for the device
            k = torch.arange(sl.start, sl.stop, device=x.device)
            img, step = k // n, k % n
            m = (rank[img] < counts[step, None]).view(-1, 1, H, W)
            xin = torch.where(m, src[img], dst[img])
            lg = unchecked_logits(run(xin), xin.shape[0], f"model(x) on the {name} images")
            bad[sl] = nonfinite_rows(lg)
            curves[sl] = class_score(lg, t[img], score)
        check_finite(bad, lambda rows: f"model(x) on the {name} images (images {sorted({r // n for r in rows})[:6]})")
    curves = curves.view(B, n)
    return {"auc": auc(curves), "curves": curves, "counts": counts, "target": t}


_CAUSAL_ARGS = """
    Args:
        model: the classifier (``nn.Module``), run in eval mode and left as it was found.
        x: (B, 3, H, W) normalized images, on any device (results come back on it).
        sal: (B, H, W) saliency maps in [0, 1] at the input size; pixel ties (a constant map) are broken
            in raster order, so every map gives a defined value (the authors' codes order ties by numpy's
            unstable argsort, reversed).
        target: the class scored per image: None = the class predicted on ``x`` (RISE's and Group-CAM's
            code); an int, or (B,) class indices (the thesis uses the ground-truth labels).
        preset: ``"paper"`` (default: the options' defaults below), ``"rise"``, ``"author"`` or ``"groupcam"``
            (section Presets); an option passed explicitly wins over the preset.
        steps: number of steps, default 224 (thesis Alg. 1–2 and RISE's ``CausalMetric`` at 224x224:
            224 pixels per step). Each step changes ``ceil(H*W / steps)`` pixels; the curve has
            ``steps + 1`` points. A whole number >= 1, capped at H·W: with ``steps >= H*W`` every pixel is
            one step (more steps would only repeat the last point and shift the AUC).
        pixels_per_step: None (default: from ``steps``) or the pixels changed per step, RISE's ``step`` (the
            curve then has ``ceil(H*W / pixels_per_step) + 1`` points and ``steps`` is not used).
        substrate: what the pixels are replaced by or start from, in :mod:`xaikit.core.conventions`'
            vocabulary: ``"blur"`` (a blur of the image, ``klen``/``sigma``/``kernel``/``blur_padding``),
            ``"black"`` (pixel 0, needs ``model.xaikit``), ``"mean"`` (alias ``"zero"``: 0 of the normalized
            input, the dataset-mean colour, RISE's ``torch.zeros_like``), ``"min"`` (the image's minimum) or a
            number (a value of the normalized input). Default {substrate}.
        score: ``"softmax"`` (default, alias ``"prob"``: the target's probability, as RISE and the thesis),
            ``"logit"`` or ``"log_softmax"``.
        batch_size: perturbed images per forward chunk, a whole number >= 1; None (default) picks one from
            the image size (:func:`xaikit.core.conventions.auto_batch`). Does not change the values.
        space: where the blur substrate is computed: ``"pixel"`` (default: the [0, 1] image, as the thesis'
            Opti-CAM code) or ``"normalized"`` (the model's input tensor, as every authors' code: their
            zero padding is then the mean colour). The masks are binary, so other substrates do not depend
            on it. ``"pixel"`` needs ``model.xaikit`` (``xk.models.load``).
        klen: blur kernel size, a positive odd integer (default 11, RISE's ``klen=11``).
        sigma: blur standard deviation in pixels, > 0 (default 5, RISE's ``nsig=5``).
        kernel: the blur kernel: ``"gaussian"`` (default; the sampled, normalized Gaussian) or ``"gkern"``
            (RISE's ``gkern``, scipy's ``gaussian_filter`` of a delta: nearly flat for 11 / 5).
        blur_padding: the blur's border: ``"zeros"`` (default; RISE's ``conv2d``) or ``"reflect"`` (kornia's
            ``gaussian_blur2d``, Group-CAM's code).
        target_rule: ``"given"`` (default: ``target``, None = the prediction) or ``"pred"`` (always the class
            predicted on the clean image, whatever ``target`` says: RISE's and Group-CAM's code).
        twin: run the forwards on :func:`xaikit.models.inference_twin` of the model (default True:
            BatchNorm folded, channels-last, checked against the model on ``x``; the same outputs up to
            float rounding, faster), or on the model itself (False).
"""


def _doc(text: str, substrate: str, returns: str, presets: dict) -> str:
    return (text + _CAUSAL_ARGS.replace("{substrate}", substrate) + "\n    Returns:\n        " + returns + "\n\n"
            + presets_doc(presets))


def _resolved(fname: str, presets: dict, preset, **given) -> dict:
    return resolve_preset(fname, presets, preset, given)[1]


def insertion(model, x, sal, target=None, *, preset: str = "paper", steps: int = paper(224),
              pixels_per_step: int | None = paper(None), substrate=paper("blur"), score: str = paper("softmax"),
              batch_size: int | None = None, space: str = paper("pixel"), klen: int = paper(11),
              sigma: float = paper(5.0), kernel: str = paper("gaussian"), blur_padding: str = paper("zeros"),
              target_rule: str = paper("given"), twin: bool = True) -> torch.Tensor:
    o = _resolved("insertion", INSERTION_PRESETS, preset, steps=steps, pixels_per_step=pixels_per_step,
                  substrate=substrate, score=score, space=space, klen=klen, sigma=sigma, kernel=kernel,
                  blur_padding=blur_padding, target_rule=target_rule)
    return _causal(model, x, sal, target, insert=True, batch_size=batch_size, twin=twin, **o)["auc"]


def insertion_curves(model, x, sal, target=None, *, preset: str = "paper", steps: int = paper(224),
                     pixels_per_step: int | None = paper(None), substrate=paper("blur"),
                     score: str = paper("softmax"), batch_size: int | None = None, space: str = paper("pixel"),
                     klen: int = paper(11), sigma: float = paper(5.0), kernel: str = paper("gaussian"),
                     blur_padding: str = paper("zeros"), target_rule: str = paper("given"),
                     twin: bool = True) -> Curves:
    o = _resolved("insertion_curves", INSERTION_PRESETS, preset, steps=steps, pixels_per_step=pixels_per_step,
                  substrate=substrate, score=score, space=space, klen=klen, sigma=sigma, kernel=kernel,
                  blur_padding=blur_padding, target_rule=target_rule)
    return Curves(**_causal(model, x, sal, target, insert=True, batch_size=batch_size, twin=twin, **o))


def deletion(model, x, sal, target=None, *, preset: str = "paper", steps: int = paper(224),
             pixels_per_step: int | None = paper(None), substrate=paper("black"), score: str = paper("softmax"),
             batch_size: int | None = None, space: str = paper("pixel"), klen: int = paper(11),
             sigma: float = paper(5.0), kernel: str = paper("gaussian"), blur_padding: str = paper("zeros"),
             target_rule: str = paper("given"), twin: bool = True) -> torch.Tensor:
    o = _resolved("deletion", DELETION_PRESETS, preset, steps=steps, pixels_per_step=pixels_per_step,
                  substrate=substrate, score=score, space=space, klen=klen, sigma=sigma, kernel=kernel,
                  blur_padding=blur_padding, target_rule=target_rule)
    return _causal(model, x, sal, target, insert=False, batch_size=batch_size, twin=twin, **o)["auc"]


def deletion_curves(model, x, sal, target=None, *, preset: str = "paper", steps: int = paper(224),
                    pixels_per_step: int | None = paper(None), substrate=paper("black"),
                    score: str = paper("softmax"), batch_size: int | None = None, space: str = paper("pixel"),
                    klen: int = paper(11), sigma: float = paper(5.0), kernel: str = paper("gaussian"),
                    blur_padding: str = paper("zeros"), target_rule: str = paper("given"),
                    twin: bool = True) -> Curves:
    o = _resolved("deletion_curves", DELETION_PRESETS, preset, steps=steps, pixels_per_step=pixels_per_step,
                  substrate=substrate, score=score, space=space, klen=klen, sigma=sigma, kernel=kernel,
                  blur_padding=blur_padding, target_rule=target_rule)
    return Curves(**_causal(model, x, sal, target, insert=False, batch_size=batch_size, twin=twin, **o))


_INS = """Insertion AUC per image (thesis Alg. 1): start from the ``substrate`` (by default a Gaussian blur
    of the image, RISE's kernel 11 / σ 5) and put back the pixels of ``x`` by decreasing saliency, ``steps``
    steps (curve of ``steps + 1`` points, first = substrate, last = x). Higher is better.
"""
_DEL = """Deletion AUC per image (thesis Alg. 2): replace the pixels of ``x`` by the ``substrate`` (black by
    default, as the thesis' text; every authors' code uses ``torch.zeros_like`` of the normalized tensor,
    ``"mean"``; ``"blur"`` as Group-CAM's text) by decreasing saliency. Lower is better.
"""
insertion.__doc__ = _doc(_INS, '``"blur"``', "(B,) AUCs (in [0, 1] for ``softmax``), on the device of ``x``. "
                         "The curves: :func:`insertion_curves`.", INSERTION_PRESETS)
insertion_curves.__doc__ = _doc("Insertion curves per image, and their AUC (:func:`insertion`, thesis Alg. 1).\n",
                                '``"blur"``', ":class:`Curves` with ``auc`` (B,), ``curves`` (B, steps + 1), "
                                "``counts`` (steps + 1,) pixels inserted, ``target`` (B,).", INSERTION_PRESETS)
deletion.__doc__ = _doc(_DEL, '``"black"``', "(B,) AUCs (in [0, 1] for ``softmax``), on the device of ``x``. "
                        "The curves: :func:`deletion_curves`.", DELETION_PRESETS)
deletion_curves.__doc__ = _doc("Deletion curves per image, and their AUC (:func:`deletion`, thesis Alg. 2).\n",
                               '``"black"``', ":class:`Curves` with ``auc`` (B,), ``curves`` (B, steps + 1), "
                               "``counts`` (steps + 1,) pixels deleted, ``target`` (B,).", DELETION_PRESETS)


@runs_on_model("x", "sal", "target")
def overall(model, x, sal, target=None, *, preset: str = "paper", steps: int = paper(224),
            pixels_per_step: int | None = paper(None), insertion_substrate=paper("blur"),
            deletion_substrate=paper("black"), score: str = paper("softmax"), batch_size: int | None = None,
            space: str = paper("pixel"), klen: int = paper(11), sigma: float = paper(5.0),
            kernel: str = paper("gaussian"), blur_padding: str = paper("zeros"),
            target_rule: str = paper("given"), twin: bool = True) -> torch.Tensor:
    """Group-CAM's over-all score per image: AUC(insertion) - AUC(deletion) (§4.3). Higher is better.

    Args:
        model, x, sal, target: as :func:`insertion`.
        preset: ``"paper"`` (default), ``"rise"``, ``"author"`` or ``"groupcam"`` (as :func:`insertion`; the
            deletion substrate becomes ``"mean"`` in all three).
        steps, pixels_per_step: the steps of both curves (default 224 steps; see :func:`insertion`).
        insertion_substrate: the insertion's start (default ``"blur"``, RISE's and Group-CAM's code).
        deletion_substrate: the deletion's replacement (default ``"black"``, the thesis; Group-CAM's text
            blurs: ``"blur"``; its code uses ``"mean"``).
        score, batch_size, space, klen, sigma, kernel, blur_padding, target_rule, twin: as :func:`insertion`,
            for both curves.

    Returns:
        (B,) differences of AUCs, on the device of ``x``.

    """
    o = _resolved("overall", OVERALL_PRESETS, preset, steps=steps, pixels_per_step=pixels_per_step,
                  insertion_substrate=insertion_substrate, deletion_substrate=deletion_substrate, score=score,
                  space=space, klen=klen, sigma=sigma, kernel=kernel, blur_padding=blur_padding,
                  target_rule=target_rule)
    ins, dele = o.pop("insertion_substrate"), o.pop("deletion_substrate")
    kw = dict(batch_size=batch_size, twin=twin, **o)
    return (_causal(model, x, sal, target, insert=True, substrate=ins, **kw)["auc"]
            - _causal(model, x, sal, target, insert=False, substrate=dele, **kw)["auc"])


overall.__doc__ += presets_doc(OVERALL_PRESETS)


# ------------------------------------------------------------------------------------------------ AOPC
@runs_on_model("x", "sal", "target")
def _aopc(model, x, sal, target=None, *, patch_size, regions, baseline, score, batch_size, twin) -> dict:
    ps = count("patch_size", patch_size, 1, "the side of the square patches in pixels (thesis: 14)")
    regions = count("regions", regions, 1, "the number of patches perturbed, one curve point each (thesis: 10)")
    base_kind = check_substrate("baseline", baseline)
    score = choice("score", score, "score")
    model = check_model(model)
    x = check_images(x)
    sal = check_maps(sal, x)
    B, C, H, W = x.shape
    t = check_target(target, B)
    with torch.no_grad(), eval_guard(model):
        run = runner(model, x, twin, "aopc")
        bs = batch_size_for(batch_size, x, run)
        out = model_logits(exact(run), x, bs, "model(x) on the clean images (aopc)")
        t = resolve_target(check_target(t, B, out.shape[1]), out)
        f0 = class_score(out, t, score)
        gh, gw = math.ceil(H / ps), math.ceil(W / ps)
        pad = (0, gw * ps - W, 0, gh * ps - H)
        sums = F.avg_pool2d(F.pad(sal[:, None], pad), ps)[:, 0].reshape(B, -1)  # ∝ patch sums
        L = min(regions, gh * gw)
        prank = pixel_ranks(sums.view(B, gh, gw))                                 # patch ranks (B, gh*gw)
        base = substrate_values(x, base_kind, getattr(model, "xaikit", None), "baseline")
        base = base.expand(B, C, *base.shape[-2:])
        ks = torch.arange(1, L + 1, device=x.device)
        drops = torch.empty(B * L, device=x.device)
        bad = torch.zeros(B * L, dtype=torch.bool, device=x.device)
        for sl in chunks(B * L, bs, desc="aopc"):  # nothing in the loop waits for the device
            i = torch.arange(sl.start, sl.stop, device=x.device)
            img, k = i // L, ks[i % L]
            pm = (prank[img] < k[:, None]).view(-1, 1, gh, gw).to(x.dtype)
            m = pm.repeat_interleave(ps, 2).repeat_interleave(ps, 3)[..., :H, :W]
            xin = m * base[img] + (1 - m) * x[img]
            lg = unchecked_logits(run(xin), xin.shape[0], "model(x) on the AOPC images")
            bad[sl] = nonfinite_rows(lg)
            drops[sl] = f0[img] - class_score(lg, t[img], score)
        check_finite(bad, lambda rows: f"model(x) on the AOPC images (images {sorted({r // L for r in rows})[:6]})")
    drops = drops.view(B, L)
    return {"aopc": drops.sum(1) / (L + 1), "curves": drops, "regions": ks, "target": t}


_AOPC_ARGS = """
    Args:
        model: the classifier (``nn.Module``), run in eval mode and left as it was found.
        x: (B, 3, H, W) normalized images, on any device (results come back on it).
        sal: (B, H, W) saliency maps in [0, 1] at the input size.
        target: None = the class predicted on ``x``; an int or (B,) class indices.
        patch_size: side of the square patches in pixels, a whole number >= 1 (default 14, thesis §2.7 with
            Quantus' ``RegionPerturbation(patch_size=14)``). Border patches of sizes not divisible by it are
            partial (ranked by the sum over the pixels inside).
        regions: patches perturbed, one point of the curve each, a whole number >= 1 (default 10, Quantus'
            ``regions_evaluation=10``); capped at the number of patches.
        baseline: the value patches are set to, in :mod:`xaikit.core.conventions`' substrate vocabulary:
            ``"min"`` (default: the image's minimum in the normalized input, Quantus'
            ``perturb_baseline="black"``), ``"zero"`` (= ``"mean"``: 0 of the normalized input), ``"black"``
            (pixel 0, needs ``model.xaikit``), ``"blur"`` or a number (a value of the normalized input).
        score: ``"softmax"`` (default, alias ``"prob"``: Quantus' ``softmax=True``), ``"logit"`` or
            ``"log_softmax"``.
        batch_size: perturbed images per forward chunk (>= 1); None picks one from the image size.
        twin: run the forwards on :func:`xaikit.models.inference_twin` of the model (default True) or on the
            model itself.
"""


def aopc(model, x, sal, target=None, *, patch_size: int = 14, regions: int = 10, baseline="min",
         score: str = "softmax", batch_size: int | None = None, twin: bool = True) -> torch.Tensor:
    return _aopc(model, x, sal, target, patch_size=patch_size, regions=regions, baseline=baseline, score=score,
                 batch_size=batch_size, twin=twin)["aopc"]


def aopc_curves(model, x, sal, target=None, *, patch_size: int = 14, regions: int = 10, baseline="min",
                score: str = "softmax", batch_size: int | None = None, twin: bool = True) -> Curves:
    return Curves(**_aopc(model, x, sal, target, patch_size=patch_size, regions=regions, baseline=baseline,
                          score=score, batch_size=batch_size, twin=twin))


aopc.__doc__ = (
    """Area over the MoRF perturbation curve (Samek et al. 2016), per image. Higher is better.

    Non-overlapping ``patch_size`` patches are ranked by their summed saliency; the first k patches
    (k = 1..``regions``) are set to ``baseline`` in the normalized input. With drops
    d_k = f(x) - f(x_k) (Quantus' curve), AOPC = Σ_{k=0..L} d_k / (L + 1), d_0 = 0 (Samek eq. 12).
""" + _AOPC_ARGS + """
    Returns:
        (B,) AOPC values, on the device of ``x``. The curves: :func:`aopc_curves`.
""")
aopc_curves.__doc__ = (
    """AOPC's perturbation curves per image (the drops f(x) - f(x_k), k = 1..L), and AOPC (:func:`aopc`).
""" + _AOPC_ARGS + """
    Returns:
        :class:`Curves` with ``aopc`` (B,), ``curves`` (B, L) drops, ``regions`` (L,) = 1..L, ``target`` (B,).
""")
