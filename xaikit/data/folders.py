"""Real datasets at user-given paths, returned as items of :mod:`xaikit.data.base`.

Each loader takes ``root`` (+ ``split``) and ``size``; images are squashed to ``size`` x ``size``
(whole image, thesis protocol) and boxes scaled alike.  A missing or malformed folder raises one
:class:`~xaikit.errors.DataError` naming what is missing, the expected layout and ``data/README.md``.

=================  =====================  ===========================================
loader             dataset                boxes
=================  =====================  ===========================================
``imagenet_val``   ILSVRC2012 validation  ILSVRC bbox XML (optional)
``imagenet_train`` ILSVRC2012 training    none
``cub``            CUB-200-2011           ``bounding_boxes.txt``
``voc``            Pascal VOC 2012        ``Annotations/*.xml`` (multi-hot labels)
``cifar100``       CIFAR-100 (python)     none
``chest_xray``     Kermany et al. 2018    none
``kvasir``         Kvasir v2              none
``mit67``          MIT Indoor-67          none
``coco``           COCO 2017 instances    ``instances_<split>.json`` (multi-hot labels)
=================  =====================  ===========================================

A corrupt file (truncated JPEG, malformed XML / JSON / list file, garbage pickle, a list naming a
missing image) raises a :class:`~xaikit.errors.DataError` that names the dataset, the file and the
fix; images are decoded lazily, so a damaged JPEG is reported by ``dataset[i]``.  A list or annotation
entry naming an absolute path or one with ``..`` (a file outside the dataset folder) is a DataError naming
the file and line; the CIFAR pickles are read by an unpickler that admits only the numpy array globals
the real files need, so a planted pickle is refused before it can run anything.
:mod:`xaikit.data.miniature` writes tiny copies of every layout here, in the real formats.
"""
from __future__ import annotations

import json
import os
import pickle
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from .base import preprocess_array

#: the papers' evaluation transform: resize the shorter side to 256, center-crop 224 (224 / 256)
CROP_PCT = 0.875
IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
README = "data/README.md"

LAYOUTS = {
    "imagenet_val": """<root>/
  val/n01440764/ILSVRC2012_val_00000293.JPEG ...   (one folder per WordNet id; or all files flat in val/)
  bbox/val/ILSVRC2012_val_00000293.xml ...          (optional: ILSVRC2012_bbox_val_v3.tgz; needed for flat val/)""",
    "imagenet_train": """<root>/   (the train folder, or the folder holding train/)
  train/n01440764/n01440764_10026.JPEG ...   (one folder per WordNet id, from ILSVRC2012_img_train.tar)""",
    "cub": """<root>/   (CUB_200_2011)
  images.txt  image_class_labels.txt  train_test_split.txt  bounding_boxes.txt  classes.txt
  images/001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg ...""",
    "voc": """<root>/   (VOCdevkit/VOC2012, or VOCdevkit holding VOC2012/)
  JPEGImages/2007_000027.jpg ...
  Annotations/2007_000027.xml ...
  ImageSets/Main/train.txt  val.txt  trainval.txt""",
    "cifar100": """<root>/   (cifar-100-python)
  train  test  meta        (python pickles from cifar-100-python.tar.gz)""",
    "chest_xray": """<root>/   (chest_xray)
  train/NORMAL/*.jpeg  train/PNEUMONIA/*.jpeg
  test/NORMAL/*.jpeg   test/PNEUMONIA/*.jpeg
  val/NORMAL/*.jpeg    val/PNEUMONIA/*.jpeg""",
    "kvasir": """<root>/   (kvasir-dataset-v2)
  dyed-lifted-polyps/*.jpg  dyed-resection-margins/*.jpg  esophagitis/*.jpg  normal-cecum/*.jpg
  normal-pylorus/*.jpg  normal-z-line/*.jpg  polyps/*.jpg  ulcerative-colitis/*.jpg""",
    "mit67": """<root>/   (indoorCVPR_09 + the split files)
  Images/airport_inside/*.jpg ... (67 category folders)
  TrainImages.txt  TestImages.txt   (lines like 'airport_inside/airport_inside_0001.jpg')""",
    "coco": """<root>/   (the folder holding val2017/ and annotations/)
  val2017/000000397133.jpg ...            (from val2017.zip; train2017/ likewise)
  annotations/instances_val2017.json      (from annotations_trainval2017.zip)""",
}

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
CHEST_CLASSES = ("NORMAL", "PNEUMONIA")
KVASIR_CLASSES = ("dyed-lifted-polyps", "dyed-resection-margins", "esophagitis", "normal-cecum",
                  "normal-pylorus", "normal-z-line", "polyps", "ulcerative-colitis")


def _error(dataset: str, root, problem: str) -> DataError:
    return DataError(f"{dataset}: {problem} (root={str(root)!r}). Expected layout:\n{LAYOUTS[dataset]}\n"
                     f"See {README} for where to download it and how to arrange it.")


def _root(dataset: str, root) -> Path:
    if root is None:
        env = os.environ.get("XAIKIT_DATA")
        if not env:
            raise _error(dataset, root, "no root given (pass root=..., or set XAIKIT_DATA to the folder holding it)")
        root = Path(env) / dataset
    p = Path(root).expanduser()
    if not p.is_dir():
        raise _error(dataset, root, "folder does not exist")
    return p


def _rel(root: Path, p: Path) -> str:
    """``p`` relative to the dataset root when inside it (shorter messages that still name the file)."""
    p = Path(p)
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)


def _inside(dataset, root: Path, base: Path, rel: str, where: str) -> Path:
    """``base / rel`` for a path read from a list or annotation file, refused (a DataError naming ``where``:
    the file and line) when it is absolute or climbs with ``..``: a list file never makes a reader open a
    file outside the dataset folder. (Links the user put inside the dataset folder are followed as usual.)"""
    text = str(rel)
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if not text.strip() or os.path.isabs(text) or text.startswith(("/", "\\")) \
            or PureWindowsPath(text).drive or ".." in parts:
        raise _error(dataset, root, f"{where} names {text!r}, a path outside the dataset folder (absolute or with "
                                    "'..'); the list file is damaged or was edited: extract it again from the "
                                    "dataset archive")
    return base / text


def _need(dataset, root, *paths: Path):
    for p in paths:
        if not p.exists():
            raise _error(dataset, root, f"missing {_rel(root, p)}")


def _read_text(dataset, root, path: Path) -> str:
    """A text file of the dataset (list, table, ...); unreadable or non-text bytes give a DataError."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _error(dataset, root, f"cannot read {_rel(root, path)} as text ({type(e).__name__}: {e}); the file is "
                                    "damaged: extract it again from the dataset archive") from e


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXT and p.is_file())


def _split_arg(dataset, split, allowed):
    if split not in allowed:
        raise ConfigError(f"{dataset}: split={split!r}; use one of {list(allowed)}")


# ------------------------------------------------------------------------------------- dataset
class FolderDataset(Dataset):
    """Images on disk with labels and boxes (boxes in original pixel xyxy, scaled at load time)."""

    def __init__(self, dataset: str, root: Path, records: list, class_names: list, size: int = 224,
                 multilabel: bool = False, crop_pct: float = 1.0):
        if not records:
            raise _error(dataset, root, "no images found")
        self.dataset, self.root, self.records = dataset, root, records
        self.class_names, self.size, self.multilabel = list(class_names), int(size), multilabel
        self.crop_pct = float(crop_pct)
        self.num_classes = len(self.class_names)

    def __len__(self):
        return len(self.records)

    def __repr__(self):
        return f"{type(self).__name__}({self.dataset}, n={len(self)}, classes={self.num_classes}, size={self.size})"

    def _image(self, rec) -> np.ndarray:
        from PIL import Image

        try:
            with Image.open(rec["path"]) as im:
                im.load()  # decode here, inside the try: a truncated file raises (LOAD_TRUNCATED_IMAGES is False)
                return np.asarray(im.convert("RGB"))
        except Exception as e:
            raise DataError(f"{self.dataset}: cannot read image {rec['path']} ({type(e).__name__}: {e}). The file is "
                            f"missing, truncated or not an image: extract it again from the dataset archive "
                            f"(or remove it and its annotation). See {README}.") from e

    def __getitem__(self, i):
        rec = self.records[i]
        arr = self._image(rec)
        label = rec["label"]
        if self.multilabel:
            lab = torch.zeros(self.num_classes)
            lab[list(label)] = 1.0
            label = lab
        h, w = arr.shape[:2]
        boxes = torch.tensor(rec.get("boxes", []), dtype=torch.float32).reshape(-1, 4)
        if boxes.numel():  # clip to the image first
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clamp(0, w)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clamp(0, h)
        img, boxes, blabels = preprocess_array(arr, self.size, self.crop_pct, boxes,
                                               torch.tensor(rec.get("box_labels", []), dtype=torch.long))
        return {"image": img, "label": label, "boxes": boxes, "box_labels": blabels, "name": rec["name"]}


class ArrayDataset(FolderDataset):
    """Images held in memory as a uint8 (N, H, W, 3) array (CIFAR)."""

    def __init__(self, dataset, root, images: np.ndarray, labels, names, class_names, size=32):
        recs = [{"idx": i, "label": int(l), "name": n} for i, (l, n) in enumerate(zip(labels, names))]
        super().__init__(dataset, root, recs, class_names, size)
        self.images = images

    def _image(self, rec):
        return self.images[rec["idx"]]


# --------------------------------------------------------------------------------------- XML
def _parse_xml(dataset, root, path: Path, one_based: bool = True):
    """PASCAL-VOC-format annotation -> (names, boxes xyxy with x1/y1 exclusive, difficult flags)."""
    fix = "extract it again from the annotation archive"
    try:
        tree = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise _error(dataset, root, f"malformed XML {path.name} ({_rel(root, path)}: {e}); {fix}") from e
    if tree.tag != "annotation":
        raise _error(dataset, root, f"malformed XML {path.name} ({_rel(root, path)}): root element <{tree.tag}>, "
                                    f"expected <annotation>; {fix}")
    names, boxes, diff = [], [], []
    for obj in tree.iter("object"):
        bb = obj.find("bndbox")
        nm = obj.findtext("name")
        if bb is None or nm is None:
            raise _error(dataset, root, f"malformed XML {path.name} ({_rel(root, path)}): <object> without <name> "
                                        f"or <bndbox>; {fix}")
        try:
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError) as e:
            raise _error(dataset, root, f"malformed XML {path.name} ({_rel(root, path)}): bad <bndbox> coordinates; "
                                        f"{fix}") from e
        off = 1.0 if one_based else 0.0  # VOC pixels are 1-based inclusive -> 0-based, x1 exclusive
        boxes.append([x0 - off, y0 - off, x1 - off + 1.0, y1 - off + 1.0])
        names.append(nm.strip())
        diff.append(obj.findtext("difficult", "0").strip() == "1")
    return names, boxes, diff


# -------------------------------------------------------------------------------- ImageNet val
def _imagenet_wnids() -> list[str]:
    from timm.data import ImageNetInfo

    return list(ImageNetInfo().label_names())


def imagenet_val(root=None, size: int = 224, boxes: bool = True, limit: int | None = None, crop_pct: float = CROP_PCT) -> FolderDataset:
    """ILSVRC2012 validation images, labels in the standard 0..999 order (sorted WordNet ids).

    Class sub-folders give the labels; a flat ``val/`` takes them from the bbox XMLs.  With
    ``boxes=True`` the ILSVRC XML boxes (``bbox/val`` or ``val`` XMLs next to the images) are attached.
    """
    ds = "imagenet_val"
    root = _root(ds, root)
    val = root / "val" if (root / "val").is_dir() else root
    wnids = _imagenet_wnids()
    widx = {w: i for i, w in enumerate(wnids)}
    xml_dirs = [d for d in (root / "bbox" / "val", root / "bbox", val) if d.is_dir()]

    def find_xml(stem):
        for d in xml_dirs:
            p = d / f"{stem}.xml"
            if p.exists():
                return p
        return None

    subdirs = sorted(d for d in val.iterdir() if d.is_dir() and d.name in widx)
    recs = []
    if subdirs:
        for d in subdirs:
            for p in _images_in(d):
                recs.append({"path": p, "label": widx[d.name], "name": p.name})
    else:
        files = _images_in(val)
        if not files:
            raise _error(ds, root, f"no images in {val} (neither WordNet-id folders nor flat JPEGs)")
        for p in files:
            x = find_xml(p.stem)
            if x is None:
                raise _error(ds, root, f"flat val/ needs the ILSVRC bbox XML of each image for its label; "
                                       f"missing {p.stem}.xml in bbox/val/")
            names, _, _ = _parse_xml(ds, root, x, one_based=False)
            if not names or names[0] not in widx:
                raise _error(ds, root, f"malformed XML {x.name}: no ImageNet WordNet id in <name>")
            recs.append({"path": p, "label": widx[names[0]], "name": p.name})
    if limit is not None:
        recs = recs[: int(limit)]
    if boxes:
        for r in recs:
            x = find_xml(Path(r["name"]).stem)
            if x is not None:
                names, bxs, _ = _parse_xml(ds, root, x, one_based=False)
                r["boxes"] = bxs
                r["box_labels"] = [widx.get(n, -1) for n in names]
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    cls = [info.index_to_description(i) for i in range(len(wnids))]
    return FolderDataset(ds, root, recs, cls, size, crop_pct=crop_pct)


def imagenet_train(root=None, size: int = 224, limit: int | None = None, crop_pct: float = CROP_PCT) -> FolderDataset:
    """ILSVRC2012 training images from class folders named by WordNet id (``n01440764/...``),
    labels in the standard 0..999 order (sorted WordNet ids, as :func:`imagenet_val`).  Folders
    whose name is not an ImageNet-1k WordNet id are ignored.  ``limit``: keep that many images
    spread over the classes (round robin: the first image of every class, then the second, ...)."""
    ds = "imagenet_train"
    root = _root(ds, root)
    train = root / "train" if (root / "train").is_dir() else root
    widx = {w: i for i, w in enumerate(_imagenet_wnids())}
    subdirs = sorted(d for d in train.iterdir() if d.is_dir() and d.name in widx)
    if not subdirs:
        raise _error(ds, root, f"no WordNet-id class folders (like n01440764/) in {train}")
    per_class = [[{"path": p, "label": widx[d.name], "name": f"{d.name}/{p.name}"} for p in _images_in(d)]
                 for d in subdirs]
    if limit is None:
        recs = [r for c in per_class for r in c]
    else:
        depth = max(len(c) for c in per_class)
        recs = [c[k] for k in range(depth) for c in per_class if k < len(c)][: int(limit)]
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return FolderDataset(ds, root, recs, [info.index_to_description(i) for i in range(len(widx))], size, crop_pct=crop_pct)


# ---------------------------------------------------------------------------------------- CUB
def _read_table(ds, root, path: Path, ncols: int, conv=str):
    rows = {}
    for ln, line in enumerate(_read_text(ds, root, path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < ncols:
            raise _error(ds, root, f"malformed {path.name} line {ln}: expected {ncols} fields, got {line!r}")
        try:
            rows[int(parts[0])] = [conv(v) for v in parts[1:ncols]] if ncols > 2 else conv(parts[1])
        except ValueError as e:
            raise _error(ds, root, f"malformed {path.name} line {ln}: {line!r}") from e
    return rows


def cub(root=None, split: str = "test", size: int = 224, crop_pct: float = CROP_PCT) -> FolderDataset:
    """CUB-200-2011 (200 bird species, one box per image from ``bounding_boxes.txt``: x, y, w, h)."""
    ds = "cub"
    _split_arg(ds, split, ("train", "test", "all"))
    root = _root(ds, root)
    if not (root / "images.txt").exists() and (root / "CUB_200_2011" / "images.txt").exists():
        root = root / "CUB_200_2011"
    files = {k: root / f for k, f in (("images", "images.txt"), ("labels", "image_class_labels.txt"),
                                       ("split", "train_test_split.txt"), ("boxes", "bounding_boxes.txt"),
                                       ("classes", "classes.txt"))}
    _need(ds, root, *files.values(), root / "images")
    images = _read_table(ds, root, files["images"], 2)
    line_of = {}  # image id -> its line in images.txt (for messages)
    for ln, line in enumerate(_read_text(ds, root, files["images"]).splitlines(), 1):
        try:
            line_of.setdefault(int(line.split()[0]), ln)
        except (IndexError, ValueError):
            continue
    labels = _read_table(ds, root, files["labels"], 2, int)
    is_train = _read_table(ds, root, files["split"], 2, int)
    bxs = _read_table(ds, root, files["boxes"], 5, float)
    classes = _read_table(ds, root, files["classes"], 2)
    names = [classes[k].split(".", 1)[-1].replace("_", " ") for k in sorted(classes)]
    recs = []
    for iid in sorted(images):
        if split != "all" and (is_train.get(iid) == 1) != (split == "train"):
            continue
        if iid not in labels or iid not in bxs:
            raise _error(ds, root, f"image id {iid} has no line in image_class_labels.txt or bounding_boxes.txt")
        x, y, w, h = bxs[iid]
        _inside(ds, root, root / "images", images[iid], f"images.txt line {line_of.get(iid, '?')} (image id {iid})")
        if not (root / "images" / images[iid]).is_file():
            raise _error(ds, root, f"images.txt (image id {iid}) names images/{images[iid]}, which is missing: "
                                   "extract CUB_200_2011.tgz again (or remove the image's lines from the .txt files)")
        recs.append({"path": root / "images" / images[iid], "label": labels[iid] - 1, "name": images[iid],
                     "boxes": [[x, y, x + w, y + h]], "box_labels": [labels[iid] - 1]})
    return FolderDataset(ds, root, recs, names, size, crop_pct=crop_pct)


# ---------------------------------------------------------------------------------------- VOC
def voc(root=None, split: str = "val", size: int = 224, difficult: bool = True, crop_pct: float = CROP_PCT) -> FolderDataset:
    """Pascal VOC 2012 classification/detection: multi-hot labels over 20 classes, one box per object.

    ``difficult=False`` drops objects flagged difficult (and images left with none)."""
    ds = "voc"
    _split_arg(ds, split, ("train", "val", "trainval"))
    root = _root(ds, root)
    for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (cand / "JPEGImages").is_dir():
            root = cand
            break
    lst = root / "ImageSets" / "Main" / f"{split}.txt"
    _need(ds, root, root / "JPEGImages", root / "Annotations", lst)
    cidx = {c: i for i, c in enumerate(VOC_CLASSES)}
    recs = []
    lines = _read_text(ds, root, lst).splitlines()
    for ln, stem in ((k, s.split()[0]) for k, s in enumerate(lines, 1) if s.strip()):
        where = f"{_rel(root, lst)} line {ln}"
        x = _inside(ds, root, root / "Annotations", f"{stem}.xml", where)
        img = _inside(ds, root, root / "JPEGImages", f"{stem}.jpg", where)
        for p in (x, img):
            if not p.is_file():
                raise _error(ds, root, f"{_rel(root, lst)} line {ln} names {stem!r}, but {_rel(root, p)} is missing: "
                                       "extract the VOC tar again (or remove the line)")
        names, bxs, diff = _parse_xml(ds, root, x, one_based=True)
        keep = [j for j in range(len(names)) if difficult or not diff[j]]
        bad = [names[j] for j in keep if names[j] not in cidx]
        if bad:
            raise _error(ds, root, f"malformed XML {x.name}: unknown class {bad[0]!r}")
        if not keep:
            continue
        bl = [cidx[names[j]] for j in keep]
        recs.append({"path": img, "label": sorted(set(bl)), "name": img.name,
                     "boxes": [bxs[j] for j in keep], "box_labels": bl})
    return FolderDataset(ds, root, recs, list(VOC_CLASSES), size, multilabel=True, crop_pct=crop_pct)


# ----------------------------------------------------------------------------------- CIFAR-100
#: the only globals a CIFAR python pickle needs (numpy array reconstruction, under numpy 1's and 2's names)
_CIFAR_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype")}


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle naming a global outside :data:`_CIFAR_GLOBALS` (it would build or run it)."""


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler restricted to what the CIFAR files hold: dicts, lists, bytes/str, ints and numpy arrays.
    Any other global (``os.system``, ``builtins.eval``, a class...) is refused before it is looked up, so a
    planted file cannot run code."""

    def find_class(self, module, name):
        if (module, name) in _CIFAR_GLOBALS:
            return super().find_class(module, name)
        raise _RefusedGlobal(f"{module}.{name}")


def _unpickle(ds, root, path):
    try:
        with open(path, "rb") as f:
            return _CifarUnpickler(f, encoding="bytes").load()
    except _RefusedGlobal as e:
        raise _error(ds, root, f"refused to unpickle {path.name} ({_rel(root, path)}): it names {e}, which a CIFAR "
                               "pickle never holds (only dicts, lists, bytes, ints and numpy arrays), and loading it "
                               "could run code. Delete the file and extract cifar-100-python.tar.gz again from the "
                               "official archive") from None
    except Exception as e:
        raise _error(ds, root, f"cannot unpickle {path.name} ({_rel(root, path)}; {type(e).__name__}: {e}): the "
                               "file is damaged or truncated: extract cifar-100-python.tar.gz again") from e


def cifar100(root=None, split: str = "test", size: int = 32, coarse: bool = False) -> ArrayDataset:
    """CIFAR-100, python pickle version (fine labels by default, ``coarse=True`` for the 20 superclasses)."""
    ds = "cifar100"
    _split_arg(ds, split, ("train", "test"))
    root = _root(ds, root)
    if not (root / "meta").exists() and (root / "cifar-100-python" / "meta").exists():
        root = root / "cifar-100-python"
    _need(ds, root, root / split, root / "meta")
    d = _unpickle(ds, root, root / split)
    meta = _unpickle(ds, root, root / "meta")
    lk, nk = (b"coarse_labels", b"coarse_label_names") if coarse else (b"fine_labels", b"fine_label_names")
    for key, obj, fname in ((b"data", d, split), (lk, d, split), (nk, meta, "meta")):
        if not isinstance(obj, dict) or key not in obj:
            raise _error(ds, root, f"malformed {fname}: no key {key.decode()!r}")
    data = np.asarray(d[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(d[lk]):
        raise _error(ds, root, f"malformed {split}: data of shape {data.shape}, expected (N, 3072) with N labels")
    imgs = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    fnames = d.get(b"filenames") or [f"{split}_{i:05d}".encode() for i in range(len(imgs))]
    names = [f.decode() if isinstance(f, bytes) else str(f) for f in fnames]
    cls = [c.decode() if isinstance(c, bytes) else str(c) for c in meta[nk]]
    labels = np.asarray(d[lk])
    if labels.size and (labels.min() < 0 or labels.max() >= len(cls)):
        raise _error(ds, root, f"malformed {split}: labels outside 0..{len(cls) - 1} (the {len(cls)} names of meta); "
                               "extract cifar-100-python.tar.gz again")
    return ArrayDataset(ds, root, imgs, d[lk], names, cls, size)


# ----------------------------------------------------------------------- class-folder datasets
def _class_folders(ds, root, folder: Path, classes) -> list:
    recs = []
    for i, c in enumerate(classes):
        d = folder / c
        if not d.is_dir():
            raise _error(ds, root, f"missing class folder {d.relative_to(root) if d.is_relative_to(root) else d}")
        for p in _images_in(d):
            recs.append({"path": p, "label": i, "name": f"{c}/{p.name}"})
    return recs


def chest_xray(root=None, split: str = "test", size: int = 224, crop_pct: float = CROP_PCT) -> FolderDataset:
    """Chest X-ray pneumonia (Kermany et al. 2018): NORMAL=0, PNEUMONIA=1; grey images as RGB."""
    ds = "chest_xray"
    _split_arg(ds, split, ("train", "test", "val"))
    root = _root(ds, root)
    if not (root / split).is_dir() and (root / "chest_xray" / split).is_dir():
        root = root / "chest_xray"
    _need(ds, root, root / split)
    return FolderDataset(ds, root, _class_folders(ds, root, root / split, CHEST_CLASSES), list(CHEST_CLASSES), size, crop_pct=crop_pct)


def _hash_split(recs, split, test_fraction, seed):
    """Deterministic split by a hash of the file name (stable when files are added)."""
    if split == "all":
        return recs
    out = []
    for r in recs:
        u = zlib.crc32(f"{seed}/{r['name']}".encode()) / 2**32
        if (u < test_fraction) == (split == "test"):
            out.append(r)
    return out


def kvasir(root=None, split: str = "all", size: int = 224, test_fraction: float = 0.2, seed: int = 0, crop_pct: float = CROP_PCT) -> FolderDataset:
    """Kvasir v2 (8 classes of GI endoscopy).  It has no official split: ``split="train"|"test"`` is a
    deterministic split by a hash of the file name (``test_fraction`` of each class on average)."""
    ds = "kvasir"
    _split_arg(ds, split, ("train", "test", "all"))
    root = _root(ds, root)
    if not (root / KVASIR_CLASSES[0]).is_dir() and (root / "kvasir-dataset-v2" / KVASIR_CLASSES[0]).is_dir():
        root = root / "kvasir-dataset-v2"
    recs = _hash_split(_class_folders(ds, root, root, KVASIR_CLASSES), split, test_fraction, seed)
    return FolderDataset(ds, root, recs, list(KVASIR_CLASSES), size, crop_pct=crop_pct)


def mit67(root=None, split: str = "test", size: int = 224, crop_pct: float = CROP_PCT) -> FolderDataset:
    """MIT Indoor-67 with the official ``TrainImages.txt`` / ``TestImages.txt`` split (80/20 per class)."""
    ds = "mit67"
    _split_arg(ds, split, ("train", "test"))
    root = _root(ds, root)
    lst = root / ("TrainImages.txt" if split == "train" else "TestImages.txt")
    _need(ds, root, root / "Images", lst)
    classes = sorted(d.name for d in (root / "Images").iterdir() if d.is_dir())
    if not classes:
        raise _error(ds, root, "no category folders in Images/")
    cidx = {c: i for i, c in enumerate(classes)}
    recs = []
    for ln, line in enumerate(_read_text(ds, root, lst).splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        cat = line.split("/", 1)[0]
        if "/" not in line or cat not in cidx:
            raise _error(ds, root, f"malformed {lst.name} line {ln}: {line!r} is not '<category>/<file>' "
                                   "with a category folder in Images/")
        p = _inside(ds, root, root / "Images", line, f"{lst.name} line {ln}")
        if not p.is_file():
            raise _error(ds, root, f"{lst.name} line {ln} names Images/{line}, which is missing: extract "
                                   "indoorCVPR_09.tar again (or remove the line)")
        recs.append({"path": p, "label": cidx[cat], "name": line})
    return FolderDataset(ds, root, recs, [c.replace("_", " ") for c in classes], size, crop_pct=crop_pct)


# --------------------------------------------------------------------------------------- COCO
COCO_SPLITS = ("val2017", "train2017")


def _load_json(ds, root, path: Path):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _error(ds, root, f"malformed JSON {_rel(root, path)} ({type(e).__name__}: {e}): the file is damaged or "
                               "truncated: extract annotations_trainval2017.zip again") from e


def coco(root=None, split: str = "val2017", size: int = 224, crowd: bool = False, crop_pct: float = CROP_PCT) -> FolderDataset:
    """COCO 2017 object instances: multi-hot labels over the 80 categories, one box per annotation.

    Categories get contiguous indices 0..79 in increasing COCO category id (the ids run 1..90 with
    gaps), named from the JSON; each ``bbox`` ``[x, y, w, h]`` becomes ``x0, y0, x0 + w, y0 + h`` with
    ``box_labels`` the contiguous index.  Crowd annotations (``iscrowd=1``: one box over a group of
    objects) are dropped unless ``crowd=True``; images left without annotation are skipped (val2017
    has 48 images with none).  Images come in increasing image id."""
    ds = "coco"
    _split_arg(ds, split, COCO_SPLITS)
    root = _root(ds, root)
    ann = root / "annotations" / f"instances_{split}.json"
    _need(ds, root, root / split, ann)
    doc = _load_json(ds, root, ann)
    fix = "extract annotations_trainval2017.zip again"

    def bad(what):
        return _error(ds, root, f"malformed {_rel(root, ann)}: {what}; {fix}")

    keys = ("images", "annotations", "categories")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in keys):
        raise bad("expected a JSON object with the lists 'images', 'annotations' and 'categories'")
    try:
        cats = sorted((int(c["id"]), str(c["name"])) for c in doc["categories"])
        files = {int(im["id"]): str(im["file_name"]) for im in doc["images"]}
    except (KeyError, TypeError, ValueError) as e:
        raise bad(f"an image or category entry lacks 'id', 'name' or 'file_name' ({type(e).__name__}: {e})") from e
    if not cats:
        raise bad("no categories")
    cidx = {cid: i for i, (cid, _) in enumerate(cats)}
    per_image: dict[int, list] = {}
    for k, a in enumerate(doc["annotations"]):
        try:
            iid, cid = int(a["image_id"]), int(a["category_id"])
            x, y, w, h = (float(v) for v in a["bbox"])
            is_crowd = bool(a.get("iscrowd", 0))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            aid = a.get("id", k) if isinstance(a, dict) else k
            raise bad(f"annotation {aid} needs image_id, category_id and a bbox [x, y, w, h] "
                      f"({type(e).__name__}: {e})") from e
        if iid not in files or cid not in cidx:
            raise bad(f"annotation {a.get('id', k)} refers to an unknown "
                      + ("image_id" if iid not in files else "category_id") + f" ({iid if iid not in files else cid})")
        if is_crowd and not crowd:
            continue
        per_image.setdefault(iid, []).append(([x, y, x + w, y + h], cidx[cid]))
    recs = []
    for iid in sorted(per_image):
        p = _inside(ds, root, root / split, files[iid], f"{_rel(root, ann)} (image {iid})")
        if not p.is_file():
            raise _error(ds, root, f"{_rel(root, ann)} lists image {iid} as {split}/{files[iid]}, which is missing: "
                                   f"extract {split}.zip again")
        bl = [l for _, l in per_image[iid]]
        recs.append({"path": p, "label": sorted(set(bl)), "name": files[iid],
                     "boxes": [b for b, _ in per_image[iid]], "box_labels": bl})
    return FolderDataset(ds, root, recs, [n for _, n in cats], size, multilabel=True, crop_pct=crop_pct)


LOADERS = {"imagenet_val": imagenet_val, "imagenet_train": imagenet_train, "cub": cub, "voc": voc, "cifar100": cifar100,
           "chest_xray": chest_xray, "kvasir": kvasir, "mit67": mit67, "coco": coco}


def dataset(name: str, root=None, **kw) -> Dataset:
    """Any real dataset by name (``imagenet_val``, ``imagenet_train``, ``cub``, ``voc``, ``cifar100``, ``chest_xray``,
    ``kvasir``, ``mit67``, ``coco``); ``root=None`` reads ``$XAIKIT_DATA/<name>``."""
    if name not in LOADERS:
        raise ConfigError(f"unknown dataset {name!r}; available: {sorted(LOADERS)} (and xk.data.synthetic)")
    return LOADERS[name](root, **kw)
