"""Saliency methods behind one interface.

    cam = xk.attributors.create("gradcam", model, layer=None)   # None -> model's default layer
    sal = cam(x, target=None)          # (B, H, W) in [0, 1], upsampled to the input size
    low = cam.explain(x, target)       # (B, h, w) at the layer's resolution, normalized

Names: ``xk.attributors.available()``.  The CAM family (``cam, gradcam, gradcampp, xgradcam``
(alias ``axiomcam``), ``hirescam, layercam, scorecam, ablationcam, groupcam, opticam, fakecam``) is
one computation ``h(sum_k w_k^c A^k)`` (thesis eq. 1.3) in :mod:`.cam`; each method supplies weights.
"""
from .base import (Attributor, LayerCapture, available, check_input, check_target, chunks, class_score,
                   create, model_guard, normalize_maps, register, resolve_target, upsample)

__all__ = ["Attributor", "LayerCapture", "available", "check_input", "check_target", "chunks",
           "class_score", "create", "model_guard", "normalize_maps", "register", "resolve_target",
           "upsample"]
