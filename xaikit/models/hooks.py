"""Hooks on a model that leave it as they found it: :class:`LayerCapture` (a layer's output, and the
gradient of a score with respect to it) and :func:`model_guard` (eval mode and untouched ``.grad`` fields
for the duration of a call).

They live with the models, below the attributors, so that :mod:`xaikit.models.fast` (which must recognize
the capture hooks) and the experiments can use them without importing :mod:`xaikit.attributors`.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn as nn

from ..errors import LayerError

__all__ = ["LayerCapture", "model_guard"]


class LayerCapture:
    """Forward hook recording a layer's output; the hook is removed on exit (context manager).

    ``raw`` is the module output as produced (tokens for ViTs), ``activations`` the same after the
    reshape transform (``(B, C, h, w)``).  With ``grad=True`` the output is made differentiable even
    when the model is frozen, so :meth:`gradients` can take ``d score / d A`` with
    :func:`torch.autograd.grad` (no ``.grad`` of any parameter is touched).
    ``replace``: optional callable ``out -> new_out`` whose result replaces the layer's output.
    """

    def __init__(self, layer: nn.Module, reshape: Callable | None = None, grad: bool = False,
                 replace: Callable | None = None):
        self.layer, self.reshape, self.grad, self.replace = layer, reshape, grad, replace
        self.raw = None
        self._handle = None

    def _hook(self, module, inputs, out):
        rest = None
        if isinstance(out, (tuple, list)):  # e.g. nn.MultiheadAttention: (output, weights)
            out, rest = out[0], out
        if self.replace is not None:
            out = self.replace(out)
        if self.grad and torch.is_grad_enabled() and not out.requires_grad:
            out = out.detach().requires_grad_(True)
        self.raw = out
        # the model continues on a copy: an in-place operation after the layer (a ResNet block's
        # ``out += identity`` after bn2, an in-place ReLU) must not change the captured output (nor, for
        # a frozen model, hit the leaf tensor made differentiable above); gradients flow through the copy
        nxt = out.clone() if isinstance(out, torch.Tensor) else out
        if rest is None:
            return nxt
        # the rest of the layer's output travels on unchanged (the model may unpack it)
        items = (nxt, *rest[1:])
        if isinstance(rest, list):
            return list(items)
        return type(rest)(*items) if hasattr(rest, "_fields") else type(rest)(items)

    def __enter__(self) -> "LayerCapture":
        self._handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        return False

    def _shape(self, t: torch.Tensor) -> torch.Tensor:
        if self.reshape is not None:
            t = self.reshape(t)
        if t.dim() != 4:
            raise LayerError(f"the layer output has shape {tuple(t.shape)}, not a (B, C, h, w) feature map; "
                             "pick a convolutional layer, or pass reshape=<callable tokens -> (B, C, h, w)>")
        return t

    @property
    def activations(self) -> torch.Tensor:
        if self.raw is None:
            raise LayerError("the target layer was not called during the forward pass; pick a layer "
                             "on the path from input to output (see xaikit.models.list_layers(model))")
        return self._shape(self.raw)

    def gradients(self, score: torch.Tensor, retain_graph: bool = False) -> torch.Tensor:
        """``d sum(score) / d A`` reshaped like :attr:`activations` (B, C, h, w)."""
        if self.raw is None or not self.raw.requires_grad:
            raise LayerError("no gradient reaches the target layer; is it on the path to the output?")
        (g,) = torch.autograd.grad(score.sum(), self.raw, retain_graph=retain_graph, allow_unused=True)
        if g is None:
            raise LayerError("the class score does not depend on the target layer's output")
        return self._shape(g)


@contextlib.contextmanager
def model_guard(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode during the block; afterwards every submodule gets back its *own* mode (a BatchNorm kept
    frozen in eval mode inside a model in train mode stays in eval mode) and every parameter its ``.grad``
    field, also when the block, or ``model.eval()`` itself, raises.

    BatchNorm running statistics are updated only in train mode, so nothing run inside the guard changes
    the model's buffers."""
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.grad) for p in model.parameters()]
    try:
        model.eval()
        yield model
    finally:
        for p, g in grads:
            p.grad = g
        for m, training in modes:
            m.training = training
