"""Saliency methods behind one interface.

    cam = xk.attributors.create("gradcam", model, layer=None)   # None -> model's default layer
    sal = cam(x, target=None)          # (B, H, W) in [0, 1], upsampled to the input size
    e = cam.explain(x, target)         # Explanation: e.maps (B, h, w) at the layer's resolution, normalized,
                                       # e.target (B,), e.logits (B, C), e.extras (weights, scores, ...)
    help(cam)                          # the method, its paper, every option with its default

Names: ``xk.attributors.available()``; options of a method: ``xk.attributors.options_of(name)``. Methods whose
authors' code differs from their paper take ``preset=`` (``"paper"`` by default; ``docs/CONVENTIONS.md``).  The CAM
family (``cam, gradcam, gradcampp, xgradcam`` (alias ``axiomcam``), ``hirescam, layercam, scorecam,
ablationcam, groupcam, opticam, fakecam``) is one computation ``h(sum_k w_k^c A^k)`` (thesis eq. 1.3) in
:mod:`.cam`; each method supplies weights.  Conventions (scores, masking spaces, blur, targets, devices) are
those of :mod:`xaikit.core`.
"""
from .base import (Attributor, Explanation, available, create, method_class, normalize_maps, options_of, register,
                   upsample)
from .cam import CAM, FakeCAM, GradCAM, GradCAMPlusPlus, GroupCAM, HiResCAM, LayerCAM, XGradCAM
from .gradient import GuidedBackprop, IntegratedGradients, Saliency, SmoothGrad
from .opticam import OptiCAM
from .perturbation import RISE, ExtremalPerturbation
from .score import AblationCAM, ScoreCAM
from .transformer import TIBAV, Chefer, RawAttention, Rollout, ViTReciproCAM

__all__ = ["Attributor", "Explanation", "available", "create", "method_class", "normalize_maps", "options_of",
           "register", "upsample", "CAM", "GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM",
           "ScoreCAM", "AblationCAM", "GroupCAM", "OptiCAM", "FakeCAM", "RISE", "ExtremalPerturbation",
           "Saliency", "GuidedBackprop", "SmoothGrad", "IntegratedGradients", "RawAttention", "Rollout", "Chefer",
           "TIBAV", "ViTReciproCAM"]
