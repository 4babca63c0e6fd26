"""Fine-tune a pretrained network on another label space (thesis §3.4: "the ResNet-50 network is fine-tuned
to [CUB-200-2011 and Pascal VOC 2012] as baseline"), or on its own (Group-CAM §5).

The classifier (``model.xaikit.classifier``) is replaced by a fresh linear layer with ``num_classes``
outputs (seeded), and every parameter is trained: SGD with momentum, weight decay, the learning rate
divided by ``lr_gamma`` every ``lr_step`` epochs (the torchvision reference recipe the thesis follows),
RandomResizedCrop + horizontal flip on the training images. Integer labels train with cross-entropy,
multi-hot labels (VOC) with binary cross-entropy. ``transform(x01, y, model)`` may rewrite each training
batch (Group-CAM's masked images).

A checkpoint (model, optimizer, scheduler, history: tensors and plain values, read back with
``weights_only=True``) is written after every epoch; a rerun with the same configuration resumes from it,
and a finished run is only loaded. Under torchrun the model is wrapped in DistributedDataParallel, each rank
reads its shard of the epoch's order (:mod:`.distributed`), and rank 0 writes the checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..config import progress, save_atomic, train_autocast, train_key, training_threads
from ..core.devices import model_device, to_device
from ..data.base import collate
from ..errors import ConfigError, DataError
from . import distributed as D
from .augment import random_resized_crop_flip

CHECKPOINT = "finetune.pt"


@dataclass
class FinetuneConfig:
    """Hyper-parameters of :func:`finetune` (defaults: the torchvision ResNet recipe scaled to fine-tuning)."""

    epochs: int = 20
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_step: int = 15
    lr_gamma: float = 0.1
    augment: bool = True
    seed: int = 0
    max_batches: int | None = None

    def key(self) -> str:
        d = asdict(self)
        d.pop("epochs")
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def replace_head(model: nn.Module, num_classes: int, seed: int = 0) -> nn.Module:
    """Swap the final linear classifier for a seeded ``Linear(in, num_classes)`` (in place); returns it."""
    name = getattr(getattr(model, "xaikit", None), "classifier", None)
    mods = dict(model.named_modules())
    head = mods.get(name) if name else None
    if isinstance(head, nn.Sequential):  # torchvision VGG/ConvNeXt/MobileNet: the last Linear inside
        lin = [(k, m) for k, m in head.named_modules() if isinstance(m, nn.Linear)]
        if lin:
            name, head = f"{name}.{lin[-1][0]}", lin[-1][1]
    if not isinstance(head, nn.Linear):
        raise ConfigError(f"cannot find the linear classifier of {type(model).__name__} (model.xaikit.classifier="
                          f"{getattr(getattr(model, 'xaikit', None), 'classifier', None)!r})")
    g = torch.Generator().manual_seed(seed)
    new = nn.Linear(head.in_features, int(num_classes), bias=head.bias is not None)
    with torch.no_grad():
        bound = 1 / head.in_features ** 0.5
        new.weight.uniform_(-bound, bound, generator=g)
        if new.bias is not None:
            new.bias.zero_()
    parent, _, leaf = name.rpartition(".")
    setattr(mods[parent] if parent else model, leaf, new.to(model_device(model)))
    if hasattr(model, "xaikit"):
        model.xaikit.num_classes = int(num_classes)
    return model


def _loss(logits, y):
    if y.dim() == 2:
        return F.binary_cross_entropy_with_logits(logits, y.float()), (y.gather(1, logits.argmax(1, keepdim=True)) > 0).sum()
    return F.cross_entropy(logits, y), (logits.argmax(1) == y).sum()


@training_threads()  # one intra-op thread: the trained weights do not depend on the core count
def finetune(model: nn.Module, dataset: Dataset, num_classes: int | None = None, *,
             config: FinetuneConfig | None = None, checkpoint_dir: str | os.PathLike | None = None,
             transform: Callable | None = None, class_names=None, on_epoch: Callable | None = None,
             **kw) -> list[dict]:
    """Fine-tune ``model`` (in place) on ``dataset``; returns the per-epoch history
    ``{"epoch", "lr", "loss", "acc", "time_s"}`` (accuracy: top-1 is a true class, percent).
    ``num_classes``: replace the head first (None keeps it). ``on_epoch(epoch, model)`` is called after every
    epoch (1-based; e.g. to keep snapshots). Other keywords are :class:`FinetuneConfig` fields."""
    cfg = config or FinetuneConfig(**kw)
    if len(dataset) == 0:
        raise DataError("the fine-tuning dataset is empty")
    if num_classes is not None and num_classes != getattr(getattr(model, "xaikit", None), "num_classes", None):
        replace_head(model, num_classes, cfg.seed)
        if hasattr(model, "xaikit"):
            model.xaikit.class_names = list(class_names) if class_names is not None else None
    dev = model_device(model)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, cfg.lr_step), gamma=cfg.lr_gamma)
    history: list[dict] = []
    start = 0
    path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    if path is not None and path.exists():
        try:
            ck = torch.load(path, map_location=dev, weights_only=True)
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint is named, then retrained
            raise DataError(f"cannot read the fine-tuning checkpoint {path} ({type(e).__name__}); delete it to "
                            "train again") from e
        if ck.get("config_key") != train_key(cfg.key(), dev) or ck.get("num_classes") != int(model.xaikit.num_classes):
            raise ConfigError(f"checkpoint {path} was written with other hyper-parameters; use another "
                              "checkpoint_dir or delete it")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        history, start = list(ck["history"]), int(ck["epoch"])
    rank, world = D.world()
    local_bs = D.local_batch_size(cfg.batch_size, world)
    runner = D.wrap_ddp(model) if world > 1 else model
    n = len(dataset)
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        order = D.epoch_order(n, epoch, cfg.seed)
        if cfg.max_batches is not None:
            order = order[: cfg.max_batches * cfg.batch_size]
        order = D.shard_indices(n, epoch, cfg.seed, rank=rank, world_size=world, order=order)
        gen = D.augment_generator(cfg.seed, epoch, rank)
        loader = DataLoader(dataset, batch_size=local_bs, sampler=list(order), collate_fn=collate)
        model.train()
        tot, correct, seen = 0.0, 0, 0
        lr_now = opt.param_groups[0]["lr"]
        for batch in progress(loader, total=-(-len(order) // local_bs), desc=f"fine-tune epoch {epoch + 1}"):
            x01, y = to_device((batch.images, batch.labels), dev)
            if cfg.augment:
                x01 = random_resized_crop_flip(x01, gen)
            if transform is not None:
                x01 = transform(x01, y, model)
                model.train()
            with train_autocast(dev):  # bf16 mixed precision where config.train_precision says so
                logits = runner(model.xaikit.normalize(x01)).float()
            loss, c = _loss(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(y)
            correct += int(c)
            seen += len(y)
        sched.step()
        if world > 1:
            tot, correct, seen = D.all_reduce_sum([tot, float(correct), float(seen)])
        history.append({"epoch": epoch + 1, "lr": lr_now, "loss": tot / max(seen, 1),
                        "acc": 100.0 * correct / max(seen, 1), "time_s": time.perf_counter() - t0})
        if path is not None and rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_atomic({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "history": history, "config_key": train_key(cfg.key(), dev),
                         "num_classes": int(model.xaikit.num_classes)}, path)
        D.barrier()
        if on_epoch is not None:
            on_epoch(epoch + 1, model)
    model.eval()
    return history
