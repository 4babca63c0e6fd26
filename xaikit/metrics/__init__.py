"""Metrics of saliency maps (thesis §1.3.3, §2.4, §2.7; ViT-ReciproCAM §2.2; Group-CAM §4.3–4.4).

Metrics take saliency maps ``sal`` (B, H, W) in [0, 1] at the input size (and, for ADCC and
Max-Sensitivity, any ``explainer(x, target) -> (B, H, W)``), never an attributor object.

- recognition: :func:`recognition` (AD, AG, AI), :func:`box_study` (thesis Table 2.5), :func:`adcc`
- causal: :func:`insertion`, :func:`deletion`, :func:`overall`, :func:`aopc`
- robustness: :func:`max_sensitivity`
- localization: :func:`localization` (OM, LE, F1, BA, SP, EP, SM), :func:`pointing_game`

Conventions (thesis by default, each one a named option): ``target=None`` -> predicted class (pass
the labels for the thesis' ground-truth protocol); ``space="pixel"`` masks [0,1] images as the
Opti-CAM code does (``"normalized"`` as ADCC/pytorch-grad-cam); ``score="prob"`` (or ``"logit"``).
"""
from .causal import aopc, auc, deletion, insertion, overall, pixel_ranks, step_counts
from .localization import box_masks, localization, pointing_game
from .recognition import adcc, box_study, recognition
from .robustness import max_sensitivity

__all__ = ["recognition", "box_study", "adcc", "insertion", "deletion", "overall", "aopc", "auc",
           "max_sensitivity", "localization", "pointing_game", "box_masks", "pixel_ranks", "step_counts"]
