"""Train xaikit's small models on synthetic data, cached by a hash of the full configuration.

    model = xk.training.small.train("resnet18_cifar", num_classes=10, seed=0)   # minutes once, then instant
    model.train_record["test_accuracy"], model.train_record["train_time_s"]

The checkpoint lives in ``cache_dir()/models/<hash>.pt`` with a JSON record next to it (config,
test accuracy, train time, per-epoch history).  The checkpoint holds only tensors and plain values
(``{"model": state_dict, "config_json": <the config as a JSON string>, "format": "xaikit.small/3"}``) and
is read with ``weights_only=True``: a planted or damaged cache file never runs code; it is reported
(a warning naming the file) and the model is trained again.  The returned model is loaded back through
``xk.models.load(arch, weights=<checkpoint>)`` so it carries its ``model.xaikit`` metadata.
Training is deterministic for a given seed on CPU (seeded init, seeded shuffling and augmentation).

Convolutional models train channels-last where that is safe (:func:`channels_last_safe`): always on CUDA;
on CPU only when no convolution whose kernel is smaller than its stride (a 1x1 stride-2 downsample, which
skips input pixels) has fewer than 16 input channels. torch 2.14.1's CPU backward of such a convolution in
channels-last over fewer than 16 channels corrupts the heap and aborts the process ("double free or
corruption", segmentation fault): ``resnet18_cifar`` of width 1 to 15 at 16-64 px; widths 16-64, the
MobileNet-V2 and the DeiT patch embedding (kernel = stride) ran clean.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import (cache_dir, file_lock, progress, save_atomic, seed_everything, train_autocast, train_precision,
                      training_threads)
from ..data.base import load_batch
from ..data.synthetic import GENERATOR_VERSION, synthetic
from ..errors import ConfigError, DataError, WeightsError
from ..models import info, load, to_channels_last
from ..models.zoo import plain_checkpoint

#: bump when the loop changes in a way that changes the weights (invalidates cached checkpoints)
#: 2: convolutional models train channels-last (1.3-1.4x faster per step on a 2-core CPU), where safe
#: (:func:`channels_last_safe`; the default widths are, so their cached weights stay valid)
TRAINER_VERSION = 2

#: what the cache files hold (``format`` key); files without one (written before) load the same way
CHECKPOINT_FORMAT = "xaikit.small/3"

#: on CPU, a convolution whose kernel is smaller than its stride needs at least this many input channels
#: for channels-last training (:func:`channels_last_safe`)
CPU_CHANNELS_LAST_MIN_CHANNELS = 16

#: per-architecture defaults: each trains in about 1-3 CPU minutes on 2 cores at 32 px, 10 classes
DEFAULTS = {
    "resnet18_cifar": dict(arch_kwargs={"width": 16}, n_train=2000, epochs=4, lr=0.05, batch_size=64,
                           optimizer="sgd", weight_decay=5e-4),
    "mobilenetv2_cifar": dict(arch_kwargs={"width_mult": 0.5}, n_train=2000, epochs=4, lr=0.05, batch_size=64,
                              optimizer="sgd", weight_decay=4e-5),
    "deit_tiny_synth": dict(arch_kwargs={}, n_train=2000, epochs=10, lr=1e-3, batch_size=64,
                            optimizer="adamw", weight_decay=0.05),
}


def config(arch: str = "resnet18_cifar", **overrides) -> dict:
    """The full training configuration (defaults of ``arch`` updated by ``overrides``)."""
    if arch not in DEFAULTS:
        raise ConfigError(f"no training defaults for arch={arch!r}; xaikit's small models are {sorted(DEFAULTS)}")
    cfg = dict(arch=arch, num_classes=10, size=32, n_test=1000, data={}, seed=0, augment=True,
               label_smoothing=0.0)
    cfg.update({k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS[arch].items()})
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ConfigError(f"unknown training option(s) {sorted(unknown)}; valid: {sorted(cfg)}")
    for k, v in overrides.items():
        if v is not None:
            cfg[k] = dict(v) if isinstance(v, dict) else v
    clash = set(cfg["data"]) & {"n", "num_classes", "size", "seed", "split"}
    if clash:
        raise ConfigError(f"data={cfg['data']} sets {sorted(clash)}: pass those as train() arguments; "
                          "data holds only synthetic options (instances, classes_per_image, context, fine_grained, ...)")
    if cfg["optimizer"] not in ("sgd", "adamw"):
        raise ConfigError(f"optimizer={cfg['optimizer']!r}: use 'sgd' or 'adamw'")
    return cfg


def _datasets(cfg):

    common = dict(num_classes=cfg["num_classes"], size=cfg["size"], seed=cfg["seed"], **cfg["data"])
    return synthetic(cfg["n_train"], split="train", **common), synthetic(cfg["n_test"], split="test", **common)


def config_hash(cfg: dict) -> str:
    """16 hex digits identifying a configuration together with the data generator and trainer versions."""

    blob = json.dumps({**cfg, "_gen": GENERATOR_VERSION, "_trainer": TRAINER_VERSION}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def checkpoint_path(cfg: dict) -> Path:
    d = cache_dir() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{cfg['arch']}-{config_hash(cfg)}.pt"


def _load(cfg, path, class_names, record=None):

    model = load(cfg["arch"], weights=path, num_classes=cfg["num_classes"], class_names=class_names,
                 input_size=cfg["size"], **cfg["arch_kwargs"])
    if record is None:
        jp = path.with_suffix(".json")
        try:
            record = json.loads(jp.read_text()) if jp.exists() else {"config": cfg}
        except (OSError, ValueError):  # a damaged record: the weights are what matter
            record = {"config": cfg}
        if not isinstance(record, dict):
            record = {"config": cfg}
    model.train_record = record
    return model


def _load_cached(cfg, path, class_names):
    """The cached model, or None (after a warning naming the file, which is removed) when the cache file
    cannot be read safely: truncated, garbage, holding other objects than tensors and plain values (a
    planted file is never executed: ``weights_only=True``) or not fitting the architecture."""
    try:
        return _load(cfg, path, class_names)
    except (WeightsError, DataError) as e:
        warnings.warn(f"small-model cache file {path} is unusable and is trained again ({e})", RuntimeWarning,
                      stacklevel=3)
        for p in (path, path.with_suffix(".json")):
            try:
                p.unlink()
            except OSError:  # gone already, or read-only: it is overwritten after training
                pass
        return None


def channels_last_safe(model: nn.Module, device="cpu") -> bool:
    """Whether ``model`` may train in the channels-last layout on ``device``: on CUDA always; on CPU only
    when every ``Conv2d`` whose kernel is smaller than its stride (it skips input pixels: the 1x1 stride-2
    downsample of a ResNet) has at least :data:`CPU_CHANNELS_LAST_MIN_CHANNELS` input channels; on other
    devices never. torch 2.14.1 corrupts the heap in ``loss.backward()`` otherwise and the process aborts
    ("double free or corruption"; ``resnet18_cifar`` of width 1 to 15), whatever Python does around it."""
    kind = torch.device(device).type
    if kind == "cuda":
        return True
    if kind != "cpu":
        return False
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            stride = m.stride if isinstance(m.stride, tuple) else (m.stride,) * 2
            kernel = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * 2
            skips = any(k < s for k, s in zip(kernel, stride))
            if skips and m.in_channels < CPU_CHANNELS_LAST_MIN_CHANNELS:
                return False
    return True


def _is_multilabel(labels: torch.Tensor) -> bool:
    return labels.dim() == 2


def _loss(logits, y, label_smoothing):
    if _is_multilabel(y):
        return F.binary_cross_entropy_with_logits(logits, y)
    return F.cross_entropy(logits, y, label_smoothing=label_smoothing)


def _hits(logits, y) -> torch.Tensor:
    """(B,) bool: the top-1 class is the label (multi-label data: one of the present classes)."""
    pred = logits.argmax(1)
    if _is_multilabel(y):  # top-1 prediction is one of the present classes
        return y.gather(1, pred[:, None]).gt(0)[:, 0]
    return pred == y


def _correct(logits, y) -> int:
    return int(_hits(logits, y).sum())


@torch.no_grad()
def evaluate(model: nn.Module, dataset, batch_size: int = 256, device=None, per_image: bool = False):
    """Top-1 accuracy in [0, 1] of ``model`` on ``dataset`` (images normalized with ``model.xaikit``); with
    ``per_image`` the (N,) float tensor of each image's hit (1.0 / 0.0, in the dataset's order, on the CPU), whose
    mean is that accuracy: two models evaluated on the same set are then compared image by image.

    Multi-label data: fraction of images whose top-1 class is one of their labels.
    """

    inf = info(model)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was = model.training
    model.eval()
    n = len(dataset)
    hits = []
    for i in range(0, n, batch_size):
        idx = range(i, min(n, i + batch_size))
        if hasattr(dataset, "tensors"):  # synthetic: fast path
            x, y = dataset.tensors(idx, bar=False)
        else:

            b = load_batch(dataset, idx)
            x, y = b.images, b.labels
        hits.append(_hits(model(inf.normalize(x.to(dev))), y.to(dev)).cpu())
    model.train(was)
    h = torch.cat(hits).float() if hits else torch.zeros(0)
    return h if per_image else int(h.sum()) / max(1, n)


def train(arch: str = "resnet18_cifar", *, num_classes: int | None = None, size: int | None = None,
          n_train: int | None = None, n_test: int | None = None, data: dict | None = None,
          epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
          weight_decay: float | None = None, optimizer: str | None = None, seed: int | None = None,
          arch_kwargs: dict | None = None, augment: bool | None = None, label_smoothing: float | None = None,
          device="cpu", cache: bool = True, retrain: bool = False) -> nn.Module:
    """Train (or load from the cache) a small model on synthetic data; returns it in eval mode.

    ``data`` holds synthetic options (``instances``, ``classes_per_image``, ``context``, ``fine_grained``,
    ...); ``None`` arguments take :data:`DEFAULTS`.  One-cycle LR schedule, horizontal-flip augmentation.
    ``model.train_record`` holds the config, ``test_accuracy``, ``train_time_s`` (wall), ``cpu_time_s``
    (process CPU time, meaningful on a shared machine) and the per-epoch history.
    """
    cfg = config(arch, num_classes=num_classes, size=size, n_train=n_train, n_test=n_test, data=data,
                 epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, optimizer=optimizer,
                 seed=seed, arch_kwargs=arch_kwargs, augment=augment, label_smoothing=label_smoothing)
    if train_precision(torch.device(device).type) == "bf16":  # a bf16-trained model is another model (fp32
        cfg = {**cfg, "precision": "bf16"}  # keys, and the caches holding them, stay as they were)
    path = checkpoint_path(cfg)
    with file_lock(path) if cache else contextlib.nullcontext():  # notebooks side by side train it once
        return _train(cfg, path, device, cache, retrain)


@training_threads()  # one intra-op thread: the trained weights do not depend on the core count
def _train(cfg: dict, path: Path, device, cache: bool, retrain: bool) -> nn.Module:
    arch = cfg["arch"]
    train_ds, test_ds = _datasets(cfg)
    if cache and path.exists() and not retrain:
        cached = _load_cached(cfg, path, train_ds.class_names)
        if cached is not None:
            return cached


    dev = torch.device(device)
    seed_everything(cfg["seed"])
    model = load(cfg["arch"], weights="random", num_classes=cfg["num_classes"], input_size=cfg["size"],
                 class_names=train_ds.class_names, **cfg["arch_kwargs"]).to(dev)
    # channels-last: oneDNN's faster layout on CPU (ResNet-18 at 48 px: 0.26 vs 0.34 s per step of 64)
    # and cuDNN's on GPU, where it is safe (channels_last_safe: narrow strided convolutions abort on CPU).
    # Single backward only: double backprop (training/interpretable.py) keeps the default layout, which
    # crashed channels-last on CPU.
    if channels_last_safe(model, dev):
        to_channels_last(model)
    inf = model.xaikit
    x, y = train_ds.tensors()
    gen = torch.Generator().manual_seed(cfg["seed"])
    steps_per_epoch = (len(x) + cfg["batch_size"] - 1) // cfg["batch_size"]
    params_decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    params_no = [p for n, p in model.named_parameters() if p.dim() <= 1]
    groups = [{"params": params_decay, "weight_decay": cfg["weight_decay"]}, {"params": params_no, "weight_decay": 0.0}]
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg["lr"], momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=cfg["epochs"] * steps_per_epoch,
                                                pct_start=0.25)
    history = []
    t0, c0 = time.perf_counter(), time.process_time()
    bar = progress(total=cfg["epochs"] * steps_per_epoch, desc=f"train {arch}")
    for ep in range(cfg["epochs"]):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        tot_loss, correct = 0.0, 0
        for s in range(steps_per_epoch):
            idx = perm[s * cfg["batch_size"]:(s + 1) * cfg["batch_size"]]
            xb, yb = x[idx], y[idx]
            if cfg["augment"]:
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            xb, yb = inf.normalize(xb).to(dev), yb.to(dev)
            with train_autocast(dev):  # bf16 mixed precision where config.train_precision says so
                logits = model(xb).float()
            loss = _loss(logits, yb, cfg["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss.detach()) * len(idx)
            correct += _correct(logits.detach(), yb)
            bar.update(1)
        history.append({"epoch": ep + 1, "loss": tot_loss / len(x), "train_accuracy": correct / len(x)})
    bar.close()
    train_time, cpu_time = time.perf_counter() - t0, time.process_time() - c0
    model.eval()
    acc = evaluate(model, test_ds, device=dev)
    record = {"config": cfg, "hash": config_hash(cfg), "test_accuracy": acc, "chance": _chance(cfg),
              "train_time_s": round(train_time, 2), "cpu_time_s": round(cpu_time, 2), "history": history, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "device": str(dev), "checkpoint": path.name,
              "precision": cfg.get("precision", "fp32")}
    model.to("cpu")
    if not cache:
        model.train_record = record
        return model

    save_atomic(plain_checkpoint({"model": model.state_dict(), "format": CHECKPOINT_FORMAT,
                                  "config_json": json.dumps(cfg, sort_keys=True, default=str)}), path)
    jtmp = path.with_suffix(f".jsontmp{os.getpid()}")
    jtmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(jtmp, path.with_suffix(".json"))
    return _load(cfg, path, train_ds.class_names, record)


def _chance(cfg) -> float:
    """Accuracy of a guess: 1/C, or (mean classes per image)/C for multi-label data."""
    cpi = cfg["data"].get("classes_per_image", 1)
    lo, hi = (cpi, cpi) if isinstance(cpi, (int, float)) else cpi
    return min(1.0, (lo + hi) / 2 / cfg["num_classes"])
