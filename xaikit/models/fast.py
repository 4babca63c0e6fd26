"""Inference twin of a model: BatchNorm folded into the convolution before it, weights channels-last.

The perturbation methods and metrics (Score-CAM, Group-CAM, RISE, Opti-CAM, Extremal Perturbation,
insertion/deletion, AOPC, AD/AG/AI, ...) spend nearly all their time in forward passes of perturbed
copies of the input.  They run them through :func:`inference_twin` of the model instead of the model
itself: an eval-mode copy where

* every ``Conv2d -> BatchNorm2d`` pair (consecutive children of one module, also timm's
  ``BatchNormAct2d``, whose activation is kept) is folded into one convolution,
  ``W' = W * g / sqrt(v + eps)``, ``b' = (b - mu) * g / sqrt(v + eps) + beta`` — exact in eval mode;
* 4-D weights are stored channels-last, which oneDNN (CPU) and cuDNN run faster.

EfficientNet-Lite0 at 224 px on a 2-core CPU: 1.8x faster per image in chunks of 8 (11.6 vs 20.6 ms),
2.6-2.9x in chunks of 16-64; ResNet-50 1.3-1.6x (``benchmarks/forward.md``).  Outputs equal the
model's up to float rounding (|Δ logit| ~ 1e-5).

Safety, since results must never be silently wrong:

* the twin is checked on the first real input against the model itself (logits within
  ``1e-3 * max|logit| + 1e-4``); if it disagrees (a convolution whose output a BatchNorm does not
  consume alone, a custom convolution, a hook that changes an output), a folding-free channels-last
  copy is tried, then the model itself is used;
* a model in training mode, a vision transformer (nothing to fold) or ``XAIKIT_FAST=0`` / the
  :func:`disabled` context give the model itself;
* the twin is rebuilt whenever a parameter or buffer of the model changes (in-place updates bump
  their version counters: optimizer steps, ``load_state_dict``, ``.to(device)``);
* no twin is built while one of xaikit's layer-capture hooks sits on the model (the model itself is
  used), and none is copied into a twin; other hooks are copied, and the check above covers them;
  pass counters (:func:`observe`, used by ``count_passes``) see the twin's passes as the model's.

Choosing: every method that runs perturbed copies of its input (Score-CAM, Ablation-CAM, Group-CAM, Opti-CAM,
RISE, Extremal Perturbation) takes ``twin: bool = True``; ``twin=False`` runs them on the model itself
(``xk.attributors.create("scorecam", model, twin=False)``).  :func:`disabled` switches the twin off for a
whole block of code at once (benchmarks comparing the two use it); ``XAIKIT_FAST=0`` for a whole process.

Layer hooks belong on the model, not on the twin: methods that capture or replace a layer's output
(Grad-CAM's activations, Ablation-CAM) do that pass on the model itself.
"""
from __future__ import annotations

import contextlib
import copy
import os
import weakref

import torch
import torch.nn as nn

from .hooks import LayerCapture

_TWINS: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()
#: model -> {observer hook: [handles on the model's twins]} (see :func:`observe`)
_OBSERVERS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_DISABLED = 0
_PROBING = False


def enabled() -> bool:
    """False under :func:`disabled` or with the environment variable ``XAIKIT_FAST=0``."""
    return _DISABLED == 0 and os.environ.get("XAIKIT_FAST", "1") not in ("0", "false", "no")


@contextlib.contextmanager
def disabled():
    """Within the block every xaikit forward pass runs on the model itself (for comparisons and
    benchmarks; to choose per method, pass ``twin=False`` to the method instead)."""
    global _DISABLED
    _DISABLED += 1
    try:
        yield
    finally:
        _DISABLED -= 1


@contextlib.contextmanager
def observe(model: nn.Module, hook):
    """Register the forward hook ``hook(module, inputs, output)`` on ``model`` *and* on its inference
    twins (the current one and any built inside the block), so that whoever counts or times the
    passes of a model sees those its twin runs for it.  The twin's check passes are not shown."""

    def observer(mod, args, out):
        if not _PROBING:
            return hook(mod, args, out)

    observer._xaikit_observer = True
    handles = [model.register_forward_hook(observer)]
    twins = _OBSERVERS.setdefault(model, {})
    twins[observer] = handles
    hit = _TWINS.get(model)
    if hit is not None and hit[1] is not None:
        handles.append(hit[1].register_forward_hook(observer))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        twins.pop(observer, None)


def _state_key(model: nn.Module) -> tuple:
    key = []
    for t in list(model.parameters()) + list(model.buffers()):
        try:
            key.append((id(t), t.data_ptr(), t._version, t.dtype, tuple(t.shape)))
        except RuntimeError:  # an inference-mode tensor has no version counter
            key.append((id(t), t.data_ptr(), -1, t.dtype, tuple(t.shape)))
    return tuple(key)


def _is_plain_conv(m: nn.Module) -> bool:
    # nn.Conv2d and timm's Conv2dSame (padding computed in forward, weights used as they are);
    # weight-standardized or otherwise re-parameterized convolutions are not folded
    return type(m) is nn.Conv2d or type(m).__name__ == "Conv2dSame"


def _bn_replacement(bn: nn.Module) -> nn.Module | None:
    if not (bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None):
        return None
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    if type(bn).__name__ == "BatchNormAct2d" and hasattr(bn, "act") and hasattr(bn, "drop"):
        return nn.Sequential(bn.drop, bn.act)
    return None


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold every ``Conv2d -> BatchNorm2d`` pair of consecutive children in place (eval-mode
    semantics); returns the number folded.  Check the result: the pairing assumes the children's
    order is the data flow (true of timm, torchvision and xaikit's models)."""
    n = 0
    for parent in list(model.modules()):
        kids = list(parent.named_children())
        for (_, conv), (bn_name, bn) in zip(kids, kids[1:]):
            if not (_is_plain_conv(conv) and isinstance(bn, nn.BatchNorm2d)):
                continue
            if bn.num_features != conv.out_channels or conv.weight.dim() != 4:
                continue
            rep = _bn_replacement(bn)
            if rep is None:
                continue
            scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
            b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
            conv.bias = nn.Parameter((b - bn.running_mean) * scale + shift, requires_grad=False)
            setattr(parent, bn_name, rep)
            n += 1
    return n


def _capture_hooks(model: nn.Module):
    """(hook dict, key) of every xaikit layer-capture hook on the model's modules."""
    for m in model.modules():
        for d in (m._forward_hooks, m._forward_pre_hooks):
            for k, h in list(d.items()):
                if isinstance(getattr(h, "__self__", None), LayerCapture):
                    yield d, k


def _strip_xaikit_hooks(model: nn.Module) -> None:
    """Remove layer captures and observers (re-attached by :func:`observe`) from a fresh copy."""
    for d, k in list(_capture_hooks(model)):
        del d[k]
    for m in model.modules():
        for d in (m._forward_hooks, m._forward_pre_hooks):
            for k in [k for k, h in d.items() if getattr(h, "_xaikit_observer", False)]:
                del d[k]


def _agrees(twin: nn.Module, model: nn.Module, probe: torch.Tensor) -> bool:
    global _PROBING
    _PROBING = True
    try:
        with torch.inference_mode():
            a, b = twin(probe), model(probe)
    except Exception:
        return False
    finally:
        _PROBING = False
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
        return False
    a, b = a.float(), b.float()
    tol = 1e-3 * float(b.abs().max()) + 1e-4
    return bool(torch.isfinite(a).all()) and float((a - b).abs().max()) <= tol


def _copy(model: nn.Module) -> nn.Module | None:
    """deepcopy, where tensors a module keeps as plain attributes (e.g. the last attention maps of a
    stream) that are not graph leaves, and cannot be deep-copied, are shared detached instead."""
    memo = {}

    def visit(v, depth=0):
        if isinstance(v, torch.Tensor):
            if not v.is_leaf:
                memo[id(v)] = v.detach()
        elif depth < 3 and isinstance(v, (list, tuple)):
            for e in v:
                visit(e, depth + 1)
        elif depth < 3 and isinstance(v, dict):
            for e in v.values():
                visit(e, depth + 1)

    for m in model.modules():
        for k, v in vars(m).items():
            if k not in ("_parameters", "_buffers", "_modules"):
                visit(v)
    try:
        return copy.deepcopy(model, memo)
    except Exception:  # noqa: BLE001 - a model that cannot be copied runs as it is
        return None


def _build(model: nn.Module, probe: torch.Tensor) -> tuple[nn.Module, str]:
    for fold in (True, False):
        twin = _copy(model)
        if twin is None:
            break
        _strip_xaikit_hooks(twin)
        twin.eval()
        for p in twin.parameters():
            p.requires_grad_(False)
        n = fold_batchnorm(twin) if fold else 0
        if fold and n == 0:
            continue  # nothing to fold: the channels-last copy below
        twin.to(memory_format=torch.channels_last)
        if _agrees(twin, model, probe):
            return twin, (f"{n} BatchNorm folded, " if n else "") + "channels-last"
    return model, "the model itself (its twin disagreed with it)"


def inference_twin(model: nn.Module, example: torch.Tensor | None = None) -> nn.Module:
    """The fast forward-only twin of ``model`` (module docstring), or ``model`` itself where no twin
    applies.  ``example``: a batch of real inputs, used (its first two images) to check the twin
    when it is built.  Gradients with respect to the *input* flow through the twin as usual; its
    parameters are frozen."""
    if not isinstance(model, nn.Module) or not enabled() or model.training or hasattr(model, "xaikit_twin"):
        return model  # (a twin is its own twin)
    inf = getattr(model, "xaikit", None)
    if getattr(inf, "is_vit", False) or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return model
    key = _state_key(model)
    hit = _TWINS.get(model)
    if hit is not None and hit[0] == key:
        return hit[1] if hit[1] is not None else model
    if example is None or next(_capture_hooks(model), None) is not None:
        return model  # never an unchecked twin, nor one checked against a model whose layer is hooked
    probe = example[:2].detach()
    twin, how = _build(model, probe)
    if twin is model:  # remembered as None: a value must not hold its weak key alive
        _TWINS[model] = (key, None)
        return model
    twin.xaikit_twin = how
    _TWINS[model] = (key, twin)
    for observer, handles in _OBSERVERS.get(model, {}).items():
        handles.append(twin.register_forward_hook(observer))
    return twin


def describe(model: nn.Module) -> str:
    """What :func:`inference_twin` currently gives for ``model`` (for provenance and benchmarks)."""
    hit = _TWINS.get(model)
    if hit is None:
        return "no twin built yet"
    return "the model itself (its twin disagreed with it)" if hit[1] is None else hit[1].xaikit_twin
