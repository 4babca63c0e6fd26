"""Grouped convolutions whose double backward keeps the groups in one call.

Interpretable-gradient training (:mod:`.interpretable`) back-propagates through dL_C/dx (``create_graph``), so
every convolution's backward is itself differentiated. PyTorch's double backward of a convolution
(``aten::_convolution_double_backward``) computes the weight term ``conv(ggI, gO)`` with one convolution *per
group* when ``groups > 1``: a depthwise convolution with C channels becomes C tiny convolutions. MobileNet-V2 at
width 0.5 on 32-px images makes 3755 convolution calls per regularized step that way, and its step costs 3.8x a
plain one (ResNet-18, without grouped convolutions: 2.1x).

:func:`grouped_double_backward` swaps, inside a ``with`` block, the forward of each grouped ``nn.Conv2d``
(``groups > 1``, no bias, zero padding) for :class:`_Conv`: the same ``F.conv2d`` forward, a backward that calls
``aten::convolution_backward`` with the same arguments as autograd (first-order gradients identical bit for
bit), and a double backward made of the three batched calls it needs:

* d/d gO: ``conv2d(ggI, W) + conv2d(x, ggW)`` (the backward is linear in gO);
* d/d W from ggI: the weight gradient of a convolution of ``ggI`` whose output gradient is ``gO``;
* d/d x from ggW: the input gradient of a convolution with weight ``ggW`` whose output gradient is ``gO``.

Tested against PyTorch's own double backward in float64 (``gradgradcheck`` and the regularized loss's
parameter gradients).
"""
from __future__ import annotations

import contextlib
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["grouped_double_backward", "grouped_convs"]


def _backward(gO, x, w, conf, mask):
    stride, padding, dilation, groups = conf
    return torch.ops.aten.convolution_backward(gO, x, w, None, stride, padding, dilation, False, [0, 0], groups,
                                               mask)


class _ConvGrads(torch.autograd.Function):
    """(dL/dx, dL/dW) of a bias-free convolution from dL/dy, as autograd computes them; its own backward (the
    double backward) in batched calls."""

    @staticmethod
    def forward(ctx, gO, x, w, conf):
        ctx.save_for_backward(gO, x, w)
        ctx.conf = conf
        gI, gW, _ = _backward(gO, x, w, conf, [True, True, False])
        return gI, gW

    @staticmethod
    def backward(ctx, ggI, ggW):
        gO, x, w = ctx.saved_tensors
        stride, padding, dilation, groups = conf = ctx.conf
        d_gO = d_x = d_w = None
        if ctx.needs_input_grad[0]:
            if ggI is not None:
                d_gO = F.conv2d(ggI, w, None, stride, padding, dilation, groups)
            if ggW is not None:
                part = F.conv2d(x, ggW, None, stride, padding, dilation, groups)
                d_gO = part if d_gO is None else d_gO + part
        if ctx.needs_input_grad[2] and ggI is not None:
            d_w = _backward(gO, ggI, w, conf, [False, True, False])[1]
        if ctx.needs_input_grad[1] and ggW is not None:
            d_x = _backward(gO, x, ggW, conf, [True, False, False])[0]
        return d_gO, d_x, d_w, None


class _Conv(torch.autograd.Function):
    """``F.conv2d(x, w)`` without bias whose backward is :class:`_ConvGrads` (differentiable once more)."""

    @staticmethod
    def forward(ctx, x, w, conf):
        ctx.save_for_backward(x, w)
        ctx.conf = conf
        stride, padding, dilation, groups = conf
        return F.conv2d(x, w, None, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, gO):
        x, w = ctx.saved_tensors
        gI, gW = _ConvGrads.apply(gO, x, w, ctx.conf)
        return (gI if ctx.needs_input_grad[0] else None), (gW if ctx.needs_input_grad[1] else None), None


def _forward(self, x):
    return _Conv.apply(x, self.weight, (tuple(self.stride), tuple(self.padding), tuple(self.dilation), self.groups))


def grouped_convs(model: nn.Module) -> list[nn.Conv2d]:
    """The convolutions :func:`grouped_double_backward` handles: ``nn.Conv2d`` with ``groups > 1``, no bias,
    zero padding given as sizes (not ``"same"``) and no hook or forward of their own."""
    return [m for m in model.modules()
            if type(m) is nn.Conv2d and m.groups > 1 and m.bias is None and m.padding_mode == "zeros"
            and not isinstance(m.padding, str) and "forward" not in m.__dict__]


@contextlib.contextmanager
def grouped_double_backward(model: nn.Module):
    """Inside the block, the grouped convolutions of ``model`` (:func:`grouped_convs`) run as :class:`_Conv`:
    the same forward values and first-order gradients, a double backward without PyTorch's per-group loop.
    Restored on exit (even on error)."""
    convs = grouped_convs(model)
    try:
        for m in convs:
            m.forward = types.MethodType(_forward, m)
        yield convs
    finally:
        for m in convs:
            m.__dict__.pop("forward", None)
