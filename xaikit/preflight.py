"""Preflight of a profile before a long run (``python -m xaikit.run --profile full --dry-run``).

:func:`check` looks, for every notebook section of a profile (``_defaults`` merged in), at

- every dataset path parameter (a key ending in ``_root``): the folder exists and has the layout its
  loader expects, checked cheaply (a few ``stat``/``scandir`` calls, nothing is read or decoded);
- every pretrained model spec, ``<model>@imagenet`` or with an explicit weight tag
  (``torchvision:resnet50@IMAGENET1K_V1``, ``timm:deit_base_patch16_224@fb_in1k``): that weight file is
  already in the local timm / Hugging Face or torch-hub cache (nothing is downloaded, as
  :func:`xaikit.models.load` never downloads); an unknown tag is a problem too;
- chapter 1's ``accuracy_models`` (rows of Table 1.1): the torchvision weights each row names
  (``xaikit/published/thesis_1_1.csv``, column ``torchvision_weights``) for the architecture the notebook's
  ``table11_archs`` maps it to, in the torch-hub cache;
- ``random_weights: true`` (the ``rehearsal`` profile) builds pretrained specs with random weights: no
  weight file is needed, so none is checked;
- ``device: cuda``: CUDA is present;

and gives a rough run-time estimate: images x methods x models x a per-method cost from
:data:`SECONDS_PER_IMAGE` (+ insertion/deletion curves).  Each problem is one line naming the
notebook, the key, the value and the fix (``data/README.md`` for datasets).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .data.miniature import is_miniature, resolve_root
from .data import folders as F
from .data.folders import IMG_EXT
from .errors import WeightsError
from .experiments.chapter1 import TABLE11_ARCHS
from .models.zoo import timm_pretrained_name, torchvision_weights
from .profiles import DEFAULTS_KEY, load_profile

README = "data/README.md"

#: dataset path parameter -> loader name in :mod:`xaikit.data.folders` (and its data/README.md section)
ROOT_KEYS = {"imagenet_root": "imagenet_val", "imagenet_train_root": "imagenet_train", "voc_root": "voc",
             "cub_root": "cub", "cifar_root": "cifar100", "chest_root": "chest_xray", "chest_xray_root": "chest_xray",
             "kvasir_root": "kvasir", "mit67_root": "mit67", "coco_root": "coco"}

#: ROUGH seconds per image per method for a ResNet-50-sized CNN at 224 px on one recent GPU, batched.
#: Not measured end to end: derived from the method's number of passes x ~1 ms per batched ResNet-50
#: forward (~3 ms forward+backward), e.g. Score-CAM = one forward per channel of layer4 (2048).
#: Use the estimate to tell minutes from days, nothing finer.
SECONDS_PER_IMAGE = {
    "cam": 0.001, "gradcam": 0.003, "gradcampp": 0.003, "xgradcam": 0.003, "hirescam": 0.003, "layercam": 0.003,
    "fakecam": 0.001, "saliency": 0.003, "guided_backprop": 0.003, "raw_attention": 0.002, "rollout": 0.002,
    "chefer": 0.004, "groupcam": 0.04, "vit_reciprocam": 0.2, "smoothgrad": 0.15, "integrated_gradients": 0.15,
    "opticam": 0.3, "extremal": 2.4, "scorecam": 2.0, "ablationcam": 2.0, "rise": 4.0,
}
DEFAULT_SECONDS = 0.1          # a method missing from the table
FORWARD_SECONDS = 0.001        # one batched forward of one image (insertion/deletion steps, accuracy)
_SPEC = re.compile(r"^\s*((?:timm:|torchvision:)?[\w.\-]+)@([\w.\-]+)\s*$")
#: weights of a spec that are no pretrained weight file (xaikit.experiments.specs.PLAIN)
_NOT_PRETRAINED = ("bundled", "synthetic", "random")


@dataclass
class Problem:
    section: str
    key: str
    value: object
    message: str
    fix: str

    def line(self) -> str:
        return f"PROBLEM {self.section}.{self.key} = {self.value!r}: {self.message}. Fix: {self.fix}"


@dataclass
class Report:
    """What :func:`check` found: ``problems`` (each one line), ``notes``, ``estimate_s`` per section."""

    profile: str
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    estimate_s: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = [f"preflight of profile {self.profile}:"]
        for sec, s in self.estimate_s.items():
            out.append(f"  estimate {sec}: {_human(s)} (rough; see xaikit.preflight.SECONDS_PER_IMAGE)")
        if self.estimate_s:
            out.append(f"  estimate total: {_human(sum(self.estimate_s.values()))}")
        out += [f"  note: {n}" for n in self.notes]
        out += [p.line() for p in self.problems]
        out.append("preflight OK" if self.ok else f"preflight: {len(self.problems)} problem(s)")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _human(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


# ------------------------------------------------------------------------------------- datasets
def _has_images(folder: Path, limit: int = 50) -> bool:

    with os.scandir(folder) as it:
        for k, e in enumerate(it):
            if e.is_file() and os.path.splitext(e.name)[1].lower() in IMG_EXT:
                return True
            if k >= limit:
                break
    return False


def _wnid_dirs(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        return [Path(e.path) for e in it if e.is_dir() and re.fullmatch(r"n\d{8}", e.name)]


def check_dataset(name: str, root) -> str | None:
    """Cheap layout check of a dataset folder for loader ``name``: ``None`` when it looks right,
    else the problem (as the loader would word it).  Nothing is loaded."""

    p = Path(str(root)).expanduser()
    if not str(root) or not p.is_dir():
        return "folder does not exist"

    def first(*cands):
        return next((c for c in cands if c.exists()), None)

    def missing(base, *rel):
        for r in rel:
            if not (base / r).exists():
                return f"missing {r}"
        return None

    if name in ("imagenet_val", "imagenet_train"):
        sub = p / ("val" if name == "imagenet_val" else "train")
        d = sub if sub.is_dir() else p
        wn = _wnid_dirs(d)
        if wn:
            return None if _has_images(wn[0]) else f"class folder {wn[0].name}/ holds no images"
        if name == "imagenet_val" and _has_images(d):
            return None if first(p / "bbox" / "val", p / "bbox") or any(d.glob("*.xml")) else \
                "flat val/ needs the ILSVRC bbox XMLs (bbox/val/) for its labels"
        return f"no WordNet-id class folders (like n01440764/) in {d}"
    if name == "cub":
        base = p if (p / "images.txt").exists() or not (p / "CUB_200_2011").is_dir() else p / "CUB_200_2011"
        return missing(base, "images.txt", "image_class_labels.txt", "train_test_split.txt",
                       "bounding_boxes.txt", "classes.txt", "images")
    if name == "voc":
        base = first(*(c for c in (p, p / "VOC2012", p / "VOCdevkit" / "VOC2012") if (c / "JPEGImages").is_dir()))
        if base is None:
            return "missing JPEGImages/"
        return missing(base, "Annotations", "ImageSets/Main/train.txt", "ImageSets/Main/val.txt")
    if name == "cifar100":
        base = p / "cifar-100-python" if not (p / "meta").exists() and (p / "cifar-100-python").is_dir() else p
        return missing(base, "train", "test", "meta")
    if name == "chest_xray":
        base = p / "chest_xray" if not (p / "test").is_dir() and (p / "chest_xray" / "test").is_dir() else p
        return missing(base, *(f"{s}/{c}" for s in ("train", "test") for c in F.CHEST_CLASSES))
    if name == "kvasir":
        base = p / "kvasir-dataset-v2" if (p / "kvasir-dataset-v2").is_dir() else p
        return missing(base, *F.KVASIR_CLASSES)
    if name == "mit67":
        return missing(p, "Images", "TrainImages.txt", "TestImages.txt")
    if name == "coco":  # val2017 (the split the profiles use), or else a complete train2017
        if (p / "train2017").is_dir() and (p / "annotations" / "instances_train2017.json").is_file() \
                and not (p / "val2017").exists():
            return None
        return missing(p, "annotations/instances_val2017.json", "val2017")
    raise KeyError(name)


# -------------------------------------------------------------------------------------- weights
def weights_cached(spec: str) -> tuple[bool, str]:
    """Whether the pretrained weights of ``spec`` are in the local cache; ``(found, where)``.

    ``spec``: ``[timm:|torchvision:]<name>`` (the library's ImageNet default, timm tried first as
    :func:`xaikit.models.load` does) or ``...<name>@<tag>`` naming exact weights (torchvision's enum member
    ``IMAGENET1K_V1``, timm's tag ``fb_in1k``; ``@imagenet`` is the default). A tag the library does not know
    gives ``(False, <what it has>)``. Never touches the network."""
    import timm
    import torch


    spec, _, tag = spec.partition("@")
    tag = None if tag in ("", "imagenet") else tag
    lib, name = spec.split(":", 1) if ":" in spec else (None, spec)
    if lib != "torchvision" and (timm.is_model(name) or lib == "timm"):

        try:
            full = timm_pretrained_name(name, tag)
        except WeightsError as e:
            return False, str(e)
        try:
            cfg = timm.models.get_pretrained_cfg(full)
        except Exception:  # noqa: BLE001 - unknown tag
            cfg = None
        if cfg is None:
            return False, f"timm has no pretrained weights for {full!r}"
        hub = getattr(cfg, "hf_hub_id", None)
        if hub:
            from huggingface_hub import try_to_load_from_cache

            names = [n for n in (getattr(cfg, "hf_hub_filename", None), "model.safetensors",
                                 "pytorch_model.bin", "open_clip_pytorch_model.bin") if n]
            for fn in names:
                hit = try_to_load_from_cache(hub, fn)
                if isinstance(hit, str):
                    return True, hit
            return False, f"Hugging Face cache (~/.cache/huggingface/hub, repo {hub})"
        url = getattr(cfg, "url", None)
        if url:
            f = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
            return f.exists(), str(f)
        return False, f"timm lists no weight file for {full!r}"
    import torchvision


    if name not in torchvision.models.list_models():
        return False, f"neither timm nor torchvision knows {name!r}"
    try:
        w = torchvision_weights(name, tag)
    except WeightsError as e:
        return False, str(e)
    f = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
    return f.exists(), str(f)


def _weights_fix(spec: str, where: str) -> str:
    spec, _, tag = spec.partition("@")
    tag = None if tag in ("", "imagenet") else tag
    lib, _, name = spec.rpartition(":")
    if "has no" in where or "knows" in where:  # an unknown architecture or tag
        return "correct the spec in the profile (see xaikit/experiments/specs.py for the grammar)"
    if "Hugging Face" in where or (lib == "timm" and tag):
        full = f"{name}.{tag}" if tag else name
        return (f"on a machine with internet run python -c \"import timm; timm.create_model('{full}', "
                "pretrained=True)\" and copy ~/.cache/huggingface to this machine")
    if lib == "torchvision" or tag:
        return (f"on a machine with internet run python -c \"import torchvision; torchvision.models.get_model("
                f"'{name}', weights='{tag or 'DEFAULT'}')\" and copy ~/.cache/torch/hub/checkpoints to this machine")
    return (f"on a machine with internet load {name!r} with pretrained weights once (torchvision/timm) "
            "and copy ~/.cache/torch/hub/checkpoints to this machine")


def _specs(value):
    """Pretrained model specs anywhere in a parameter value (strings, lists, dicts): ``<model>`` for
    ``<model>@imagenet``, ``<model>@<tag>`` for an explicit weight tag; ``@bundled``, ``@synthetic`` and
    ``@random`` need no weight file and are left out."""
    if isinstance(value, str):
        m = _SPEC.match(value)
        if not m or m.group(2) in _NOT_PRETRAINED:
            return []
        return [m.group(1)] if m.group(2) == "imagenet" else [f"{m.group(1)}@{m.group(2)}"]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _specs(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _specs(v)]
    return []


def table11_weights() -> dict:
    """Table 1.1 row -> the torchvision weight tags its published rows name (``thesis_1_1.csv``, column
    ``torchvision_weights``; ResNet-50 has two: ``IMAGENET1K_V1`` and ``IMAGENET1K_V2``), in file order."""
    import csv

    out: dict = {}
    with open(Path(__file__).resolve().parent / "published" / "thesis_1_1.csv", newline="") as f:
        for row in csv.DictReader(f):
            tag = str(row.get("torchvision_weights", "")).split(".")[-1]
            if tag and tag not in out.setdefault(row["model"], []):
                out[row["model"]].append(tag)
    return out


def _table11_archs(params: dict, declared: dict | None) -> dict | None:
    archs = params.get("table11_archs")
    if not isinstance(archs, dict) and declared:
        archs = declared.get("table11_archs")
    if not isinstance(archs, dict):
        try:  # the parameter's default in chapter 1 (a preflight called without the notebook's defaults)

            archs = dict(TABLE11_ARCHS)
        except Exception:  # noqa: BLE001 - never crash the preflight
            archs = None
    return archs


def _accuracy_specs(sec: str, params: dict, declared: dict | None, rep) -> list:
    """``(row, spec)`` of the weights chapter 1's ``accuracy_models`` rows load (``load_model(
    'torchvision:<arch>@<tag>')`` for each published row); rows that are no row of Table 1.1 are problems."""
    rows = params.get("accuracy_models")
    if not rows or not isinstance(rows, (list, tuple)):
        return []
    archs = _table11_archs(params, declared)
    if archs is None:
        rep.notes.append(f"{sec}: accuracy_models not checked (table11_archs unknown)")
        return []
    tags = table11_weights()
    out = []
    for row in rows:
        if row not in archs or row not in tags:
            rep.problems.append(Problem(sec, "accuracy_models", row, "not a row of Table 1.1 with torchvision "
                                        f"weights (rows: {sorted(set(archs) & set(tags))})",
                                        "use row names of xaikit/published/thesis_1_1.csv"))
            continue
        arch = str(archs[row]).split(":")[-1]
        out += [(row, f"torchvision:{arch}@{tag}") for tag in tags[row]]
    return out


# ------------------------------------------------------------------------------------- estimate
def estimate(section: dict) -> float:
    """Rough seconds for one notebook section: images x (sum of method costs + insertion/deletion
    curves) x number of models, + ``epochs x train_images`` training forward/backward passes."""
    images = sum(int(v) for k, v in section.items() if k in ("images", "more_images", "pointing_images")
                 and isinstance(v, int))
    methods = {m for k, v in section.items() if k.endswith("methods") and isinstance(v, (list, tuple))
               for m in v if isinstance(m, str)}
    models = {s for k, v in section.items() if k.endswith(("models", "model")) for s in _as_names(v)}
    per_image = sum(SECONDS_PER_IMAGE.get(m, DEFAULT_SECONDS) for m in methods) or SECONDS_PER_IMAGE["gradcam"]
    steps = section.get("insertion_steps", 0)
    if steps is None:  # the protocol's: the authors' 1792 px per step at 224 px
        steps = 28
    if isinstance(steps, int):
        per_image += 2 * steps * FORWARD_SECONDS * max(len(methods), 1)
    total = images * per_image * max(len(models), 1)
    epochs = next((section[k] for k in ("epochs", "stream_epochs", "finetune_epochs") if isinstance(section.get(k), int)), 0)
    train = next((section[k] for k in ("train_images", "finetune_images") if isinstance(section.get(k), int)), 0)
    total += epochs * train * 3 * FORWARD_SECONDS * max(len(models), 1)
    return float(total)


def _as_names(v):
    if isinstance(v, str):
        return [v] if v else []
    if isinstance(v, (list, tuple)):
        return [x for x in v if isinstance(x, str) and x]
    if isinstance(v, dict):
        return [k for k in v if isinstance(k, str)]
    return []


# ----------------------------------------------------------------------------------------- check
def check(profile, folder=None, cuda_available: bool | None = None, declared: dict | None = None) -> Report:
    """Preflight report of ``profile``: a name under ``profiles/``, a YAML path, or an already
    loaded ``{section: {param: value}}`` dict.  ``cuda_available`` overrides detection (tests).
    ``declared``: ``{section: {param: default}}`` of the notebooks (their parameters cells), for what a
    section leaves at its default (``table11_archs``, ``random_weights``)."""

    if isinstance(profile, dict):
        name, prof = "<dict>", {k: dict(v or {}) for k, v in profile.items()}
    else:
        name, prof = load_profile(profile, folder)
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    rep = Report(name)
    defaults = prof.get(DEFAULTS_KEY, {})
    declared = declared or {}
    cache: dict = {}

    def cached(spec):
        if spec not in cache:
            try:
                cache[spec] = weights_cached(spec)
            except Exception as e:  # noqa: BLE001 - report, never crash the preflight
                cache[spec] = (False, f"{type(e).__name__}: {e}")
        return cache[spec]

    for sec, params in prof.items():
        if sec == DEFAULTS_KEY:
            continue
        if not params:
            continue  # an empty section: no notebook runs with it
        params = {**defaults, **params}
        random_weights = params.get("random_weights", (declared.get(sec) or {}).get("random_weights", False))
        random_weights = random_weights is True
        for key, value in params.items():
            if key.endswith("_root"):
                ds = ROOT_KEYS.get(key)
                if not value:
                    continue  # empty = not used in this profile
                if ds is None:
                    if not Path(str(value)).expanduser().is_dir():
                        rep.problems.append(Problem(sec, key, value, "folder does not exist",
                                                    f"put the dataset there or correct the path ({README})"))
                    continue
                if is_miniature(value):
                    try:  # a rehearsal's miniature: built now (seconds), then checked like a real folder
                        value = resolve_root(value)
                    except Exception as e:  # noqa: BLE001 - report, never crash the preflight
                        rep.problems.append(Problem(sec, key, value, f"cannot build the miniature ({e})",
                                                    "see xaikit.data.miniature"))
                        continue
                why = check_dataset(ds, value)
                if why:
                    rep.problems.append(Problem(sec, key, value, f"{ds}: {why}",
                                                f"download and arrange it as in {README}, section `{ds}`"))
            if random_weights:
                continue  # pretrained specs are built with random weights: no weight file is read
            for spec in dict.fromkeys(_specs(value)):
                found, where = cached(spec)
                if not found:
                    what = ("ImageNet weights not in the local cache" if "@" not in spec else
                            f"weights {spec.partition('@')[2]} not in the local cache")
                    if "has no" in where or "knows" in where:
                        what = "unknown model or weights"
                    rep.problems.append(Problem(sec, key, spec if "@" in spec else f"{spec}@imagenet",
                                                f"{what} ({where})", _weights_fix(spec, where)))
        if not random_weights:
            for row, spec in _accuracy_specs(sec, params, declared.get(sec), rep):
                found, where = cached(spec)
                if not found:
                    rep.problems.append(Problem(
                        sec, "accuracy_models", row,
                        f"Table 1.1 row {row!r} measures {spec}, whose weights are not in the local cache ({where})",
                        _weights_fix(spec, where)))
        if str(params.get("device", "")).startswith("cuda") and not cuda_available:
            rep.problems.append(Problem(sec, "device", params["device"], "CUDA is not available on this machine",
                                        "run on a GPU machine, or set device: cpu in the profile"))
        rep.estimate_s[sec] = estimate(params)
    return rep
