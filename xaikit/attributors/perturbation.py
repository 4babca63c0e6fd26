"""Perturbation attributions: RISE (Petsiuk et al. 2018) and Extremal Perturbation (Fong et al. 2019).

Both probe the model with masked copies of the input; nothing is read from inside the network, so both run
on the model's inference twin by default (``twin=True``, :mod:`xaikit.models.fast`).  Masking happens in the
model's normalized input space: RISE blends towards ``baseline`` (default ``"mean"``: 0 in the normalized
space = the mean colour, as the authors' code multiplies the normalized tensor by the mask); Extremal
Perturbation blends towards a blurred copy (TorchRay's blur pyramid).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import progress
from ..core.conventions import (Preset, check_count, choice, chunks, class_score, one_of, paper, presets_doc,
                                resolve_preset, substrate)
from ..core.targets import resolve_target
from ..errors import ConfigError, InputError
from .base import Attributor, Explanation, check_bool, check_number, fingerprint, register


# ------------------------------------------------------------------------------------- RISE
#: RISE's presets: the paper's text (xaikit's defaults) and the codes whose settings differ
RISE_PRESETS = {
    "paper": Preset("Petsiuk et al., BMVC 2018, Sec. 3 and the thesis: N = 4000, s = 7, p1 = 0.5, probabilities"),
    "rise": Preset("eclique/RISE explanations.py RISE.generate_masks / RISE.forward with Saliency.ipynb's "
                   "generate_masks(N=6000, s=8, p1=0.1) on a model ending in nn.Softmax",
                   {"n_masks": 6000, "grid": 8, "p": 0.1, "score": "softmax", "mask_resize": "skimage"},
                   "Masks multiply the normalized tensor (baseline 'mean'); grids upsampled by skimage's "
                   "resize(order=1, mode='reflect'). Evaluation.ipynb explains with N=5000, s=10 (pass them)."),
    "groupcam": Preset("wofmanaf/Group-CAM cam/rise.py RISE (N=8000, s=7, p1=0.1)",
                       {"n_masks": 8000, "grid": 7, "p": 0.1, "score": "logit", "mask_resize": "skimage"},
                       "Raw logits of the masked images (no softmax), masks on the normalized tensor."),
}
MASK_RESIZES = ("bilinear", "skimage")


def skimage_linear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) matrix of skimage's ``resize(order=1, mode='reflect', anti_aliasing=False)`` along one
    axis: half-pixel centres, linear interpolation, scipy's ``mirror`` extension (d c b | a b c d) at the
    borders (torch's bilinear clamps instead)."""
    src = (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    i0 = torch.floor(src)
    t = src - i0
    i0 = i0.long()

    def mirror(i):
        if n_in == 1:
            return torch.zeros_like(i)
        period = 2 * (n_in - 1)
        i = torch.remainder(i, period)
        return torch.where(i >= n_in, period - i, i)

    W = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    W.index_put_((rows, mirror(i0)), 1 - t, accumulate=True)
    W.index_put_((rows, mirror(i0 + 1)), t, accumulate=True)
    return W


@register("rise")
class RISE(Attributor):
    """RISE (Petsiuk et al., BMVC 2018, eq. 6): S_c = 1/(N p) sum_i f_c(x . M_i) M_i over random masks.

    ``n_masks`` binary ``grid`` x ``grid`` masks with P(cell = 1) = ``p`` are drawn **once**, at
    construction, from ``torch.Generator().manual_seed(seed)`` with a random shift per mask
    (fractions of a cell).  For an H x W input each grid is upsampled bilinearly to
    (grid + 1) * ceil(H / grid) and cropped at its shift (the authors' ``generate_masks``;
    bilinear ``align_corners=False`` stands in for skimage's order-1 resize).  The upsampled masks are
    built chunk by chunk, so memory stays bounded by ``batch_size``.  Forward passes are batched over
    masks x images, ``batch_size`` at a time.

    Args:
        preset: ``"paper"`` (default: the options' defaults below), ``"rise"`` or ``"groupcam"`` (section
            Presets); an option passed explicitly wins over the preset.
        n_masks: number of random masks N, >= 1; default 4000 (the paper's ImageNet setting).
        grid: cells per side of the low-resolution masks, >= 1; default 7 (the paper's s).
        p: probability that a cell is kept, in (0, 1]; default 0.5 (the paper's p1 = 0.5).
        seed: seed of the mask generator, >= 0; default 0.
        score: the class score of each masked image: ``"softmax"`` (default; the paper's probabilities),
            ``"logit"`` or ``"log_softmax"``.
        baseline: what fills the masked-out pixels, a substrate of :mod:`xaikit.core.conventions`:
            ``"mean"`` (default; alias ``"zeros"``: 0 in the normalized space, as the authors' code),
            ``"black"``, ``"min"``, ``"blur"`` or a number (in the normalized space).
        masks: an explicit (N, H, W) tensor in [0, 1] used instead of the random masks (e.g. for tests);
            ``options`` records its fingerprint. Default None.
        mask_resize: how the grids are upsampled: ``"bilinear"`` (default; torch's, borders clamped) or
            ``"skimage"`` (the authors' ``skimage.transform.resize(order=1, mode='reflect')``: mirrored
            borders, :func:`skimage_linear_matrix`).
        twin: run the masked images on the model's inference twin (default True), at the forward precision
            setting (:mod:`xaikit.models.fast`; under bf16 maps keep Pearson >= 0.999 to the fp32 ones,
            ``tests/test_precision.py``); False: the model itself, in fp32.
        batch_size: masked images per forward chunk; None: from the image size.

    ``explain(...).extras``: ``"n_masks"`` N, ``"p"``, ``"n_forward"`` the number of forward passes
    (N per image).

{presets}"""

    uses_layer = False

    def __init__(self, model: nn.Module, layer=None, *, preset: str = "paper", n_masks: int = paper(4000),
                 grid: int = paper(7), p: float = paper(0.5), seed: int = 0, score: str = paper("softmax"),
                 baseline: str | float = "mean", masks: torch.Tensor | None = None,
                 mask_resize: str = paper("bilinear"), twin: bool = True, batch_size: int | None = None):
        super().__init__(model, None, batch_size=batch_size)
        preset, o = resolve_preset("rise", RISE_PRESETS, preset, dict(n_masks=n_masks, grid=grid, p=p, score=score,
                                                                      mask_resize=mask_resize))
        n_masks, grid, p, score = o["n_masks"], o["grid"], o["p"], o["score"]
        if isinstance(baseline, str):
            baseline = choice("substrate", baseline, "baseline")
        elif not isinstance(baseline, bool) and isinstance(baseline, (int, float)):
            baseline = check_number("baseline", baseline)
        else:
            raise ConfigError(f"baseline={baseline!r}: use 'mean' (alias 'zeros'), 'black', 'min', 'blur' or a number")
        p = check_number("p", p, 0, 1, low_open=True)
        self.masks = None
        if masks is not None:
            m = torch.as_tensor(masks, dtype=torch.float32)
            if m.dim() != 3 or m.shape[0] < 1:
                raise ConfigError(f"masks of shape {tuple(m.shape)}: an (N, H, W) tensor in [0, 1] is expected")
            if not bool(torch.isfinite(m).all()) or float(m.min()) < 0 or float(m.max()) > 1:
                raise ConfigError(f"masks must hold values in [0, 1], got [{float(m.min()):.3g}, {float(m.max()):.3g}]")
            self.masks = m
            n_masks = int(m.shape[0])
        self._set_options(preset=preset, n_masks=check_count("n_masks", n_masks, 1),
                          grid=check_count("grid", grid, 1), p=p,
                          seed=check_count("seed", seed, 0), score=choice("score", score, "score"),
                          baseline=baseline, mask_resize=one_of("mask_resize", o["mask_resize"], MASK_RESIZES),
                          twin=check_bool("twin", twin))
        self.options["masks"] = None if self.masks is None else fingerprint(self.masks)
        if self.masks is None:
            g = torch.Generator().manual_seed(int(self.seed))
            s = int(self.grid)
            self.grids = (torch.rand(int(self.n_masks), s, s, generator=g) < float(self.p)).float()
            self.shifts = torch.rand(int(self.n_masks), 2, generator=g)

    def _on(self, name: str, device) -> torch.Tensor:
        """``self.<name>`` (the grids, shifts or explicit masks) on ``device``, copied there once."""
        t = getattr(self, name)
        if device is None or t.device == torch.device(device):
            return t
        cache = self.__dict__.setdefault("_device_copies", {})
        key = (name, str(device))
        if key not in cache or cache[key][0] is not t:
            cache[key] = (t, t.to(device))
        return cache[key][1]

    def mask_chunk(self, sl: slice, size, device=None) -> torch.Tensor:
        """Masks ``sl`` upsampled to ``size`` = (H, W): (k, H, W) in [0, 1], built on ``device`` (default: where
        the grids are, the CPU) so that a GPU run copies the low-resolution grids there once, not each chunk."""
        H, W = int(size[0]), int(size[1])
        if self.masks is not None:
            if tuple(self.masks.shape[-2:]) != (H, W):
                raise InputError(f"rise: the given masks are {tuple(self.masks.shape[-2:])}, the input {H}x{W}")
            return self._on("masks", device)[sl]
        grids = self._on("grids", device)[sl]
        dev = grids.device
        s = int(self.grid)
        ch, cw = math.ceil(H / s), math.ceil(W / s)
        if self.mask_resize == "skimage":
            cache = self.__dict__.setdefault("_device_copies", {})
            key = ("skimage", s, ch, cw, str(dev), grids.dtype)
            if key not in cache:  # built on the host once per size and device, not per chunk
                cache[key] = (None, (skimage_linear_matrix(s, (s + 1) * ch).to(dev, grids.dtype),
                                     skimage_linear_matrix(s, (s + 1) * cw).to(dev, grids.dtype)))
            Wy, Wx = cache[key][1]
            up = torch.einsum("ys,ksr,xr->kyx", Wy, grids, Wx)
        else:
            up = F.interpolate(grids[:, None], size=((s + 1) * ch, (s + 1) * cw), mode="bilinear",
                               align_corners=False)[:, 0]
        sh = self._on("shifts", device)[sl]
        dy = (sh[:, 0] * ch).long().clamp_max(ch - 1)
        dx = (sh[:, 1] * cw).long().clamp_max(cw - 1)
        k = grids.shape[0]
        rows = (dy[:, None] + torch.arange(H, device=dev))[:, :, None]
        cols = (dx[:, None] + torch.arange(W, device=dev))[:, None, :]
        return up[torch.arange(k, device=dev)[:, None, None], rows, cols].clamp_(0.0, 1.0)

    def _attribute(self, x, t):
        B, _, H, W = x.shape
        f = self.fast(x)
        with torch.no_grad():
            logits = f(x)
            t = resolve_target(t, logits)
            base = substrate(x, self.baseline, self.info)
            per = max(1, self.batch_size // B)
            n = int(self.n_masks)
            sal = torch.zeros(B, H, W, dtype=x.dtype, device=x.device)
            for sl in chunks(n, per, desc="rise"):  # nothing in the loop waits for the device
                m = self.mask_chunk(sl, (H, W), x.device).to(x.dtype)  # (k, H, W)
                k = m.shape[0]
                mm = m[:, None, None]  # (k, 1, 1, H, W)
                xs = (x[None] * mm + base[None] * (1 - mm)).reshape(k * B, *x.shape[1:])
                sc = class_score(f(xs), t.repeat(k), self.score).view(k, B)
                sal += torch.einsum("kb,khw->bhw", sc.to(x.dtype), m)
        maps = sal / (n * float(self.p))
        return Explanation(maps, t, logits, {"n_masks": n, "p": float(self.p), "n_forward": n})


RISE.__doc__ = RISE.__doc__.replace("{presets}", presets_doc(RISE_PRESETS))


# ----------------------------------------------------------------------- Extremal perturbation
def imsmooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with std ``sigma`` (support 4 sigma), zero padding (TorchRay ``imsmooth``)."""
    width = math.ceil(4 * sigma)
    if width == 0:
        return x.clone()
    filt = torch.exp(-torch.linspace(-width, width, 2 * width + 1, dtype=x.dtype, device=x.device) ** 2
                     / (2 * max(sigma, 1e-12) ** 2))
    filt = filt / filt.sum()
    c = x.shape[1]
    y = F.conv2d(x, filt.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(width, 0), groups=c)
    return F.conv2d(y, filt.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, width), groups=c)


class BlurPyramid:
    """``num_levels`` copies of each image, from most blurred (level 0, std ``max_blur``) to the
    original (last level) - or faded to 0 (``kind="fade"``); :meth:`apply` interpolates between
    levels at every pixel by the mask value (TorchRay ``Perturbation``)."""

    def __init__(self, x: torch.Tensor, num_levels: int = 8, max_blur: float = 20.0, kind: str = "blur"):
        if num_levels < 2:
            raise ConfigError("extremal: num_levels must be >= 2")
        levels = []
        with torch.no_grad():
            for s in torch.linspace(0, 1, num_levels).tolist():
                if kind == "blur":
                    levels.append(imsmooth(x, (1 - s) * max_blur))
                elif kind == "fade":
                    levels.append(x * s)
                else:
                    raise ConfigError(f"extremal: perturbation={kind!r}; use 'blur' or 'fade'")
        self.pyramid = torch.stack(levels, 1)  # (B, L, 3, H, W)
        self.num_levels = num_levels

    def apply(self, mask: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """mask (N, 1, H, W) in [0, 1], index (N,) image of each mask -> (N, 3, H, W)."""
        return self.blend(mask, self.pyramid[index])

    def blend(self, mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """:meth:`apply` on the levels ``y = pyramid[index]`` (N, L, 3, H, W) selected once (an optimization
        loop that perturbs the same images at every step need not copy their L levels at every step)."""
        w = mask * (self.num_levels - 1)
        k = w.floor()
        w = w - k
        k = k.long().clamp(0, self.num_levels - 1)
        kk = k[:, None].expand(-1, 1, y.shape[2], -1, -1)
        y0 = torch.gather(y, 1, kk)
        y1 = torch.gather(y, 1, (kk + 1).clamp_max(self.num_levels - 1))
        return ((1 - w[:, None]) * y0 + w[:, None] * y1)[:, 0]


#: bytes of the (pixels x r^2) tensor that :class:`_SmoothMax` processes at a time on a CPU: a tile that
#: stays in the core's caches (and in malloc's reused heap) runs the pooling 3-4x faster than one pass over
#: a chunk's whole tensor (64 images at 32 px: 117 vs 416 ms forward and backward; 2 at 224 px: 53 vs 164 ms)
SMOOTH_MAX_TILE_BYTES = 1 << 20


def _smooth_max_tiles(mid: torch.Tensor, weight: torch.Tensor):
    """(image slice, block-row slice) tiles of :class:`_SmoothMax`'s work: whole images while one fits in
    :data:`SMOOTH_MAX_TILE_BYTES` (several per tile), else rows of blocks of one image; one tile on a GPU."""
    n, hm = mid.shape[:2]
    per_image = weight.numel() * weight.element_size()
    if mid.device.type != "cpu":
        return [(slice(None), slice(None))]
    if per_image <= SMOOTH_MAX_TILE_BYTES:
        k = max(1, SMOOTH_MAX_TILE_BYTES // per_image)
        return [(slice(i, i + k), slice(None)) for i in range(0, n, k)]
    rows = max(1, SMOOTH_MAX_TILE_BYTES // (per_image // hm))
    return [(slice(i, i + 1), slice(r, r + rows)) for i in range(n) for r in range(0, hm, rows)]


class _SmoothMax(torch.autograd.Function):
    """TorchRay's smooth-max pooling of the bumps, out = sum_k v_k softmax(c v)_k over the r^2 bumps k at
    every pixel, v = weight * mid with ``mid`` (N, hm, 1, wm, 1, R) broadcast over the step x step pixels of
    each block and ``weight`` (hm, s, wm, s, R); its gradient with respect to ``mid`` in one expression:
    d out / d v_k = p_k (1 + c (v_k - out)), summed over the pixels of a block.

    The function autograd derives for TorchRay's unfold -> upsample -> multiply -> softmax -> sum chain,
    computed tile by tile (:func:`_smooth_max_tiles`): no upsampled copy of ``mid``, nothing of the
    (pixels x R) size kept for the backward pass (recomputed per tile), every value independent of the
    tiling (reductions run over R only).  Before, this pooling was 65-80 % of an Extremal Perturbation step
    (EfficientNet-Lite0 at 224 px, a small CNN at 32 px)."""

    @staticmethod
    def _tile(mid, weight, c):
        v = weight * mid
        p = torch.softmax(v * c, dim=-1)
        return v, p, torch.linalg.vecdot(v, p)

    @staticmethod
    def forward(ctx, mid, weight, coldness: float):
        n, hm, _, wm, _, _ = mid.shape
        s = weight.shape[1]
        out = mid.new_empty(n, hm, s, wm, s)
        for i, r in _smooth_max_tiles(mid, weight):
            out[i, r] = _SmoothMax._tile(mid[i, r], weight[r], coldness)[2]
        ctx.save_for_backward(mid, weight)
        ctx.coldness = coldness
        return out

    @staticmethod
    def backward(ctx, g):
        mid, weight = ctx.saved_tensors
        c = ctx.coldness
        grad = torch.empty_like(mid)
        for i, r in _smooth_max_tiles(mid, weight):
            w = weight[r]
            v, p, out = _SmoothMax._tile(mid[i, r], w, c)
            t = v.sub_(out.unsqueeze(-1))
            t.mul_(c).add_(1).mul_(p).mul_(w).mul_(g[i, r].unsqueeze(-1))
            grad[i, r] = t.sum(dim=(2, 4), keepdim=True)
        return grad, None, None


class MaskGenerator:
    """Smooth masks from a low-resolution parameter (Fong et al. 2019, Sec. 3.2 "smooth masks";
    TorchRay ``MaskGenerator``): each parameter cell, ``step`` pixels apart, spreads a bump of
    width ``sigma``; bumps are pooled by a smooth max (softmax with coldness 20) and clamped to [0, 1].

    TorchRay unfolds the (r x r) neighbourhood of every parameter cell (R = r^2 channels), upsamples that
    tensor ``step`` times (nearest) to the pixels, multiplies it by a per-pixel weight and pools it.
    Here the upsampling is a broadcast (the R values are constant over each step x step block), the R
    channels are the contiguous last dimension and the pooling with its gradient is one fused function
    (:class:`_SmoothMax`): the same mask and gradient up to float rounding (``tests``: 1e-6 against the
    literal chain), 3-5x faster on a CPU.  The weight lives on the parameter's device and dtype, cached."""

    def __init__(self, shape, step: int = 7, sigma: float = 21.0, coldness: float = 20.0):
        self.shape, self.step, self.sigma, self.coldness = tuple(shape), int(step), float(sigma), coldness
        self.margin = self.sigma
        self.padding = 1 + math.ceil((self.margin + self.sigma) / self.step)
        self.radius = 1 + math.ceil(self.sigma / self.step)
        self.shape_in = [math.ceil(z / self.step) for z in self.shape]
        for i, z in enumerate(self.shape):  # grow the grid if the mask would not cover the image
            while (self.step * (self.shape_in[i] + 2 * self.padding - 2 * self.radius) - self.step + 1
                   < round(self.margin) + z):
                self.shape_in[i] += 1
        self.shape_mid = [z + 2 * self.padding - (2 * self.radius + 1) + 1 for z in self.shape_in]
        self.shape_up = [self.step * z for z in self.shape_mid]
        self.shape_out = [z - self.step + 1 for z in self.shape_up]
        r = 2 * self.radius + 1
        uy, ux = torch.meshgrid(torch.arange(self.shape_out[0], dtype=torch.float32),
                                torch.arange(self.shape_out[1], dtype=torch.float32), indexing="ij")
        inv = [zm / zo for zm, zo in zip(self.shape_mid, self.shape_up)]
        weight = torch.zeros(1, r * r, *self.shape_out)
        for ky in range(r):
            for kx in range(r):
                iy = torch.floor(inv[0] * uy) + ky - self.padding
                ix = torch.floor(inv[1] * ux) + kx - self.padding
                delta = torch.sqrt((uy - (self.margin + self.step * iy)) ** 2
                                   + (ux - (self.margin + self.step * ix)) ** 2)
                weight[0, ky * r + kx] = torch.exp(-2 * ((delta / self.sigma - 0.5).clamp(min=0) ** 2))
        self.weight = weight  # (1, R, H', W'): TorchRay's layout
        # the fast layout: (hm, s, wm, s, R), zero beyond H' x W' (those pixels are cropped away)
        (hm, wm), s = self.shape_mid, self.step
        w = F.pad(weight, (0, self.shape_up[1] - self.shape_out[1], 0, self.shape_up[0] - self.shape_out[0]))
        self._blocked = w[0].permute(1, 2, 0).reshape(hm, s, wm, s, r * r).contiguous()
        self._on = {}

    def _weight_on(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.device, like.dtype)
        if key not in self._on:  # moved once, not at every step (a host-to-device copy on a GPU)
            self._on[key] = self._blocked.to(device=like.device, dtype=like.dtype)
        return self._on[key]

    def generate(self, pmask: torch.Tensor):
        """pmask (N, 1, h, w) -> (cropped mask (N, 1, H, W), full mask (N, 1, H', W'))."""
        r = 2 * self.radius + 1
        (hm, wm), (hu, wu), (ho, wo) = self.shape_mid, self.shape_up, self.shape_out
        n = len(pmask)
        mid = F.unfold(pmask, (r, r), padding=(self.padding, self.padding))          # (N, R, hm * wm)
        mid = mid.transpose(1, 2).reshape(n, hm, 1, wm, 1, r * r)
        m = _SmoothMax.apply(mid, self._weight_on(pmask), float(self.coldness))       # (N, hm, s, wm, s)
        m = m.reshape(n, 1, hu, wu)[:, :, :ho, :wo].clamp(0, 1)
        o = round(self.margin)
        return m[:, :, o:o + self.shape[0], o:o + self.shape[1]], m


@register("extremal", "extremal_perturbation", "expert")
class ExtremalPerturbation(Attributor):
    """Extremal Perturbation (Fong, Patrick & Vedaldi, ICCV 2019, eq. 7-8), a port of TorchRay's code.

    A faithful port of TorchRay's ``extremal_perturbation``: for each area a in ``areas`` find the smooth
    mask m that maximizes the target score of the perturbed input (``variant="preserve"``: keep the masked
    region, blur the rest; ``"delete"``: blur the region and minimize) subject to area(m) = a, enforced by
    the rank loss ||sort(m) - r_a||^2 against the reference vector r_a (1 - a zeros then a ones), weight
    ``regul_weight`` growing by 1.0035 per iteration.  ``jitter`` flips the image every other step.  All
    images x areas are optimized at once as one batch (chunks of ``batch_size``).  The saliency is the sum
    of the masks over the areas; :meth:`masks` gives them one by one (B, A, H, W).

    As in TorchRay, the area constraint applies to the whole generated mask, which extends ``sigma``
    pixels beyond each image border (``extras["area"]``); the part inside the image is returned, so its
    mean is usually a little above the requested area.

    Args:
        areas: the target areas, fractions in (0, 1) (a number or a sequence); default (0.1,).
        max_iter: optimization steps, >= 1; default 800 (TorchRay).
        num_levels: levels of the blur pyramid, >= 2; default 8 (TorchRay).
        step: spacing in pixels of the mask's parameter grid, >= 1; default 7 (TorchRay).
        sigma: width in pixels of each parameter's smooth bump, > 0; default 21.0 (TorchRay).
        max_blur: standard deviation of the most blurred level, >= 0; default 20.0 (TorchRay).
        jitter: flip the image horizontally every other step (default True, TorchRay).
        variant: ``"preserve"`` (default) or ``"delete"``.
        perturbation: ``"blur"`` (default) or ``"fade"`` (towards 0 in the normalized space).
        learning_rate: step size, > 0; default 0.01 (TorchRay's SGD).
        regul_weight: initial weight of the area loss, >= 0; default 300.0 (TorchRay).
        optimizer: ``"sgd"`` (default; TorchRay's SGD, momentum 0.9, dampening 0.9) or ``"adam"``.
        score: the class score optimized: ``"logit"`` (default, TorchRay), ``"softmax"`` or ``"log_softmax"``.
        twin: run the perturbed images on the model's inference twin (default True; gradients flow to the
            mask through it as through the model); False: the model itself. Always in fp32, whatever the
            forward precision setting (:mod:`xaikit.models.fast`): the optimization follows bf16's rounding
            noise to other masks (maps Pearson 0.70-0.99 to the fp32 maps after 20 steps on
            EfficientNet-Lite0, below the 0.999 bar of ``tests/test_precision.py``).
        batch_size: (image, area) pairs optimized per chunk; None: from the image size.

    ``explain(...).extras``: ``"masks"`` (B, A, H, W) the masks inside the image, ``"energy"`` (B, A) the final
    objective, ``"area"`` (B, A) the constrained area of the whole generated masks, ``"areas"`` the areas.
    """

    uses_layer = False
    reduced_precision = False  # the optimization amplifies bf16's noise (docstring, ``twin``)

    def __init__(self, model: nn.Module, layer=None, *, areas: float | tuple = (0.1,), max_iter: int = 800,
                 num_levels: int = 8, step: int = 7, sigma: float = 21.0, max_blur: float = 20.0,
                 jitter: bool = True, variant: str = "preserve", perturbation: str = "blur",
                 learning_rate: float = 0.01, regul_weight: float = 300.0, optimizer: str = "sgd",
                 score: str = "logit", twin: bool = True, batch_size: int | None = None):
        super().__init__(model, None, batch_size=batch_size)
        if isinstance(areas, (int, float)) and not isinstance(areas, bool):
            areas = (areas,)
        try:
            areas = tuple(check_number("areas", a, 0, 1, low_open=True, high_open=True) for a in areas)
        except TypeError:
            raise ConfigError(f"areas={areas!r} must be a fraction in (0, 1) or a sequence of them") from None
        if not areas:
            raise ConfigError("areas=() is empty: give at least one fraction in (0, 1)")
        self._set_options(areas=areas, max_iter=check_count("max_iter", max_iter, 1),
                          num_levels=check_count("num_levels", num_levels, 2), step=check_count("step", step, 1),
                          sigma=check_number("sigma", sigma, 0, low_open=True),
                          max_blur=check_number("max_blur", max_blur, 0), jitter=check_bool("jitter", jitter),
                          variant=one_of("variant", variant, ("preserve", "delete")),
                          perturbation=one_of("perturbation", perturbation, ("blur", "fade")),
                          learning_rate=check_number("learning_rate", learning_rate, 0, low_open=True),
                          regul_weight=check_number("regul_weight", regul_weight, 0),
                          optimizer=one_of("optimizer", optimizer, ("sgd", "adam")),
                          score=choice("score", score, "score"), twin=check_bool("twin", twin))

    def masks(self, x, target=None) -> torch.Tensor:
        """(B, A, H, W) optimized masks in [0, 1], one per requested area (``explain(...).extras["masks"]``)."""
        return self.explain(x, target, normalize=False).extras["masks"]

    def _attribute(self, x, t):
        net = self.fast(x)  # the inference twin: gradients flow to the mask through it as through the model
        with torch.no_grad():
            logits = net(x)
        t = resolve_target(t, logits)
        B, _, H, W = x.shape
        A = len(self.areas)
        per = max(1, self.batch_size)
        idx = torch.arange(B, device=x.device).repeat_interleave(A)
        area_of = torch.tensor(self.areas, device=x.device).repeat(B)
        pyr = BlurPyramid(x, int(self.num_levels), float(self.max_blur), self.perturbation)
        gen = MaskGenerator((H, W), int(self.step), float(self.sigma))  # one per call: its weight moves once
        out, energy, full = [], [], []
        for s in range(0, B * A, per):
            m, e, f = self._optimize(net, pyr, gen, x, t, idx[s:s + per], area_of[s:s + per])
            out.append(m)
            energy.append(e)
            full.append(f)
        masks = torch.cat(out)[:, 0].view(B, A, H, W)
        extras = {"masks": masks, "energy": torch.cat(energy).view(B, A), "area": torch.cat(full).view(B, A),
                  "areas": self.areas}
        return Explanation(masks.sum(1), t, logits, extras)

    def _optimize(self, net, pyr, gen, x, t, index, areas):
        n = len(index)
        h, w = gen.shape_in
        pmask = torch.ones(n, 1, h, w, device=x.device, dtype=x.dtype, requires_grad=True)
        max_area = gen.shape_out[0] * gen.shape_out[1]
        ref = torch.ones(n, max_area, device=x.device, dtype=x.dtype)
        for i, a in enumerate(areas.tolist()):
            ref[i, :int(max_area * (1 - a))] = 0
        if self.optimizer == "sgd":
            opt = torch.optim.SGD([pmask], lr=float(self.learning_rate), momentum=0.9, dampening=0.9)
        else:
            opt = torch.optim.Adam([pmask], lr=float(self.learning_rate))
        regul = float(self.regul_weight)
        tt = t[index]
        sign = 1.0 if self.variant == "preserve" else -1.0
        levels = pyr.pyramid[index]  # (n, L, 3, H, W), the same at every step
        for it in progress(range(int(self.max_iter)), total=int(self.max_iter), desc="extremal"):
            with torch.enable_grad():
                mask_, mask = gen.generate(pmask)
                xm = pyr.blend(mask_ if self.variant == "preserve" else 1 - mask_, levels)
                if self.jitter and it % 2 == 0:
                    xm = torch.flip(xm, dims=(3,))
                reward = sign * class_score(net(xm), tt, self.score)
                srt = mask.reshape(n, -1).sort(dim=1)[0]
                reg = -((srt - ref) ** 2).mean(1) * regul
                energy = reward + reg
                (g,) = torch.autograd.grad(-energy.sum(), pmask)  # no parameter .grad is touched
            pmask.grad = g
            opt.step()
            with torch.no_grad():
                pmask.clamp_(0, 1)
            regul *= 1.0035
        with torch.no_grad():
            mask_, mask = gen.generate(pmask)
        return mask_.detach(), energy.detach(), mask.flatten(1).mean(1)
