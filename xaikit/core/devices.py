"""The device rule, and the strict-device guard that checks it on a machine without a GPU.

**The rule.**

* Data readers (:mod:`xaikit.data`) produce CPU tensors. Nothing in the data layer knows a device.
* Every public entry point of xaikit (an attributor call, a metric, a stream, a training loop, a chapter
  function) accepts its inputs on *any* device, runs where the model's parameters live
  (:func:`model_device`) and returns its tensors on the device of its inputs (:func:`back`), so a user
  who keeps images on the CPU gets CPU maps from a CUDA model, and one who keeps them on the GPU never
  pays for a round trip.
* Experiments move each batch to ``cfg.device`` **once** (:func:`to_device`), right before the work
  that needs it, and keep datasets, caches and tables on the host.

**The guard.** A CPU-only CI cannot see a CPU tensor fed to a CUDA model, because there every device is
the CPU. In *strict* mode (``XAIKIT_STRICT_DEVICE=1``; ``make test`` and the rehearsal turn it on) the
data layer hands out its tensors as :class:`HostTensor`: an ordinary CPU tensor that remembers it has not
been moved. ``x.to(device)``, ``x.cuda()`` or :func:`to_device` give back a plain tensor (on a GPU
machine, that is the copy to the GPU); arithmetic, slicing, stacking and ``.cpu()`` keep the mark. A
marked tensor that meets a module holding parameters or buffers, or a parameter inside any torch
function, raises :class:`~xaikit.errors.DeviceError` naming the module: exactly the places where a
CUDA run would fail with "Expected all tensors to be on the same device". Outside strict mode nothing
is marked and nothing is checked (no cost).

What the guard cannot see: a tensor created without a device (``torch.zeros(n)``) and mixed with a
model output. Such code runs on the CPU and fails on a GPU; it is caught by running the notebooks on a
GPU machine (``make reports PROFILE=ci DEVICE=cuda``), which the project does whenever one is lent.
"""
from __future__ import annotations

import os
import threading
from typing import Any

import torch
import torch.nn as nn

from ..errors import ConfigError, DeviceError

STRICT_ENV = "XAIKIT_STRICT_DEVICE"
_STATE = threading.local()
_HOOK = None


# ---------------------------------------------------------------------------------- the rule
def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None: CUDA when present, else CPU; any torch device string otherwise. Asking for
    CUDA on a machine without it is a :class:`~xaikit.errors.ConfigError` that says what to do."""
    if isinstance(name, torch.device):
        name = str(name)
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"device={name!r} is not a device: use 'auto', 'cpu', 'cuda' or 'cuda:1'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={name!r} was asked for but CUDA is not available on this machine; "
            "use device='cpu' (or 'auto'), or run on a GPU machine.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    if dev.type not in ("cpu", "cuda", "mps", "xpu", "meta"):
        raise ConfigError(f"device={name!r}: xaikit runs on 'cpu' or 'cuda'")
    return dev


def model_device(model: nn.Module) -> torch.device:
    """Where ``model`` runs: the device of its first parameter (or buffer); CPU for a module with none."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def to_device(obj: Any, device, non_blocking: bool = False) -> Any:
    """``obj`` moved to ``device``: tensors, objects with a ``.to(device)`` (a :class:`~xaikit.data.Batch`),
    and lists, tuples and dicts of them, recursively. Other values are returned as they are. A host tensor
    of strict mode comes back unmarked (it has been moved)."""
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if isinstance(obj, torch.Tensor):
        out = obj.to(device, non_blocking=non_blocking)
        return out.as_subclass(torch.Tensor) if isinstance(out, HostTensor) else out
    if isinstance(obj, dict):
        return type(obj)((k, to_device(v, device, non_blocking)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(to_device(v, device, non_blocking) for v in obj)
    if hasattr(obj, "to") and not isinstance(obj, nn.Module):
        return obj.to(device)
    return obj


def on_model(model: nn.Module, *tensors):
    """The tensors moved to the model's device (None stays None); one tensor -> one tensor."""
    dev = model_device(model)
    out = tuple(None if t is None else to_device(t, dev) for t in tensors)
    return out[0] if len(out) == 1 else out


def back(result: Any, like) -> Any:
    """``result`` (tensors, dicts, lists of them) moved to the device of ``like`` (a tensor or a device):
    the device of the user's inputs, where results go back. Plain numbers pass through."""
    dev = like.device if isinstance(like, torch.Tensor) else torch.device(like)
    if isinstance(result, torch.Tensor):
        if result.device == dev:
            return result
        return result.to(dev)
    if isinstance(result, dict):
        return type(result)((k, back(v, dev)) for k, v in result.items())
    if isinstance(result, (list, tuple)) and not hasattr(result, "_fields"):
        return type(result)(back(v, dev) for v in result)
    if hasattr(result, "to") and not isinstance(result, nn.Module) and hasattr(result, "maps"):
        return result.to(dev)  # an Explanation (or another result type with .to)
    return result


def runs_on_model(*moved: str, model: str = "model", like: str = "x"):
    """Decorator of a public entry point ``fn(model, x, ...)``: the arguments named in ``moved`` (tensors,
    or lists of them such as per-image boxes) go to the model's device before the call, and what ``fn``
    returns comes back on the device ``like`` (the images) had. The device rule in one line per function.
    ``model`` may name an argument that holds an attributor (its ``.model`` is used)."""
    import functools
    import inspect

    def deco(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            m = bound.arguments.get(model)
            m = getattr(m, "model", m)
            ref = bound.arguments.get(like)
            if not isinstance(m, nn.Module) or not isinstance(ref, torch.Tensor):
                return fn(*args, **kwargs)  # the function's own checks report the bad input
            home, dev = ref.device, model_device(m)
            for name in moved:
                if name in bound.arguments and bound.arguments[name] is not None:
                    bound.arguments[name] = to_device(bound.arguments[name], dev)
            return back(fn(*bound.args, **bound.kwargs), home)

        return wrapper

    return deco


# --------------------------------------------------------------------------------- the guard
def strict() -> bool:
    """True when the strict-device guard is on (``XAIKIT_STRICT_DEVICE=1`` or :func:`set_strict`)."""
    forced = getattr(_STATE, "forced", None)
    if forced is not None:
        return forced
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def set_strict(flag: bool | None) -> None:
    """Turn the guard on (True) or off (False) in this thread; None returns to the environment's choice."""
    _STATE.forced = flag
    if flag:
        _arm()


class HostTensor(torch.Tensor):
    """A CPU tensor of strict mode that the data layer handed out and nobody has moved to a device yet.

    Behaves like any tensor; moving it (``.to(device)``, ``.cuda()``) returns a plain tensor. Meeting a
    parameter, or entering a module that holds parameters or buffers, raises :class:`DeviceError`.
    """

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.__format__:  # f"{t:.2f}" of a 0-d tensor, as for a plain tensor
            return args[0].as_subclass(torch.Tensor).__format__(*args[1:])
        if func in _MOVES and _moves_device(func, args, kwargs):
            with torch._C.DisableTorchFunctionSubclass():
                out = func(*args, **kwargs)
            return out.as_subclass(torch.Tensor) if isinstance(out, torch.Tensor) else out
        if strict():
            p = _first_parameter(args, kwargs)
            if p is not None:
                raise DeviceError(_message(f"{getattr(func, '__name__', func)}(...) with a model parameter "
                                           f"of shape {tuple(p.shape)}"))
        return super().__torch_function__(func, types, args, kwargs)


_MOVES = {torch.Tensor.to, torch.Tensor.cuda}


def _moves_device(func, args, kwargs) -> bool:
    if func is torch.Tensor.cuda:
        return True
    if "device" in kwargs and kwargs["device"] is not None:
        return True
    for a in args[1:]:
        if isinstance(a, (torch.device, torch.Tensor)):
            return True
        if isinstance(a, str):
            return True  # a device string ('cpu', 'cuda:0'); dtypes are torch.dtype objects
    return False


def _first_parameter(args, kwargs):
    stack = list(args) + list(kwargs.values())
    while stack:
        a = stack.pop()
        if isinstance(a, nn.Parameter):
            return a
        if isinstance(a, (list, tuple)):
            stack.extend(a)
    return None


def _message(where: str) -> str:
    return (f"strict device check: a tensor from a data reader reached {where} without being moved to "
            "the model's device. On a GPU this is 'Expected all tensors to be on the same device'. Fix: move "
            "the batch once with xk.core.to_device(batch, cfg.device) (or batch.to(device)) before the model "
            "sees it; xaikit's attributors and metrics do this themselves. (Raised because "
            f"{STRICT_ENV}=1: see xaikit.core.devices.)")


def host(t):
    """In strict mode, ``t`` (a CPU tensor) marked as not-yet-moved data; otherwise ``t`` unchanged."""
    if not strict() or not isinstance(t, torch.Tensor) or isinstance(t, HostTensor) or t.device.type != "cpu":
        return t
    _arm()
    return t.as_subclass(HostTensor)


def is_host(t) -> bool:
    return isinstance(t, HostTensor)


def plain(t):
    """A marked tensor as a plain one, without moving it (for code that only reads values: hashing,
    saving, plotting). Anything else is returned unchanged."""
    if isinstance(t, HostTensor):
        return t.as_subclass(torch.Tensor)
    return t


def _holds_state(module: nn.Module) -> bool:
    for _ in module.parameters(recurse=False):
        return True
    for _ in module.buffers(recurse=False):
        return True
    for _ in module.parameters():
        return True
    for _ in module.buffers():
        return True
    return False


def _pre_hook(module, args):
    if not strict():
        return None
    for a in args:
        if isinstance(a, HostTensor) and _holds_state(module):
            raise DeviceError(_message(f"{type(module).__name__}.forward (its parameters are on "
                                       f"{model_device(module)})"))
    return None


def _arm() -> None:
    """Register the global forward pre-hook that checks module inputs (once per process)."""
    global _HOOK
    if _HOOK is None:
        _HOOK = nn.modules.module.register_module_forward_pre_hook(_pre_hook)


if strict():  # a process started in strict mode checks from the first forward on
    _arm()


def synchronize(device) -> None:
    """Wait for the work queued on a CUDA ``device`` (no-op elsewhere): call it around timed code."""
    device = device if isinstance(device, torch.device) else torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
