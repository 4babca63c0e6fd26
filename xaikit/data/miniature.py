"""Miniature copies of the real datasets, in their real on-disk formats, for CPU rehearsals.

The ``full`` profile reads ImageNet, VOC, CUB, CIFAR-100, COCO, ... from folders nobody has in CI.
:func:`build` writes a *miniature* of each of them: the same folder layout, file names, XML / TXT /
pickle / JSON formats that the readers of :mod:`xaikit.data.folders` parse, at a few images per
class, so that a rehearsal runs exactly the reader code paths of the full profile on a 2-core CPU.

What is real and what is not:

- real: layouts, file-name patterns, annotation formats and coordinate conventions (ILSVRC XML is
  0-based inclusive, VOC XML 1-based inclusive, CUB ``x y w h``, COCO ``[x, y, w, h]``), class ids and
  names (ImageNet WordNet ids from timm, the 20 VOC classes, the first 20 CUB species, the 100/20
  CIFAR-100 names with their fine -> coarse map, the 80 COCO categories with their ids 1..90 and
  supercategories), CIFAR pickles written as Python 2's cPickle wrote them (``bytes`` keys, numpy
  arrays through ``numpy.core.multiarray._reconstruct``), greyscale chest X-rays, JPEG files;
- not real: the pictures.  Each image is a crop of a photograph bundled with scikit-image /
  matplotlib (:mod:`xaikit.data.samples`) or a synthetic texture (:mod:`xaikit.data.synthetic`), with
  objects pasted on it: a bundled photo where one shows the class (Chelsea the cat for ``cat``), else
  the class's synthetic shape.  Every box is exact: the pasted rectangle, or the tight box of the
  shape's pixels.  Image sizes vary (500x375, 375x500, 640x427, ... and small ones) so that the
  readers' resizing is exercised.

Each dataset is built in a hidden temporary folder next to its destination and renamed into place
once complete; its ``.complete`` file (JSON) records the build parameters and the ground truth the
builder meant to write (see :func:`manifest`).  A later :func:`build` with the same parameters reuses
the folder untouched.  Same parameters -> byte-identical files.

Command line: ``python -m xaikit.data.miniature FOLDER [--datasets voc coco] [--seed 0] [--force]``.
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import math
import os
import pickle
import shutil
import struct
import sys
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import cache_dir
from ..errors import ConfigError, DataError
from . import folders as F
from .samples import PHOTOS, load_photo
from .synthetic import _PALETTE, BACKGROUNDS, SPOT_POSITIONS, _background, _shape_mask, class_spec

#: bump when what is written changes: a miniature of another version is rebuilt
VERSION = 1
#: every dataset :func:`build` knows: the readers of :data:`xaikit.data.folders.LOADERS`
DATASETS = ("imagenet_val", "imagenet_train", "cub", "voc", "cifar100", "chest_xray", "kvasir", "mit67", "coco")
MARKER = ".complete"
JPEG_QUALITY = 75

# ------------------------------------------------------------------------------- class tables
#: ImageNet classes used, in order: the labelled bundled photos interleaved with classes drawn as shapes
IMAGENET_CLASSES = (285, 1, 967, 207, 665, 404, 652, 817, 0, 949)
#: the first 20 of the 200 CUB-200-2011 classes (``classes.txt``)
CUB_CLASSES = ("Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross", "Groove_billed_Ani",
               "Crested_Auklet", "Least_Auklet", "Parakeet_Auklet", "Rhinoceros_Auklet", "Brewer_Blackbird",
               "Red_winged_Blackbird", "Rusty_Blackbird", "Yellow_headed_Blackbird", "Bobolink", "Indigo_Bunting",
               "Lazuli_Bunting", "Painted_Bunting", "Cardinal", "Spotted_Catbird", "Gray_Catbird",
               "Yellow_breasted_Chat")
VOC_ORDER = ("cat", "dog", "person", "car", "motorbike", "bird", "aeroplane", "bottle")
#: CIFAR-100 superclass -> its 5 classes (the names of ``meta`` are these, sorted)
CIFAR100_COARSE = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
CIFAR100_FINE = tuple(sorted(f for v in CIFAR100_COARSE.values() for f in v))
CIFAR100_COARSE_NAMES = tuple(sorted(CIFAR100_COARSE))
CIFAR_ORDER = ("motorcycle", "apple", "woman", "bee", "rocket", "maple_tree")
#: the 80 COCO 2017 categories: (id, name, supercategory); ids run 1..90 with gaps
COCO_CATEGORIES = (
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"), (6, "bus", "vehicle"), (7, "train", "vehicle"), (8, "truck", "vehicle"),
    (9, "boat", "vehicle"), (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"),
    (16, "bird", "animal"), (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"),
    (20, "sheep", "animal"), (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
    (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
    (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"), (36, "snowboard", "sports"),
    (37, "sports ball", "sports"), (38, "kite", "sports"), (39, "baseball bat", "sports"),
    (40, "baseball glove", "sports"), (41, "skateboard", "sports"), (42, "surfboard", "sports"),
    (43, "tennis racket", "sports"), (44, "bottle", "kitchen"), (46, "wine glass", "kitchen"),
    (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"), (50, "spoon", "kitchen"),
    (51, "bowl", "kitchen"), (52, "banana", "food"), (53, "apple", "food"), (54, "sandwich", "food"),
    (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"), (58, "hot dog", "food"),
    (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"), (62, "chair", "furniture"),
    (63, "couch", "furniture"), (64, "potted plant", "furniture"), (65, "bed", "furniture"),
    (67, "dining table", "furniture"), (70, "toilet", "furniture"), (72, "tv", "electronic"),
    (73, "laptop", "electronic"), (74, "mouse", "electronic"), (75, "remote", "electronic"),
    (76, "keyboard", "electronic"), (77, "cell phone", "electronic"), (78, "microwave", "appliance"),
    (79, "oven", "appliance"), (80, "toaster", "appliance"), (81, "sink", "appliance"),
    (82, "refrigerator", "appliance"), (84, "book", "indoor"), (85, "clock", "indoor"), (86, "vase", "indoor"),
    (87, "scissors", "indoor"), (88, "teddy bear", "indoor"), (89, "hair drier", "indoor"),
    (90, "toothbrush", "indoor"))
COCO_ORDER = ("person", "dog", "cat", "car", "motorcycle", "cup")
#: the 67 MIT Indoor scene categories (``Images/`` folder names)
MIT67_CLASSES = tuple(
    "airport_inside artstudio auditorium bakery bar bathroom bedroom bookstore bowling buffet casino children_room "
    "church_inside classroom cloister closet clothingstore computerroom concert_hall corridor deli dentaloffice "
    "dining_room elevator fastfood_restaurant florist gameroom garage greenhouse grocerystore gym hairsalon "
    "hospitalroom inside_bus inside_subway jewelleryshop kindergarden kitchen laboratorywet laundromat library "
    "livingroom lobby locker_room mall meeting_room movietheater museum nursery office operating_room pantry "
    "poolinside prisoncell restaurant restaurant_kitchen shoeshop stairscase studiomusic subway toystore "
    "trainstation tv_studio videostore waitingroom warehouse winecellar".split())

#: class name -> bundled photos that show it (pasted as the object); other classes are drawn as shapes
_PHOTO_OF = {"cat": ("chelsea",), "person": ("astronaut", "grace_hopper"), "woman": ("astronaut", "grace_hopper"),
             "motorbike": ("motorcycle",), "motorcycle": ("motorcycle",), "cup": ("coffee",), "rocket": ("rocket",)}
_PHOTO_OF.update({str(lab): (name,) for name, (_, lab, _) in PHOTOS.items() if lab >= 0})  # ImageNet indices
#: photos used as backgrounds (none shows a class of the tables above, except by a stretch the rocket)
_BG_PHOTOS = ("hubble", "immunohistochemistry", "rocket")

#: (width, height) of consecutive images: common sizes of each real dataset and a few small ones
_SIZES = {
    "imagenet": ((500, 375), (375, 500), (500, 333), (160, 120), (90, 120)),
    "voc": ((500, 375), (500, 333), (333, 500), (200, 150)),
    "coco": ((640, 480), (640, 427), (427, 640), (240, 180)),
    "cub": ((500, 375), (500, 347), (375, 500), (150, 200)),
    "chest_xray": ((320, 256), (256, 320), (180, 160)),
    "kvasir": ((360, 288), (240, 192)),
    "mit67": ((256, 256), (320, 240), (240, 320)),
}
_MIN_OBJECT = 8  # px


# ------------------------------------------------------------------------------------- drawing
class _Painter:
    """Scenes with exact boxes: a background (photo crop or synthetic texture) and pasted objects."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def photo(name: str) -> Image.Image:
        """Bundled photo ``name`` (decoded once per process; never modified)."""
        return Image.fromarray(load_photo(name))

    def crop(self, name: str, w: int, h: int, min_frac: float = 0.6) -> np.ndarray:
        """A random crop of photo ``name`` with the aspect of ``w`` x ``h``, resized to it (float HxWx3)."""
        im = self.photo(name)
        pw, ph = im.size
        scale = min(pw / w, ph / h) * self.rng.uniform(min_frac, 1.0)
        cw, ch = w * scale, h * scale
        x0, y0 = self.rng.uniform(0, pw - cw), self.rng.uniform(0, ph - ch)
        out = im.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        return np.asarray(out, dtype=np.float32) / 255.0

    def background(self, w: int, h: int, photos=_BG_PHOTOS) -> np.ndarray:
        k = int(self.rng.integers(len(BACKGROUNDS) + len(photos)))
        if k >= len(BACKGROUNDS):
            return self.crop(photos[k - len(BACKGROUNDS)], w, h)
        return _background(k, max(w, h), self.rng)[:h, :w].copy()

    def layout(self, w: int, h: int, n: int) -> list[tuple[float, float, float, float]]:
        """``n`` non-overlapping cells ``(x0, y0, cw, ch)`` of a grid over the image, in random order."""
        gx = min(n, max(1, math.ceil(math.sqrt(n * w / h))))
        gy = math.ceil(n / gx)
        cw, ch = w / gx, h / gy
        cells = self.rng.permutation(gx * gy)[:n]
        return [((c % gx) * cw, (c // gx) * ch, cw, ch) for c in cells]

    def paste_photo(self, img: np.ndarray, name: str, cell, lo: float, hi: float) -> dict:
        """Paste photo ``name`` (its aspect kept) inside ``cell``; the box is the pasted rectangle."""
        im = self.photo(name)
        aspect = im.size[0] / im.size[1]
        cx0, cy0, cw, ch = cell
        ext = self.rng.uniform(lo, hi)
        ow = max(_MIN_OBJECT, int(min(cw * ext, ch * ext * aspect)))
        oh = max(_MIN_OBJECT, int(round(ow / aspect)))
        ow, oh = min(ow, int(cw)), min(oh, int(ch))
        x0 = int(cx0 + self.rng.uniform(0, max(cw - ow, 0)))
        y0 = int(cy0 + self.rng.uniform(0, max(ch - oh, 0)))
        img[y0:y0 + oh, x0:x0 + ow] = self.crop(name, ow, oh, min_frac=0.85)
        return {"box": [x0, y0, x0 + ow, y0 + oh], "area": float(ow * oh)}

    def paste_shape(self, img: np.ndarray, spec: dict, cell, lo: float, hi: float) -> dict:
        """Draw a synthetic shape (``spec`` from :func:`xaikit.data.synthetic.class_spec`) inside ``cell``;
        the box is the tight box of its pixels (x1/y1 exclusive), ``area`` its pixel count."""
        H, W = img.shape[:2]
        cx0, cy0, cw, ch = cell
        half = max(_MIN_OBJECT / 2, self.rng.uniform(lo, hi) * min(cw, ch) / 2)
        cx = cx0 + (self.rng.uniform(half, cw - half) if cw > 2 * half else cw / 2)
        cy = cy0 + (self.rng.uniform(half, ch - half) if ch > 2 * half else ch / 2)
        theta = math.radians(self.rng.uniform(-20, 20))
        x0, x1 = max(0, int(cx - half) - 1), min(W, int(cx + half) + 2)
        y0, y1 = max(0, int(cy - half) - 1), min(H, int(cy + half) + 2)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        dx, dy = xx - cx, yy - cy
        ct, st = math.cos(theta), math.sin(theta)
        u, v = (dx * ct + dy * st) / half, (-dx * st + dy * ct) / half
        mask = _shape_mask(spec["shape"], u, v)
        if not mask.any():  # a sub-pixel shape: mark its centre pixel so the box is never empty
            mask[min(int(cy) - y0, mask.shape[0] - 1), min(int(cx) - x0, mask.shape[1] - 1)] = True
        col = np.clip(_PALETTE[spec["colour"]] + self.rng.normal(0, 0.04, 3), 0, 1).astype(np.float32)
        shade = np.ones_like(u)
        if spec["texture"] == 1:
            shade = np.where(((u * 2.5) % 1.0) < 0.5, 1.0, 0.55).astype(np.float32)
        elif spec["texture"] == 2:
            shade = np.where((np.floor(u * 2.5) + np.floor(v * 2.5)) % 2 == 0, 1.0, 0.55).astype(np.float32)
        pix = col * shade[..., None]
        if spec.get("spot") is not None:
            pu, pv = SPOT_POSITIONS[spec["spot"]]
            spot = mask & ((u - pu) ** 2 + (v - pv) ** 2 <= 0.3 ** 2)
            pix = np.where(spot[..., None], _PALETTE[spec["spot_colour"]], pix)
        win = img[y0:y1, x0:x1]
        win[mask] = pix[mask]
        ys, xs = np.nonzero(mask)
        return {"box": [x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1],
                "area": float(mask.sum())}

    def scene(self, w: int, h: int, objects: list[tuple[str, dict]], lo=0.45, hi=0.9,
              backgrounds=_BG_PHOTOS) -> tuple[np.ndarray, list[dict]]:
        """An image with ``objects`` (``(class key, shape spec)``), each in its own grid cell.

        A class key with a bundled photo (:data:`_PHOTO_OF`) pastes that photo, else the shape is drawn."""
        img = self.background(w, h, backgrounds)
        drawn = []
        for (key, spec), cell in zip(objects, self.layout(w, h, len(objects))):
            photos = _PHOTO_OF.get(key)
            if photos:
                drawn.append(self.paste_photo(img, photos[int(self.rng.integers(len(photos)))], cell, lo, hi))
            else:
                drawn.append(self.paste_shape(img, spec, cell, lo, hi))
        return img, drawn


def _uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------- writing
class _Writer:
    """Writes the files of one dataset under ``base``, counting them (the paths are posix, relative)."""

    def __init__(self, base: Path):
        self.base, self.files, self.bytes = base, 0, 0

    def write(self, rel: str, data: bytes) -> str:
        p = self.base / rel
        if p.exists():  # two images drawn with the same name would silently become one
            raise RuntimeError(f"miniature builder bug: {rel} written twice")
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        self.files += 1
        self.bytes += len(data)
        return rel

    def text(self, rel: str, text: str) -> str:
        return self.write(rel, text.encode("utf-8"))

    def jpeg(self, rel: str, img: np.ndarray, grey: bool = False) -> str:
        im = Image.fromarray(_uint8(img))
        if grey:
            im = im.convert("L")
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=JPEG_QUALITY)
        return self.write(rel, buf.getvalue())


def _voc_style_xml(folder: str, filename: str, w: int, h: int, objects: list[dict], source: str) -> str:
    """An annotation in the PASCAL VOC / ILSVRC XML layout (tab-indented, as the real files).

    ``objects``: dicts with ``name``, ``bndbox`` (the 4 integers to write), ``difficult``, ``truncated``
    and optional ``parts`` (``(name, bndbox)``, as VOC's person layout)."""
    out = ["<annotation>", f"\t<folder>{folder}</folder>", f"\t<filename>{filename}</filename>",
           f"\t<source>\n{source}\t</source>",
           f"\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>",
           "\t<segmented>0</segmented>"]

    def box(b, ind):
        return (f"{ind}<bndbox>\n{ind}\t<xmin>{b[0]}</xmin>\n{ind}\t<ymin>{b[1]}</ymin>\n"
                f"{ind}\t<xmax>{b[2]}</xmax>\n{ind}\t<ymax>{b[3]}</ymax>\n{ind}</bndbox>")

    for o in objects:
        out += ["\t<object>", f"\t\t<name>{o['name']}</name>", "\t\t<pose>Unspecified</pose>",
                f"\t\t<truncated>{int(o.get('truncated', 0))}</truncated>",
                f"\t\t<difficult>{int(o.get('difficult', 0))}</difficult>", box(o["bndbox"], "\t\t")]
        for pname, pb in o.get("parts", ()):
            out += ["\t\t<part>", f"\t\t\t<name>{pname}</name>", box(pb, "\t\t\t"), "\t\t</part>"]
        out.append("\t</object>")
    out.append("</annotation>")
    return "\n".join(out) + "\n"


class _Py2Global:
    """A ``module.name`` global as Python 2 pickled it (``GLOBAL`` opcode, whatever numpy calls it now)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle requires a callable reducer; this one only stands for a name
        raise TypeError(f"{self.module}.{self.name} is a pickling stand-in")


_RECONSTRUCT = _Py2Global("numpy.core.multiarray", "_reconstruct")
_NDARRAY = _Py2Global("numpy", "ndarray")
_DTYPE = _Py2Global("numpy", "dtype")


class _Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle (protocol 2) did for the real CIFAR files.

    ``str`` and ``bytes`` become Python 2 byte strings (``SHORT_BINSTRING`` / ``BINSTRING``), so that
    ``pickle.load(f, encoding="bytes")`` returns ``bytes`` keys and names, as with the real files;
    numpy arrays go through ``numpy.core.multiarray._reconstruct`` with the Python 2 state tuple, so
    loading exercises numpy's compatibility path exactly as the real pickles do."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_string(self, obj):
        b = obj if isinstance(obj, bytes) else obj.encode("latin-1")
        if len(b) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(b)]) + b)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(b)) + b)
        self.memoize(obj)

    def _save_py2_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[bytes] = _save_py2_string
    dispatch[str] = _save_py2_string
    dispatch[_Py2Global] = _save_py2_global

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            arr = np.ascontiguousarray(obj)
            return _RECONSTRUCT, (_NDARRAY, (0,), b"b"), (1, tuple(arr.shape), arr.dtype, False, arr.tobytes())
        if isinstance(obj, np.dtype):
            return _DTYPE, (obj.str[1:], 0, 1), (3, obj.str[0], None, None, None, -1, -1, 0)
        return NotImplemented


def _py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


# --------------------------------------------------------------------------------- the datasets
def _first(order, universe, n: int) -> list:
    """``order`` then the rest of ``universe`` (in its order), the first ``n``."""
    rest = [u for u in universe if u not in order]
    return (list(order) + rest)[: max(1, n)]


def _sizes(kind: str, j: int) -> tuple[int, int]:
    pool = _SIZES[kind]
    return pool[j % len(pool)]


def _objects(rng, keys: list[str], first: str, specs: dict, lo: int = 1, hi: int = 3) -> list[tuple[str, dict]]:
    """``first`` then 0..``hi``-1 more objects of random classes among ``keys`` (repeats allowed)."""
    n = int(rng.integers(lo, hi + 1))
    more = [keys[int(k)] for k in rng.integers(len(keys), size=n - 1)]
    return [(k, specs[k]) for k in [first] + more]


def _imagenet_val(w: _Writer, rng, p: dict) -> list:
    wnids = F._imagenet_wnids()
    classes = _first(IMAGENET_CLASSES, range(1000), p["classes"])
    specs = {str(c): class_spec(i) for i, c in enumerate(classes)}
    paint = _Painter(rng)
    n = len(classes) * p["per_class"]
    numbers = rng.permutation(n) + 1  # ILSVRC2012_val_<number>, assigned across classes in random order
    flat = p["imagenet_layout"] == "flat"
    truth = []
    for j in range(n):
        c = classes[j % len(classes)]
        wnid = wnids[c]
        stem = f"ILSVRC2012_val_{int(numbers[j]):08d}"
        W, H = _sizes("imagenet", j)
        objs = [(str(c), specs[str(c)])] * int(rng.integers(1, 3))  # 1 or 2 instances, as in ILSVRC val
        img, drawn = paint.scene(W, H, objs)
        rel = f"val/{stem}.JPEG" if flat else f"val/{wnid}/{stem}.JPEG"
        w.jpeg(rel, img)
        boxes = [d["box"] for d in drawn]
        xml = _voc_style_xml("val", stem, W, H, [
            {"name": wnid, "bndbox": [b[0], b[1], b[2] - 1, b[3] - 1]} for b in boxes],  # 0-based inclusive
            "\t\t<database>ILSVRC_2012</database>\n")
        w.text(f"bbox/val/{stem}.xml", xml)
        truth.append({"file": rel, "split": "val", "size": [W, H], "label": wnid, "index": c, "boxes": boxes,
                      "box_labels": [wnid] * len(boxes)})
    return sorted(truth, key=lambda t: t["file"])


def _imagenet_train(w: _Writer, rng, p: dict) -> list:
    wnids = F._imagenet_wnids()
    classes = _first(IMAGENET_CLASSES, range(1000), p["classes"])
    specs = {str(c): class_spec(i) for i, c in enumerate(classes)}
    paint = _Painter(rng)
    truth = []
    for i, c in enumerate(classes):
        wnid = wnids[c]
        for k, num in enumerate(sorted(rng.choice(np.arange(1, 15000), p["per_class"], replace=False))):
            W, H = _sizes("imagenet", i * p["per_class"] + k)
            img, _ = paint.scene(W, H, [(str(c), specs[str(c)])], lo=0.5, hi=0.95)
            rel = w.jpeg(f"train/{wnid}/{wnid}_{int(num)}.JPEG", img)
            truth.append({"file": rel, "split": "train", "size": [W, H], "label": wnid, "index": c})
    return truth


def _cub(w: _Writer, rng, p: dict) -> list:
    names = _first((), CUB_CLASSES, p["classes"])
    paint = _Painter(rng)
    base = "CUB_200_2011"
    rows = []
    for i, name in enumerate(names):
        folder = f"{i + 1:03d}.{name}"
        title = "_".join(part[:1].upper() + part[1:] for part in name.split("_"))
        spec = class_spec(i, fine_grained=True)  # classes that differ by a small spot, as bird species do
        nums = sorted(rng.choice(np.arange(1, 120), 2 * p["per_class"], replace=False))
        for k, num in enumerate(nums):
            W, H = _sizes("cub", i * 2 * p["per_class"] + k)
            img, drawn = paint.scene(W, H, [(folder, spec)], lo=0.5, hi=0.95)
            rel = w.jpeg(f"{base}/images/{folder}/{title}_{int(num):04d}_{int(rng.integers(1, 800000))}.jpg", img)
            rows.append({"file": rel, "split": "train" if k % 2 == 0 else "test", "size": [W, H],
                         "label": name.replace("_", " "), "index": i, "boxes": [drawn[0]["box"]],
                         "box_labels": [name.replace("_", " ")]})
    rows.sort(key=lambda r: r["file"])
    images, labels, split, bbox = [], [], [], []
    for iid, r in enumerate(rows, 1):
        r["id"] = iid
        images.append(f"{iid} {r['file'][len(base) + len('/images/'):]}")
        labels.append(f"{iid} {r['index'] + 1}")
        split.append(f"{iid} {int(r['split'] == 'train')}")
        x0, y0, x1, y1 = r["boxes"][0]
        bbox.append(f"{iid} {x0:.1f} {y0:.1f} {x1 - x0:.1f} {y1 - y0:.1f}")
    w.text(f"{base}/images.txt", "\n".join(images) + "\n")
    w.text(f"{base}/image_class_labels.txt", "\n".join(labels) + "\n")
    w.text(f"{base}/train_test_split.txt", "\n".join(split) + "\n")
    w.text(f"{base}/bounding_boxes.txt", "\n".join(bbox) + "\n")
    w.text(f"{base}/classes.txt", "".join(f"{i + 1} {i + 1:03d}.{n}\n" for i, n in enumerate(names)))
    return rows


def _voc(w: _Writer, rng, p: dict) -> list:
    classes = _first(VOC_ORDER, F.VOC_CLASSES, p["classes"])
    specs = {c: class_spec(i) for i, c in enumerate(classes)}
    paint = _Painter(rng)
    base = "VOCdevkit/VOC2012"
    n_split = len(classes) * p["per_class"]
    number = 27
    truth = []
    for j in range(2 * n_split):
        split = ("train", "val")[j % 2]
        k = j // 2
        stem = f"2007_{number:06d}"
        number += int(rng.integers(1, 12))
        W, H = _sizes("voc", j)
        objs = _objects(rng, classes, classes[k % len(classes)], specs)
        img, drawn = paint.scene(W, H, objs)
        rel = w.jpeg(f"{base}/JPEGImages/{stem}.jpg", img)
        # difficult objects: a third at random, and every object of the 3rd val image (dropped entirely
        # with difficult=False, as the reader documents)
        all_difficult = split == "val" and k == 2
        xml_objs, diff = [], []
        for (name, _), d in zip(objs, drawn):
            x0, y0, x1, y1 = d["box"]
            dif = bool(all_difficult or rng.random() < 0.3)
            o = {"name": name, "bndbox": [x0 + 1, y0 + 1, x1, y1],  # 1-based inclusive
                 "difficult": dif, "truncated": int(rng.random() < 0.3)}
            if name == "person":  # VOC's person layout: <part> boxes the reader must not mistake for objects
                o["parts"] = [("head", [x0 + 1, y0 + 1, max(x0 + 1, (x0 + x1) // 2), max(y0 + 1, (y0 + y1) // 3)])]
            xml_objs.append(o)
            diff.append(dif)
        src = "\t\t<database>The VOC2007 Database</database>\n\t\t<annotation>PASCAL VOC2007</annotation>\n" \
              "\t\t<image>flickr</image>\n"
        w.text(f"{base}/Annotations/{stem}.xml", _voc_style_xml("VOC2012", f"{stem}.jpg", W, H, xml_objs, src))
        truth.append({"file": rel, "stem": stem, "split": split, "size": [W, H],
                      "label": sorted({n for n, _ in objs}, key=F.VOC_CLASSES.index),
                      "boxes": [d["box"] for d in drawn], "box_labels": [n for n, _ in objs], "difficult": diff})
    for split in ("train", "val", "trainval"):
        stems = sorted(t["stem"] for t in truth if split == "trainval" or t["split"] == split)
        w.text(f"{base}/ImageSets/Main/{split}.txt", "".join(f"{s}\n" for s in stems))
        for c in F.VOC_CLASSES:  # the per-class lists of the real devkit: 1 present, 0 only difficult, -1 absent
            lines = []
            for s in stems:
                t = next(t for t in truth if t["stem"] == s)
                flags = [d for n, d in zip(t["box_labels"], t["difficult"]) if n == c]
                lines.append(f"{s} {(1 if not all(flags) else 0) if flags else -1:2d}\n")
            w.text(f"{base}/ImageSets/Main/{c}_{split}.txt", "".join(lines))
    return truth


def _cifar100(w: _Writer, rng, p: dict) -> list:
    fine = _first(CIFAR_ORDER, CIFAR100_FINE, p["classes"])
    coarse_of = {f: c for c, fs in CIFAR100_COARSE.items() for f in fs}
    specs = {f: class_spec(i) for i, f in enumerate(fine)}
    paint = _Painter(rng)
    truth = []
    for split, batch in (("train", "training batch 1 of 1"), ("test", "testing batch 1 of 1")):
        n = len(fine) * p["per_class"]
        order = rng.permutation(n)  # the real files are not sorted by class
        rows, flabels, clabels, names = [], [], [], []
        for j in order:
            f = fine[int(j) % len(fine)]
            if f in _PHOTO_OF:  # the photo is the whole 32x32 image
                ph = _PHOTO_OF[f]
                img = paint.crop(ph[int(rng.integers(len(ph)))], 32, 32, min_frac=0.7)
            else:
                img, _ = paint.scene(32, 32, [(f, specs[f])], lo=0.6, hi=0.95, backgrounds=("hubble", "retina"))
            rows.append(_uint8(img).transpose(2, 0, 1).reshape(3072))  # channel-planar R, G, B
            name = f"{f}_s_{int(rng.integers(1, 2_000_000)):06d}.png"
            flabels.append(CIFAR100_FINE.index(f))
            clabels.append(CIFAR100_COARSE_NAMES.index(coarse_of[f]))
            names.append(name)
            truth.append({"file": f"cifar-100-python/{split}", "split": split, "index": len(rows) - 1,
                          "name": name, "label": f, "coarse": coarse_of[f]})
        d = {"filenames": [s.encode() for s in names], "batch_label": batch.encode(), "fine_labels": flabels,
             "coarse_labels": clabels, "data": np.stack(rows).astype(np.uint8)}
        w.write(f"cifar-100-python/{split}", _py2_pickle(d))
    w.write("cifar-100-python/meta", _py2_pickle({"fine_label_names": list(CIFAR100_FINE),
                                                   "coarse_label_names": list(CIFAR100_COARSE_NAMES)}))
    return truth


def _class_folders(w: _Writer, rng, kind: str, folder_of, classes, splits, per_class, names, grey=False,
                   backgrounds=_BG_PHOTOS) -> list:
    """Images in ``<folder_of(split, class)>/<names(class, k)>`` for every split and class."""
    paint = _Painter(rng)
    truth, j = [], 0
    for split in splits:
        for i, c in enumerate(classes):
            for k in range(per_class):
                W, H = _sizes(kind, j)
                j += 1
                img, _ = paint.scene(W, H, [(c, class_spec(i))], lo=0.3, hi=0.8, backgrounds=backgrounds)
                rel = w.jpeg(f"{folder_of(split, c)}/{names(c, k)}", img, grey=grey)
                truth.append({"file": rel, "split": split, "size": [W, H], "label": c, "index": i})
    return truth


def _chest_xray(w: _Writer, rng, p: dict) -> list:
    used: set[str] = set()

    def name(c, k):
        while True:  # random real-looking names, never the same twice
            if c == "NORMAL":
                n = f"IM-{int(rng.integers(1, 800)):04d}-0001.jpeg"
            else:
                kind = ("bacteria", "virus")[k % 2]
                n = f"person{int(rng.integers(1, 1600))}_{kind}_{int(rng.integers(1, 8000))}.jpeg"
            if n not in used:
                used.add(n)
                return n

    return _class_folders(w, rng, "chest_xray", lambda s, c: f"chest_xray/{s}/{c}", F.CHEST_CLASSES,
                          ("train", "test", "val"), p["per_class"], name, grey=True,
                          backgrounds=("hubble", "immunohistochemistry"))


def _kvasir(w: _Writer, rng, p: dict) -> list:
    def name(c, k):
        return f"{uuid.UUID(bytes=rng.bytes(16), version=4)}.jpg"

    return _class_folders(w, rng, "kvasir", lambda s, c: f"kvasir-dataset-v2/{c}", F.KVASIR_CLASSES, ("all",),
                          p["per_class"], name, backgrounds=("retina", "immunohistochemistry"))


def _mit67(w: _Writer, rng, p: dict) -> list:
    classes = _first((), MIT67_CLASSES, p["classes"])
    counter: dict[str, int] = {}

    def name(c, k):
        counter[c] = counter.get(c, 0) + 1
        return f"{c}_{counter[c]:04d}.jpg"

    truth = _class_folders(w, rng, "mit67", lambda s, c: f"Images/{c}", classes, ("train", "test"),
                           p["per_class"], name)
    for split, fname in (("train", "TrainImages.txt"), ("test", "TestImages.txt")):
        w.text(fname, "".join(f"{t['file'][len('Images/'):]}\n" for t in truth if t["split"] == split))
    return truth


def _rle(box, w: int, h: int) -> dict:
    """Uncompressed COCO RLE (column-major run lengths, starting with a run of 0s) of a filled box."""
    m = np.zeros((h, w), bool)
    m[box[1]:box[3], box[0]:box[2]] = True
    flat = m.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat[0]:
        counts = [0] + counts
    return {"counts": counts, "size": [h, w]}


def _coco(w: _Writer, rng, p: dict) -> list:
    by_name = {n: (cid, sup) for cid, n, sup in COCO_CATEGORIES}
    classes = _first(COCO_ORDER, [n for _, n, _ in COCO_CATEGORIES], p["classes"])
    specs = {c: class_spec(i) for i, c in enumerate(classes)}
    paint = _Painter(rng)
    n = len(classes) * p["per_class"] + 1
    ids = sorted(int(i) for i in rng.choice(np.arange(1, 581930), n, replace=False))
    ann_id = int(rng.integers(1, 900000))
    images, anns, truth = [], [], []
    for j, iid in enumerate(ids):
        W, H = _sizes("coco", j)
        fname = f"{iid:012d}.jpg"
        # image 0 has no annotation (val2017 has 48 such images), image 1 only a crowd one, image 2
        # a crowd one next to ordinary ones; the others 1..3 ordinary annotations
        objs = [] if j == 0 else _objects(rng, classes, classes[(j - 1) % len(classes)], specs, lo=2 if j == 2 else 1)
        crowd = [False] * len(objs)
        if j in (1, 2) and len(ids) > 3:
            crowd[0] = True
            if j == 1:
                objs, crowd = objs[:1], crowd[:1]
        img, drawn = paint.scene(W, H, objs) if objs else (paint.background(W, H), [])
        w.jpeg(f"val2017/{fname}", img)
        images.append({"license": int(rng.integers(1, 9)), "file_name": fname,
                       "coco_url": f"http://images.cocodataset.org/val2017/{fname}", "height": H, "width": W,
                       "date_captured": f"2013-11-{int(rng.integers(10, 29))} 1{int(rng.integers(0, 10))}:"
                                        f"{int(rng.integers(10, 60))}:{int(rng.integers(10, 60))}",
                       "flickr_url": "", "id": iid})
        t = {"file": f"val2017/{fname}", "split": "val2017", "id": iid, "size": [W, H], "boxes": [],
             "box_labels": [], "crowd": [], "ann_ids": []}
        for (name, _), d, cr in zip(objs, drawn, crowd):
            x0, y0, x1, y1 = d["box"]
            ann_id += int(rng.integers(1, 5000))
            bbox = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
            seg = _rle(d["box"], W, H) if cr else [[float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]]
            anns.append({"segmentation": seg, "area": d["area"], "iscrowd": int(cr), "image_id": iid, "bbox": bbox,
                         "category_id": by_name[name][0], "id": ann_id})
            t["boxes"].append(d["box"])
            t["box_labels"].append(name)
            t["crowd"].append(cr)
            t["ann_ids"].append(ann_id)
        t["label"] = sorted({n for n, cr in zip(t["box_labels"], t["crowd"]) if not cr}, key=classes.index)
        truth.append(t)
    order = rng.permutation(len(images))  # the real file lists images in no particular order
    doc = {"info": {"description": "COCO 2017 Dataset (xaikit miniature: synthetic pictures, real format)",
                    "url": "http://cocodataset.org", "version": "1.0", "year": 2017,
                    "contributor": "COCO Consortium", "date_created": "2017/09/01"},
           "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": k,
                         "name": "Attribution-NonCommercial-ShareAlike License"} for k in range(1, 9)],
           "images": [images[int(k)] for k in order],
           "annotations": anns,
           "categories": [{"supercategory": sup, "id": cid, "name": nm} for cid, nm, sup in COCO_CATEGORIES]}
    w.text("annotations/instances_val2017.json", json.dumps(doc))
    return truth


_BUILDERS = {"imagenet_val": _imagenet_val, "imagenet_train": _imagenet_train, "cub": _cub, "voc": _voc,
             "cifar100": _cifar100, "chest_xray": _chest_xray, "kvasir": _kvasir, "mit67": _mit67, "coco": _coco}


# ---------------------------------------------------------------------------------- build / reuse
def _params(name: str, seed: int, classes: int, per_class: int, imagenet_layout: str) -> dict:
    p = {"version": VERSION, "dataset": name, "seed": int(seed), "per_class": int(per_class)}
    if name not in ("chest_xray", "kvasir"):  # these two have a fixed set of classes
        p["classes"] = int(classes)
    if name == "imagenet_val":
        p["imagenet_layout"] = imagenet_layout
    return p


def manifest(path) -> dict:
    """The ``.complete`` record of a miniature dataset folder (a path :func:`build` returned).

    Keys: ``params`` (what it was built with), ``files``/``bytes`` (counted when written) and ``truth``:
    one entry per image with its ``file`` (relative to ``path``), ``split``, ``size`` ``[w, h]``,
    ``label`` (WordNet id, class name or folder; a list for VOC/COCO, without COCO's crowd-only classes)
    and, where the dataset has boxes, ``boxes`` (0-based pixel ``x0, y0, x1, y1``, x1/y1 exclusive: what
    the readers return before resizing) and ``box_labels`` (+ ``difficult`` for VOC, ``crowd`` for COCO).
    CIFAR entries give the row ``index`` in their pickle and the ``coarse`` class instead of a size.
    Raises :class:`~xaikit.errors.DataError` if ``path`` is not a complete miniature."""
    m = Path(path) / MARKER
    try:
        return json.loads(m.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a complete xaikit miniature (cannot read {MARKER}: {e}); "
                        "build it with xaikit.data.miniature.build") from e


def _is_complete(dest: Path, params: dict) -> bool:
    try:
        return manifest(dest)["params"] == params
    except (DataError, KeyError, TypeError):
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours
        return True
    return True


def _clean_stale(root: Path, name: str) -> None:
    """Remove the temporary folders (``.<name>.building-<pid>-*``, ``.<name>.old-<pid>-*``) of builds of
    ``name`` whose process has died (an interrupted build); those of live processes are theirs."""
    for d in [*root.glob(f".{name}.building-*"), *root.glob(f".{name}.old-*")]:
        try:
            pid = int(d.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def _build_one(root: Path, name: str, params: dict, force: bool) -> Path:
    dest = root / name
    if dest.exists():
        if not (dest / MARKER).is_file():
            raise ConfigError(f"{dest} exists and is not an xaikit miniature (no {MARKER} file); it may be a real "
                              "dataset, so it is left alone: build the miniature into another folder, or delete it")
        if not force and _is_complete(dest, params):
            return dest
    _clean_stale(root, name)
    tmp = root / f".{name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        w = _Writer(tmp)
        rng = np.random.default_rng([params["seed"] & 0xFFFFFFFF, zlib.crc32(name.encode()), VERSION])
        truth = _BUILDERS[name](w, rng, params)
        record = {"params": params, "files": w.files, "bytes": w.bytes, "truth": truth}
        (tmp / MARKER).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")  # written last
        if dest.exists():  # a stale or forced rebuild: move the old one aside, then swap
            old = root / f".{name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(dest, old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, dest)  # atomic: dest is either absent or complete
        except OSError:
            if _is_complete(dest, params):  # another process finished the same build first
                shutil.rmtree(tmp, ignore_errors=True)
                return dest
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def build(root, datasets=None, *, seed: int = 0, classes: int = 4, per_class: int = 2,
          imagenet_layout: str = "folders", force: bool = False) -> dict[str, Path]:
    """Write a miniature of each dataset under ``root``; ``{dataset: folder}``, the folder to pass as the
    reader's ``root`` (``root/<dataset>``, so ``XAIKIT_DATA=root`` also works).

    - ``datasets``: names from :data:`DATASETS` (default: all);
    - ``seed``: same seed and parameters -> byte-identical files;
    - ``classes``: classes used per dataset (capped at what it has: 1000 ImageNet, 20 VOC, 20 CUB (the
      first 20 species), 80 COCO, 100 CIFAR, 67 MIT; ``chest_xray`` and ``kvasir`` always have all their
      2 and 8 classes, as their readers require);
    - ``per_class``: images per class and split (VOC/COCO: images whose first object is of the class);
    - ``imagenet_layout``: ``"folders"`` (``val/<wnid>/``) or ``"flat"`` (all in ``val/``, labels from the XML);
    - ``force``: rebuild even when a complete miniature with these parameters is there.

    A dataset folder that exists with the same parameters is reused untouched; one built with other
    parameters is replaced; a folder that is not a miniature is never touched (:class:`ConfigError`)."""
    names = list(DATASETS) if datasets is None else [datasets] if isinstance(datasets, str) else list(datasets)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ConfigError(f"unknown dataset(s) {unknown} for a miniature; available: {list(DATASETS)}")
    if int(classes) < 1 or int(per_class) < 1:
        raise ConfigError(f"classes={classes}, per_class={per_class}: both must be >= 1")
    if int(per_class) > 50:
        raise ConfigError(f"per_class={per_class}: a miniature has at most 50 images per class and split")
    if imagenet_layout not in ("folders", "flat"):
        raise ConfigError(f"imagenet_layout={imagenet_layout!r}: use 'folders' or 'flat'")
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return {n: _build_one(root, n, _params(n, seed, classes, per_class, imagenet_layout), force) for n in names}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m xaikit.data.miniature",
                                 description="Write miniatures of the real datasets (real formats, tiny sizes).")
    ap.add_argument("folder", help="where to write them (one sub-folder per dataset; usable as XAIKIT_DATA)")
    ap.add_argument("--datasets", nargs="+", choices=DATASETS, default=None, help="default: all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--per-class", type=int, default=2)
    ap.add_argument("--imagenet-layout", choices=("folders", "flat"), default="folders")
    ap.add_argument("--force", action="store_true", help="rebuild even if a complete miniature is there")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    paths = build(a.folder, a.datasets, seed=a.seed, classes=a.classes, per_class=a.per_class,
                  imagenet_layout=a.imagenet_layout, force=a.force)
    for n, p in paths.items():
        print(f"{n}\t{p}")
    print(f"# {len(paths)} dataset(s) in {time.perf_counter() - t0:.1f} s; XAIKIT_DATA={Path(a.folder).resolve()}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --------------------------------------------------------------------------- profile paths
PREFIX = "miniature:"


def is_miniature(value) -> bool:
    """Whether a dataset path parameter names a miniature (``"miniature:imagenet_val"``)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def resolve_root(value, root=None):
    """A dataset path parameter as a folder: ``"miniature:<dataset>[?classes=N&per_class=K&seed=S]"`` is
    built on first use under ``root`` (default ``<cache>/miniature``; reused afterwards, byte-identical for
    the same parameters) and its folder returned; any other value is returned unchanged. This is how the
    ``rehearsal`` profile points the full profile's readers at miniatures."""
    if not is_miniature(value):
        return value
    spec = value[len(PREFIX):]
    name, _, query = spec.partition("?")
    kw: dict = {}
    for part in filter(None, query.split("&")):
        key, _, val = part.partition("=")
        if key not in ("classes", "per_class", "seed", "imagenet_layout"):
            raise ConfigError(f"{value!r}: unknown miniature option {key!r}; use classes, per_class, seed, "
                              "imagenet_layout")
        kw[key] = val if key == "imagenet_layout" else int(val)
    if root is None:
        root = cache_dir() / "miniature"
        if kw:
            root = root / "-".join(f"{k}{v}" for k, v in sorted(kw.items()))
    return str(build(root, [name], **kw)[name])
