"""Synthetic classification data with exact bounding boxes (the default, download-free data tier).

Every class is a distinct (shape, colour, texture) combination drawn on a textured background at a
random position, scale and rotation.  Item ``i`` is a pure function of ``(seed, split, i, options)``:
random access, no state, identical tensors on every machine.

Options (see :func:`synthetic`):

- ``instances``: objects per class in one image (int or ``(lo, hi)``);
- ``classes_per_image``: classes in one image (int or ``(lo, hi)``); above 1 the label is multi-hot
  and each box carries its own class (the Pascal-VOC stand-in);
- ``context`` in [0, 1]: probability that the background type is the class's "home" background
  (``home_background(c) = c % 6``); otherwise one of the other types.  ``None`` (default): background
  independent of the class.  With several classes the first (``scene(i)["classes"][0]``) decides;
- ``fine_grained``: classes of a group share shape and colour and differ only by a small coloured
  spot (4 positions x 4 colours inside the object): the CUB stand-in.

Objects never overlap (each lies inside its own cell of a grid), masks are hard (no anti-aliasing),
so each box is exactly the tight box of its object's pixels (``x1``/``y1`` exclusive).
"""
from __future__ import annotations

import math
import zlib
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import progress
from ..core.devices import host
from ..errors import ConfigError

#: bump when the drawing changes, so cached models trained on older data are not reused
GENERATOR_VERSION = 1

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond", "x", "frame", "ellipse", "halfdisc")
COLOURS = {
    "red": (0.90, 0.10, 0.10), "green": (0.10, 0.75, 0.15), "blue": (0.10, 0.25, 0.95),
    "yellow": (0.95, 0.90, 0.10), "magenta": (0.90, 0.10, 0.85), "cyan": (0.10, 0.90, 0.90),
    "orange": (1.00, 0.55, 0.00), "purple": (0.50, 0.10, 0.70), "white": (0.97, 0.97, 0.97),
    "black": (0.05, 0.05, 0.05),
}
TEXTURES = ("solid", "stripes", "checks")
BACKGROUNDS = ("noise", "gradient", "stripes", "checker", "blobs", "dots")
SPOT_POSITIONS = ((-0.35, -0.35), (0.35, -0.35), (-0.35, 0.35), (0.35, 0.35))
SPOT_NAMES = ("top-left", "top-right", "bottom-left", "bottom-right")
SPOT_COLOURS = ("white", "black", "yellow", "cyan")
_FG_SHAPES = (0, 1, 5, 8)            # shapes that contain every spot position (circle, square, diamond, ellipse)
_FG_COLOURS = ("red", "blue", "green", "magenta", "orange", "purple")
MAX_CLASSES = len(SHAPES) * len(COLOURS)
_PALETTE = np.array(list(COLOURS.values()), dtype=np.float32)
_CNAMES = list(COLOURS)


# ----------------------------------------------------------------------------------- classes
def class_spec(c: int, fine_grained: bool = False) -> dict:
    """Shape, colour, texture (and spot) of class ``c``.

    Ordinary classes: shape ``c % 10``, colour ``(c % 10 + c // 10) % 10`` (the first 10 classes differ
    in both shape and colour; all 100 (shape, colour) pairs are distinct), texture ``(c // 10) % 3``.
    Fine-grained: group ``g = c // 16`` fixes shape and colour; ``c % 16`` picks spot position and colour.
    """
    c = int(c)
    if fine_grained:
        g, v = divmod(c, 16)
        return dict(shape=_FG_SHAPES[g % len(_FG_SHAPES)], colour=_CNAMES.index(_FG_COLOURS[g % len(_FG_COLOURS)]),
                    texture=0, spot=v % 4, spot_colour=_CNAMES.index(SPOT_COLOURS[v // 4]))
    s = c % len(SHAPES)
    return dict(shape=s, colour=(s + c // len(SHAPES)) % len(COLOURS), texture=(c // len(SHAPES)) % len(TEXTURES),
                spot=None, spot_colour=None)


def class_names(num_classes: int, fine_grained: bool = False) -> list[str]:
    """Readable names of the synthetic classes, e.g. ``"red circle"``, ``"blue square (stripes)"``."""
    out = []
    for c in range(num_classes):
        sp = class_spec(c, fine_grained)
        name = f"{_CNAMES[sp['colour']]} {SHAPES[sp['shape']]}"
        if sp["texture"]:
            name += f" ({TEXTURES[sp['texture']]})"
        if fine_grained:
            name += f", {_CNAMES[sp['spot_colour']]} spot {SPOT_NAMES[sp['spot']]}"
        out.append(name)
    return out


def home_background(c: int) -> int:
    """The background type (index into :data:`BACKGROUNDS`) that ``context`` ties to class ``c``."""
    return int(c) % len(BACKGROUNDS)


# ------------------------------------------------------------------------------------ drawing
def _shape_mask(s: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shape ``s`` in local coordinates (object inscribed in the unit disc, v pointing down)."""
    au, av = np.abs(u), np.abs(v)
    if s == 0:
        return u * u + v * v <= 1.0
    if s == 1:
        return np.maximum(au, av) <= 0.7
    if s == 2:  # equilateral triangle, apex up
        return (v <= 0.5) & (au <= (v + 1.0) / 1.5 * 0.866)
    if s == 3:
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    if s == 4:
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.55 ** 2)
    if s == 5:
        return au + av <= 1.0
    if s == 6:
        a, b = np.abs(u - v) / math.sqrt(2), np.abs(u + v) / math.sqrt(2)
        return ((a <= 0.22) & (b <= 0.95)) | ((b <= 0.22) & (a <= 0.95))
    if s == 7:
        m = np.maximum(au, av)
        return (m <= 0.7) & (m >= 0.4)
    if s == 8:
        return u * u + (v / 0.5) ** 2 <= 1.0
    if s == 9:
        return (u * u + v * v <= 1.0) & (v <= 0.25)
    raise ValueError(s)


def _muted(rng) -> np.ndarray:
    grey = rng.uniform(0.2, 0.8)
    return np.clip(grey + (rng.random(3) - 0.5) * 0.45, 0, 1).astype(np.float32)


def _background(kind: int, S: int, rng) -> np.ndarray:
    """(S, S, 3) background of type ``kind`` (see :data:`BACKGROUNDS`), two muted colours mixed by a pattern."""
    a, b = _muted(rng), _muted(rng)
    y, x = np.mgrid[0:S, 0:S].astype(np.float32) + 0.5
    phi = rng.uniform(0, math.pi)
    if kind == 0:
        return np.clip(a + rng.normal(0, 0.07, (S, S, 3)).astype(np.float32), 0, 1)
    if kind == 1:
        t = (x * math.cos(phi) + y * math.sin(phi)) / S
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == 2:
        period = S * rng.uniform(1 / 8, 1 / 3)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (x * math.cos(phi) + y * math.sin(phi)) / period)
    elif kind == 3:
        c = max(2.0, S * rng.uniform(1 / 10, 1 / 4))
        t = ((np.floor(x / c) + np.floor(y / c)) % 2).astype(np.float32)
    elif kind == 4:
        t = np.zeros((S, S), np.float32)
        for _ in range(3):
            f = rng.uniform(0.5, 2.0, 2) * 2 * math.pi / S
            t += np.sin(f[0] * x + rng.uniform(0, 6.3)) * np.sin(f[1] * y + rng.uniform(0, 6.3))
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == 5:
        p = max(4.0, S * rng.uniform(1 / 8, 1 / 4))
        dx, dy = (x % p) - p / 2, (y % p) - p / 2
        t = (dx * dx + dy * dy <= (p / 4) ** 2).astype(np.float32)
    else:
        raise ValueError(kind)
    t = t[..., None]
    return (a * (1 - t) + b * t).astype(np.float32)


def _range(v, name) -> tuple[int, int]:
    lo, hi = (v, v) if np.isscalar(v) else tuple(v)
    lo, hi = int(lo), int(hi)
    if lo < 1 or hi < lo:
        raise ConfigError(f"{name}={v!r}: give a positive int or a (lo, hi) pair with 1 <= lo <= hi")
    return lo, hi


# ------------------------------------------------------------------------------------ dataset
class SyntheticDataset(Dataset):
    """``n`` generated images of ``num_classes`` classes (items as in :mod:`xaikit.data.base`)."""

    def __init__(self, n: int = 1000, num_classes: int = 10, size: int = 32, seed: int = 0,
                 split: str = "train", instances=1, classes_per_image=1, context: float | None = None,
                 fine_grained: bool = False, scale: Sequence[float] = (0.45, 0.9), rotate: float = 20.0):
        if split not in ("train", "test", "val"):
            raise ConfigError(f"split={split!r}: use 'train', 'test' or 'val'")
        maxc = 16 * len(_FG_SHAPES) if fine_grained else MAX_CLASSES
        if not 1 <= int(num_classes) <= maxc:
            raise ConfigError(f"num_classes={num_classes}: synthetic data has 1..{maxc} classes"
                              + (" when fine_grained" if fine_grained else ""))
        if not 16 <= int(size) <= 512:
            raise ConfigError(f"size={size}: synthetic images are 16..512 px (32 = CIFAR-like, 224 = ImageNet-like)")
        if context is not None and not 0.0 <= float(context) <= 1.0:
            raise ConfigError(f"context={context}: a probability in [0, 1], or None for no class/background link")
        self.n, self.num_classes, self.size, self.seed, self.split = int(n), int(num_classes), int(size), int(seed), split
        self.instances = _range(instances, "instances")
        self.classes_per_image = _range(classes_per_image, "classes_per_image")
        if self.classes_per_image[1] > self.num_classes:
            raise ConfigError(f"classes_per_image={classes_per_image} exceeds num_classes={num_classes}")
        self.context = None if context is None else float(context)
        self.fine_grained = bool(fine_grained)
        self.scale = (float(scale[0]), float(scale[1]))
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ConfigError(f"scale={scale}: object extent as a fraction of its cell, 0 < lo <= hi <= 1")
        self.rotate = float(rotate)
        self.multilabel = self.classes_per_image[1] > 1
        max_obj = self.classes_per_image[1] * self.instances[1]
        g = math.ceil(math.sqrt(max_obj))
        if self.size / g * self.scale[1] < 6:
            raise ConfigError(f"{max_obj} objects per image do not fit in {self.size} px images "
                              "(each needs >= 6 px); use a larger size or fewer instances/classes_per_image")
        self.class_names = class_names(self.num_classes, self.fine_grained)
        # every option enters the random stream, so two option sets never share images by accident
        key = repr((self.num_classes, self.size, self.instances, self.classes_per_image, self.context,
                    self.fine_grained, self.scale, self.rotate, GENERATOR_VERSION))
        self._key = zlib.crc32(key.encode())
        self._split_code = {"train": 0, "test": 1, "val": 2}[split]

    def options(self) -> dict:
        """The options that define this dataset (everything but ``n``), JSON-serializable."""
        return dict(num_classes=self.num_classes, size=self.size, seed=self.seed, split=self.split,
                    instances=list(self.instances), classes_per_image=list(self.classes_per_image),
                    context=self.context, fine_grained=self.fine_grained, scale=list(self.scale),
                    rotate=self.rotate, generator_version=GENERATOR_VERSION)

    def __len__(self):
        return self.n

    def __repr__(self):
        return f"SyntheticDataset(n={self.n}, {self.options()})"

    def _rng(self, i: int):
        return np.random.default_rng([self.seed & 0xFFFFFFFF, self._split_code, int(i), self._key])

    # -- scene ---------------------------------------------------------------------------------
    def scene(self, i: int) -> dict:
        """The random draw behind item ``i`` (classes, background type, objects), without rendering."""
        if not 0 <= int(i) < self.n:
            raise IndexError(f"item {i} out of range for a synthetic dataset of {self.n}")
        rng = self._rng(i)
        C, S = self.num_classes, self.size
        k = int(rng.integers(self.classes_per_image[0], self.classes_per_image[1] + 1))
        first = int(i) % C  # balanced classes over consecutive items
        others = rng.permutation(np.delete(np.arange(C), first))[: k - 1]
        classes = [first] + [int(c) for c in others]
        nb = len(BACKGROUNDS)
        if self.context is None:
            bg = int(rng.integers(nb))
        elif rng.random() < self.context:
            bg = home_background(first)
        else:
            bg = int((home_background(first) + 1 + rng.integers(nb - 1)) % nb)
        obj_classes = []
        for c in classes:
            obj_classes += [c] * int(rng.integers(self.instances[0], self.instances[1] + 1))
        m = len(obj_classes)
        g = math.ceil(math.sqrt(m))
        cells = rng.permutation(g * g)[:m]
        cs = S / g
        objects = []
        for c, cell in zip(obj_classes, cells):
            cy0, cx0 = (cell // g) * cs, (cell % g) * cs
            h = max(3.0, rng.uniform(*self.scale) * cs / 2)
            cx = cx0 + rng.uniform(h, cs - h) if cs > 2 * h else cx0 + cs / 2
            cy = cy0 + rng.uniform(h, cs - h) if cs > 2 * h else cy0 + cs / 2
            theta = math.radians(rng.uniform(-self.rotate, self.rotate))
            jitter = rng.normal(0, 0.04, 3).astype(np.float32)
            tex_phase = rng.uniform(0, 1)
            objects.append(dict(cls=int(c), cx=float(cx), cy=float(cy), h=float(h), theta=theta,
                                jitter=jitter, tex_phase=tex_phase))
        bg_seed = int(rng.integers(2**31))
        return dict(classes=classes, background=bg, objects=objects, bg_seed=bg_seed)

    # -- rendering -----------------------------------------------------------------------------
    def render(self, i: int, masks: bool = False, objects: bool = True) -> dict:
        """Item ``i``; ``masks=True`` adds ``"masks"`` (K, S, S) bool, one per box, and ``"background"``;
        ``objects=False`` draws the background only (for tests)."""
        sc = self.scene(i)
        S = self.size
        img = _background(sc["background"], S, np.random.default_rng(sc["bg_seed"]))
        boxes, blabs, mlist = [], [], []
        for ob in sc["objects"] if objects else []:
            sp = class_spec(ob["cls"], self.fine_grained)
            h = ob["h"]
            x0, x1 = max(0, int(math.floor(ob["cx"] - h))), min(S, int(math.ceil(ob["cx"] + h)) + 1)
            y0, y1 = max(0, int(math.floor(ob["cy"] - h))), min(S, int(math.ceil(ob["cy"] + h)) + 1)
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
            dx, dy = xx - ob["cx"], yy - ob["cy"]
            ct, st = math.cos(ob["theta"]), math.sin(ob["theta"])
            u, v = (dx * ct + dy * st) / h, (-dx * st + dy * ct) / h
            mask = _shape_mask(sp["shape"], u, v)
            col = np.clip(_PALETTE[sp["colour"]] + ob["jitter"], 0, 1)
            shade = np.ones_like(u)
            if sp["texture"] == 1:
                shade = np.where(((u * 2.5 + ob["tex_phase"]) % 1.0) < 0.5, 1.0, 0.55).astype(np.float32)
            elif sp["texture"] == 2:
                q = (np.floor(u * 2.5 + ob["tex_phase"]) + np.floor(v * 2.5 + ob["tex_phase"])) % 2
                shade = np.where(q == 0, 1.0, 0.55).astype(np.float32)
            pix = col * shade[..., None]
            if sp["spot"] is not None:
                pu, pv = SPOT_POSITIONS[sp["spot"]]
                spot = mask & ((u - pu) ** 2 + (v - pv) ** 2 <= 0.3 ** 2)
                pix = np.where(spot[..., None], _PALETTE[sp["spot_colour"]], pix)
            win = img[y0:y1, x0:x1]
            win[mask] = pix[mask]
            full = np.zeros((S, S), bool)
            full[y0:y1, x0:x1] = mask
            ys, xs = np.nonzero(mask)
            boxes.append([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1])
            blabs.append(ob["cls"])
            mlist.append(full)
        if self.multilabel:
            label = torch.zeros(self.num_classes)
            label[sc["classes"]] = 1.0
        else:
            label = sc["classes"][0]
        item = {"image": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
                "label": label,
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "box_labels": torch.tensor(blabs, dtype=torch.long),
                "name": f"synthetic/{self.split}/{int(i):05d}"}
        if masks:
            item["masks"] = torch.from_numpy(np.stack(mlist)) if mlist else torch.zeros(0, S, S, dtype=torch.bool)
            item["background"] = sc["background"]
        return item

    def __getitem__(self, i):
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"index a synthetic dataset with an int, got {type(i).__name__}")
        if i < 0:
            i += self.n
        return self.render(int(i))

    def tensors(self, indices=None, bar: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images (N,3,S,S), labels)`` of the given items (all by default), for training loops."""
        idx = range(self.n) if indices is None else list(indices)
        imgs = torch.empty(len(idx), 3, self.size, self.size)
        labs = []
        for j, i in enumerate(progress(idx, total=len(idx), desc="synthetic") if bar else idx):
            it = self.render(i)
            imgs[j] = it["image"]
            labs.append(it["label"])
        lab = torch.stack(labs) if self.multilabel else torch.tensor(labs, dtype=torch.long)
        return host(imgs), host(lab)  # data stays on the host until a loop moves a batch (core.devices)


def synthetic(n: int = 1000, num_classes: int = 10, size: int = 32, seed: int = 0, split: str = "train",
              **options) -> SyntheticDataset:
    """A seeded synthetic dataset; ``split="test"`` draws a disjoint random stream from the same seed.

    ``options``: ``instances``, ``classes_per_image``, ``context``, ``fine_grained``, ``scale``
    (object extent as a fraction of its grid cell), ``rotate`` (max degrees); see the module docstring.
    """
    return SyntheticDataset(n=n, num_classes=num_classes, size=size, seed=seed, split=split, **options)


def synthetic_splits(n_train: int = 2000, n_test: int = 500, **kw) -> tuple[SyntheticDataset, SyntheticDataset]:
    """``(train, test)`` datasets with the same options and seed, drawn from different streams."""
    return synthetic(n_train, split="train", **kw), synthetic(n_test, split="test", **kw)
