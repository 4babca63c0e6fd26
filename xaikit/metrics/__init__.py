"""Metrics of saliency maps (thesis §1.3.3, §2.4, §2.7; ViT-ReciproCAM §2.2; Group-CAM §4.3–4.4).

Metrics take saliency maps ``sal`` (B, H, W) in [0, 1] at the input size (and, for ADCC and
Max-Sensitivity, any ``explainer(x, target) -> (B, H, W)``), never an attributor object.

- recognition: :func:`recognition` (AD, AG, AI), :func:`box_study` (thesis Table 2.5), :func:`adcc`
- causal: :func:`insertion`, :func:`deletion`, :func:`overall`, :func:`aopc` (one number per image), and
  :func:`insertion_curves`, :func:`deletion_curves`, :func:`aopc_curves` (the same with their curves, as a
  :class:`Curves`)
- robustness: :func:`max_sensitivity`
- localization: :func:`localization` (OM, LE, F1, BA, SP, EP, SM), :func:`pointing_game`

Conventions (thesis by default, each one a keyword-only option in :mod:`xaikit.core.conventions`'
vocabulary, checked with a :class:`~xaikit.errors.ConfigError` that names it): ``target=None`` -> predicted
class (pass the labels for the thesis' ground-truth protocol; targets are checked by
:func:`xaikit.core.targets.check_target`); ``space="pixel"`` masks [0,1] images as the Opti-CAM code does
(``"normalized"`` as ADCC/pytorch-grad-cam); ``score="softmax"`` (alias ``"prob"``; or ``"logit"``,
``"log_softmax"``); substrates ``"blur"``, ``"black"``, ``"mean"`` (``"zero"``), ``"min"`` or a number.

Presets: ``insertion``/``deletion``/``overall`` (``"rise"``, ``"author"``, ``"groupcam"``), ``adcc`` (``"adcc"``,
``"vit_reciprocam"``) and ``localization`` (``"casme"``) reproduce the authors' evaluation codes with
``preset=``; ``"paper"`` (the default) is the text (``docs/CONVENTIONS.md``).

Every metric that runs a model runs it in eval mode, on :func:`xaikit.models.inference_twin` unless
``twin=False`` (under the default ``"auto"`` precision in bf16 only where the device runs it natively and the
metric's bf16 forwards matched fp32 on its own first 64 perturbed images, else fp32:
:class:`xaikit.models.fast.CheckedReduced`; at an
explicit ``bf16`` / ``fp16`` setting of :mod:`xaikit.models.fast` in that precision: then the means over images
of insertion/deletion AUC and AD/AG/AI moved by up to 0.5 points on 2 photos at 128 px, ``tests/test_precision.py``,
but by 0.8 on Group-CAM's insertion curves of the 7 photos at 224 px, and a single image's value by up to 1.2
points of AUC and 4 of AD), and leaves it as it found it (train/eval flag of every submodule, ``.grad``
fields, state);
it reads the logits from tensors, ``.logits``, ``["logits"]`` or a tuple's first element
(:func:`xaikit.metrics._common.logits_from`). NaN or infinite images, maps and model outputs raise an
:class:`~xaikit.errors.InputError` naming where they came from.
"""
from .causal import (Curves, aopc, aopc_curves, auc, deletion, deletion_curves, insertion, insertion_curves, overall,
                     pixel_ranks, step_counts)
from .localization import box_masks, localization, pointing_game
from .recognition import adcc, adcc_of_means, box_study, recognition
from .robustness import max_sensitivity

__all__ = ["recognition", "box_study", "adcc", "adcc_of_means", "insertion", "deletion", "overall", "aopc", "insertion_curves",
           "deletion_curves", "aopc_curves", "Curves", "auc", "max_sensitivity", "localization", "pointing_game",
           "box_masks", "pixel_ranks", "step_counts"]
