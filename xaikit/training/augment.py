"""Batched training augmentations of the torchvision classification recipe, on tensors already on the device.

``random_resized_crop_flip`` is torchvision's ``RandomResizedCrop(size, scale, ratio)`` + ``RandomHorizontalFlip``
for a whole batch at once: one crop box per image drawn as torchvision draws it (area fraction uniform in
``scale``, log-uniform aspect ratio in ``ratio``, 10 tries then the central crop), all boxes resampled
bilinearly in one ``roi_align`` call. ``color_jitter`` is ``ColorJitter(b, c, s)`` per image (brightness,
contrast, saturation; random order is not reproduced: the fixed order b, c, s). Randomness comes from a
``torch.Generator`` on the CPU, so a seed gives the same crops on every device.
"""
from __future__ import annotations

import math

import torch


def _crop_boxes(n: int, h: int, w: int, scale, ratio, gen: torch.Generator) -> torch.Tensor:
    area = h * w
    tries = 10
    s = torch.empty(n, tries).uniform_(scale[0], scale[1], generator=gen) * area
    logr = torch.empty(n, tries).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    r = torch.exp(logr)
    cw = torch.sqrt(s * r).round()
    ch = torch.sqrt(s / r).round()
    ok = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
    boxes = torch.empty(n, 4)
    u = torch.rand(n, 2, generator=gen)
    for i in range(n):
        k = int(first[i])
        if k < 0:  # torchvision's fallback: the central crop at the nearest allowed ratio
            in_ratio = w / h
            if in_ratio < ratio[0]:
                bw, bh = w, round(w / ratio[0])
            elif in_ratio > ratio[1]:
                bw, bh = round(h * ratio[1]), h
            else:
                bw, bh = w, h
            x0, y0 = (w - bw) // 2, (h - bh) // 2
        else:
            bw, bh = int(cw[i, k]), int(ch[i, k])
            x0 = int(u[i, 0] * (w - bw + 1))
            y0 = int(u[i, 1] * (h - bh + 1))
        boxes[i] = torch.tensor([x0, y0, x0 + bw, y0 + bh], dtype=torch.float32)
    return boxes


def random_resized_crop_flip(x: torch.Tensor, gen: torch.Generator, size: int | None = None,
                             scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip: bool = True) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size): a random resized crop of each image, then a horizontal flip
    with probability 1/2 (module docstring)."""
    from torchvision.ops import roi_align

    B, _, H, W = x.shape
    size = int(size or H)
    boxes = _crop_boxes(B, H, W, scale, ratio, gen)
    rois = torch.cat([torch.arange(B, dtype=torch.float32)[:, None], boxes], 1).to(x.device, x.dtype)
    # adaptive sampling: one bilinear sample per output pixel when enlarging, the average of
    # ceil(crop / size)^2 samples when shrinking (as antialiased resizing does)
    out = roi_align(x, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    if flip:
        f = (torch.rand(B, generator=gen) < 0.5).to(x.device)
        out = torch.where(f[:, None, None, None], out.flip(-1), out)
    return out


def color_jitter(x: torch.Tensor, gen: torch.Generator, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4) -> torch.Tensor:
    """Per-image brightness, contrast and saturation factors uniform in ``[1 - v, 1 + v]`` on [0, 1] images."""
    B = x.shape[0]

    def factors(v):
        return torch.empty(B).uniform_(max(0.0, 1 - v), 1 + v, generator=gen).to(x.device, x.dtype).view(B, 1, 1, 1)

    grey = lambda t: (0.299 * t[:, 0:1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:3])  # noqa: E731 (ITU-R 601-2)
    x = (x * factors(brightness)).clamp(0, 1)
    m = grey(x).mean((2, 3), keepdim=True)
    x = ((x - m) * factors(contrast) + m).clamp(0, 1)
    g = grey(x)
    return ((x - g) * factors(saturation) + g).clamp(0, 1)
