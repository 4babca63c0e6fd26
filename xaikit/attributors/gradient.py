"""Gradient attributions in input space: vanilla gradient, guided backprop, SmoothGrad, Integrated
Gradients.

Each method first computes a *raw* attribution ``(B, 3, H, W)`` in the model's normalized input
space (:meth:`GradientAttributor.attributions`, also ``explain(...).extras["attributions"]``), then reduces
it over the colour channels to one value per pixel with ``reduce`` (see :func:`reduce_channels`):

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
import torch.nn as nn

from ..core.conventions import check_count, choice, class_score, one_of, substrate
from ..core.devices import back
from ..core.targets import check_target, resolve_target
from ..errors import ConfigError, InputError
from ..models.hooks import model_guard
from .guided import guided_gradient
from .base import Attributor, Explanation, check_bool, check_number, fingerprint, register

REDUCTIONS = ("abs_max", "abs_sum", "abs_mean", "sum", "max", "l2")
PATH_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
NT_TYPES = ("smoothgrad", "smoothgrad_sq")


def reduce_channels(attr: torch.Tensor, mode: str = "abs_max") -> torch.Tensor:
    """(B, C, H, W) attribution -> (B, H, W) per-pixel map by ``mode`` (module docstring)."""
    mode = one_of("reduce", mode, REDUCTIONS)
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
    return attr.pow(2).sum(1).sqrt()


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
    """Base of the input-gradient methods: :meth:`attributions` gives the raw (B, 3, H, W) tensor;
    subclasses implement ``_raw(x, t) -> (attributions, logits, target)``."""

    uses_layer = False

    def __init__(self, model: nn.Module, layer=None, *, reduce: str = "abs_max", score: str = "logit",
                 batch_size: int | None = None):
        super().__init__(model, None, batch_size=batch_size)
        self._set_options(reduce=one_of("reduce", reduce, REDUCTIONS), score=choice("score", score, "score"))

    def attributions(self, x, target=None) -> torch.Tensor:
        """Raw attribution (B, 3, H, W) in normalized input space, before channel reduction, on the device
        of ``x``."""
        home = x.device if isinstance(x, torch.Tensor) else None
        x = self._prepare(x)
        t = check_target(target, x.shape[0], self.num_classes, x.device)
        with model_guard(self.model):
            attr, _, _ = self._raw(x, t)
        return back(attr.detach(), home)

    def _raw(self, x, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def _attribute(self, x, t):
        attr, logits, target = self._raw(x, t)
        return Explanation(reduce_channels(attr, self.reduce), target, logits, {"attributions": attr})

    def _clean_target(self, x, t):
        """(target, logits): the predicted class on the clean input where ``t`` is None (one no-grad forward)."""
        with torch.no_grad():
            logits = self.model(x)
        return resolve_target(t, logits), logits


@register("saliency", "vanilla_gradient", "gradient")
class Saliency(GradientAttributor):
    """Vanilla gradient (Simonyan et al. 2014): |d y_c / d x|, max over channels by default.

    ``attributions`` returns the signed gradient (captum ``Saliency(abs=False)``).

    Args:
        reduce: channel reduction of the gradient: ``"abs_max"`` (default; the paper's max_c |g_c|),
            ``"abs_sum"``, ``"abs_mean"``, ``"sum"``, ``"max"`` or ``"l2"``.
        score: the class score differentiated: ``"logit"`` (default; the paper, captum's ``target``),
            ``"softmax"`` or ``"log_softmax"``.
        batch_size: accepted for a uniform interface; one forward and one backward for the batch.

    ``explain(...).extras``: ``"attributions"`` (B, 3, H, W) the signed gradient.
    """

    def _raw(self, x, t):
        g, logits, tt = input_gradient(self.model, x, t, self.score)
        return g, logits, tt


@register("guided_backprop", "guidedbackprop", "guided_bp")
class GuidedBackprop(GradientAttributor):
    """Guided backpropagation (Springenberg et al. 2014) via :func:`xaikit.attributors.guided.guided_gradient`.

    ReLU, ReLU6 and LeakyReLU modules and functional calls are guided; others are reported. Equal to
    captum's ``GuidedBackprop`` on ReLU networks.

    Args:
        reduce: channel reduction: ``"abs_max"`` (default), ``"abs_sum"``, ``"abs_mean"``, ``"sum"``,
            ``"max"`` or ``"l2"``.
        score: ``"logit"`` only (the paper's and captum's guided gradient of the target logit).
        warn: warn about activations that cannot be guided (default True).
        batch_size: accepted for a uniform interface; one forward and one backward for the batch.

    ``explain(...).extras``: ``"attributions"`` (B, 3, H, W) the guided gradient.
    """

    def __init__(self, model: nn.Module, layer=None, *, reduce: str = "abs_max", score: str = "logit",
                 warn: bool = True, batch_size: int | None = None):
        score = choice("score", score, "score")
        if score != "logit":
            raise ConfigError(f"score={score!r}: guided_backprop differentiates the target logit only; use "
                              "score='logit'")
        super().__init__(model, layer, reduce=reduce, score=score, batch_size=batch_size)
        self._set_options(warn=check_bool("warn", warn))

    def _raw(self, x, t):
        tt, logits = self._clean_target(x, t)
        return guided_gradient(self.model, x, tt, score="logit", warn=self.warn), logits, tt


@register("smoothgrad", "smooth_grad")
class SmoothGrad(GradientAttributor):
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the image (eq. 3).

    The mean over ``n`` noisy copies x + eps_k of the gradient (``nt_type="smoothgrad"``) or of its square
    (``"smoothgrad_sq"``). eps_k ~ N(0, sigma^2) with sigma = ``noise_level`` * (max(x) - min(x)) per image
    (the paper's 10-20 %), or the absolute ``stdev`` when given.  The n noise patterns are drawn once per
    call from ``torch.Generator().manual_seed(seed)`` with the shape of one image and shared by all images
    of the batch, so results are reproducible and do not depend on the batch composition (:meth:`noise`
    returns them).  The target (None: predicted class) is taken on the clean input.

    Args:
        n: number of noisy samples, >= 1; default 25.
        noise_level: sigma as a fraction of each image's value range, >= 0; default 0.15 (the paper's 10-20 %).
        stdev: absolute sigma instead (>= 0; captum's ``stdevs``); default None (use ``noise_level``).
        seed: seed of the noise generator, >= 0; default 0.
        nt_type: ``"smoothgrad"`` (default; mean gradient) or ``"smoothgrad_sq"`` (mean squared gradient).
        reduce: channel reduction: ``"abs_max"`` (default), ``"abs_sum"``, ``"abs_mean"``, ``"sum"``,
            ``"max"`` or ``"l2"``.
        score: the class score differentiated: ``"logit"`` (default), ``"softmax"`` or ``"log_softmax"``.
        batch_size: noisy images per forward/backward chunk; None: from the image size.

    ``explain(...).extras``: ``"attributions"`` (B, 3, H, W), ``"sigma"`` (B,) the noise standard deviations.
    """

    def __init__(self, model: nn.Module, layer=None, *, n: int = 25, noise_level: float = 0.15,
                 stdev: float | None = None, seed: int = 0, nt_type: str = "smoothgrad", reduce: str = "abs_max",
                 score: str = "logit", batch_size: int | None = None):
        super().__init__(model, layer, reduce=reduce, score=score, batch_size=batch_size)
        self._set_options(n=check_count("n", n, 1), noise_level=check_number("noise_level", noise_level, 0),
                          stdev=None if stdev is None else check_number("stdev", stdev, 0),
                          seed=check_count("seed", seed, 0), nt_type=one_of("nt_type", nt_type, NT_TYPES))

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
        tt, logits = self._clean_target(x, t)
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
        return acc / n, logits, tt

    def _attribute(self, x, t):
        e = super()._attribute(x, t)
        e.extras["sigma"] = self.sigma(x)
        return e


def path_weights(steps: int, method: str = "gausslegendre"):
    """Quadrature nodes alpha_k in [0, 1] and weights w_k for int_0^1 f(alpha) d alpha.

    ``riemann_left|right|middle``: w_k = 1/m; ``riemann_trapezoid``: nodes linspace(0, 1, m), weights
    1/(m-1) with the end points halved (exact for linear f; captum uses 1/m there, i.e. its
    trapezoid result is (m-1)/m of this one); ``gausslegendre``: Gauss-Legendre (captum's default).
    """
    method = one_of("method", method, PATH_METHODS)
    m = check_count("steps", steps, 2 if method == "riemann_trapezoid" else 1)
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
    else:
        nodes, wts = np.polynomial.legendre.leggauss(m)
        a = 0.5 * (nodes + 1.0)
        w = 0.5 * wts
    return a, w


@register("integrated_gradients", "ig", "integratedgradients")
class IntegratedGradients(GradientAttributor):
    """Integrated Gradients (Sundararajan et al. 2017, eq. 1 and its Riemann approximation eq. 3).

    (x - x') * int_0^1 d f_c(x' + a (x - x')) / d x d a, by the quadrature ``method`` with ``steps`` nodes
    (see :func:`path_weights`).  Completeness: sum of attributions ~= f_c(x) - f_c(x') (:meth:`completeness`).
    The target is taken on the clean input (None: predicted class).

    Args:
        steps: number of quadrature nodes on the path, >= 1 (>= 2 for the trapezoid); default 50 (captum's).
        method: quadrature: ``"gausslegendre"`` (default; captum's), ``"riemann_left"``, ``"riemann_right"``,
            ``"riemann_middle"`` or ``"riemann_trapezoid"``.
        baseline: x', a substrate of :mod:`xaikit.core.conventions`: ``"mean"`` (default, alias ``"zeros"``:
            0 in the normalized space = the mean colour, as captum's zero baseline), ``"black"``, ``"min"``,
            ``"blur"``, a number (in the normalized space) or a tensor broadcastable to x.
        reduce: channel reduction: ``"abs_sum"`` (default), ``"abs_max"``, ``"abs_mean"``, ``"sum"``,
            ``"max"`` or ``"l2"``.
        score: the class score differentiated: ``"logit"`` (default), ``"softmax"`` or ``"log_softmax"``.
        batch_size: path points per forward/backward chunk; None: from the image size.

    ``explain(...).extras``: ``"attributions"`` (B, 3, H, W).
    """

    def __init__(self, model: nn.Module, layer=None, *, steps: int = 50, method: str = "gausslegendre",
                 baseline: str | float | torch.Tensor = "mean", reduce: str = "abs_sum", score: str = "logit",
                 batch_size: int | None = None):
        super().__init__(model, layer, reduce=reduce, score=score, batch_size=batch_size)
        path_weights(steps, method)  # validates both
        if isinstance(baseline, torch.Tensor):
            self._baseline, shown = baseline.detach(), fingerprint(baseline)
        elif isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
            self._baseline = shown = check_number("baseline", baseline)
        elif isinstance(baseline, str):
            self._baseline = shown = choice("substrate", baseline, "baseline")
        else:
            raise ConfigError(f"baseline={baseline!r}: use 'mean' (alias 'zeros'), 'black', 'min', 'blur', a number "
                              "or a tensor broadcastable to the input")
        self._set_options(steps=check_count("steps", steps, 1), method=method)
        self.options["baseline"] = shown

    @property
    def baseline(self):
        """The baseline option as given (a tensor stays a tensor; ``options`` holds its fingerprint)."""
        return self._baseline

    def baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        """The baseline x' for a normalized batch ``x``, shaped like ``x``."""
        b = self._baseline
        if isinstance(b, torch.Tensor):
            b = b.to(dtype=x.dtype, device=x.device)
        else:
            b = substrate(x, b, self.info)
        try:
            return torch.broadcast_to(b, x.shape).clone()
        except RuntimeError as e:
            raise InputError(f"integrated_gradients: baseline of shape {tuple(b.shape)} does not broadcast "
                             f"to the input {tuple(x.shape)}") from e

    def _raw(self, x, t):
        tt, logits = self._clean_target(x, t)
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
        return diff * acc, logits, tt

    def completeness(self, x, target=None):
        """(sum of attributions, f_c(x) - f_c(baseline)) per image, both (B,), on the device of ``x``."""
        home = x.device if isinstance(x, torch.Tensor) else None
        x = self._prepare(x)
        t = check_target(target, x.shape[0], self.num_classes, x.device)
        with model_guard(self.model):
            attr, _, tt = self._raw(x, t)
            with torch.no_grad():
                fx = class_score(self.model(x), tt, self.score)
                fb = class_score(self.model(self.baseline_for(x)), tt, self.score)
        return back((attr.detach().flatten(1).sum(1), fx - fb), home)
