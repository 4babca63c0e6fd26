"""Which class an explanation or a metric is about: one resolution rule for the whole library.

* ``"label"`` (the thesis' protocol): the ground-truth class; an unlabelled image (label ``-1``) falls back
  to the predicted class; for multi-hot labels, the predicted class when it is a positive label, else the
  highest-scoring positive label.
* ``"pred"`` (RISE's, Group-CAM's and the ADCC code's protocol): the class the model predicts on the clean
  image.

Every function here follows the device rule (:mod:`xaikit.core.devices`): inputs anywhere, computed
where the model lives, results on the device of ``x``.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError, InputError
from .devices import back, model_device, to_device

TARGETS = ("label", "pred")


def output_logits(out, where: str = "model(x)") -> torch.Tensor:
    """The class logits in what a model's forward returned, by one rule for the whole library: a tensor is
    the logits; else ``.logits`` (Hugging Face ``ModelOutput``, torchvision's ``InceptionOutputs``), a
    mapping's ``"logits"`` entry, or a tuple's / list's first element (``return_dict=False`` models,
    auxiliary heads after the main one). Anything else is an :class:`~xaikit.errors.InputError`."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(getattr(out, "logits", None), torch.Tensor):
        return out.logits
    if isinstance(out, Mapping) and isinstance(out.get("logits"), torch.Tensor):
        return out["logits"]
    if isinstance(out, (tuple, list)) and len(out) and isinstance(out[0], torch.Tensor):
        return out[0]
    keys = f" with keys {list(out)[:8]}" if isinstance(out, Mapping) else ""
    raise InputError(
        f"{where} returned a {type(out).__name__}{keys}, not class logits. xaikit takes the logits from a "
        "tensor, from .logits, from a dict's 'logits' entry or from the first element of a tuple; wrap the "
        "model in a small nn.Module whose forward returns the (B, C) logits (e.g. model(x)['scores'])")


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """``model(x)`` without gradients, chunked by ``batch_size`` (all at once when None), computed on the
    model's device and returned as float on the device of ``x``."""
    dev = model_device(model)
    n = x.shape[0]
    step = n if not batch_size else max(1, int(batch_size))
    outs = [output_logits(model(to_device(x[i:i + step], dev))).float() for i in range(0, n, step)]
    return back(torch.cat(outs) if len(outs) > 1 else outs[0], x)


def predict(model: nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """(B,) predicted classes of ``x`` (normalized inputs), on the device of ``x``."""
    return logits_of(model, x, batch_size).argmax(-1)


def resolve_targets(model: nn.Module, x: torch.Tensor, labels: torch.Tensor | None, how: str = "label",
                    logits: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) classes to explain for normalized images ``x`` with ``labels`` ((B,) with -1 = unknown, or
    (B, C) multi-hot), by the rule ``how`` (module docstring). ``logits`` reuses a forward already done."""
    if how not in TARGETS:
        raise ConfigError(f"target={how!r}: use 'label' (ground truth, the thesis' protocol) or 'pred' "
                          "(the predicted class, as RISE, Group-CAM and the ADCC code)")
    out = logits_of(model, x) if logits is None else back(logits.detach().float(), x)
    pred = out.argmax(-1)
    if how == "pred" or labels is None:
        return pred
    labels = back(torch.as_tensor(labels), x)
    if labels.dim() > 1:
        pos = labels.gather(1, pred[:, None])[:, 0] > 0
        best = out.masked_fill(labels <= 0, float("-inf")).argmax(-1)
        return torch.where(pos, pred, best)
    return torch.where(labels >= 0, labels.long(), pred)


def check_target(target, batch: int, num_classes: int | None = None, device=None) -> torch.Tensor | None:
    """A user's ``target`` as (B,) long class indices, range-checked; None stays None (= the predicted
    class). Accepted: an int (NumPy integers too) for every image, a sequence or an integer tensor of B
    classes. Refused with the fix: bools, floats (1.7 is not a class), wrong lengths, out-of-range classes."""
    if target is None:
        return None
    if isinstance(target, (list, tuple)) and any(isinstance(v, bool) for v in target):
        raise InputError(f"target {list(target)!r} holds bools: pass class indices (False is not class 0)")
    if isinstance(target, bool) or (isinstance(target, torch.Tensor) and target.dtype == torch.bool):
        raise InputError("target must hold class indices, got a bool; for multi-hot labels pick one class per "
                         "image, e.g. labels.argmax(1)")
    try:
        import numpy as np

        if isinstance(target, np.ndarray) or isinstance(target, np.generic):
            target = torch.as_tensor(np.asarray(target))
    except ImportError:  # pragma: no cover
        pass
    if isinstance(target, int):
        t = torch.full((batch,), int(target), dtype=torch.long)
    else:
        try:
            t = torch.as_tensor(target)
        except Exception as e:
            raise InputError(f"target must be None, an int or a ({batch},) integer tensor; got "
                             f"{type(target).__name__}") from e
        if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
            raise InputError(f"target must hold integer class indices, got dtype {t.dtype}; for multi-hot labels "
                             "pick one class per image, e.g. labels.argmax(1)")
        if t.dim() == 0:
            t = t.expand(batch)
        if t.dim() != 1 or t.shape[0] != batch:
            raise InputError(f"target must be an int or have shape ({batch},) for a batch of {batch}, got shape "
                             f"{tuple(t.shape)}")
        t = t.long()
    if num_classes:
        bad = (t < 0) | (t >= num_classes)
        if bool(bad.any()):
            raise InputError(f"target {t[bad].tolist()} out of range: this model has num_classes={num_classes} "
                             f"(valid classes 0..{num_classes - 1}; unlabelled images carry -1: pass target=None "
                             "to explain the prediction)")
    return t.to(device) if device is not None else t


def resolve_target(target: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """A checked target, or the predicted class ``logits.argmax(-1)`` where it is None."""
    if target is None:
        return logits.detach().argmax(-1)
    return target.to(logits.device)
