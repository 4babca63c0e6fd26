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

import torch
import torch.nn as nn

from ..errors import ConfigError
from .devices import back, model_device, to_device

TARGETS = ("label", "pred")


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """``model(x)`` without gradients, chunked by ``batch_size`` (all at once when None), computed on the
    model's device and returned as float on the device of ``x``."""
    dev = model_device(model)
    n = x.shape[0]
    step = n if not batch_size else max(1, int(batch_size))
    outs = [model(to_device(x[i:i + step], dev)).float() for i in range(0, n, step)]
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
