"""One vocabulary for the conventions that differ between saliency libraries, used by attributors, metrics
and experiments alike (NOTEBOOKS.md: "conventions differ between libraries").

=================  ================================================================================
convention         values (canonical first; accepted aliases in brackets)
=================  ================================================================================
score              ``"logit"`` the class logit y_c, ``"softmax"`` [``"prob"``] the probability p_c,
                   ``"log_softmax"`` [``"log_prob"``] log p_c
space              where a mask multiplies: ``"normalized"`` [``"input"``] the model's input tensor (masked
                   pixels become the dataset-mean colour: grad-cam, the Score-CAM/Opti-CAM/RISE code);
                   ``"pixel"`` the [0, 1] image (masked pixels become black: the thesis' text)
substrate          what replaces a pixel: ``"black"`` pixel 0 (0 in [0, 1]); ``"mean"`` [``"zero"``,
                   ``"zeros"``] 0 in the normalized space = the dataset-mean colour; ``"min"`` the image's
                   minimum value in the normalized space (Quantus' "black"); ``"blur"`` a Gaussian blur of
                   the image; a number, in the normalized space
blur padding       ``"zeros"`` (RISE's ``conv2d`` with zero padding) or ``"reflect"`` (torchvision's
                   ``GaussianBlur``, as Group-CAM's code)
blur kernel        ``"gaussian"`` the sampled Gaussian of ``ksize`` taps and std ``sigma``, normalized to sum
                   1; ``"gkern"`` RISE's ``gkern(klen, nsig)`` (eclique/RISE ``evaluation.py``): scipy's
                   ``gaussian_filter`` of a ``klen`` x ``klen`` delta (reflect boundary, truncate 4): for
                   klen 11 / nsig 5 nearly flat (0.0077-0.0088), for 5 / 5 a 5x5 box (0.04)
preset             a named bundle of option values reproducing one source (the paper's text, an author's
                   code, a library): :class:`Preset`, resolved by :func:`resolve_preset`; an option left at
                   its default (a :class:`PresetDefault`) takes the preset's value, an option passed
                   explicitly wins
=================  ================================================================================

Everything here works on any device; nothing here imports xaikit above :mod:`xaikit.errors`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F

from ..config import progress
from ..errors import ConfigError, InputError

SCORES = ("logit", "softmax", "log_softmax")
SPACES = ("normalized", "pixel")
SUBSTRATES = ("black", "mean", "min", "blur")
PADDINGS = ("zeros", "reflect")
KERNELS = ("gaussian", "gkern")
_ALIASES = {
    "score": {"prob": "softmax", "probability": "softmax", "log_prob": "log_softmax", "logits": "logit"},
    "space": {"input": "normalized"},
    "substrate": {"zero": "mean", "zeros": "mean"},
}
_CHOICES = {"score": SCORES, "space": SPACES, "substrate": SUBSTRATES, "padding": PADDINGS, "kernel": KERNELS}


def choice(kind: str, value, name: str | None = None) -> str:
    """``value`` as the canonical name of convention ``kind`` (``score``, ``space``, ``substrate``,
    ``padding``, ``kernel``), aliases resolved; anything else is a :class:`ConfigError` that lists the choices."""
    v = _ALIASES.get(kind, {}).get(value, value) if isinstance(value, str) else value
    if v not in _CHOICES[kind]:
        aliases = _ALIASES.get(kind, {})
        raise ConfigError(f"{name or kind}={value!r}: use one of {list(_CHOICES[kind])}"
                          + (f" (aliases {sorted(aliases)})" if aliases else ""))
    return v


def one_of(name: str, value, choices) -> object:
    """``value`` when it is one of ``choices``, else a :class:`ConfigError` naming the option and the choices."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {list(choices)}")
    return value


# ------------------------------------------------------------------------------------ presets
class PresetDefault:
    """The default of an option that a preset may change: it stands for, compares equal to and prints as
    the paper's value (so ``help()`` and :func:`inspect.signature` show ``score: str = 'logit'``), and it
    tells :func:`resolve_preset` that the caller did not pass the option. Never stored as a resolved
    option: :func:`resolve_preset` replaces it by a plain value."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return repr(self.value)

    def __eq__(self, other):
        return (other.value if isinstance(other, PresetDefault) else other) == self.value

    def __hash__(self):
        return hash(self.value)


def paper(value) -> PresetDefault:
    """The paper's default ``value`` of an option that presets may set (a :class:`PresetDefault`)."""
    return PresetDefault(value)


def plain(value):
    """``value`` without its :class:`PresetDefault` wrapper (the paper's value for an option not passed)."""
    return value.value if isinstance(value, PresetDefault) else value


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named bundle of option values that reproduces one source.

    ``source``: where the behaviour comes from (repository, file, function, or the paper's section);
    ``options``: the option values it sets (the others keep the paper's defaults); ``note``: what it
    changes and what it cannot reproduce."""

    source: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    note: str = ""


def resolve_preset(owner: str, presets: Mapping[str, Preset], preset, given: Mapping[str, Any]) -> tuple:
    """``(preset, options)``: each option of ``given`` passed explicitly keeps its value; one left at its
    :class:`PresetDefault` takes the preset's value, else the paper's. An unknown preset is a
    :class:`ConfigError` that lists the presets of ``owner``."""
    if not isinstance(preset, str) or preset not in presets:
        raise ConfigError(f"{owner}: preset={preset!r} is not one of {list(presets)}")
    table = presets[preset].options
    unknown = sorted(set(table) - set(given))
    if unknown:  # pragma: no cover - a preset table naming an option that does not exist
        raise ConfigError(f"{owner}: preset {preset!r} sets unknown option(s) {unknown}")
    out = {}
    for k, v in given.items():
        out[k] = table.get(k, v.value) if isinstance(v, PresetDefault) else v
    return preset, out


def presets_doc(presets: Mapping[str, Preset], indent: str = "    ") -> str:
    """A ``Presets:`` docstring section: per preset its source, the options it sets and its note."""
    lines = [f"{indent}Presets (``preset=``; an option passed explicitly wins over the preset):"]
    for name, p in presets.items():
        opts = ", ".join(f"{k}={v!r}" for k, v in p.options.items()) or "the defaults above"
        text = f"{indent}    ``{name!r}``: {p.source}. Sets {opts}." + (f" {p.note}" if p.note else "")
        lines.append(text)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- scores
def to_score(logits: torch.Tensor, score: str = "logit") -> torch.Tensor:
    """(B, C) logits as scores of kind ``score`` (logit, softmax, log_softmax; float32 at least)."""
    score = choice("score", score)
    out = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    if score == "softmax":
        return out.softmax(-1)
    if score == "log_softmax":
        return out.log_softmax(-1)
    return out


def class_score(logits: torch.Tensor, target: torch.Tensor, score: str = "logit") -> torch.Tensor:
    """(B,) score of class ``target[i]`` in row i."""
    s = to_score(logits, score)
    return s.gather(-1, target.view(-1, 1).to(s.device)).squeeze(-1)


# ------------------------------------------------------------------------------------- spaces
class Space:
    """Masking in one of :data:`SPACES`: ``mask(x, m)`` = ``x ⊙ m`` there, ``blend(x, base, m)`` =
    ``x ⊙ m + base ⊙ (1 - m)`` there; ``x`` and the result are in the model's normalized input space.
    ``info``: the model's :class:`~xaikit.models.ModelInfo` (or the model), needed by ``"pixel"``."""

    def __init__(self, space: str = "normalized", info=None):
        self.space = choice("space", space)
        info = getattr(info, "xaikit", info)
        if self.space == "pixel" and (info is None or not hasattr(info, "normalize")):
            raise ConfigError("space='pixel' needs the model's mean/std: load the model with xk.models.load "
                              "(which attaches model.xaikit), or use space='normalized'")
        self.info = info

    def to_space(self, x: torch.Tensor) -> torch.Tensor:
        return self.info.denormalize(x) if self.space == "pixel" else x

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.info.normalize(x) if self.space == "pixel" else x

    def mask(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        m = m[:, None] if m.dim() == 3 else m
        return x * m if self.space == "normalized" else self.to_input(self.to_space(x) * m)

    def blend(self, x: torch.Tensor, base: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        m = m[:, None] if m.dim() == 3 else m
        if self.space == "normalized":
            return x * m + base * (1 - m)
        return self.to_input(self.to_space(x) * m + self.to_space(base) * (1 - m))

    def __repr__(self):
        return f"Space({self.space!r})"


# ---------------------------------------------------------------------------------- substrates
def gaussian_kernel1d(ksize: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalized 1-D Gaussian of ``ksize`` taps and standard deviation ``sigma``."""
    ksize, sigma = int(ksize), float(sigma)
    if ksize < 1 or ksize % 2 == 0:
        raise ConfigError(f"blur kernel size {ksize} must be a positive odd integer")
    if not sigma > 0:
        raise ConfigError(f"blur sigma {sigma} must be positive")
    r = torch.arange(ksize, dtype=dtype, device=device) - (ksize - 1) / 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    return g / g.sum()


def gkern1d(klen: int, nsig: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """The 1-D factor of RISE's ``gkern(klen, nsig)`` (eclique/RISE ``evaluation.py``; CA_Stream's
    ``engine/interpretable/ins_del.py`` copies it): ``scipy.ndimage.gaussian_filter`` of a ``klen``-tap
    delta, i.e. the normalized Gaussian of radius ``int(4 nsig + 0.5)`` correlated with the delta under
    scipy's ``reflect`` boundary (d c b a | a b c d). The 2-D kernel is its outer product with itself (the
    filter is separable and so is the delta); it is not renormalized, exactly as RISE's."""
    klen, nsig = int(klen), float(nsig)
    if klen < 1 or klen % 2 == 0:
        raise ConfigError(f"blur kernel size {klen} must be a positive odd integer")
    if not nsig > 0:
        raise ConfigError(f"blur sigma {nsig} must be positive")
    radius = int(4.0 * nsig + 0.5)
    j = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (j / nsig) ** 2)
    w = w / w.sum()
    idx = torch.arange(klen)[:, None] + torch.arange(-radius, radius + 1)[None, :]   # (klen, 2r+1)
    idx = torch.remainder(idx, 2 * klen)
    idx = torch.where(idx >= klen, 2 * klen - 1 - idx, idx)                          # reflect
    g = (w[None, :] * (idx == klen // 2)).sum(1)
    return g.to(device=device, dtype=dtype)


def blur_kernel1d(ksize: int, sigma: float, kernel: str = "gaussian", device=None, dtype=torch.float32):
    """The separable factor of a blur ``kernel`` of :data:`KERNELS` (module docstring)."""
    kernel = choice("kernel", kernel)
    if kernel == "gkern":
        return gkern1d(ksize, sigma, device, dtype)
    return gaussian_kernel1d(ksize, sigma, device, dtype)


def gaussian_blur(x: torch.Tensor, ksize: int = 11, sigma: float = 5.0, padding: str = "zeros",
                  kernel: str = "gaussian") -> torch.Tensor:
    """Separable Gaussian blur of a (B, C, H, W) batch, channel by channel.

    ``padding="zeros"``: as RISE's evaluation code (a ``conv2d`` with zero padding); ``"reflect"``: as
    torchvision's ``GaussianBlur`` and kornia's ``gaussian_blur2d`` (Group-CAM's code), whose kernel is
    shrunk to the largest odd size the image allows (reflect padding needs ``ksize // 2 < size``).
    ``kernel``: ``"gaussian"`` (default) or RISE's ``"gkern"`` (:func:`gkern1d`)."""
    padding = choice("padding", padding)
    ksize = int(ksize)
    if padding == "reflect":
        ksize = min(ksize, 2 * min(x.shape[-2:]) - 1)
        ksize -= 1 - ksize % 2
    g = blur_kernel1d(ksize, sigma, kernel, x.device, x.dtype)
    C, r = x.shape[1], ksize // 2
    if padding == "reflect":
        x = F.pad(x, (r, r, r, r), mode="reflect")
        pad = (0, 0)
    else:
        pad = (r, r)
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(C, 1, 1, ksize), padding=(0, pad[1]), groups=C)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(C, 1, ksize, 1), padding=(pad[0], 0), groups=C)


def substrate(x: torch.Tensor, kind="mean", info=None, ksize: int = 11, sigma: float = 5.0,
              padding: str = "zeros") -> torch.Tensor:
    """What replaces masked pixels of the normalized batch ``x``, in the normalized space, broadcastable to
    ``x`` (module docstring): ``"black"`` needs ``info`` (the model's mean/std)."""
    if isinstance(kind, (int, float)) and not isinstance(kind, bool):
        return torch.full((1, 1, 1, 1), float(kind), dtype=x.dtype, device=x.device)
    kind = choice("substrate", kind)
    if kind == "mean":
        return torch.zeros((1, 1, 1, 1), dtype=x.dtype, device=x.device)
    if kind == "min":
        return x.flatten(1).amin(1).view(-1, 1, 1, 1)
    if kind == "black":
        info = getattr(info, "xaikit", info)
        if info is None or not hasattr(info, "normalize"):
            raise ConfigError("substrate 'black' needs the model's mean/std (model.xaikit)")
        return info.normalize(torch.zeros((1, x.shape[1], 1, 1), dtype=x.dtype, device=x.device))
    return gaussian_blur(x, ksize, sigma, padding)


# -------------------------------------------------------------------------------------- chunks
def chunks(n: int, size: int, desc: str | None = None) -> Iterator[slice]:
    """Slices ``[0:size], [size:2 size], ...`` covering ``range(n)``; with ``desc``, inside xaikit's
    progress bar (quiet under CI and for short loops)."""
    size = max(1, int(size))
    starts = range(0, int(n), size)
    if desc is not None:
        starts = progress(starts, total=len(starts), desc=desc)
    for s in starts:
        yield slice(s, min(int(n), s + size))


#: CPU pixel budgets of a forward chunk (:func:`auto_batch`) by precision: a chunk's activations should stay
#: in the caches, and bf16's take half the bytes of fp32's
CPU_CHUNK_PIXELS = {"fp32": 2 ** 17, "bf16": 2 ** 19, "fp16": 2 ** 19}
#: at most this many images per chunk on a CPU (a few small images already fill the caches)
CPU_CHUNK_CAP = 64


def auto_batch(size, device=None, budget: int | None = None, cap: int | None = None, precision: str = "fp32") -> int:
    """Images per forward chunk of the perturbation loops, from a pixel budget: a power of two.  On a CPU the
    budget follows the forward ``precision`` (:data:`CPU_CHUNK_PIXELS`) and the cap is :data:`CPU_CHUNK_CAP`:
    fp32 2 at 224x224, 8 at 128x128, 64 at 32x32; bf16 8 at 224x224, 32 at 128x128, 64 at 48x48.  On CUDA,
    2**22 pixels capped at 256 (64 at 224x224) at either precision.

    Measured on a 2-core CPU, one thread, per image on the inference twins (the chunk that fits the caches
    wins): EfficientNet-Lite0 at 224 px fp32 15.3 / 13.7 / 13.6 / 17.8 / 19.7 ms for chunks of 1 / 2 / 4 / 8 /
    16, bf16 12.9 / 9.6 / 8.0 / 7.5 / 9.5 ms; the synthetic ResNet-18 at 48 px fp32 1.98 / 1.89 / 2.26 / 2.48 ms
    for 32 / 64 / 128 / 256, bf16 0.87 / 0.86 / 0.93 / 1.01 ms; MobileNet-V2 at 32 px fp32 0.69 / 0.71 / 0.99 /
    0.97 ms.  Insertion on the 7 photos (Lite0, fp32) took 8.5 s in chunks of 8 and 6.2 s in chunks of 2;
    RISE (1000 masks, ResNet-18 at 48 px, bf16) 8.3 s in chunks of 128 and 6.8 s in chunks of 64."""
    h, w = (int(size[-2]), int(size[-1])) if len(size) >= 2 else (int(size[0]), int(size[0]))
    cuda = str(device).startswith("cuda")
    if budget is None:
        budget = 2 ** 22 if cuda else CPU_CHUNK_PIXELS.get(precision, CPU_CHUNK_PIXELS["fp32"])
    if cap is None:
        cap = 256 if cuda else CPU_CHUNK_CAP
    n = max(1, budget // max(1, h * w))
    return max(1, min(cap, 1 << (n.bit_length() - 1)))


# ------------------------------------------------------------------------------------- checks
#: a batch with no negative value and a maximum above this is taken for 0..255 pixels (normalized
#: ImageNet pixels span about [-2.1, 2.6]; a std of 0.1 would still stay below 10)
PIXEL_RANGE_LIMIT = 10.0


def check_images(x, name: str = "x") -> torch.Tensor:
    """A normalized image batch (B, 3, H, W) of floats, finite, not 0..255 pixel values (no negative value
    and a maximum above :data:`PIXEL_RANGE_LIMIT`); else an :class:`InputError` with the fix."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor (B, 3, H, W), got {type(x).__name__}; convert with "
                         "torch.as_tensor(...) and normalize with model.xaikit.normalize")
    if x.dim() == 3:
        raise InputError(f"{name} has shape {tuple(x.shape)}: a single image without batch dimension; "
                         f"pass {name}.unsqueeze(0) (B, 3, H, W)")
    if x.dim() != 4:
        raise InputError(f"{name} must be a 4-D batch (B, 3, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InputError(f"{name} is an empty batch (B = 0)")
    if x.shape[1] != 3:
        raise InputError(f"{name} must have 3 channels in dim 1 (B, 3, H, W), got shape {tuple(x.shape)}; "
                         f"channels-last images need {name}.permute(0, 3, 1, 2)")
    if not torch.is_floating_point(x):
        raise InputError(f"{name} has dtype {x.dtype}; a floating, normalized batch is expected. Fix: "
                         f"{name} = model.xaikit.normalize({name}.float() / 255) for uint8 images")
    if not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).flatten(1).any(1).nonzero().flatten().tolist()
        raise InputError(f"{name} contains NaN or infinite values (images {bad})")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0 and hi > PIXEL_RANGE_LIMIT:  # normalized images are centred near 0 and span a few units
        raise InputError(f"{name} holds values in [{lo:.4g}, {hi:.4g}]: pixel values in 0..255, not a normalized "
                         f"batch. Fix: {name} = model.xaikit.normalize({name} / 255)")
    return x


def check_maps(sal, x: torch.Tensor, name: str = "sal") -> torch.Tensor:
    """Saliency maps for ``x``: (B, H, W) or (B, 1, H, W) in [0, 1] at the input size, finite -> float
    (B, H, W) on x's device and dtype. Constant maps are accepted (each metric documents its value)."""
    if not isinstance(sal, torch.Tensor):
        raise InputError(f"{name} must be a torch tensor (B, H, W), got {type(sal).__name__}")
    if sal.dim() == 4 and sal.shape[1] == 1:
        sal = sal[:, 0]
    if sal.dim() == 2 and x.shape[0] == 1:
        sal = sal[None]
    B, _, H, W = x.shape
    if sal.dim() != 3 or sal.shape[0] != B:
        raise InputError(f"{name} must have shape (B, H, W) = ({B}, {H}, {W}), got {tuple(sal.shape)}")
    if tuple(sal.shape[-2:]) != (H, W):
        raise InputError(f"{name} is {tuple(sal.shape[-2:])} but the images are {(H, W)}: upsample the map to "
                         "the input size (cam(x) does; cam.explain(..., upsample=False) does not)")
    sal = sal.detach().to(device=x.device, dtype=x.dtype)
    if not bool(torch.isfinite(sal).all()):
        bad = (~torch.isfinite(sal)).flatten(1).any(1).nonzero().flatten().tolist()
        raise InputError(f"{name} contains NaN or infinite values (images {bad}); a saliency method divided by "
                         "zero. Fix the method or replace the values with torch.nan_to_num(sal)")
    lo, hi = float(sal.min()), float(sal.max())
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise InputError(f"{name} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; normalize it per "
                         "image, e.g. (s - s.min()) / (s.max() - s.min())")
    return sal.clamp(0, 1)


def check_count(name: str, value, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (steps, masks, samples, ...); floats like 1.5 and bools are refused."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
            isinstance(value, float) and value.is_integer()) and not (
            isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point()):
        try:
            import numpy as np

            if isinstance(value, np.integer):
                value = int(value)
            else:
                raise TypeError
        except TypeError:
            raise ConfigError(f"{name}={value!r} must be a whole number >= {minimum}") from None
    v = int(value)
    if v < minimum:
        raise ConfigError(f"{name}={value!r} must be >= {minimum}")
    return v


def check_fraction(name: str, value, low: float = 0.0, high: float = 1.0, closed: bool = True) -> float:
    """A finite number in [low, high] (or (low, high) with ``closed=False``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} must be a number in [{low}, {high}]") from None
    ok = (low <= v <= high) if closed else (low < v < high)
    if not math.isfinite(v) or not ok:
        raise ConfigError(f"{name}={value!r} must be in {'[' if closed else '('}{low}, {high}{']' if closed else ')'}")
    return v
