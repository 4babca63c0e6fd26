"""What only the metrics need on top of :mod:`xaikit.core`: the model guard, forward passes with checked
outputs, option checks with the metrics' hints, and per-image means.

The shared vocabulary (scores, masking spaces, substrates, blur, chunks, image/map/target checks) lives in
:mod:`xaikit.core.conventions` and :mod:`xaikit.core.targets`; nothing here repeats it.

**Model outputs.** A metric reads class logits from ``model(x)`` by one rule (:func:`logits_from`):

1. a tensor is the logits;
2. an object with a tensor attribute ``.logits`` (Hugging Face ``ModelOutput``, torchvision's
   ``InceptionOutputs``/``GoogLeNetOutputs``) gives ``.logits``;
3. a mapping with a ``"logits"`` key gives that entry;
4. a tuple or list whose first element is a tensor gives that first element (``return_dict=False``
   models, auxiliary heads after the main one).

Anything else is refused with an :class:`~xaikit.errors.InputError` that says how to wrap the model. The
logits must be a finite (B, C) tensor: NaN or infinite outputs (a model with NaN weights, an overflow on a
perturbed image) raise an :class:`~xaikit.errors.InputError` naming the forward pass they came from.

**The model is left as it was found** (:func:`eval_guard`): forwards run in eval mode (BatchNorm uses
its running statistics and does not update them, dropout is off), and afterwards every submodule gets
back its own train/eval flag and every parameter its ``.grad`` (tensor and values).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn as nn

from ..core.conventions import SUBSTRATES, auto_batch, check_count, choice, chunks, substrate
from ..core.targets import check_target as _core_check_target
from ..core.targets import output_logits
from ..errors import ConfigError, InputError
from ..models.fast import exact, forward_precision, metric_runner  # noqa: F401 - exact: the metrics' clean passes


# ------------------------------------------------------------------------------------ the model
@contextlib.contextmanager
def eval_guard(*models):
    """Eval mode inside the block for each ``nn.Module`` of ``models`` (others are skipped); on exit every
    submodule's own ``training`` flag is restored, and every parameter's ``.grad`` (the same tensor, with
    the same values: an explainer that calls ``.backward()`` accumulates into it in place)."""
    mods = list({id(m): m for m in models if isinstance(m, nn.Module)}.values())
    modes = [(s, s.training) for m in mods for s in m.modules()]
    grads = [(p, p.grad, None if p.grad is None else p.grad.detach().clone())
             for m in mods for p in m.parameters()]
    for m in mods:
        m.eval()
    try:
        yield
    finally:
        for p, g, saved in grads:
            if g is not None:
                with torch.no_grad():
                    g.copy_(saved)
            p.grad = g
        for s, mode in modes:
            s.training = mode


def check_model(model, name: str = "model") -> nn.Module:
    if not isinstance(model, nn.Module):
        raise InputError(f"{name} must be a torch.nn.Module (the classifier), got {type(model).__name__}")
    return model


def runner(model: nn.Module, x: torch.Tensor, twin, metric: str = "metric", setting: str | None = None) -> nn.Module:
    """The module the metric's forwards go through: when ``twin``, :func:`xaikit.models.inference_twin` of
    ``model`` (BatchNorm folded, channels-last, checked against the model on ``x``) at the metric precision
    (:func:`xaikit.config.metric_setting`: under the default ``"auto"``, bf16 where the device runs it natively
    and only after it matched fp32 on ``metric``'s own first perturbed images, :func:`xaikit.models.fast.metric_runner`;
    an explicit bf16/fp16 as asked), else the model (in fp32). ``setting``: a precision that overrides the
    metric precision (``"fp32"``: the metrics kept at fp32 whatever the setting, :mod:`xaikit.metrics.recognition`).
    Call it inside :func:`eval_guard` (a model in train mode has no twin)."""
    return metric_runner(model, x, metric, setting) if check_bool("twin", twin) else model


def unchecked_logits(out, batch: int, where: str = "model(x)") -> torch.Tensor:
    """(B, C) float logits out of what a forward returned (module docstring: the rule), shape checked but
    not yet checked finite (no host synchronisation: chunk loops check once at the end, :func:`check_finite`)."""
    t = output_logits(out, where)
    if t.dim() != 2 or t.shape[0] != batch:
        raise InputError(f"{where} returned logits of shape {tuple(t.shape)}; the metrics need ({batch}, C): "
                         "one row of class scores per image")
    return t.detach().float()


def nonfinite_rows(t: torch.Tensor) -> torch.Tensor:
    """(B,) bool: rows of (B, C) logits holding a NaN or an infinity (on the logits' device, no sync)."""
    return ~torch.isfinite(t).all(1)


def check_finite(bad: torch.Tensor, where) -> None:
    """Raise the InputError of non-finite logits when any of the (N,) flags ``bad`` is set (one host sync);
    ``where``: the forward's description, or a callable giving it from the bad rows' indices."""
    if not bool(bad.any()):
        return
    rows = bad.nonzero().flatten().tolist()
    where = where(rows) if callable(where) else where
    raise InputError(f"{where} returned NaN or infinite logits (rows {rows[:10]}{' ...' if len(rows) > 10 else ''}); "
                     "check the model's weights (torch.isfinite(p).all() for p in model.parameters()) "
                     "and its input")


def logits_from(out, batch: int, where: str = "model(x)") -> torch.Tensor:
    """(B, C) float logits out of what a forward returned (module docstring: the rule), checked finite."""
    t = unchecked_logits(out, batch, where)
    check_finite(nonfinite_rows(t), where)
    return t


def forward(run: nn.Module, x: torch.Tensor, where: str = "model(x)") -> torch.Tensor:
    """``run(x)`` as checked (B, C) float logits (:func:`logits_from`)."""
    return logits_from(run(x), x.shape[0], where)


@torch.no_grad()
def model_logits(run: nn.Module, x: torch.Tensor, batch_size: int, where: str = "model(x)") -> torch.Tensor:
    """Checked logits of ``run`` on ``x``, in chunks of ``batch_size`` (checked finite once, after the last
    chunk: no host synchronisation per chunk)."""
    outs = [unchecked_logits(run(x[sl]), sl.stop - sl.start, where) for sl in chunks(x.shape[0], batch_size)]
    t = torch.cat(outs) if len(outs) > 1 else outs[0]
    check_finite(nonfinite_rows(t), where)
    return t


# -------------------------------------------------------------------------------------- options
def count(name: str, value, minimum: int = 1, hint: str = "") -> int:
    """A whole number >= ``minimum`` (:func:`xaikit.core.conventions.check_count`), the error with ``hint``."""
    try:
        return check_count(name, value, minimum)
    except ConfigError as e:
        raise ConfigError(f"{e}{'; ' + hint if hint else ''}") from None


def number(name: str, value, minimum: float = 0.0, strict: bool = False, hint: str = "") -> float:
    """A finite real number >= ``minimum`` (> with ``strict``); bools and strings are refused."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok and isinstance(value, torch.Tensor) and value.dim() == 0:
        ok = value.dtype != torch.bool and not value.is_complex()
    if not ok:
        ok = isinstance(value, (np.integer, np.floating))
    v = float(value) if ok else math.nan
    if not ok or not math.isfinite(v) or v < minimum or (strict and v == minimum):
        bound = f" {'>' if strict else '>='} {minimum:g}" if math.isfinite(minimum) else ""
        raise ConfigError(f"{name}={value!r} must be a finite number{bound}{'; ' + hint if hint else ''}")
    return v


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be True or False")
    return value


def batch_size_for(batch_size, x: torch.Tensor, net=None) -> int:
    """``batch_size`` (a whole number >= 1) or, when None, :func:`xaikit.core.conventions.auto_batch`
    for the images' size and device and the precision the forwards of ``net`` (the metric's runner) run at."""
    if batch_size is None:
        return auto_batch(x.shape[-2:], x.device, precision=forward_precision(net))
    return count("batch_size", batch_size, 1, "images per forward chunk; None picks one from the image size")


def check_target(target, batch: int, num_classes: int | None = None, device=None) -> torch.Tensor | None:
    """:func:`xaikit.core.targets.check_target`, also refusing a sequence that holds bools (``[False, 0]``
    would otherwise become the classes ``[0, 0]``)."""
    if isinstance(target, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in target):
        raise InputError(f"target={list(target)!r} holds bools; it must hold class indices. For multi-hot "
                         "labels pick one class per image, e.g. labels.argmax(1)")
    return _core_check_target(target, batch, num_classes, device)


def check_substrate(name: str, value):
    """A substrate of :func:`xaikit.core.conventions.substrate`: its canonical name (aliases resolved) or a
    finite number (a value of the normalized input space)."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r}: use one of {list(SUBSTRATES)} or a number")
    if isinstance(value, (int, float)):
        return number(name, value, -math.inf, hint="a number is a value of the model's normalized input space")
    return choice("substrate", value, name)


def substrate_values(x: torch.Tensor, kind, info, name: str = "substrate") -> torch.Tensor:
    """:func:`xaikit.core.conventions.substrate` of the normalized batch ``x`` (broadcastable to it);
    ``"black"`` without the model's mean/std says which option to change."""
    if kind == "black" and not hasattr(getattr(info, "xaikit", info), "normalize"):
        raise ConfigError(f"{name}='black' (pixel 0) needs the model's mean/std: load the model with xk.models.load "
                          f"(which attaches model.xaikit), or use {name}='mean' (0 of the normalized input, the "
                          "dataset-mean colour)")
    return substrate(x, kind, info)


# ---------------------------------------------------------------------------------------- means
def reduce_dict(d: dict, reduce: bool) -> dict:
    """Per-image tensors -> float means (NaN entries ignored) when ``reduce``."""
    if not check_bool("reduce", reduce):
        return d
    out = {}
    for k, v in d.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            out[k] = float(torch.nanmean(v)) if v.numel() else math.nan
        else:
            out[k] = v
    return out
