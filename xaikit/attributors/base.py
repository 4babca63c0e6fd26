"""Common machinery of every saliency method: the :class:`Attributor` base class, the :class:`Explanation`
it returns, the registry (:func:`create`, :func:`available`), option checks, map normalization and
upsampling.

Conventions (shared by all methods; the vocabulary is :mod:`xaikit.core.conventions`, the target rule
:mod:`xaikit.core.targets`, the device rule :mod:`xaikit.core.devices`):

* ``x`` is a *normalized* batch ``(B, 3, H, W)`` (``model.xaikit.normalize`` of [0, 1] pixels), on any
  device: the method runs where the model lives and returns its tensors on the device of ``x``.
* ``target``: ``None`` = the predicted class, an ``int`` for every image, or a ``(B,)`` integer tensor.
* ``attributor(x, target)`` -> ``(B, H, W)`` in [0, 1]: raw map -> :func:`normalize_maps` ->
  :func:`upsample` (bilinear) to the input size.
* ``attributor.explain(x, target, upsample=False)`` -> :class:`Explanation`: ``maps`` ``(B, h, w)`` at the
  method's own resolution (the layer's, for CAM methods), **after** per-image min-max normalization
  (``normalize=False``: the raw map, after the method's activation ``h``, e.g. ReLU, not rescaled), the
  ``target`` classes explained, the clean ``logits`` and the method's ``extras`` (CAM weights, Score-CAM
  channel scores, Opti-CAM loss history, ...). Nothing of a call is kept on the attributor.
* Options are keyword-only arguments of each method's constructor, checked there (a
  :class:`~xaikit.errors.ConfigError` names the option, the value and what is allowed); ``attributor.options``
  holds every resolved option (canonical names, JSON-able values) but ``batch_size`` and ``reshape``,
  which change how the work is split, not the map.
* Presets (``preset="paper"`` by default): a method whose authors' code differs from its paper's text
  takes ``preset=<source>``, a bundle of option values (``Presets:`` in its docstring,
  ``docs/CONVENTIONS.md``). An option a preset may set has a
  :class:`~xaikit.core.conventions.PresetDefault` default: it prints as, and equals, the paper's value, and
  marks the option as not passed, so that an option passed explicitly wins over the preset.
  ``attributor.options`` holds ``preset`` and every option *after* the preset (what the map depends on).
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import inspect
import math
import warnings
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.conventions import auto_batch, check_count, check_images, plain
from ..core.devices import back, model_device, to_device
from ..core.targets import check_target, output_logits
from ..errors import ConfigError, InputError
from ..models.fast import inference_twin, resolve_precision
from ..models.hooks import LayerCapture, model_guard
from ..models.zoo import get_layer
from ..models.zoo import info as model_info

# ------------------------------------------------------------------------------------ result
@dataclasses.dataclass
class Explanation:
    """What a saliency method found for a batch of B images (``Attributor.explain``).

    Attributes:
        maps: (B, h, w) float32 saliency maps, whatever the model's dtype (a float64 or float16 model gets
            float32 maps); normalized to [0, 1] per image unless ``normalize=False``; at the input size with
            ``upsample=True``.
        target: (B,) long, the classes explained (the predicted ones where the target was None).
        logits: (B, C) clean logits of the images when the method computed them, else None.
        extras: method-specific details, documented by each method (``"weights"`` of the CAM family,
            Score-CAM's ``"scores"`` and ``"n_forward"``, Group-CAM's ``"masks"`` and ``"gains"``, Opti-CAM's
            ``"history"`` and ``"steps"``, Extremal Perturbation's ``"masks"`` and ``"area"``, ...).

    Every tensor lies on the device of the images given to ``explain``; :meth:`to` moves them all.
    """

    maps: torch.Tensor
    target: torch.Tensor
    logits: torch.Tensor | None = None
    extras: dict = dataclasses.field(default_factory=dict)

    def to(self, device) -> "Explanation":
        """The same explanation with every tensor (extras included, recursively) on ``device``."""
        if device is None:
            return self
        device = device.device if isinstance(device, torch.Tensor) else torch.device(device)
        return Explanation(back(self.maps, device), back(self.target, device),
                           None if self.logits is None else back(self.logits, device), back(self.extras, device))

    def cpu(self) -> "Explanation":
        return self.to("cpu")

    def __repr__(self):
        ext = ", ".join(f"{k}={tuple(v.shape) if isinstance(v, torch.Tensor) else v!r}" for k, v in self.extras.items())
        lg = None if self.logits is None else tuple(self.logits.shape)
        return (f"Explanation(maps={tuple(self.maps.shape)}, target={self.target.tolist()}, logits={lg}, "
                f"extras={{{ext}}})")


def _detached(obj):
    """Tensors (also inside dicts, lists and tuples) detached from any graph."""
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, dict):
        return {k: _detached(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detached(v) for v in obj)
    return obj


# ------------------------------------------------------------------------------------ registry
_REGISTRY: dict[str, type] = {}
_ALIASES: dict[str, str] = {"axiomcam": "xgradcam", "axiom_cam": "xgradcam", "grad_cam": "gradcam",
                            "gradcam++": "gradcampp", "score_cam": "scorecam", "opti_cam": "opticam"}

#: modules that register methods when imported (lazily, so that ``available()`` sees them all)
_METHOD_MODULES = ("cam", "score", "opticam", "gradient", "perturbation", "transformer")
_loaded = False
#: constructor arguments that are not options of the method
_NOT_OPTIONS = ("self", "model", "layer")
#: options that change how the work is split, not the map: not part of ``Attributor.options``
_EXECUTION = ("batch_size", "reshape")


def register(name: str, *aliases: str) -> Callable[[type], type]:
    """Class decorator: make an :class:`Attributor` subclass available as ``create(name, ...)``."""

    def deco(cls):
        cls.name = name
        _REGISTRY[name] = cls
        for a in aliases:
            _ALIASES[a] = name
        return cls

    return deco


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _METHOD_MODULES:
        importlib.import_module(f"{__package__}.{mod}")


def available() -> list[str]:
    """Sorted names of every registered method (aliases such as ``axiomcam`` are accepted by
    :func:`create` but not listed)."""
    _load_all()
    return sorted(_REGISTRY)


def method_class(name: str) -> type:
    """The :class:`Attributor` subclass registered as ``name`` (aliases accepted)."""
    _load_all()
    key = str(name).lower().replace("-", "")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY) + list(_ALIASES), n=3, cutoff=0.5)
        raise ConfigError(f"unknown saliency method {name!r}. "
                          + (f"Did you mean {close}? " if close else "")
                          + f"Available: {available()} (aliases: {sorted(_ALIASES)}).")
    return _REGISTRY[key]


def options_of(name_or_class) -> dict[str, Any]:
    """``{option: default}`` of a method, read from its constructor's signature (``batch_size`` included).
    The defaults are those of ``preset="paper"`` (plain values: an option a preset may change has a
    :class:`~xaikit.core.conventions.PresetDefault` default in the signature, unwrapped here)."""
    cls = name_or_class if isinstance(name_or_class, type) else method_class(name_or_class)
    sig = inspect.signature(cls.__init__)
    return {p.name: plain(p.default) for p in sig.parameters.values()
            if p.name not in _NOT_OPTIONS and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def create(name: str, model: nn.Module, layer=None, **options) -> "Attributor":
    """Build the method ``name`` on ``model`` at ``layer`` (None: the method's/model's default).

    ``options`` are the keyword-only arguments of the method's class (``help(xk.attributors.create(name,
    model))`` lists them with their defaults); an unknown one is a :class:`ConfigError` listing the valid ones.
    """
    cls = method_class(name)
    valid = options_of(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        close = {u: difflib.get_close_matches(u, list(valid), n=1, cutoff=0.6) for u in unknown}
        hint = "; ".join(f"{u!r}: did you mean {c[0]!r}?" for u, c in close.items() if c)
        raise ConfigError(f"{cls.name}: unknown option(s) {unknown}; valid options are {sorted(valid)}"
                          + (f" ({hint})" if hint else "") + f" - see help(xk.attributors.{cls.__name__})")
    return cls(model, layer=layer, **options)


# ------------------------------------------------------------------------------ option checks
def check_bool(name: str, value) -> bool:
    """A flag: True or False (NumPy booleans too); strings such as ``'no'`` and numbers are refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ConfigError(f"{name}={value!r} must be True or False")


def check_number(name: str, value, low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
                 high_open: bool = False) -> float:
    """A finite real number in the interval from ``low`` to ``high`` (ends open as asked); bools refused."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be a number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} must be a number") from None
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{name}={value!r} must be a finite number in {interval}")
    return v


def check_odd(name: str, value, minimum: int = 1) -> int:
    """A positive odd whole number (a Gaussian kernel size)."""
    v = check_count(name, value, minimum)
    if v % 2 == 0:
        raise ConfigError(f"{name}={value!r} must be odd (a kernel centred on its pixel: 1, 3, 5, ...)")
    return v


def fingerprint(t: torch.Tensor) -> str:
    """A short JSON-able stand-in for a tensor option (its shape and a hash of its values)."""
    a = t.detach().cpu().contiguous().float().numpy()
    return f"tensor{tuple(a.shape)}:sha1={hashlib.sha1(a.tobytes()).hexdigest()[:12]}"


# ------------------------------------------------------------------------------ maps helpers
def normalize_maps(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-image min-max normalization to [0, 1] over every dim but the first (thesis eq. 1.7).

    A constant map (max - min <= ``eps``, e.g. all zeros after ReLU) becomes all **zeros**: no NaN.
    NaN or infinite values raise an :class:`~xaikit.errors.InputError` (they used to become zeros: a map of
    a NaN model looked like a real, empty explanation).
    """
    m = maps.float()
    if not bool(torch.isfinite(m).all()):
        bad = (~torch.isfinite(m)).reshape(m.shape[0], -1).any(1).nonzero().flatten().tolist()
        raise InputError(f"normalize_maps: maps {bad[:10]} contain NaN or infinite values; find where they came "
                         "from (the model's weights or outputs, a division by zero) or replace them explicitly "
                         "with torch.nan_to_num(maps)")
    flat = m.reshape(m.shape[0], -1)
    lo = flat.min(1, keepdim=True).values
    hi = flat.max(1, keepdim=True).values
    rng = hi - lo
    out = torch.where(rng > eps, (flat - lo) / rng.clamp_min(eps), torch.zeros_like(flat))
    return out.reshape(m.shape)


def upsample(maps: torch.Tensor, size, mode: str = "bilinear", align_corners: bool = False) -> torch.Tensor:
    """Resize ``(B, h, w)`` or ``(B, K, h, w)`` maps to ``size`` = (H, W) (bilinear by default).

    ``align_corners=False`` matches ``cv2.resize`` (used by the grad-cam package for its output);
    Score-CAM's masks follow grad-cam's ``UpsamplingBilinear2d`` (``align_corners=True``).
    """
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size[-2:])
    three = maps.dim() == 3
    m = maps[:, None] if three else maps
    if tuple(m.shape[-2:]) != size:
        kw = {"align_corners": align_corners} if mode in ("bilinear", "bicubic") else {}
        m = F.interpolate(m.float(), size=size, mode=mode, **kw)
    return m[:, 0] if three else m


_upsample = upsample


# ------------------------------------------------------------------------------ base class
class Attributor:
    """Base class of saliency methods.

    A subclass declares its options as keyword-only arguments of ``__init__`` (with defaults and type hints,
    documented in an ``Args:`` section of its docstring), checks them, calls ``super().__init__`` and records
    the resolved values with :meth:`_set_options`; it implements :meth:`_attribute` ``(x, target|None) ->``
    :class:`Explanation` with the raw ``(B, h, w)`` maps. ``x`` arrives checked, on the model's device, and
    the model in eval mode (:func:`~xaikit.models.hooks.model_guard`).

    Args:
        model: the classifier (an ``nn.Module``; ``model.xaikit`` metadata is read, or built).
        layer: dotted module name or module of the target layer, for methods that read one (``uses_layer``);
            None: the model's default layer. Ignored by the other methods.
        batch_size: forward passes per chunk (perturbation methods, noise samples, path steps); None: chosen
            from the image size and precision by :func:`xaikit.core.conventions.auto_batch` (on CPU 2 at 224 px
            in fp32, 8 in bf16).
        reshape: tokens -> (B, C, h, w) for layer methods on transformers (ViTs default to
            ``model.xaikit.reshape``).
    """

    name = "base"
    uses_layer = True
    #: inference twin for the forward passes of perturbed inputs (methods with a ``twin`` option set it)
    twin = False
    #: whether those passes may run at a reduced forward precision (:mod:`xaikit.models.fast`); a method whose
    #: results do not survive bf16 (``tests/test_precision.py``) sets it False and always runs them in fp32
    reduced_precision = True

    def __init__(self, model: nn.Module, layer=None, *, batch_size: int | None = None,
                 reshape: Callable | None = None):
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.info = model_info(model)
        self.options: dict = {}
        self._batch_size = None if batch_size is None else check_count("batch_size", batch_size, 1)
        self._auto_batch = 64
        self.layer_name = None
        self.layer = None
        if self.uses_layer:
            if layer is None:
                layer = self.default_layer()
            self.layer = get_layer(model, layer)
            self.layer_name = layer if isinstance(layer, str) else None
        if reshape is not None and not callable(reshape):
            raise ConfigError(f"reshape={reshape!r} must be a callable tokens -> (B, C, h, w) or None")
        if reshape is None and self.info.is_vit:
            reshape = self.info.reshape
        self.reshape = reshape

    def _set_options(self, **resolved) -> None:
        """Record resolved options: in :attr:`options` and as attributes of the same names."""
        for k, v in resolved.items():
            self.options[k] = v
            setattr(self, k, v)

    # -- hooks for subclasses -----------------------------------------------------------
    def default_layer(self):
        """Layer used when ``layer=None`` (the model's default target layer)."""
        return self.info.default_layer

    def _attribute(self, x: torch.Tensor, target: torch.Tensor | None) -> Explanation:  # pragma: no cover
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Chunk of forward passes: the one given, else :func:`~xaikit.core.conventions.auto_batch` of the
        current images and the forward precision (2 at 224 px in fp32, 8 in bf16, on CPU)."""
        return self._batch_size or self._auto_batch

    @property
    def precision_setting(self) -> str | None:
        """The precision setting of the method's forward passes of perturbed inputs: None (the current one,
        :func:`xaikit.config.precision_setting`), or ``"fp32"`` for a method with ``reduced_precision = False``."""
        return None if self.reduced_precision else "fp32"

    @property
    def num_classes(self) -> int | None:
        return int(self.info.num_classes) if self.info.num_classes else None

    def explain(self, x, target=None, *, upsample: bool = False, normalize: bool = True) -> Explanation:
        """Explain ``x`` (normalized (B, 3, H, W), any device) for ``target`` (None: the predicted class).

        Returns an :class:`Explanation`: ``maps`` (B, h, w) at the method's resolution, min-max normalized
        per image unless ``normalize=False``, resized (bilinear) to the input size with ``upsample=True``;
        ``target`` (B,), ``logits`` (B, C) or None, ``extras`` (see the method). All on the device of ``x``.
        The maps are float32 whatever the model's dtype. A model whose logits, or a method whose maps, are NaN
        or infinite raises an :class:`~xaikit.errors.InputError`; a layer map of 1x1 (images much smaller than
        the model's input size) gives constant maps and a ``RuntimeWarning``.
        """
        home = x.device if isinstance(x, torch.Tensor) else None
        x = self._prepare(x)
        t = check_target(target, x.shape[0], self.num_classes, x.device)
        # chunks sized for the precision the method's forwards may run at (a CPU chunk should fit the caches)
        self._auto_batch = auto_batch(x.shape[-2:], x.device,
                                      precision=resolve_precision(x.device, self.precision_setting))
        # a model whose forward returns a tuple, dict or ModelOutput: every forward of the call yields its
        # logits (core.targets.output_logits), so each method sees the (B, C) tensor it expects
        hook = self.model.register_forward_hook(_logits_hook)
        try:
            with model_guard(self.model):
                e = self._attribute(x, t)
        finally:
            hook.remove()
        raw = e.maps
        if raw.dim() != 3 or raw.shape[0] != x.shape[0]:  # pragma: no cover - method bug
            raise RuntimeError(f"{self.name} returned shape {tuple(raw.shape)}")
        self._check_finite(e.logits, raw)
        if raw.shape[-2:].numel() == 1 and x.shape[-2:].numel() > 1:
            where = f"layer {self.layer_name!r}" if self.layer_name else "its layer"
            warnings.warn(f"{self.name}: {where} has a 1x1 feature map for {x.shape[-2]}x{x.shape[-1]} images, so "
                          "every map is constant (all zeros after normalization); pass images of the model's "
                          f"input size ({self.info.input_size} px) or choose an earlier layer", RuntimeWarning,
                          stacklevel=2)
        maps = normalize_maps(raw) if normalize else raw.detach().float()
        if upsample:
            maps = _upsample(maps, x.shape[-2:])
        logits = None if e.logits is None else e.logits.detach().float()
        out = Explanation(maps.detach(), e.target.detach(), logits, _detached(e.extras))
        return out.to(home)  # results go back to the device of the inputs

    def _check_finite(self, logits, raw) -> None:
        """NaN/inf logits (the model) or maps (the method) -> InputError naming where they came from."""
        if logits is not None and not bool(torch.isfinite(logits).all()):
            bad = (~torch.isfinite(logits)).reshape(logits.shape[0], -1).any(1).nonzero().flatten().tolist()
            raise InputError(f"{self.name}: the model returned NaN or infinite logits for images {bad[:10]}; check "
                             "its weights (all(torch.isfinite(p).all() for p in model.parameters())) and its input")
        if not bool(torch.isfinite(raw).all()):
            bad = (~torch.isfinite(raw)).reshape(raw.shape[0], -1).any(1).nonzero().flatten().tolist()
            raise InputError(f"{self.name} produced NaN or infinite maps for images {bad[:10]} (non-finite "
                             "activations, gradients or scores of the model); check the model's weights and "
                             "outputs, or use another layer or method")

    def __call__(self, x, target=None) -> torch.Tensor:
        """(B, H, W) saliency in [0, 1], upsampled to the input size (``explain(x, target, upsample=True).maps``)."""
        return self.explain(x, target, upsample=True).maps.clamp_(0.0, 1.0)

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        lay = f", layer={self.layer_name!r}" if self.uses_layer else ""
        return f"{type(self).__name__}({self.name!r}{lay}{', ' + opts if opts else ''})"

    # -- helpers ------------------------------------------------------------------------
    def _prepare(self, x) -> torch.Tensor:
        """A checked image batch on the model's device and dtype (the device rule); model-specific checks:
        a ViT's fixed input size, images too small for the model."""
        x = check_images(x)
        inf = self.info
        if getattr(inf, "is_vit", False):
            pe = getattr(self.model, "patch_embed", None)
            want = tuple(getattr(pe, "img_size", None) or (inf.input_size, inf.input_size))
            dyn = bool(getattr(pe, "dynamic_img_size", False))
            if not dyn and tuple(x.shape[-2:]) != want:
                raise InputError(f"this vision transformer accepts only {want[0]}x{want[1]} images, got "
                                 f"{x.shape[-2]}x{x.shape[-1]}; resize with model.xaikit.transform")
        if x.shape[-1] < 8 or x.shape[-2] < 8:
            raise InputError(f"images of {x.shape[-2]}x{x.shape[-1]} pixels are too small for this model")
        x = to_device(x, model_device(self.model))
        p = next(self.model.parameters(), None)
        if p is not None and p.is_floating_point() and x.dtype != p.dtype:
            x = x.to(dtype=p.dtype)
        return x

    def capture(self, grad: bool = False, replace: Callable | None = None) -> LayerCapture:
        """A :class:`~xaikit.models.hooks.LayerCapture` on the method's layer (with its reshape)."""
        return LayerCapture(self.layer, self.reshape, grad=grad, replace=replace)

    def fast(self, x: torch.Tensor) -> nn.Module:
        """The network for forward passes of perturbed inputs that need no layer hook: with the ``twin``
        option on, the model's inference twin (:func:`xaikit.models.inference_twin`: BatchNorm folded,
        channels-last, checked on ``x``; the model itself where no twin applies, or under
        :func:`xaikit.models.fast.disabled`), at the forward precision setting (under bf16 / fp16 the twin
        run in autocast, when it passed its check; always fp32 for a method with ``reduced_precision =
        False``); with ``twin=False`` the model itself, in full precision."""
        if not self.twin:
            return self.model
        net = inference_twin(self.model, x, precision=self.precision_setting)
        return net if net is self.model else _LogitsOf(net)


def _logits_hook(module, inputs, out):
    """Forward hook: a tuple / dict / ModelOutput becomes its logits tensor (a tensor passes unchanged)."""
    return None if isinstance(out, torch.Tensor) else output_logits(out)


class _LogitsOf(nn.Module):
    """``net`` (an inference twin) returning its logits tensor whatever its forward returns."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return output_logits(self.net(x))
