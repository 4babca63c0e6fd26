"""Train a CA-Stream on a frozen model (thesis §3.3-3.4).

Only the stream's parameters are optimized: SGD, momentum 0.9, weight decay 1e-4, learning rate
0.1 divided by 10 every 30 of 90 epochs (the torchvision ResNet recipe used in the thesis), all
configurable. Works on any dataset returning xaikit items (``image`` in [0, 1], normalized here
with ``model.xaikit.normalize``); integer labels train with cross-entropy, multi-hot labels
(Pascal-VOC-like) with binary cross-entropy. A checkpoint of the stream, optimizer, scheduler and
history is written after every epoch; ``resume=True`` continues from the last one and gives the
same result as an uninterrupted run (the data order of each epoch depends only on ``seed, epoch``).
The checkpoint holds tensors and plain values only and is read with ``weights_only=True`` (a file never
runs code); a damaged one is a DataError naming it.

Without augmentation every epoch shows the stream the same frozen features: they are computed once for the
whole training set (up to :data:`STREAM_INPUTS_BYTES`) and every step runs the stream and the classifier on
them, 2-3x faster at the default profile's scale; the trained stream is the same bit for bit (tested).

Under torchrun (an initialized ``torch.distributed`` group) the stream is wrapped in
DistributedDataParallel (only the trainable stream parameters are synchronized; the frozen
backbone stays in eval mode, so there are no BatchNorm statistics to share), ``batch_size`` is the
global batch, each rank reads its shard of the epoch's order (:mod:`.distributed`), epoch metrics
are summed over ranks, and only rank 0 writes the checkpoint.  W ranks reproduce the one-process
run up to float round-off when ``len(dataset)`` is a multiple of W.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..config import progress, save_atomic, train_autocast, train_key, training_threads
from ..core.devices import resolve_device
from ..data.base import collate
from ..errors import ConfigError, DataError
from ..models.zoo import plain_checkpoint, read_checkpoint
from . import distributed as D
from .augment import color_jitter, random_resized_crop_flip

CHECKPOINT = "last.pt"
#: ``last.pt`` holds tensors and plain values only, read with ``weights_only=True``: ``{"format", "epoch",
#: "stream" (state_dict), "optimizer", "scheduler" (state_dicts), "history" (list of dicts), "config" (dict),
#: "config_key" (str), "placement" (str)}``
CHECKPOINT_FORMAT = "xaikit.stream/2"


def _read(path: Path, device) -> dict:
    """A CA-Stream checkpoint, read without running code (``weights_only=True``); an unreadable one is a
    DataError naming the file (delete it to train again)."""
    ck = read_checkpoint(path, device, what="CA-Stream checkpoint", error=DataError,
                         fix="delete it to train the stream again (or pass another checkpoint_dir)")
    if not isinstance(ck, dict) or not {"stream", "history", "epoch"} <= set(ck):
        raise DataError(f"CA-Stream checkpoint {path} is not one xaikit.training.stream wrote (it holds "
                        f"{sorted(ck) if isinstance(ck, dict) else type(ck).__name__}); delete it to train again")
    return ck


@dataclass
class StreamTrainConfig:
    """Hyper-parameters of :func:`train` (defaults: thesis §3.4)."""

    epochs: int = 90
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_step: int = 30          # epochs between decays
    lr_gamma: float = 0.1
    seed: int = 0
    max_batches: int | None = None   # per epoch (quick runs); None = the whole dataset
    augment: bool = False      # the official recipe: RandomResizedCrop + flip + ColorJitter(0.4, 0.4, 0.4)

    def key(self) -> str:
        d = asdict(self)
        d.pop("epochs")  # more epochs may be asked when resuming
        if not d["augment"]:  # keys of runs without augmentation are those written before the option existed
            d.pop("augment")
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _loader(dataset: Dataset, order, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=list(order), collate_fn=collate,
                      num_workers=num_workers, drop_last=False)


#: bytes of backbone features :func:`train` may keep for a whole training set (512 MiB), to run every epoch's steps
#: on them: the frozen backbone's forward is 75-90 % of a step (ResNet-18 at 48 px, 1200 images: 2.9-3.8 of
#: 4.1 s an epoch); a set whose features exceed this is read through the backbone every epoch, as before
STREAM_INPUTS_BYTES = 1 << 29


def _stream_inputs(stream, dataset: Dataset, batch_size: int, num_workers: int, dev, normalize):
    """``(features per point, GAP logits, labels)`` of every training image, in index order, from one frozen
    backbone pass (under the training's autocast), or None where they would exceed
    :data:`STREAM_INPUTS_BYTES` or where the stream run on them does not give exactly the logits of its own
    forward (a head that does more than classify the pooled vector): then every epoch reads the images."""
    n = len(dataset)
    feats, logits, labels = None, [], []
    for batch in _loader(dataset, range(n), batch_size, num_workers):
        x = normalize(batch.images.to(dev))
        y = batch.labels.to(dev)
        with train_autocast(dev):
            f, lg = stream.stream_inputs(x)
        if feats is None:
            if sum(t[0].numel() * t.element_size() for t in f) * n > STREAM_INPUTS_BYTES:
                return None
            with torch.no_grad(), train_autocast(dev):  # the steps will use these: same logits, bit for bit
                same = torch.equal(_forward(stream, x, y), stream.logits_from(f, y, gap_logits=lg))
            if not same:
                return None
            feats = [[] for _ in f]
        for k, t in enumerate(f):
            feats[k].append(t)
        logits.append(lg)
        labels.append(y)
    return [torch.cat(c) for c in feats], torch.cat(logits), torch.cat(labels)


def _loss_and_correct(logits: torch.Tensor, labels: torch.Tensor):
    """Cross-entropy (int labels) or BCE (multi-hot); 'correct' = top-1 is a (the) true class."""
    if labels.dim() == 2:
        loss = F.binary_cross_entropy_with_logits(logits, labels.float())
        top = logits.argmax(1)
        correct = labels.gather(1, top[:, None]).squeeze(1) > 0
    else:
        loss = F.cross_entropy(logits, labels)
        correct = logits.argmax(1) == labels
    return loss, correct.sum().item()


def _forward(model, x, labels, runner=None):
    """``runner`` (a DDP wrapper of ``model``) runs the forward when given."""
    run = runner if runner is not None else model
    if getattr(model, "class_specific", False):
        return run(x, target=labels if labels.dim() == 1 else None)
    return run(x)


@training_threads()  # one intra-op thread: the trained weights do not depend on the core count
def train(stream, dataset: Dataset, epochs: int | None = None, *, batch_size: int = 256, lr: float = 0.1,
          momentum: float = 0.9, weight_decay: float = 1e-4, lr_step: int = 30, lr_gamma: float = 0.1,
          seed: int = 0, max_batches: int | None = None, checkpoint_dir: str | os.PathLike | None = None,
          resume: bool = True, val_dataset: Dataset | None = None, device=None, num_workers: int = 0,
          augment: bool = False, config: StreamTrainConfig | None = None) -> list[dict]:
    """Train ``stream`` (a :class:`~xaikit.streams.CAStream`) on ``dataset``; returns the history.

    History: one dict per epoch ``{"epoch", "lr", "loss", "acc"}`` (+ ``val_loss``, ``val_acc``
    with ``val_dataset``), accuracy in percent. ``epochs`` defaults to 90 (thesis). ``augment``: the official
    CA_Stream recipe's training transform (RandomResizedCrop, horizontal flip, ColorJitter 0.4), batched on
    the device (:mod:`xaikit.training.augment`), seeded per epoch.
    ``checkpoint_dir``: where ``last.pt`` is written after each epoch; with ``resume=True`` an
    existing one (same hyper-parameters) is continued. The backbone is never updated.
    """
    cfg = config or StreamTrainConfig(epochs=90 if epochs is None else int(epochs), batch_size=batch_size,
                                      lr=lr, momentum=momentum, weight_decay=weight_decay, lr_step=lr_step,
                                      lr_gamma=lr_gamma, seed=seed, max_batches=max_batches, augment=augment)
    if config is not None and epochs is not None:
        cfg.epochs = int(epochs)
    if not hasattr(stream, "stream_parameters"):
        raise ConfigError("train() expects a CA-Stream: build it with xk.streams.CAStream.wrap(model)")
    if len(dataset) == 0:
        raise DataError("the training dataset is empty")
    dev = resolve_device(device) if device is not None else next(iter(stream.parameters())).device
    stream.to(dev)
    params = stream.stream_parameters()
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    history: list[dict] = []
    start = 0
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    if ckpt_path is not None and resume and ckpt_path.exists():
        ck = _read(ckpt_path, dev)
        if ck.get("config_key") != train_key(cfg.key(), dev) or ck.get("placement") != stream.placement:
            raise ConfigError(f"checkpoint {ckpt_path} was written with other hyper-parameters or another "
                              "stream; use another checkpoint_dir or resume=False to start over")
        stream.load_stream_state_dict(ck["stream"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        history, start = list(ck["history"]), int(ck["epoch"])
    normalize = stream.xaikit.normalize
    n = len(dataset)
    rank, world_size = D.world()
    local_bs = D.local_batch_size(cfg.batch_size, world_size)
    runner = D.wrap_ddp(stream, broadcast_buffers=False) if world_size > 1 else None
    # without augmentation every epoch feeds the stream the same features: computed once, not once an epoch
    # (the steps' logits and gradients are those of the full forward: checked on the first batch); not for
    # quick runs capped by max_batches, which read fewer images than the whole set
    inputs = None
    if not cfg.augment and world_size == 1 and cfg.epochs - start >= 2 and cfg.max_batches is None:
        stream.train()
        inputs = _stream_inputs(stream, dataset, local_bs, num_workers, dev, normalize)
    for epoch in range(start, cfg.epochs):
        order = D.epoch_order(n, epoch, cfg.seed)
        if cfg.max_batches is not None:
            order = order[: cfg.max_batches * cfg.batch_size]
        order = D.shard_indices(n, epoch, cfg.seed, rank=rank, world_size=world_size, order=order)
        gen = D.augment_generator(cfg.seed, epoch, rank)
        stream.train()
        tot_loss, tot_correct, seen = 0.0, 0, 0
        lr_now = opt.param_groups[0]["lr"]
        if inputs is not None:
            feats_all, gap_all, labels_all = inputs
            batches = (torch.as_tensor(order[i:i + local_bs], device=dev) for i in range(0, len(order), local_bs))
        else:
            batches = _loader(dataset, order, local_bs, num_workers)
        for batch in progress(batches, total=-(-len(order) // local_bs), desc=f"CA-Stream epoch {epoch + 1}"):
            if inputs is not None:  # batch: the indices of the images
                y = labels_all[batch]
                with train_autocast(dev):
                    logits = stream.logits_from([f[batch] for f in feats_all], y, gap_logits=gap_all[batch]).float()
            else:
                x01 = batch.images.to(dev)
                if cfg.augment:
                    x01 = color_jitter(random_resized_crop_flip(x01, gen), gen)
                x = normalize(x01)
                y = batch.labels.to(dev)
                with train_autocast(dev):  # bf16 mixed precision where config.train_precision says so
                    logits = _forward(stream, x, y, runner).float()
            loss, correct = _loss_and_correct(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += loss.item() * len(y)
            tot_correct += correct
            seen += len(y)
        sched.step()
        if world_size > 1:
            tot_loss, tot_correct, seen = D.all_reduce_sum([tot_loss, float(tot_correct), float(seen)])
        rec = {"epoch": epoch + 1, "lr": lr_now, "loss": tot_loss / seen, "acc": 100.0 * tot_correct / seen}
        if val_dataset is not None:
            ev = evaluate(stream, val_dataset, batch_size=cfg.batch_size, num_workers=num_workers)
            rec.update(val_loss=ev["loss"], val_acc=ev["acc"])
        history.append(rec)
        if ckpt_path is not None and rank == 0:
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            save_atomic(plain_checkpoint({"format": CHECKPOINT_FORMAT, "epoch": epoch + 1,
                                          "stream": stream.stream_state_dict(), "optimizer": opt.state_dict(),
                                          "scheduler": sched.state_dict(), "history": history,
                                          "config": asdict(cfg), "config_key": train_key(cfg.key(), dev),
                                          "placement": str(stream.placement)}, "CA-Stream checkpoint"), ckpt_path)
        D.barrier()  # no rank runs ahead of the checkpoint
    stream.eval()
    return history


@torch.no_grad()
def evaluate(model, dataset: Dataset, batch_size: int = 256, num_workers: int = 0) -> dict:
    """Loss and top-1 accuracy (percent) of any xaikit model (GAP or CA-Stream) on a dataset."""
    dev = next(iter(model.parameters())).device
    was = model.training
    model.eval()
    tot_loss, tot_correct, seen = 0.0, 0, 0
    try:
        for batch in progress(_loader(dataset, range(len(dataset)), batch_size, num_workers),
                              total=-(-len(dataset) // batch_size), desc="evaluate"):
            x = model.xaikit.normalize(batch.images.to(dev))
            y = batch.labels.to(dev)
            logits = model(x)
            loss, correct = _loss_and_correct(logits, y)
            tot_loss += loss.item() * len(y)
            tot_correct += correct
            seen += len(y)
    finally:
        model.train(was)
    return {"loss": tot_loss / max(seen, 1), "acc": 100.0 * tot_correct / max(seen, 1), "n": seen}


def load_checkpoint(stream, checkpoint_dir: str | os.PathLike) -> list[dict]:
    """Load the stream weights of ``checkpoint_dir/last.pt`` into ``stream``; returns its history."""
    path = Path(checkpoint_dir) / CHECKPOINT
    if not path.exists():
        raise DataError(f"no CA-Stream checkpoint at {path}; train one with xaikit.training.stream.train(...)")
    ck = _read(path, next(iter(stream.parameters())).device)
    stream.load_stream_state_dict(ck["stream"])
    return list(ck["history"])
