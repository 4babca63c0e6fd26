"""The CAM family as ONE computation: ``S = h(sum_k w_k^c A^k)`` (thesis eq. 1.3).

:func:`combine` is the only place where feature maps are combined; every method supplies its
weights, either per channel ``(B, K)`` or element-wise ``(B, K, h, w)`` (HiRes-CAM, Layer-CAM).
Gradient methods need one forward and one backward for the whole batch.

Conventions and options (defaults follow the thesis; the grad-cam package is reproduced by them too):

* ``score="logit"``: the class score is the logit ``y_c`` (thesis notation, and grad-cam's
  ``ClassifierOutputTarget``); ``"softmax"`` / ``"log_softmax"`` are the alternatives.
* ``relu=True``: ``h = ReLU`` (Grad-CAM and followers); CAM uses ``h = identity`` (thesis §1.3.2).
* ``explain`` normalizes per image by min-max *after* ``h``; grad-cam does the same
  (``scale_cam_image``, with ``+1e-7`` in the denominator), so the maps agree up to that epsilon.
  grad-cam upsamples with ``cv2.resize`` (bilinear, half-pixel centres) = our
  ``upsample(..., align_corners=False)``.

Methods here: ``cam, gradcam, gradcampp, xgradcam`` (= ``axiomcam``), ``hirescam, layercam,
fakecam, groupcam``; ``scorecam, ablationcam`` live in :mod:`.score`, ``opticam`` in :mod:`.opticam`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, LayerError
from .base import (Attributor, check_input, check_target, class_score, normalize_maps, register, resolve_target,
                   upsample)


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


def mask_input(x: torch.Tensor, m: torch.Tensor, info=None, space: str = "input") -> torch.Tensor:
    """Mask a normalized batch with maps ``m`` in [0, 1] (broadcastable to (B, 1, H, W)).

    ``space="input"``: ``x * m`` on the normalized tensor, as in the Score-CAM and Opti-CAM code and
    grad-cam (masked pixels become the dataset mean); ``"pixel"``: mask the [0, 1] image and
    normalize again (masked pixels become black).
    """
    if m.dim() == 3:
        m = m[:, None]
    if space == "input":
        return x * m
    if space == "pixel":
        if info is None:
            raise ConfigError("mask space 'pixel' needs the model's mean/std (model.xaikit)")
        return info.normalize(info.denormalize(x) * m)
    raise ConfigError(f"mask space {space!r}: use 'input' (normalized tensor) or 'pixel' ([0, 1] image)")


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
    forward/backward for the batch, asks :meth:`weights` and applies :func:`combine`."""

    needs_grads = True
    defaults = {"relu": True, "score": "logit"}

    def features(self, x, target):
        """(A, G, logits, target): activations (B, K, h, w), their gradients (or None) and logits, on the
        model's device (``x`` may be anywhere)."""
        x = check_input(x, self.model)
        if target is not None:
            target = check_target(target, x.shape[0], self.num_classes, x.device)
        with self.capture(grad=self.needs_grads) as cap:
            if self.needs_grads:
                with torch.enable_grad():
                    logits = self.model(x)
                    target = resolve_target(target, logits)
                    G = cap.gradients(class_score(logits, target, self.score))
                A = cap.activations.detach()
            else:
                with torch.inference_mode():
                    logits = self.model(x)
                    target = resolve_target(target, logits)
                    A = cap.activations.clone()
                    self._raw = cap.raw
                G = None
        # clones outside inference mode: normal tensors that autograd may use later (Opti-CAM)
        return A, (G.detach() if G is not None else None), logits.detach().clone(), target.clone()

    def weights(self, A, G, x, logits, target) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _attribute(self, x, target):
        A, G, logits, target = self.features(x, target)
        self.last_target, self.last_logits = target, logits
        with torch.no_grad():
            w = self.weights(A, G, x, logits, target)
            self.last_weights = w
            return combine(w, A, relu=self.relu)


@register("cam")
class CAM(CAMFamily):
    """CAM (Zhou et al. 2016): ``w_k^c`` = classifier weights of class c, ``h`` = identity.

    Defined at the layer pooled by GAP before a linear classifier (``model.xaikit.feature_layer``);
    then ``mean_ij S + b_c = y_c`` exactly (the logit decomposition).
    """

    needs_grads = False
    defaults = {"relu": False, "score": "logit"}

    def default_layer(self):
        return self.info.feature_layer or self.info.default_layer

    def weights(self, A, G, x, logits, target):
        from ..models.zoo import get_layer

        if not self.info.classifier:
            raise LayerError("CAM needs a linear classifier after global average pooling; this model "
                             "has no known classifier (model.xaikit.classifier). Use gradcam instead.")
        fc = get_layer(self.model, self.info.classifier)
        if not isinstance(fc, nn.Linear) or fc.in_features != A.shape[1]:
            raise LayerError(f"CAM needs the layer pooled by GAP into the linear classifier "
                             f"({self.info.feature_layer!r}); layer {self.layer_name!r} has {A.shape[1]} "
                             f"channels, the classifier {getattr(fc, 'in_features', '?')} inputs. Use gradcam "
                             "for other layers.")
        return fc.weight.detach()[target].to(A.dtype)


@register("gradcam", "grad_cam")
class GradCAM(CAMFamily):
    """Grad-CAM (Selvaraju et al.): ``w_k^c = GAP(dy_c / dA^k)`` (thesis eq. 1.4), h = ReLU."""

    def weights(self, A, G, x, logits, target):
        return G.mean((2, 3))


@register("gradcampp", "gradcam++", "gradcam_pp")
class GradCAMPlusPlus(CAMFamily):
    """Grad-CAM++ (Chattopadhyay et al., thesis eq. 1.5) with the exponential closed form of the
    higher derivatives (paper eq. 19): ``alpha = g^2 / (2 g^2 + sum_ab A g^3)``,
    ``w = sum_ij alpha * ReLU(g)``; ``alpha = 0`` where ``g = 0`` (as in grad-cam)."""

    def weights(self, A, G, x, logits, target):
        g2 = G * G
        g3 = g2 * G
        denom = 2 * g2 + A.sum((2, 3), keepdim=True) * g3 + 1e-6
        alpha = torch.where(G != 0, g2 / denom, torch.zeros_like(G))
        return (alpha * G.clamp_min(0)).sum((2, 3))


@register("xgradcam", "axiomcam")
class XGradCAM(CAMFamily):
    """XGrad-CAM / Axiom-CAM (Fu et al., thesis eq. 1.8): ``w = sum_ij A g / sum_ij A``."""

    def weights(self, A, G, x, logits, target):
        return (A * G).sum((2, 3)) / (A.sum((2, 3)) + 1e-7)


@register("hirescam")
class HiResCAM(CAMFamily):
    """HiRes-CAM (Draelos & Carin): element-wise weights ``w_kij = dy_c / dA_ij^k``."""

    def weights(self, A, G, x, logits, target):
        return G


@register("layercam")
class LayerCAM(CAMFamily):
    """Layer-CAM (Jiang et al.): element-wise weights ``ReLU(dy_c / dA_ij^k)``."""

    def weights(self, A, G, x, logits, target):
        return G.clamp_min(0)


@register("fakecam")
class FakeCAM(Attributor):
    """Fake-CAM (Poppi et al. 2021): uniform map at input resolution with the top-left pixel 0.
    Needs no model evaluation; the target is still validated (None -> predicted class)."""

    uses_layer = False
    defaults = {}

    def _attribute(self, x, target):
        if target is None:
            with torch.inference_mode():
                self.last_logits = self.model(x)
            target = self.last_logits.argmax(1)
        self.last_target = target
        s = torch.ones(x.shape[0], x.shape[-2], x.shape[-1], device=x.device)
        s[:, 0, 0] = 0.0
        return s


def gaussian_blur(x: torch.Tensor, ksize: int = 51, sigma: float = 50.0) -> torch.Tensor:
    """Gaussian blur with reflect padding; the kernel is shrunk (odd) to fit small images."""
    import torchvision.transforms.functional as TF

    k = int(min(ksize, 2 * min(x.shape[-2:]) - 1))
    k = k if k % 2 == 1 else k - 1
    return TF.gaussian_blur(x, [k, k], [float(sigma), float(sigma)])


@register("groupcam")
class GroupCAM(CAMFamily):
    """Group-CAM (Zhang et al. 2021, Algorithm 1).

    Grad-CAM weights (eq. 1) split the K channels into ``groups`` = G groups (``torch.tensor_split``,
    sizes differ by at most 1 when G does not divide K); ``M_l = ReLU(sum_{k in l} w_k A^k)`` (eq. 2),
    de-noised below the ``theta``-th percentile (eq. 3, ``theta=None`` disables it), min-max
    normalized (eq. 4) and upsampled to mask the input over a blurred baseline (eq. 5,
    ``blur_ksize=51, blur_sigma=50`` as in the official code); weights are the confidence gains
    ``alpha_l = F_c(I'_l) - F_c(blur)`` (eq. 6, ``gain_score="softmax"`` as in the official code);
    ``S = ReLU(sum_l alpha_l M'_l)`` (eq. 7), combined at layer resolution (bilinear upsampling is
    linear, so it commutes with the sum).  Paper defaults: G=32, theta=70.

    With G=1 and theta=None: ``M'_0`` is the min-max normalized Grad-CAM map, hence Group-CAM's
    normalized map equals Grad-CAM's when ``alpha_0 > 0`` and is 0 otherwise.
    """

    defaults = {"relu": True, "score": "logit", "groups": 32, "theta": 70.0, "blur_ksize": 51,
                "blur_sigma": 50.0, "gain_score": "softmax", "mask_space": "input"}

    def weights(self, A, G, x, logits, target):
        B, K = A.shape[:2]
        if int(self.groups) < 1:
            raise ConfigError(f"groupcam: groups={self.groups} must be >= 1")
        wA = G.mean((2, 3))[:, :, None, None] * A
        ng = min(int(self.groups), K)  # a layer with fewer channels than groups: one channel per group
        M = torch.stack([p.sum(1) for p in torch.tensor_split(wA, ng, dim=1)], 1).clamp_min(0)
        if self.theta is not None and self.theta > 0:
            flat = M.flatten(2)
            thr = torch.quantile(flat, float(self.theta) / 100.0, dim=-1, keepdim=True)
            M = torch.where(flat > thr, flat, torch.zeros_like(flat)).view_as(M)
        Mn = channel_minmax(M)  # (B, G, h, w) in [0, 1]
        self.last_masks = Mn
        Gn = Mn.shape[1]
        f = self.fast(x)
        with torch.inference_mode():
            base = gaussian_blur(x, int(self.blur_ksize), float(self.blur_sigma))
            s_base = class_score(f(base), target, self.gain_score)  # (B,)
            bidx = torch.arange(B, device=x.device).repeat_interleave(Gn)
            flatM = Mn.reshape(B * Gn, 1, *Mn.shape[-2:])
            scores = []
            for sl in _chunks(B * Gn, self.batch_size):
                b = bidx[sl]
                m = upsample(flatM[sl], x.shape[-2:])
                xi = mask_input(x[b], m, self.info, self.mask_space)
                bi = mask_input(base[b], 1 - m, self.info, self.mask_space)
                inp = xi + bi if self.mask_space == "input" else _blend(x[b], base[b], m, self.info)
                scores.append(class_score(f(inp), target[b], self.gain_score))
            alpha = torch.cat(scores).view(B, Gn) - s_base[:, None]
        self._group_alpha = alpha
        return alpha

    def _attribute(self, x, target):
        A, G, logits, target = self.features(x, target)
        self.last_target, self.last_logits = target, logits
        with torch.no_grad():
            alpha = self.weights(A, G, x, logits, target)
            self.last_weights = alpha
            return combine(alpha, self.last_masks, relu=self.relu)


def _blend(x, base, m, info):
    """Pixel-space version of ``x * m + base * (1 - m)``."""
    px = info.denormalize(x) * m + info.denormalize(base) * (1 - m)
    return info.normalize(px)


def _chunks(n, size):
    from .base import chunks

    return chunks(n, size)
