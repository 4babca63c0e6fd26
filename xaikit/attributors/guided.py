"""Guided backpropagation (Springenberg et al. 2014) as a reusable switch on any model.

Guided backprop changes only the *backward* rule of the ReLU-family activations: an activation
passes back its ordinary local gradient clamped to be non-negative,

    guided:  dL/dx  =  max(0, f'(x) * g),     g = dL/d(output),

so only positive gradients flow, and only through inputs where the activation is active.
Per activation (in-place variants included):

- ``nn.ReLU``:        ``max(0, g) * [x > 0]``                 (Springenberg's rule; = captum's hook)
- ``nn.ReLU6``:       ``max(0, g) * [0 < x < 6]``             (ReLU6's own active range)
- ``nn.LeakyReLU(a)``: ``max(0, g * (1 if x > 0 else a))``     (for a >= 0: the leak still passes
  positive signals, scaled by a; a negative slope flips them, so they are dropped)

The forward pass is unchanged (same values).  Activations the rule does not cover (GELU, SiLU,
Sigmoid, Tanh, ELU, Hardswish, ...) are left standard and *reported*: :func:`guided` returns a
:class:`GuidedReport` and warns once with their names.  Functional ReLU calls inside ``forward``
(``F.relu``, ``torch.relu``, ``x.relu_()``, ``F.relu6``, ``F.leaky_relu``) are invisible to a
module scan; :func:`guided` intercepts them at run time with a ``TorchFunctionMode`` and makes them
guided too (``functional=True``), and records other functional non-linearities it sees.
``torch.clamp(x, min=0)`` used as a ReLU cannot be recognised and stays standard.

Used by the ``guided_backprop`` attributor and as the detached "teacher" of the interpretable-gradient
loss (thesis ch.4, Algorithm 3, :mod:`xaikit.training.interpretable`).
"""
from __future__ import annotations

import types
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.overrides import TorchFunctionMode

from ..errors import InputError

__all__ = ["guided", "guided_gradient", "GuidedReport", "unguided_activations", "GuidedWarning",
           "preserve_batchnorm_stats", "class_score", "RuleSwitch"]


class GuidedWarning(UserWarning):
    """Some activations of the model could not be made guided."""


# ------------------------------------------------------------------------------ autograd rule
def _act_and_local(x: torch.Tensor, kind: str, slope: float):
    """(f(x), f'(x)) of a ReLU-family activation."""
    if kind == "relu":
        return x.clamp(min=0), (x > 0).to(x.dtype)
    if kind == "relu6":
        return x.clamp(0, 6), ((x > 0) & (x < 6)).to(x.dtype)
    pos = x > 0  # leaky
    return torch.where(pos, x, x * slope), torch.where(pos, torch.ones_like(x), torch.full_like(x, slope))


class _GuidedAct(torch.autograd.Function):
    """y = f(x) unchanged; backward max(0, f'(x) * g).  ``local`` is f'(x), saved (not x), so an
    in-place write to x afterwards does not invalidate the backward."""

    @staticmethod
    def forward(ctx, x, kind: str, slope: float):
        y, local = _act_and_local(x, kind, slope)
        ctx.save_for_backward(local)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (local,) = ctx.saved_tensors
        return (g * local).clamp(min=0), None, None


class RuleSwitch:
    """Which backward rule the activations of a :func:`guided` block with ``switch=`` follow: ``rule`` is
    ``"guided"`` or ``"standard"`` (read when the backward runs, so one forward serves both)."""

    def __init__(self, rule: str = "standard"):
        self.rule = rule


class _SwitchedAct(torch.autograd.Function):
    """y = f(x) unchanged; backward by ``switch.rule`` at the time it runs: ``"guided"`` as
    :class:`_GuidedAct` (max(0, f'(x) * g)), ``"standard"`` the activation's own gradient f'(x) * g, written
    with differentiable ops (a ``create_graph`` backward through it has the standard double backward)."""

    @staticmethod
    def forward(ctx, x, kind: str, slope: float, switch: RuleSwitch):
        y, local = _act_and_local(x, kind, slope)
        ctx.save_for_backward(local)
        ctx.switch, ctx.kind = switch, kind
        return y

    @staticmethod
    def backward(ctx, g):
        (local,) = ctx.saved_tensors
        if ctx.switch.rule == "guided":
            return (g * local).clamp(min=0).detach(), None, None, None
        if ctx.kind == "leaky":
            return g * local, None, None, None  # g or slope * g: leaky_relu_backward's values
        # g where f'(x) = 1, else 0: the native kernel of ReLU's own backward, differentiable in g
        return torch.ops.aten.threshold_backward(g, local, 0.0), None, None, None


def _apply_guided(x: torch.Tensor, kind: str, slope: float = 0.0, inplace: bool = False,
                  switch: RuleSwitch | None = None):
    y = _GuidedAct.apply(x, kind, float(slope)) if switch is None else _SwitchedAct.apply(x, kind, float(slope), switch)
    if inplace and not (x.is_leaf and x.requires_grad):
        x.copy_(y)  # honour in-place semantics for callers that ignore the return value
        return x
    return y


def _kind_of(m: nn.Module):
    """(kind, slope) for a module the guided rule covers, else None (ReLU6 before Hardtanh)."""
    if isinstance(m, nn.ReLU):
        return "relu", 0.0
    if isinstance(m, nn.ReLU6):
        return "relu6", 0.0
    if isinstance(m, nn.LeakyReLU):
        return "leaky", float(m.negative_slope)
    return None


# activation modules the rule does not cover (reported).  Softmax-like and attention are not
# pointwise activations and are not listed.
_OTHER_ACTS = tuple(getattr(nn, n) for n in (
    "GELU", "SiLU", "ELU", "SELU", "CELU", "Mish", "Hardswish", "Hardsigmoid", "Hardtanh", "PReLU",
    "RReLU", "Sigmoid", "Tanh", "Softplus", "Softsign", "Tanhshrink", "LogSigmoid", "Threshold",
    "Hardshrink", "Softshrink", "GLU") if hasattr(nn, n))
_ACT_WORDS = ("gelu", "silu", "swish", "mish", "elu", "sigmoid", "tanh", "softplus", "hardswish",
              "relu", "glu", "activation")

_FUNC_GUIDED = {"relu": "relu", "relu_": "relu", "relu6": "relu6", "leaky_relu": "leaky",
                "leaky_relu_": "leaky"}
_FUNC_OTHER = {"gelu", "silu", "silu_", "mish", "hardswish", "hardswish_", "hardsigmoid", "elu",
               "elu_", "selu", "selu_", "celu", "celu_", "softplus", "sigmoid", "sigmoid_", "tanh",
               "tanh_", "hardtanh", "hardtanh_", "prelu", "rrelu", "rrelu_", "logsigmoid", "glu"}


def unguided_activations(model: nn.Module) -> list[str]:
    """``"name (Type)"`` of every activation module of ``model`` the guided rule does not cover:
    torch's non-ReLU activations and any custom module whose class name looks like an activation
    (e.g. timm's ``Swish``, ``GELUTanh``) and is not a ReLU/ReLU6/LeakyReLU subclass."""
    out = []
    for name, m in model.named_modules():
        if _kind_of(m) is not None:
            continue
        cls = type(m).__name__
        custom_act = (not list(m.children()) and any(w in cls.lower() for w in _ACT_WORDS)
                      and not isinstance(m, (nn.MultiheadAttention,)))
        if isinstance(m, _OTHER_ACTS) or custom_act:
            out.append(f"{name or '<model>'} ({cls})")
    return out


@dataclass
class GuidedReport:
    """What :func:`guided` did: module names made guided, activations left standard."""

    guided: list = field(default_factory=list)            # module names made guided
    unguided: list = field(default_factory=list)          # "name (Type)" left standard
    functional_guided: dict = field(default_factory=dict)    # F.relu-like calls made guided: count
    functional_unguided: dict = field(default_factory=dict)  # other functional non-linearities: count

    @property
    def complete(self) -> bool:
        """True when every non-linearity seen was made guided."""
        return not self.unguided and not self.functional_unguided

    def message(self) -> str:
        parts = []
        if self.unguided:
            parts.append(f"{len(self.unguided)} activation module(s) left standard: "
                         + ", ".join(self.unguided[:8]) + (" ..." if len(self.unguided) > 8 else ""))
        if self.functional_unguided:
            parts.append("functional non-linearities left standard: "
                         + ", ".join(f"{k} x{v}" for k, v in sorted(self.functional_unguided.items())))
        if not parts:
            return "all activations guided"
        return ("guided backprop covers ReLU, ReLU6 and LeakyReLU only; " + "; ".join(parts)
                + ". Their gradients pass unchanged (standard backprop), so the result is only "
                "partly guided; swap them for ReLU to get true guided backprop.")


class _FunctionalGuide(TorchFunctionMode):
    """Makes functional ReLU calls guided and counts other functional non-linearities, ignoring
    calls made from inside activation modules already reported (``depth`` > 0)."""

    def __init__(self, report: GuidedReport, make_guided: bool, switch: RuleSwitch | None = None):
        super().__init__()
        self.report, self.make_guided, self.depth, self.switch = report, make_guided, 0, switch

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if self.depth == 0:
            if name in _FUNC_GUIDED and self.make_guided and args and isinstance(args[0], torch.Tensor):
                kind = _FUNC_GUIDED[name]
                slope = 0.0
                if kind == "leaky":
                    slope = args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01)
                inplace = name.endswith("_") or bool(kwargs.get("inplace", False)) or (
                    kind == "relu" and len(args) > 1 and args[1] is True) or (
                    kind == "leaky" and len(args) > 2 and args[2] is True)
                d = self.report.functional_guided
                d[name] = d.get(name, 0) + 1
                return _apply_guided(args[0], kind, slope, inplace, self.switch)
            if name in _FUNC_OTHER or (name in _FUNC_GUIDED and not self.make_guided):
                d = self.report.functional_unguided
                d[name] = d.get(name, 0) + 1
        return func(*args, **kwargs)


def _guided_forward(kind, slope, switch=None):
    def forward(self, x):
        return _apply_guided(x, kind, slope, getattr(self, "inplace", False), switch)
    return forward


@contextmanager
def guided(model: nn.Module, functional: bool = True, warn: bool = True, switch: RuleSwitch | None = None):
    """Context manager: inside it, ``model``'s ReLU / ReLU6 / LeakyReLU modules (in-place ones
    included) backpropagate by the guided rule (module docstring).  Yields a :class:`GuidedReport`;
    the model is restored exactly on exit (even on error).  With ``functional=True`` functional
    ReLU calls made during forward passes inside the block are guided too and other functional
    non-linearities are counted.  Warns (:class:`GuidedWarning`) when something stays standard:
    at entry for modules, at exit for functional calls.  With a :class:`RuleSwitch` the activations
    backpropagate by ``switch.rule`` at the time the backward runs: a forward pass made inside the block
    gives the guided gradient and the standard one (differentiable) from the same graph."""
    report = GuidedReport()
    saved, hooks = [], []
    unguided = set(unguided_activations(model))
    report.unguided = sorted(unguided)
    mode = _FunctionalGuide(report, functional, switch)

    def _enter(*_):
        mode.depth += 1

    def _leave(*_):
        mode.depth -= 1

    try:
        for name, m in model.named_modules():
            k = _kind_of(m)
            if k is not None:
                saved.append((m, m.__dict__.get("forward", None)))
                m.forward = types.MethodType(_guided_forward(*k, switch), m)
                report.guided.append(name)
            elif f"{name or '<model>'} ({type(m).__name__})" in unguided:
                hooks.append(m.register_forward_pre_hook(_enter))
                hooks.append(m.register_forward_hook(_leave))
        if warn and report.unguided:
            warnings.warn(report.message(), GuidedWarning, stacklevel=3)
        before = dict(report.functional_unguided)
        with mode:
            yield report
        if warn and report.functional_unguided and report.functional_unguided != before:
            warnings.warn(report.message(), GuidedWarning, stacklevel=3)
    finally:
        for m, fwd in saved:
            if fwd is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = fwd
        for h in hooks:
            h.remove()


# ------------------------------------------------------------------------------ helpers
@contextmanager
def preserve_batchnorm_stats(model: nn.Module):
    """Run extra forward passes in train mode without moving BatchNorm running statistics."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase)
           and m.track_running_stats and m.training]
    saved = [(m, m.running_mean.clone() if m.running_mean is not None else None,
              m.running_var.clone() if m.running_var is not None else None,
              m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in bns]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, mu, var, n in saved:
                if mu is not None:
                    m.running_mean.copy_(mu)
                if var is not None:
                    m.running_var.copy_(var)
                if n is not None:
                    m.num_batches_tracked.copy_(n)


def _check_x(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"expected a float image batch (B,C,H,W), got {shape}; "
                         "add a batch dimension with x[None] for a single image.")
    return x


def _targets(target, logits: torch.Tensor) -> torch.Tensor:
    B, C = logits.shape[0], logits.shape[-1]
    if target is None:
        return logits.detach().argmax(-1)
    t = torch.as_tensor(target, device=logits.device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(B)
    if t.numel() != B:
        raise InputError(f"target has {t.numel()} entries for a batch of {B} images; "
                         "pass None (predicted class), one int, or a (B,) tensor.")
    if (t < 0).any() or (t >= C).any():
        raise InputError(f"target {t.tolist()} out of range for {C} classes; use indices in [0, {C - 1}].")
    return t


def class_score(logits: torch.Tensor, target, score: str = "logit", loss_fn=None) -> torch.Tensor:
    """Scalar whose input gradient is the explanation: ``"logit"`` = sum_i y_i[t_i] (each image's
    own class logit; images do not mix in eval mode), ``"loss"`` = ``loss_fn(logits, t)``
    (default mean cross-entropy, thesis eq. 4.1-4.2, so gradients carry its 1/n)."""
    if logits.dim() != 2:
        raise InputError(f"the model returned logits of shape {tuple(logits.shape)}; expected (B, C).")
    t = _targets(target, logits)
    if score == "logit":
        return logits.gather(1, t[:, None]).sum()
    if score == "loss":
        return (loss_fn or F.cross_entropy)(logits, t)
    raise InputError(f"score={score!r} is not known; use 'logit' or 'loss'.")


def guided_gradient(model: nn.Module, x: torch.Tensor, target=None, score: str = "logit",
                    loss_fn=None, functional: bool = True, warn: bool = True) -> torch.Tensor:
    """Guided-backprop input gradient ``d_G score / dx`` -> (B, C, H, W), detached, one batched
    forward + backward.  ``x`` is the model's (normalized) input; ``target`` None = predicted class,
    an int, or a (B,) tensor; ``score`` see :func:`class_score`.  Equals captum's
    ``GuidedBackprop(model).attribute(x, target)`` for ``score="logit"`` on models whose
    activations are ``nn.ReLU`` modules.  BatchNorm running statistics are left untouched in train
    mode; parameter ``.grad`` are not modified."""
    x = _check_x(x)
    xi = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), preserve_batchnorm_stats(model), guided(model, functional, warn):
        logits = model(xi)
        s = class_score(logits, target, score, loss_fn)
        (g,) = torch.autograd.grad(s, xi)
    return g.detach()
