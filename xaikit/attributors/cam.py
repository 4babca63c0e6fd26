"""The CAM family as ONE computation: ``S = h(sum_k w_k^c A^k)`` (thesis eq. 1.3).

:func:`combine` is the only place where feature maps are combined; every method supplies its
weights, either per channel ``(B, K)`` or element-wise ``(B, K, h, w)`` (HiRes-CAM, Layer-CAM).
Gradient methods need one forward and one backward for the whole batch.

Conventions and options (defaults follow the thesis; the grad-cam package is reproduced by them too):

* ``score="logit"``: the class score is the logit ``y_c`` (thesis notation, and grad-cam's
  ``ClassifierOutputTarget``); ``"softmax"`` / ``"log_softmax"`` are the alternatives
  (:data:`xaikit.core.conventions.SCORES`).
* ``relu=True``: ``h = ReLU`` (Grad-CAM and followers); CAM uses ``h = identity`` (thesis §1.3.2).
* ``explain`` normalizes per image by min-max *after* ``h``; grad-cam does the same
  (``scale_cam_image``, with ``+1e-7`` in the denominator), so the maps agree up to that epsilon.
  grad-cam upsamples with ``cv2.resize`` (bilinear, half-pixel centres) = our
  ``upsample(..., align_corners=False)``.
* ``explain(...).extras["weights"]``: the weights ``w`` of every CAM method ((B, K), or (B, K, h, w)).

Methods here: ``cam, gradcam, gradcampp, xgradcam`` (= ``axiomcam``), ``hirescam, layercam,
fakecam, groupcam``; ``scorecam, ablationcam`` live in :mod:`.score`, ``opticam`` in :mod:`.opticam`.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from ..core.conventions import (Preset, Space, check_count, choice, class_score, chunks, gaussian_blur, one_of, paper,
                                presets_doc, resolve_preset)
from ..core.targets import check_target, resolve_target
from ..errors import LayerError
from ..models.hooks import model_guard
from ..models.zoo import get_layer
from .base import Attributor, Explanation, check_bool, check_number, check_odd, register, upsample


def combine(weights: torch.Tensor, A: torch.Tensor, relu: bool = True) -> torch.Tensor:
    """``h(sum_k w_k A^k)`` (thesis eq. 1.3): weights (B, K) or element-wise (B, K, h, w);
    A (B, K, h, w) -> (B, h, w).  ``h`` = ReLU when ``relu`` else identity."""
    if weights.dim() == 2:
        s = torch.einsum("bk,bkhw->bhw", weights.to(A.dtype), A)
    elif weights.dim() == 4:
        s = (weights.to(A.dtype) * A).sum(1)
    else:
        raise ValueError(f"weights must be (B, K) or (B, K, h, w), got {tuple(weights.shape)}")
    return s.clamp_min(0) if relu else s


def channel_minmax(m: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Min-max normalize each (h, w) map of (N, K, h, w) into [0, 1] (eq. 1.7).

    ``eps=0``: a constant map becomes 0 (the thesis' ``n(0) := 0``); grad-cam's Score-CAM uses
    ``(m - min) / (max - min + 1e-8)``, selected with ``eps=1e-8``.
    """
    flat = m.flatten(2)
    lo = flat.min(-1, keepdim=True).values
    hi = flat.max(-1, keepdim=True).values
    rng = hi - lo
    if eps > 0:
        out = (flat - lo) / (rng + eps)
    else:
        out = torch.where(rng > 0, (flat - lo) / rng.clamp_min(1e-30), torch.zeros_like(flat))
    return out.view_as(m)


class CAMFamily(Attributor):
    """Base of the CAM family: captures A (and dA when ``needs_grads``) at the layer in one
    forward/backward for the batch, asks :meth:`weights` and applies :func:`combine`.

    Args:
        relu: ``h`` = ReLU (True) or the identity (False) on the weighted sum (thesis eq. 1.3).
        score: the class score differentiated or measured: ``"logit"`` y_c (thesis, grad-cam),
            ``"softmax"`` p_c or ``"log_softmax"`` (aliases ``"prob"``, ``"log_prob"``).
        batch_size: forward passes per chunk (methods that run perturbed inputs); None: from the image size.
        reshape: tokens -> (B, C, h, w) for transformer layers (ViTs: ``model.xaikit.reshape``).
    """

    needs_grads = True

    def __init__(self, model: nn.Module, layer=None, *, relu: bool = True, score: str = "logit",
                 batch_size: int | None = None, reshape: Callable | None = None):
        super().__init__(model, layer, batch_size=batch_size, reshape=reshape)
        self._set_options(relu=check_bool("relu", relu), score=choice("score", score, "score"))

    # -- the one forward (and backward) at the layer --------------------------------------
    def features(self, x, target=None):
        """(A, G, logits, target) for a normalized batch ``x`` (any device): activations (B, K, h, w), their
        gradients (or None for gradient-free methods), clean logits and the (B,) classes, on the model's
        device. The model runs in eval mode and is left as it was."""
        x = self._prepare(x)
        t = check_target(target, x.shape[0], self.num_classes, x.device)
        with model_guard(self.model):
            A, G, logits, t, _ = self._features(x, t)
        return A, G, logits, t

    def _features(self, x, target):
        """:meth:`features` of a prepared batch, plus the raw (un-reshaped) layer output of the clean pass."""
        with self.capture(grad=self.needs_grads) as cap:
            if self.needs_grads:
                with torch.enable_grad():
                    logits = self.model(x)
                    target = resolve_target(target, logits)
                    G = cap.gradients(class_score(logits, target, self.score))
                A = cap.activations.detach()
                raw = cap.raw.detach()
            else:
                with torch.inference_mode():
                    logits = self.model(x)
                    target = resolve_target(target, logits)
                    A = cap.activations.clone()
                    raw = cap.raw.clone()
                G = None
        # clones outside inference mode: normal tensors that autograd may use later (Opti-CAM)
        return A, (G.detach() if G is not None else None), logits.detach().clone(), target.clone(), raw

    def weights(self, A, G, x, logits, target, extras: dict | None = None) -> torch.Tensor:  # pragma: no cover
        """The weights w (B, K) or (B, K, h, w) of eq. 1.3; a method may record details in ``extras``."""
        raise NotImplementedError

    def _attribute(self, x, target):
        A, G, logits, target, raw = self._features(x, target)
        extras: dict = {}
        with torch.no_grad():
            w = self._weights(A, G, x, logits, target, extras, raw)
            M = self._maps_combined(A, extras)
            if getattr(self, "upsample_first", False):
                # the authors' codes that combine upsampled maps: h and the min-max act at the input size
                s = combine(w, M, relu=False)
                if tuple(s.shape[-2:]) != tuple(x.shape[-2:]):  # bilinear upsampling is linear: = sum of up(A^k)
                    s = upsample(s, x.shape[-2:], align_corners=bool(getattr(self, "align_corners", False)))
                maps = s.clamp_min(0) if self.relu else s
            else:
                maps = combine(w, M, relu=self.relu)
        return Explanation(maps, target, logits, {"weights": w, **extras})

    def _weights(self, A, G, x, logits, target, extras, raw):
        return self.weights(A, G, x, logits, target, extras)

    def _maps_combined(self, A, extras):
        """The maps the weights multiply: the layer's activations (Group-CAM: its group masks)."""
        return A


@register("cam")
class CAM(CAMFamily):
    """CAM (Zhou et al. 2016): ``w_k^c`` = classifier weights of class c, ``h`` = identity.

    Defined at the layer pooled by GAP before a linear classifier (``model.xaikit.feature_layer``, the
    default layer); then ``mean_ij S + b_c = y_c`` exactly (the logit decomposition). One forward pass, no
    gradient.

    Args:
        relu: apply ``h`` = ReLU to the weighted sum; default False (CAM's ``h`` is the identity, thesis
            §1.3.2, Zhou et al.'s code).
        batch_size: accepted for a uniform interface; CAM runs one forward pass for the batch.
        reshape: tokens -> (B, C, h, w) for transformer layers.

    ``explain(...).extras``: ``"weights"`` (B, K), the classifier rows of the targets.
    """

    needs_grads = False

    def __init__(self, model: nn.Module, layer=None, *, relu: bool = False, batch_size: int | None = None,
                 reshape: Callable | None = None):
        Attributor.__init__(self, model, layer, batch_size=batch_size, reshape=reshape)
        self._set_options(relu=check_bool("relu", relu))

    def default_layer(self):
        return self.info.feature_layer or self.info.default_layer

    def weights(self, A, G, x, logits, target, extras=None):
        if not self.info.classifier:
            raise LayerError("CAM needs a linear classifier after global average pooling; this model "
                             "has no known classifier (model.xaikit.classifier). Use gradcam instead.")
        fc = get_layer(self.model, self.info.classifier)
        if isinstance(fc, nn.Sequential):  # torchvision MobileNet/EfficientNet: Sequential(Dropout, Linear)
            mods = list(fc)
            lin = [i for i, m in enumerate(mods) if isinstance(m, nn.Linear)]
            # the linear layer counts as the GAP classifier only when everything around it is the
            # identity at inference (dropout, flatten): a VGG's or ConvNeXt's head is not
            if len(lin) == 1 and all(isinstance(m, (nn.Dropout, nn.Flatten, nn.Identity)) for i, m in enumerate(mods)
                                     if i != lin[0]):
                fc = mods[lin[0]]
        if not isinstance(fc, nn.Linear) or fc.in_features != A.shape[1]:
            raise LayerError(f"CAM needs the layer pooled by GAP into the linear classifier "
                             f"({self.info.feature_layer!r}); layer {self.layer_name!r} has {A.shape[1]} "
                             f"channels, the classifier {getattr(fc, 'in_features', '?')} inputs. Use gradcam "
                             "for other layers.")
        return fc.weight.detach()[target].to(A.dtype)


@register("gradcam", "grad_cam")
class GradCAM(CAMFamily):
    """Grad-CAM (Selvaraju et al., ICCV 2017): ``w_k^c = GAP(dy_c / dA^k)`` (thesis eq. 1.4), h = ReLU.

    Equal to the grad-cam package's ``GradCAM`` (``tests/test_attributors_cam.py``).

    Args:
        relu: ``h`` = ReLU on the weighted sum; default True (the paper's eq. 2).
        score: the class score differentiated: ``"logit"`` (default; the paper and grad-cam's
            ``ClassifierOutputTarget``), ``"softmax"`` or ``"log_softmax"``.
        batch_size: accepted for a uniform interface; one forward and one backward for the batch.
        reshape: tokens -> (B, C, h, w) for transformer layers (ViTs: ``model.xaikit.reshape``).

    ``explain(...).extras``: ``"weights"`` (B, K).
    """

    def weights(self, A, G, x, logits, target, extras=None):
        return G.mean((2, 3))


@register("gradcampp", "gradcam++", "gradcam_pp")
class GradCAMPlusPlus(CAMFamily):
    """Grad-CAM++ (Chattopadhyay et al., WACV 2018; thesis eq. 1.5) with the exponential closed form.

    The higher derivatives take the paper's closed form (eq. 19): ``alpha = g^2 / (2 g^2 + sum_ab A g^3)``,
    ``w = sum_ij alpha * ReLU(g)``; ``alpha = 0`` where ``g = 0`` (as in grad-cam's ``GradCAMPlusPlus``).

    Args:
        relu: ``h`` = ReLU on the weighted sum; default True.
        score: the class score differentiated: ``"logit"`` (default, as grad-cam), ``"softmax"`` or
            ``"log_softmax"``.
        batch_size: accepted for a uniform interface; one forward and one backward for the batch.
        reshape: tokens -> (B, C, h, w) for transformer layers.

    ``explain(...).extras``: ``"weights"`` (B, K).
    """

    def weights(self, A, G, x, logits, target, extras=None):
        g2 = G * G
        g3 = g2 * G
        denom = 2 * g2 + A.sum((2, 3), keepdim=True) * g3 + 1e-6
        alpha = torch.where(G != 0, g2 / denom, torch.zeros_like(G))
        return (alpha * G.clamp_min(0)).sum((2, 3))


@register("xgradcam", "axiomcam")
class XGradCAM(CAMFamily):
    """XGrad-CAM / Axiom-CAM (Fu et al., BMVC 2020; thesis eq. 1.8): ``w = sum_ij A g / sum_ij A``.

    Args:
        relu: ``h`` = ReLU on the weighted sum; default True.
        score: the class score differentiated: ``"logit"`` (default, as grad-cam), ``"softmax"`` or
            ``"log_softmax"``.
        batch_size: accepted for a uniform interface; one forward and one backward for the batch.
        reshape: tokens -> (B, C, h, w) for transformer layers.

    ``explain(...).extras``: ``"weights"`` (B, K).
    """

    def weights(self, A, G, x, logits, target, extras=None):
        return (A * G).sum((2, 3)) / (A.sum((2, 3)) + 1e-7)


@register("hirescam")
class HiResCAM(CAMFamily):
    """HiRes-CAM (Draelos & Carin 2020): element-wise weights ``w_kij = dy_c / dA_ij^k``.

    Args:
        relu: ``h`` = ReLU on the weighted sum; default True (as grad-cam's ``HiResCAM``).
        score: the class score differentiated: ``"logit"`` (default), ``"softmax"`` or ``"log_softmax"``.
        batch_size: accepted for a uniform interface; one forward and one backward for the batch.
        reshape: tokens -> (B, C, h, w) for transformer layers.

    ``explain(...).extras``: ``"weights"`` (B, K, h, w).
    """

    def weights(self, A, G, x, logits, target, extras=None):
        return G


@register("layercam")
class LayerCAM(CAMFamily):
    """Layer-CAM (Jiang et al., TIP 2021): element-wise weights ``ReLU(dy_c / dA_ij^k)``.

    Args:
        relu: ``h`` = ReLU on the weighted sum; default True.
        score: the class score differentiated: ``"logit"`` (default), ``"softmax"`` or ``"log_softmax"``.
        batch_size: accepted for a uniform interface; one forward and one backward for the batch.
        reshape: tokens -> (B, C, h, w) for transformer layers.

    ``explain(...).extras``: ``"weights"`` (B, K, h, w).
    """

    def weights(self, A, G, x, logits, target, extras=None):
        return G.clamp_min(0)


@register("fakecam")
class FakeCAM(Attributor):
    """Fake-CAM (Poppi et al. 2021): uniform map at input resolution with the top-left pixel 0.

    A sanity check of the recognition metrics (its AD and AG are about 0). Needs no model evaluation
    but one forward pass when the target is None (to find the predicted class).

    Args:
        batch_size: accepted for a uniform interface; unused.

    ``explain(...).extras``: empty.
    """

    uses_layer = False

    def __init__(self, model: nn.Module, layer=None, *, batch_size: int | None = None):
        super().__init__(model, None, batch_size=batch_size)

    def _attribute(self, x, target):
        logits = None
        if target is None:
            with torch.inference_mode():
                logits = self.model(x)
            target = logits.argmax(1)
            logits = logits.clone()
        s = torch.ones(x.shape[0], x.shape[-2], x.shape[-1], device=x.device)
        s[:, 0, 0] = 0.0
        return Explanation(s, target.clone(), logits, {})


#: Group-CAM's presets: the paper's text (Algorithm 1, eq. 1-7; xaikit's defaults) and the official code
GROUPCAM_PRESETS = {
    "paper": Preset("Zhang et al. 2021 (arXiv:2103.13859) Algorithm 1 and eq. 1-7: de-noise, min-max at the "
                    "layer's resolution, then upsample"),
    "official": Preset("wofmanaf/Group-CAM cam/groupcam.py GroupCAM.forward at commit cc85ed2 (2021-06-22; the "
                       "version of the paper's text, with the theta = 70 de-noising)",
                       {"upsample_first": True, "grouping": "chunk"},
                       "Each de-noised group map is upsampled to the input size before its min-max, and the "
                       "gain-weighted sum, its ReLU and normalization happen there; channels are split with "
                       "torch.chunk. Explain the predicted class (target=None), as the code does."),
    "official_latest": Preset("wofmanaf/Group-CAM cam/groupcam.py GroupCAM.forward at HEAD ffd807b (2021-08; "
                              "no de-noising)",
                              {"upsample_first": True, "grouping": "chunk", "theta": None, "gain_relu": True,
                               "combine_maps": "raw"},
                              "No de-noising, ReLU on the gains, the sum weights the upsampled maps before their "
                              "min-max (not the masks M'_l)."),
}
GROUPINGS = ("split", "chunk")
COMBINED_MAPS = ("normalized", "raw")


@register("groupcam")
class GroupCAM(CAMFamily):
    """Group-CAM (Zhang et al. 2021, arXiv:2103.13859, Algorithm 1): Grad-CAM groups weighted by confidence gains.

    Grad-CAM weights (eq. 1) split the K channels into ``groups`` = G groups (``torch.tensor_split``,
    sizes differ by at most 1 when G does not divide K); ``M_l = ReLU(sum_{k in l} w_k A^k)`` (eq. 2),
    de-noised below the ``theta``-th percentile (eq. 3), min-max normalized (eq. 4) and upsampled to mask
    the input over a blurred baseline (eq. 5); weights are the confidence gains
    ``alpha_l = F_c(I'_l) - F_c(blur)`` (eq. 6); ``S = ReLU(sum_l alpha_l M'_l)`` (eq. 7), combined at layer
    resolution (bilinear upsampling is linear, so it commutes with the sum).

    With G=1 and theta=None: ``M'_0`` is the min-max normalized Grad-CAM map, hence Group-CAM's
    normalized map equals Grad-CAM's when ``alpha_0 > 0`` and is 0 otherwise.

    Args:
        preset: ``"paper"`` (default: the options' defaults below), ``"official"`` or ``"official_latest"``
            (section Presets); an option passed explicitly wins over the preset.
        groups: number of channel groups G, >= 1; default 32 (the paper's). A layer with fewer channels gets
            one channel per group.
        theta: de-noising percentile in [0, 100): values of each group map at or below it are zeroed
            (eq. 3); default 70 (the paper's); None disables de-noising.
        blur_ksize: Gaussian kernel size of the baseline, odd >= 1; default 51 (the official code's kornia
            ``gaussian_blur2d(51, 50)``, reflect padding, shrunk to fit small images).
        blur_sigma: Gaussian standard deviation of the baseline, > 0; default 50.0 (official code).
        gain_score: score of the confidence gains: ``"softmax"`` (default, the official code), ``"logit"``
            or ``"log_softmax"``.
        mask_space: where masks blend image and baseline: ``"normalized"`` (default; the model's input
            tensor, as the official code; alias ``"input"``) or ``"pixel"`` (the [0, 1] image).
        upsample_first: upsample each group map to the input size before its min-max (eq. 4) and combine
            there (the official code); default False (min-max at the layer's resolution, as eq. 4 is written).
            ``explain`` maps are then at the input size.
        grouping: how channels are split: ``"split"`` (default; ``torch.tensor_split``, exactly G groups) or
            ``"chunk"`` (``torch.chunk`` as the official code: groups of ceil(K/G), possibly fewer than G).
        gain_relu: ReLU on the gains alpha_l (the repository's latest code); default False (eq. 6).
        combine_maps: what the gains weight: ``"normalized"`` (default; the masks M'_l, eq. 7) or ``"raw"``
            (the de-noised maps M_l before min-max, the repository's latest code).
        relu: ``h`` = ReLU on the gain-weighted sum; default True (eq. 7).
        score: the class score differentiated for the Grad-CAM weights: ``"logit"`` (default).
        twin: run the G masked and the blurred copies on the model's inference twin (default True;
            :mod:`xaikit.models.fast`), at the forward precision setting (under bf16 maps keep Pearson >= 0.999
            to the fp32 ones, ``tests/test_precision.py``); False: on the model itself, in fp32.
        batch_size: forward passes per chunk of masked images; None: from the image size.
        reshape: tokens -> (B, C, h, w) for transformer layers.

    ``explain(...).extras``: ``"masks"`` (B, G, h, w) the normalized group masks M'_l (at the input size with
    ``upsample_first``), ``"gains"`` (B, G) the confidence gains alpha_l (= ``"weights"``), ``"baseline_score"``
    (B,) F_c(blur); with ``combine_maps="raw"`` also ``"raw_maps"``, the maps the gains weight.

{presets}"""

    def __init__(self, model: nn.Module, layer=None, *, preset: str = "paper", groups: int = 32,
                 theta: float | None = paper(70.0), blur_ksize: int = 51, blur_sigma: float = 50.0,
                 gain_score: str = "softmax", mask_space: str = "normalized", upsample_first: bool = paper(False),
                 grouping: str = paper("split"), gain_relu: bool = paper(False),
                 combine_maps: str = paper("normalized"), relu: bool = True, score: str = "logit",
                 twin: bool = True, batch_size: int | None = None, reshape: Callable | None = None):
        preset, o = resolve_preset("groupcam", GROUPCAM_PRESETS, preset, dict(
            theta=theta, upsample_first=upsample_first, grouping=grouping, gain_relu=gain_relu,
            combine_maps=combine_maps))
        super().__init__(model, layer, relu=relu, score=score, batch_size=batch_size, reshape=reshape)
        theta = o["theta"]
        if theta is not None:
            theta = check_number("theta", theta, 0, 100, high_open=True)
        space = choice("space", mask_space, "mask_space")
        self._space = Space(space, self.info)
        self._set_options(preset=preset, groups=check_count("groups", groups, 1), theta=theta,
                          blur_ksize=check_odd("blur_ksize", blur_ksize),
                          blur_sigma=check_number("blur_sigma", blur_sigma, 0, low_open=True),
                          gain_score=choice("score", gain_score, "gain_score"), mask_space=space,
                          upsample_first=check_bool("upsample_first", o["upsample_first"]),
                          grouping=one_of("grouping", o["grouping"], GROUPINGS),
                          gain_relu=check_bool("gain_relu", o["gain_relu"]),
                          combine_maps=one_of("combine_maps", o["combine_maps"], COMBINED_MAPS),
                          twin=check_bool("twin", twin))

    def group_maps(self, A, G) -> torch.Tensor:
        """(B, G, h, w) de-noised group maps M_l (eq. 1-3), before the min-max."""
        K = A.shape[1]
        wA = G.mean((2, 3))[:, :, None, None] * A
        ng = min(int(self.groups), K)  # a layer with fewer channels than groups: one channel per group
        parts = torch.chunk(wA, ng, dim=1) if self.grouping == "chunk" else torch.tensor_split(wA, ng, dim=1)
        M = torch.stack([p.sum(1) for p in parts], 1).clamp_min(0)
        if self.theta is not None and self.theta > 0:
            flat = M.flatten(2)
            thr = torch.quantile(flat, float(self.theta) / 100.0, dim=-1, keepdim=True)
            M = torch.where(flat > thr, flat, torch.zeros_like(flat)).view_as(M)
        return M

    def group_masks(self, A, G, size=None) -> torch.Tensor:
        """(B, G, h, w) normalized group masks M'_l (eq. 1-4); with ``upsample_first`` and the input ``size``
        given, at that size (upsampled before the min-max)."""
        M = self.group_maps(A, G)
        if self.upsample_first and size is not None:
            M = upsample(M, size)
        return channel_minmax(M)  # in [0, 1]

    def weights(self, A, G, x, logits, target, extras=None):
        extras = {} if extras is None else extras
        B = A.shape[0]
        M = self.group_maps(A, G)
        if self.upsample_first:
            M = upsample(M, x.shape[-2:])
        Mn = channel_minmax(M)  # (B, G, h, w) in [0, 1] (the input size with upsample_first)
        Gn = Mn.shape[1]
        f = self.fast(x)
        with torch.inference_mode():
            base = gaussian_blur(x, self.blur_ksize, self.blur_sigma, padding="reflect")
            s_base = class_score(f(base), target, self.gain_score)  # (B,)
            bidx = torch.arange(B, device=x.device).repeat_interleave(Gn)
            flatM = Mn.reshape(B * Gn, 1, *Mn.shape[-2:])
            scores = []
            for sl in chunks(B * Gn, self.batch_size):
                b = bidx[sl]
                m = upsample(flatM[sl], x.shape[-2:])
                scores.append(class_score(f(self._space.blend(x[b], base[b], m)), target[b], self.gain_score))
            alpha = torch.cat(scores).view(B, Gn) - s_base[:, None]
        alpha, s_base = alpha.clone(), s_base.clone()  # normal tensors, outside inference mode
        if self.gain_relu:
            alpha = alpha.clamp_min(0)
        extras.update(masks=Mn, gains=alpha, baseline_score=s_base)
        if self.combine_maps == "raw":
            extras["raw_maps"] = M.clone()
        return alpha

    def _maps_combined(self, A, extras):
        return extras["raw_maps"] if self.combine_maps == "raw" else extras["masks"]


GroupCAM.__doc__ = GroupCAM.__doc__.replace("{presets}", presets_doc(GROUPCAM_PRESETS))
