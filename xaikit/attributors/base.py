"""Common machinery of every saliency method: the :class:`Attributor` base class, the registry,
input/target validation, activation/gradient capture at a layer, map normalization and upsampling.

Conventions (shared by all methods, and reused by :mod:`xaikit.metrics`):

* ``x`` is a *normalized* batch ``(B, 3, H, W)`` (``model.xaikit.normalize`` of [0, 1] pixels).
* ``target``: ``None`` = the predicted class, an ``int`` for every image, or a ``(B,)`` integer tensor.
* ``attributor(x, target)`` -> ``(B, H, W)`` in [0, 1]: raw map -> :func:`normalize_maps` ->
  :func:`upsample` (bilinear) to the input size.
* ``attributor.explain(x, target, upsample=False)`` -> ``(B, h, w)`` at the method's own resolution
  (the layer's, for CAM methods), **after** per-image min-max normalization; pass
  ``normalize=False`` for the raw map (after the method's activation ``h``, e.g. ReLU, but not rescaled).
* After a call, ``attributor.last_target`` holds the ``(B,)`` classes that were explained and
  ``attributor.last_logits`` the clean logits when the method computed them.
"""
from __future__ import annotations

import contextlib
import difflib
from typing import Callable, Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import auto_batch
from ..core.devices import back, model_device, to_device
from ..errors import ConfigError, InputError, LayerError

# ------------------------------------------------------------------------------------ registry
_REGISTRY: dict[str, type] = {}
_ALIASES: dict[str, str] = {"axiomcam": "xgradcam", "axiom_cam": "xgradcam", "grad_cam": "gradcam",
                            "gradcam++": "gradcampp", "score_cam": "scorecam", "opti_cam": "opticam"}

#: modules that register methods when imported (lazily, so ``available()`` sees them all)
_METHOD_MODULES = ("cam", "score", "opticam", "gradient", "perturbation", "transformer")
_loaded = False


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
    import importlib

    for mod in _METHOD_MODULES:
        try:
            importlib.import_module(f"{__package__}.{mod}")
        except ModuleNotFoundError as e:  # a method module not written yet
            if e.name != f"{__package__}.{mod}":
                raise


def available() -> list[str]:
    """Sorted names of every registered method (aliases such as ``axiomcam`` are accepted by
    :func:`create` but not listed)."""
    _load_all()
    return sorted(_REGISTRY)


def create(name: str, model: nn.Module, layer=None, **options) -> "Attributor":
    """Build the method ``name`` on ``model`` at ``layer`` (None: the method's/model's default)."""
    _load_all()
    key = str(name).lower().replace("-", "")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY) + list(_ALIASES), n=3, cutoff=0.5)
        raise ConfigError(f"unknown saliency method {name!r}. "
                          + (f"Did you mean {close}? " if close else "")
                          + f"Available: {available()} (aliases: {sorted(_ALIASES)}).")
    return _REGISTRY[key](model, layer=layer, **options)


# ------------------------------------------------------------------------------ maps helpers
def normalize_maps(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-image min-max normalization to [0, 1] over every dim but the first (thesis eq. 1.7).

    A constant map (max - min <= ``eps``, e.g. all zeros after ReLU) becomes all **zeros**: no NaN.
    Non-finite values are an error of the method, not of the user, and are replaced by 0.
    """
    m = torch.nan_to_num(maps.float(), nan=0.0, posinf=0.0, neginf=0.0)
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


def chunks(n: int, size: int) -> Iterable[slice]:
    """Slices ``[0:size], [size:2 size], ...`` covering ``range(n)``."""
    size = max(1, int(size))
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


# ------------------------------------------------------------------------------ validation
def check_input(x, model: nn.Module | None = None) -> torch.Tensor:
    """Validate a normalized image batch and move it to the model's device."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"x must be a torch.Tensor (B, 3, H, W), got {type(x).__name__}; "
                         "convert with torch.as_tensor(...) and normalize with model.xaikit.normalize")
    if x.dim() == 3:
        raise InputError(f"x has shape {tuple(x.shape)}: a single image without batch dimension; "
                         "pass x.unsqueeze(0) (B, 3, H, W)")
    if x.dim() != 4:
        raise InputError(f"x must be a 4-D batch (B, 3, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InputError("x is an empty batch (B = 0)")
    if x.shape[1] != 3:
        raise InputError(f"x must have 3 channels in dim 1 (B, 3, H, W), got shape {tuple(x.shape)}; "
                         "channels-last images need x.permute(0, 3, 1, 2)")
    if not torch.is_floating_point(x):
        raise InputError(f"x has dtype {x.dtype}; a floating, normalized batch is expected. Fix: "
                         "x = model.xaikit.normalize(x.float() / 255) for uint8 images")
    if not bool(torch.isfinite(x).all()):
        raise InputError("x contains NaN or infinite values")
    if model is not None:
        inf = getattr(model, "xaikit", None)
        if inf is not None and getattr(inf, "is_vit", False):
            pe = getattr(model, "patch_embed", None)
            want = tuple(getattr(pe, "img_size", None) or (inf.input_size, inf.input_size))
            dyn = bool(getattr(pe, "dynamic_img_size", False))
            if not dyn and tuple(x.shape[-2:]) != want:
                raise InputError(f"this vision transformer accepts only {want[0]}x{want[1]} images, got "
                                 f"{x.shape[-2]}x{x.shape[-1]}; resize with model.xaikit.transform")
        if x.shape[-1] < 8 or x.shape[-2] < 8:
            raise InputError(f"images of {x.shape[-2]}x{x.shape[-1]} pixels are too small for this model")
        # the device rule (xaikit.core.devices): run where the model lives, whatever the input's device
        x = to_device(x, model_device(model))
        p = next(model.parameters(), None)
        if p is not None and x.dtype != p.dtype:
            x = x.to(dtype=p.dtype)
    return x


def check_target(target, batch: int, num_classes: int | None, device=None) -> torch.Tensor | None:
    """``None`` stays None (predicted class); int / sequence / tensor -> (B,) long, range-checked."""
    if target is None:
        return None
    if isinstance(target, bool):
        raise InputError("target must be a class index, got a bool")
    if isinstance(target, int) or (isinstance(target, torch.Tensor) and target.dim() == 0):
        t = torch.full((batch,), int(target), dtype=torch.long)
    else:
        try:
            t = torch.as_tensor(target)
        except Exception as e:
            raise InputError(f"target must be None, an int or a (B,) integer tensor; got {type(target).__name__}") from e
        if t.is_floating_point() or t.dtype == torch.bool:
            raise InputError(f"target must hold integer class indices, got dtype {t.dtype}; "
                             "for multi-hot labels pick one class per image, e.g. labels.argmax(1)")
        if t.dim() != 1 or t.shape[0] != batch:
            raise InputError(f"target must be an int or have shape ({batch},) for a batch of {batch}, "
                             f"got shape {tuple(t.shape)}")
        t = t.long()
    if num_classes:
        bad = (t < 0) | (t >= num_classes)
        if bool(bad.any()):
            raise InputError(f"target {t[bad].tolist()} out of range: this model has num_classes={num_classes} "
                             f"(valid classes 0..{num_classes - 1})")
    return t.to(device) if device is not None else t


def resolve_target(target: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """The validated target, or the predicted class ``logits.argmax(1)`` when it is None."""
    if target is None:
        return logits.detach().argmax(1)
    return target.to(logits.device)


def class_score(logits: torch.Tensor, target: torch.Tensor, score: str = "logit") -> torch.Tensor:
    """(B,) score of class ``target`` per row: ``logit`` y_c, ``softmax`` p_c or ``log_softmax``."""
    if score == "logit":
        s = logits
    elif score == "softmax":
        s = logits.softmax(1)
    elif score == "log_softmax":
        s = logits.log_softmax(1)
    else:
        raise ConfigError(f"score={score!r}: use 'logit', 'softmax' or 'log_softmax'")
    return s.gather(1, target.view(-1, 1).to(s.device)).squeeze(1)


# ------------------------------------------------------------------------------ layer capture
class LayerCapture:
    """Forward hook recording a layer's output; hooks are removed on exit (context manager).

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
        if isinstance(out, (tuple, list)):
            out = out[0]
        if self.replace is not None:
            out = self.replace(out)
        if self.grad and torch.is_grad_enabled() and not out.requires_grad:
            out = out.detach().requires_grad_(True)
        self.raw = out
        return out

    def __enter__(self):
        self._handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        return False

    def _shape(self, t):
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
def model_guard(model: nn.Module):
    """Eval mode during the call and restored after; parameter ``.grad`` fields left as they were."""
    was_training = model.training
    grads = [(p, p.grad) for p in model.parameters()]
    model.eval()
    try:
        yield model
    finally:
        for p, g in grads:
            p.grad = g
        model.train(was_training)


# ------------------------------------------------------------------------------ base class
class Attributor:
    """Base class of saliency methods.

    Subclasses set ``defaults`` (their options and default values; unknown options raise
    :class:`ConfigError`), ``uses_layer`` and implement :meth:`_attribute`
    ``(x, target|None) -> (B, h, w)`` raw map, setting ``self.last_target``.
    Common options: ``batch_size`` (chunk of forward passes for perturbation methods),
    ``reshape`` (tokens -> (B, C, h, w); ViTs default to ``model.xaikit.reshape``).
    """

    name = "base"
    uses_layer = True
    defaults: dict = {}

    def __init__(self, model: nn.Module, layer=None, batch_size: int | None = None, reshape: Callable | None = None,
                 **options):
        from ..models.zoo import get_layer, info

        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.info = info(model)
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ConfigError(f"{self.name}: unknown option(s) {unknown}; valid options are "
                              f"{sorted(self.defaults) + ['batch_size', 'layer', 'reshape']}")
        self.options = {**self.defaults, **options}
        for k, v in self.options.items():
            setattr(self, k, v)
        if batch_size is not None and int(batch_size) < 1:
            raise ConfigError(f"batch_size must be >= 1 (or None: chosen from the image size), got {batch_size}")
        self._batch_size = None if batch_size is None else int(batch_size)
        self._auto_batch = 64
        self.layer_name = None
        self.layer = None
        if self.uses_layer:
            if layer is None:
                layer = self.default_layer()
            self.layer = get_layer(model, layer)
            self.layer_name = layer if isinstance(layer, str) else None
        if reshape is None and self.info.is_vit:
            reshape = self.info.reshape
        self.reshape = reshape
        self.last_target = None
        self.last_logits = None

    # -- hooks for subclasses -----------------------------------------------------------
    def default_layer(self):
        """Layer used when ``layer=None`` (the model's default target layer)."""
        return self.info.default_layer

    def _attribute(self, x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Chunk of forward passes: the one given, else :func:`xaikit.config.auto_batch` of the
        current images (8 at 224 px on CPU)."""
        return self._batch_size or self._auto_batch

    @property
    def num_classes(self) -> int | None:
        return int(self.info.num_classes) if self.info.num_classes else None

    def explain(self, x, target=None, upsample: bool = False, normalize: bool = True) -> torch.Tensor:
        """(B, h, w) map at the method's resolution, min-max normalized per image unless
        ``normalize=False``; with ``upsample=True`` resized (bilinear) to the input size."""
        home = x.device if isinstance(x, torch.Tensor) else None
        x = check_input(x, self.model)
        t = check_target(target, x.shape[0], self.num_classes, x.device)
        self._auto_batch = auto_batch(x.shape[-2:], x.device)
        with model_guard(self.model):
            raw = self._attribute(x, t)
        if raw.dim() != 3 or raw.shape[0] != x.shape[0]:  # pragma: no cover - method bug
            raise RuntimeError(f"{self.name} returned shape {tuple(raw.shape)}")
        out = normalize_maps(raw) if normalize else raw.detach().float()
        if upsample:
            out = _upsample(out, x.shape[-2:])
        return back(out.detach(), home)  # results go back to the device of the inputs

    def __call__(self, x, target=None) -> torch.Tensor:
        """(B, H, W) saliency in [0, 1], upsampled to the input size."""
        out = self.explain(x, target, upsample=True)
        return out.clamp_(0.0, 1.0)

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        lay = f", layer={self.layer_name!r}" if self.uses_layer else ""
        return f"{type(self).__name__}({self.name!r}{lay}{', ' + opts if opts else ''})"

    # -- helpers ------------------------------------------------------------------------
    def capture(self, grad: bool = False, replace: Callable | None = None) -> LayerCapture:
        return LayerCapture(self.layer, self.reshape, grad=grad, replace=replace)

    def fast(self, x: torch.Tensor) -> nn.Module:
        """The model's inference twin (:func:`xaikit.models.inference_twin`: BatchNorm folded,
        channels-last, checked on ``x``) for the forward passes of perturbed inputs that need no
        layer hook; the model itself where no twin applies."""
        from ..models.fast import inference_twin

        return inference_twin(self.model, x)

    def forward_chunks(self, inputs: torch.Tensor, fn: Callable | None = None) -> torch.Tensor:
        """Run ``model`` (or ``fn``) on ``inputs`` in chunks of ``batch_size`` and concatenate."""
        f = fn or self.model
        return torch.cat([f(inputs[s]) for s in chunks(inputs.shape[0], self.batch_size)])
