"""Gradient attributions in input space: vanilla gradient, guided backprop, SmoothGrad, Integrated
Gradients.

Each method first computes a *raw* attribution ``(B, 3, H, W)`` in the model's normalized input
space (:meth:`GradientAttributor.attributions`), then reduces it over the colour channels to one
value per pixel with ``reduce`` (see :func:`reduce_channels`):

* ``"abs_max"``  max_c |a_c|  (Simonyan et al. 2014, eq. of Sec. 3.1; default of ``saliency``,
  ``guided_backprop``, ``smoothgrad``)
* ``"abs_sum"``  sum_c |a_c|  (default of ``integrated_gradients``)
* ``"sum"`` sum_c a_c, ``"max"`` max_c a_c, ``"l2"`` ||a||_2 over channels, ``"abs_mean"`` mean_c |a_c|

The reduced map is then min-max normalized (and is already at the input size).  The class score
differentiated is the target logit by default (``score="logit"``, as captum's ``target=``);
``"softmax"`` / ``"log_softmax"`` are available.  Every pass is batched over images and over
noise samples / path steps in chunks of ``batch_size`` forward passes.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..core.devices import back
from .base import Attributor, check_input, check_target, class_score, model_guard, register, resolve_target

REDUCTIONS = ("abs_max", "abs_sum", "abs_mean", "sum", "max", "l2")


def reduce_channels(attr: torch.Tensor, mode: str = "abs_max") -> torch.Tensor:
    """(B, C, H, W) attribution -> (B, H, W) per-pixel map by ``mode`` (module docstring)."""
    if mode == "abs_max":
        return attr.abs().amax(1)
    if mode == "abs_sum":
        return attr.abs().sum(1)
    if mode == "abs_mean":
        return attr.abs().mean(1)
    if mode == "sum":
        return attr.sum(1)
    if mode == "max":
        return attr.amax(1)
    if mode == "l2":
        return attr.pow(2).sum(1).sqrt()
    raise ConfigError(f"reduce={mode!r} is not known; use one of {REDUCTIONS}")


def input_gradient(model, x: torch.Tensor, target: torch.Tensor | None, score: str = "logit"):
    """``d score_c / d x`` for a batch: returns (grad (B,3,H,W), logits (B,K), target (B,)).

    One forward + backward; ``target`` None means the predicted class of each row."""
    xi = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(xi)
        t = resolve_target(target, logits)
        s = class_score(logits, t, score)
        (g,) = torch.autograd.grad(s.sum(), xi)
    return g.detach(), logits.detach(), t


class GradientAttributor(Attributor):
    """Base of the input-gradient methods: ``attributions`` gives the raw (B, 3, H, W) tensor."""

    uses_layer = False
    defaults = {"reduce": "abs_max", "score": "logit"}

    def __init__(self, model, layer=None, **options):
        super().__init__(model, layer=None, **options)
        if self.reduce not in REDUCTIONS:
            raise ConfigError(f"{self.name}: reduce={self.reduce!r}; use one of {REDUCTIONS}")
        if self.score not in ("logit", "softmax", "log_softmax"):
            raise ConfigError(f"{self.name}: score={self.score!r}; use 'logit', 'softmax' or 'log_softmax'")

    def attributions(self, x, target=None) -> torch.Tensor:
        """Raw attribution (B, 3, H, W) in normalized input space, before channel reduction."""
        home = x.device if isinstance(x, torch.Tensor) else None
        x = check_input(x, self.model)
        t = check_target(target, x.shape[0], self.num_classes, x.device)
        with model_guard(self.model):
            return back(self._raw(x, t).detach(), home)

    def _raw(self, x, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def _attribute(self, x, t):
        return reduce_channels(self._raw(x, t), self.reduce)

    def _clean_target(self, x, t):
        """Predicted class on the clean input when ``t`` is None (one no-grad forward)."""
        with torch.no_grad():
            logits = self.model(x)
        self.last_logits = logits
        self.last_target = resolve_target(t, logits)
        return self.last_target


@register("saliency", "vanilla_gradient", "gradient")
class Saliency(GradientAttributor):
    """Vanilla gradient (Simonyan et al. 2014): |d y_c / d x|, max over channels by default.

    ``attributions`` returns the signed gradient (captum ``Saliency(abs=False)``)."""

    def _raw(self, x, t):
        g, logits, tt = input_gradient(self.model, x, t, self.score)
        self.last_logits, self.last_target = logits, tt
        return g


@register("guided_backprop", "guidedbackprop", "guided_bp")
class GuidedBackprop(GradientAttributor):
    """Guided backpropagation (Springenberg et al. 2014) via :func:`xaikit.training.guided.guided_gradient`
    (ReLU, ReLU6 and LeakyReLU modules and functional calls are guided; others are reported)."""

    defaults = {"reduce": "abs_max", "score": "logit", "warn": True}

    def _raw(self, x, t):
        from ..training.guided import guided_gradient

        if self.score != "logit":
            raise ConfigError("guided_backprop differentiates the target logit only; use score='logit'")
        tt = self._clean_target(x, t)
        return guided_gradient(self.model, x, tt, score="logit", warn=self.warn)


@register("smoothgrad", "smooth_grad")
class SmoothGrad(GradientAttributor):
    """SmoothGrad (Smilkov et al. 2017): mean over ``n`` noisy copies x + eps_k of the gradient
    (``nt_type="smoothgrad"``) or of its square (``"smoothgrad_sq"``), eq. (3) of the paper.

    eps_k ~ N(0, sigma^2) with sigma = ``noise_level`` * (max(x) - min(x)) per image (the paper's
    10-20 %), or the absolute ``stdev`` when given.  The n noise patterns are drawn once per call
    from ``torch.Generator().manual_seed(seed)`` with the shape of one image and shared by all
    images of the batch, so results are reproducible and do not depend on the batch composition
    (:meth:`noise` returns them).  The target (None: predicted class) is taken on the clean input.
    """

    defaults = {"reduce": "abs_max", "score": "logit", "n": 25, "noise_level": 0.15, "stdev": None,
                "seed": 0, "nt_type": "smoothgrad"}

    def __init__(self, model, layer=None, **options):
        super().__init__(model, layer=layer, **options)
        if int(self.n) < 1:
            raise ConfigError(f"smoothgrad: n must be >= 1, got {self.n}")
        if self.nt_type not in ("smoothgrad", "smoothgrad_sq"):
            raise ConfigError(f"smoothgrad: nt_type={self.nt_type!r}; use 'smoothgrad' or 'smoothgrad_sq'")

    def sigma(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) noise standard deviation per image."""
        if self.stdev is not None:
            return torch.full((x.shape[0],), float(self.stdev), dtype=x.dtype, device=x.device)
        flat = x.reshape(x.shape[0], -1)
        return float(self.noise_level) * (flat.amax(1) - flat.amin(1))

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """(n, B, 3, H, W) noise added to ``x`` (deterministic given ``seed``)."""
        g = torch.Generator().manual_seed(int(self.seed))
        eps = torch.randn((int(self.n),) + tuple(x.shape[1:]), generator=g).to(x.device, x.dtype)
        return eps[:, None] * self.sigma(x).view(1, -1, 1, 1, 1)

    def _raw(self, x, t):
        tt = self._clean_target(x, t)
        B = x.shape[0]
        n = int(self.n)
        g = torch.Generator().manual_seed(int(self.seed))
        eps = torch.randn((n,) + tuple(x.shape[1:]), generator=g).to(x.device, x.dtype)
        sig = self.sigma(x).view(1, -1, 1, 1, 1)
        per = max(1, self.batch_size // B)
        acc = torch.zeros_like(x)
        for s in range(0, n, per):
            e = eps[s:s + per]
            k = e.shape[0]
            xs = (x[None] + e[:, None] * sig).reshape((k * B,) + tuple(x.shape[1:]))
            gr, _, _ = input_gradient(self.model, xs, tt.repeat(k), self.score)
            gr = gr.view((k,) + tuple(x.shape))
            acc += (gr * gr if self.nt_type == "smoothgrad_sq" else gr).sum(0)
        return acc / n


def path_weights(steps: int, method: str = "gausslegendre"):
    """Quadrature nodes alpha_k in [0, 1] and weights w_k for int_0^1 f(alpha) d alpha.

    ``riemann_left|right|middle``: w_k = 1/m; ``riemann_trapezoid``: nodes linspace(0, 1, m), weights
    1/(m-1) with the end points halved (exact for linear f; captum uses 1/m there, i.e. its
    trapezoid result is (m-1)/m of this one); ``gausslegendre``: Gauss-Legendre (captum's default).
    """
    m = int(steps)
    if m < 1 or (method == "riemann_trapezoid" and m < 2):
        raise ConfigError(f"integrated_gradients: steps={steps} is too small for {method}")
    if method == "riemann_left":
        a = np.arange(m) / m
        w = np.full(m, 1.0 / m)
    elif method == "riemann_right":
        a = np.arange(1, m + 1) / m
        w = np.full(m, 1.0 / m)
    elif method == "riemann_middle":
        a = (np.arange(m) + 0.5) / m
        w = np.full(m, 1.0 / m)
    elif method == "riemann_trapezoid":
        a = np.linspace(0.0, 1.0, m)
        w = np.full(m, 1.0 / (m - 1))
        w[0] /= 2
        w[-1] /= 2
    elif method == "gausslegendre":
        nodes, wts = np.polynomial.legendre.leggauss(m)
        a = 0.5 * (nodes + 1.0)
        w = 0.5 * wts
    else:
        raise ConfigError(f"integrated_gradients: method={method!r}; use riemann_left, riemann_right, "
                          "riemann_middle, riemann_trapezoid or gausslegendre")
    return a, w


@register("integrated_gradients", "ig", "integratedgradients")
class IntegratedGradients(GradientAttributor):
    """Integrated Gradients (Sundararajan et al. 2017, eq. 1 and its Riemann approximation eq. 3):
    (x - x') * int_0^1 d f_c(x' + a (x - x')) / d x d a, by the quadrature ``method`` with ``steps``
    nodes (see :func:`path_weights`).  ``baseline``: ``"zeros"`` (0 in normalized space, the mean
    colour; default, as captum), ``"black"`` (pixel value 0 normalized), a float, or a tensor
    broadcastable to x.  Completeness: sum of attributions ~= f_c(x) - f_c(x') (:meth:`completeness`).
    The target is taken on the clean input (None: predicted class).  Reduced by ``abs_sum`` by default.
    """

    defaults = {"reduce": "abs_sum", "score": "logit", "steps": 50, "method": "gausslegendre",
                "baseline": "zeros"}

    def __init__(self, model, layer=None, **options):
        super().__init__(model, layer=layer, **options)
        path_weights(self.steps, self.method)  # validate early

    def baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        b = self.baseline
        if isinstance(b, str):
            if b == "zeros":
                return torch.zeros_like(x)
            if b == "black":
                return self.info.normalize(torch.zeros_like(x))
            raise ConfigError(f"integrated_gradients: baseline={b!r}; use 'zeros', 'black', a float or a tensor")
        if isinstance(b, (int, float)):
            return torch.full_like(x, float(b))
        b = torch.as_tensor(b, dtype=x.dtype, device=x.device)
        try:
            return torch.broadcast_to(b, x.shape).clone()
        except RuntimeError as e:
            raise InputError(f"integrated_gradients: baseline of shape {tuple(b.shape)} does not broadcast "
                             f"to the input {tuple(x.shape)}") from e

    def _raw(self, x, t):
        tt = self._clean_target(x, t)
        base = self.baseline_for(x)
        alphas, weights = path_weights(self.steps, self.method)
        alphas = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
        weights = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
        B = x.shape[0]
        per = max(1, self.batch_size // B)
        diff = x - base
        acc = torch.zeros_like(x)
        for s in range(0, len(alphas), per):
            a = alphas[s:s + per]
            k = a.shape[0]
            xs = (base[None] + a.view(-1, 1, 1, 1, 1) * diff[None]).reshape((k * B,) + tuple(x.shape[1:]))
            gr, _, _ = input_gradient(self.model, xs, tt.repeat(k), self.score)
            acc += (gr.view((k,) + tuple(x.shape)) * weights[s:s + k].view(-1, 1, 1, 1, 1)).sum(0)
        return diff * acc

    def completeness(self, x, target=None):
        """(sum of attributions, f_c(x) - f_c(baseline)) per image, both (B,)."""
        attr = self.attributions(x, target)
        x = check_input(x, self.model)
        with torch.no_grad(), model_guard(self.model):
            fx = class_score(self.model(x), self.last_target, self.score)
            fb = class_score(self.model(self.baseline_for(x)), self.last_target, self.score)
        return attr.flatten(1).sum(1), fx - fb
