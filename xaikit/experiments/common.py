"""What every chapter shares: the parameter groups, model specs -> eval sets, evaluation images, method rows,
figure titles and pass counting. Nothing here is specific to one chapter; chapters import only these
public names from each other's floor (never another chapter's private helpers).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from .. import attributors
from ..data import folders
from ..data.base import Batch, load_batch
from ..data.miniature import resolve_root
from ..data.samples import PHOTOS, samples
from ..data.subsets import stratified_indices
from ..data.synthetic import synthetic
from ..errors import ConfigError
from ..models.fast import observe
from .params import ChapterParams, param
from .specs import ModelSpec, load_model, scene  # noqa: F401 - scene: the chapters import it from here
from .study import EvalSet


# ---------------------------------------------------------------------------------- parameters
@dataclass
class ModelParams(ChapterParams):
    """Parameters of chapters that load pretrained networks by spec."""

    random_weights: bool = param(False, "True: pretrained models get random weights of the same architecture "
                                        "(the rehearsal profile)")
    image_size: int | None = param(None, "input resolution of pretrained models (None: each model's own)")


@dataclass
class PhotoParams(ChapterParams):
    photos: int = param(4, "bundled photos (labelled ones first)")
    photo_size: int | None = param(None, "photo resolution in px (None: the model's input size)")


@dataclass
class SyntheticParams(ChapterParams):
    """Parameters of the synthetic tier: data size and the small models' training budget."""

    synthetic_images: int = param(16, "synthetic evaluation images")
    synthetic_size: int = param(32, "synthetic image size (px)")
    synthetic_classes: int = param(10, "synthetic classes")
    synthetic_sizes: dict = param({}, "architecture options per size of xaikit's small transformers "
                                      "({small: {embed_dim: 64, depth: 4}})")
    synthetic_scene: dict = param({}, "scene options of every synthetic set, training and evaluation alike "
                                      "(xk.data.synthetic.HARD: photo backgrounds, distractors, occlusion, colour "
                                      "jitter; {}: plain textured scenes)")
    train_images: int = param(1000, "training images of the small models")
    train_epochs: int = param(2, "training epochs of the small models")


# ------------------------------------------------------------------------------ models and data
def synthetic_eval_data(cfg: SyntheticParams, n: int | None = None, **data_options) -> Batch:
    """Synthetic test images (exact boxes) of the chapter's size, classes and scene (:func:`scene`)."""
    ds = synthetic(n=int(n or cfg.synthetic_images), num_classes=cfg.synthetic_classes, size=cfg.synthetic_size,
                   seed=cfg.seed, split="test", **scene(cfg, **data_options))
    return load_batch(ds)


def dataset_root(cfg, key: str):
    """The dataset folder of parameter ``key`` (``imagenet_root``, ``voc_root``, ...): a ``miniature:...``
    value (the rehearsal profile) is built on first use (:func:`xaikit.data.miniature.resolve_root`)."""
    value = getattr(cfg, key)
    return resolve_root(value) if value else value


def photo_data(n: int, size: int = 224) -> Batch:
    """The first ``n`` bundled photos, labelled ones first, at ``size`` px."""
    names = sorted(PHOTOS, key=lambda k: (PHOTOS[k][1] < 0, list(PHOTOS).index(k)))
    return load_batch(samples(names[: int(n)], size=int(size)))


def imagenet_data(cfg, n: int, size: int = 224) -> Batch:
    """``n`` ImageNet validation images of ``cfg.imagenet_root`` (with their ILSVRC boxes): a seeded,
    class-stratified sample (every class once before any twice), the whole set when ``n`` covers it."""
    root = dataset_root(cfg, "imagenet_root")
    if not root:
        raise ConfigError("this profile evaluates on ImageNet but imagenet_root is empty: set it in "
                          "profiles/full.yaml (see data/README.md for the expected layout)")
    ds = folders.imagenet_val(root, size=size, boxes=True)
    return load_batch(ds, stratified_indices([r["label"] for r in ds.records], int(n), int(cfg.seed)))


def resolve_eval_set(spec: str, cfg) -> EvalSet:
    """A model spec (:mod:`xaikit.experiments.specs`) -> the model on the chapter's device and the images it is
    evaluated on (on the host: the study moves batches):

    - ``tf_efficientnet_lite0@bundled``: real ImageNet weights on the bundled photos (``cfg.photos``);
    - ``<small arch>[:<size>]@synthetic``: xaikit's small model trained on synthetic data, evaluated on
      ``cfg.synthetic_images`` synthetic test images (with exact boxes);
    - ``[<lib>:]<name>@<weight tag>``: pretrained ImageNet weights from the local cache (random ones with
      ``random_weights``), on ``cfg.images`` images of ``imagenet_root``.
    """
    s = ModelSpec.parse(spec)
    if s.dataset is None:
        raise ConfigError(f"model spec {spec!r}: random weights have no evaluation images; use a weight tag "
                          "(ImageNet), 'bundled' or 'synthetic'")
    if s.dataset == "imagenet" and not cfg.imagenet_root:  # fail before any expensive load
        imagenet_data(cfg, cfg.images)
    model = load_model(s, cfg)
    size = int(model.xaikit.input_size)
    if s.dataset == "photos":
        data = photo_data(cfg.photos, size=int(getattr(cfg, "photo_size", None) or size))
    elif s.dataset == "synthetic":
        data = synthetic_eval_data(cfg)
    else:
        data = imagenet_data(cfg, cfg.images, size=size)
    return EvalSet(spec, model, data, s.dataset)


# ------------------------------------------------------------------------------------ methods
def rows_for(names: Sequence[str], options: Mapping[str, Mapping] | None = None) -> dict:
    """``{row: (method, options)}`` for method names (a row ``opticam:diff`` names the method before its
    colon), each with its chapter-wide ``options``; methods this build does not ship are an error."""
    known = set(attributors.available())
    out = {}
    for row in names:
        method = row.split(":")[0]
        if method not in known:
            raise ConfigError(f"unknown method {method!r} in the parameters; available: {sorted(known)}")
        out[row] = (method, dict((options or {}).get(method, {})))
    return out


@contextlib.contextmanager
def count_passes(model: torch.nn.Module):
    """Count the images that go forward through ``model`` and the images whose output is back-propagated
    (a hook on the output tensor), over everything run inside the block: ``{"forward": n, "backward": n}``
    (the passes of the model's inference twin included)."""
    counts = {"forward": 0, "backward": 0}

    def on_grad(g):
        counts["backward"] += int(g.shape[0]) if g.dim() else 1

    def fwd(mod, args, out):
        t = out if torch.is_tensor(out) else None
        if t is None:
            return
        counts["forward"] += int(t.shape[0]) if t.dim() > 1 else 1
        if t.requires_grad:
            t.register_hook(on_grad)

    with observe(model, fwd):
        yield counts
