"""Shared plumbing of the metrics: input checks, targets, masking spaces, chunked scoring.

Conventions (see ``NOTEBOOKS.md``, "conventions differ between libraries"):

- ``x`` is the *normalized* model input (B, 3, H, W); ``sal`` is (B, H, W) in [0, 1] at the input size.
- ``target=None`` means the class the model predicts on ``x`` (the thesis uses the ground-truth class:
  pass the labels to reproduce its tables).
- ``space="pixel"`` (default) masks the image in [0, 1] pixel space, ``x ⊙ S`` as in the thesis'
  code (Opti-CAM feeds [0, 1] images to a model whose first layer normalizes); ``space="normalized"``
  multiplies the normalized tensor, as the ADCC reference code and ``pytorch-grad-cam`` do.
- ``score="prob"`` (default) is the softmax probability of the target; ``score="logit"`` its logit.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import auto_batch, progress
from ..errors import ConfigError, InputError
from ..models.fast import inference_twin

SPACES = ("pixel", "normalized")
SCORES = ("prob", "logit")


def check_images(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"x must be a float tensor (B, C, H, W) of normalized images, got {shape}; "
                         "add a batch dimension with x[None] and normalize with model.xaikit.normalize.")
    return x


def check_sal(sal, x: torch.Tensor, name: str = "sal") -> torch.Tensor:
    """(B,H,W) or (B,1,H,W) saliency in [0,1] matching ``x`` -> float (B,H,W) on x's device.

    NaN maps raise :class:`InputError`; constant maps are accepted (each metric documents its value).
    """
    if not isinstance(sal, torch.Tensor):
        raise InputError(f"{name} must be a torch tensor (B, H, W), got {type(sal).__name__}.")
    if sal.dim() == 4 and sal.shape[1] == 1:
        sal = sal[:, 0]
    if sal.dim() == 2 and x.shape[0] == 1:
        sal = sal[None]
    B, _, H, W = x.shape
    if sal.dim() != 3 or sal.shape[0] != B:
        raise InputError(f"{name} must have shape (B, H, W) = ({B}, {H}, {W}), got {tuple(sal.shape)}.")
    if tuple(sal.shape[-2:]) != (H, W):
        raise InputError(f"{name} is {tuple(sal.shape[-2:])} but the images are {(H, W)}: upsample the map "
                         "to the input size (cam(x) does; cam.explain(..., upsample=False) does not).")
    sal = sal.detach().to(device=x.device, dtype=x.dtype)
    if torch.isnan(sal).any():
        bad = torch.isnan(sal).flatten(1).any(1).nonzero().flatten().tolist()
        raise InputError(f"{name} contains NaN (images {bad}); a saliency method divided by zero. "
                         "Fix the method or replace the values with torch.nan_to_num(sal).")
    lo, hi = float(sal.min()), float(sal.max())
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise InputError(f"{name} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; normalize it "
                         "per image, e.g. (s - s.min()) / (s.max() - s.min()).")
    return sal.clamp(0, 1)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {list(choices)}.")


def chunks(n: int, size: int, desc: str | None = None):
    """Slices of ``range(n)`` of at most ``size``, wrapped in xaikit's progress bar."""
    size = max(1, int(size))
    starts = range(0, n, size)
    for s in progress(starts, total=len(starts), desc=desc):
        yield slice(s, min(n, s + size))


def batch_for(batch_size: int | None, x: torch.Tensor) -> int:
    """``batch_size`` or, when None, :func:`xaikit.config.auto_batch` for x's image size and device."""
    return int(batch_size) if batch_size is not None else auto_batch(x.shape[-2:], x.device)


@torch.no_grad()
def logits(model, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Model outputs for a batch, chunked."""
    model = inference_twin(model, x)
    outs = [model(x[sl]) for sl in chunks(x.shape[0], batch_for(batch_size, x))]
    return torch.cat(outs).float()


def to_score(out: torch.Tensor, score: str) -> torch.Tensor:
    return out.softmax(-1) if score == "prob" else out


def resolve_target(target, out: torch.Tensor) -> torch.Tensor:
    """``target`` (None | int | sequence | (B,) tensor) -> (B,) long; None -> argmax of ``out``."""
    B, C = out.shape
    if target is None:
        return out.argmax(-1)
    t = torch.as_tensor(target, device=out.device)
    if t.dim() == 0:
        t = t.expand(B)
    if t.dim() != 1 or t.shape[0] != B or t.is_floating_point():
        raise InputError(f"target must be None, an int or {B} class indices, got shape {tuple(t.shape)} "
                         f"({t.dtype}); for multi-label data pass one class per image.")
    t = t.long()
    if (t < 0).any() or (t >= C).any():
        raise InputError(f"target {t.tolist()} out of range for a model with {C} outputs "
                         "(unlabelled images carry label -1: pass target=None to use the prediction).")
    return t


class Space:
    """Where masks are applied: ``to_space`` maps the normalized input there, ``to_input`` back."""

    def __init__(self, model, space: str):
        check_choice("space", space, SPACES)
        self.space = space
        if space == "pixel":
            info = getattr(model, "xaikit", None)
            if info is None or not hasattr(info, "normalize"):
                raise ConfigError("space='pixel' needs the model's mean/std: load the model with "
                                  "xk.models.load (which attaches model.xaikit), or pass space='normalized'.")
            self.info = info

    def to_space(self, x):
        return self.info.denormalize(x) if self.space == "pixel" else x

    def to_input(self, x):
        return self.info.normalize(x) if self.space == "pixel" else x

    def mask(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``x ⊙ m`` in this space; ``m`` (B,H,W) or (B,1,H,W)."""
        if m.dim() == 3:
            m = m[:, None]
        return self.to_input(self.to_space(x) * m)


def gaussian_blur(x: torch.Tensor, klen: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Separable Gaussian blur (kernel ``klen``, std ``sigma``, zero padding): the substrate of
    RISE's insertion metric (Petsiuk et al. 2018, ``klen=11, nsig=5``)."""
    r = torch.arange(klen, dtype=x.dtype, device=x.device) - (klen - 1) / 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    g = g / g.sum()
    C = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(C, 1, 1, klen), padding=(0, klen // 2), groups=C)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(C, 1, klen, 1), padding=(klen // 2, 0), groups=C)


def reduce_dict(d: dict, reduce: bool) -> dict:
    """Per-image tensors -> float means (NaN entries ignored) when ``reduce``."""
    if not reduce:
        return d
    out = {}
    for k, v in d.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            out[k] = float(torch.nanmean(v)) if v.numel() else math.nan
        else:
            out[k] = v
    return out
