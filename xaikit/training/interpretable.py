"""Interpretable-gradient training (thesis ch.4, Algorithm 3, eq. 4.1-4.8).

The classification loss L_C (mean softmax cross-entropy, eq. 4.1-4.2) is regularized by the error
between the standard input gradient dL_C/dx (kept in the graph, double backprop) and the
guided-backprop input gradient d_G L_C/dx (a detached "teacher"):

    L = L_C + lambda * L_R,      L_R = 1/n sum_i E(dL_C/dx_i, d_G L_C/dx_i)        (4.3, 4.4)

Error functions E over the p = C*H*W elements of a gradient image (:data:`ERRORS`):

- ``"mae"``:    1/p ||d - d'||_1                                               (4.5)
- ``"mse"``:    1/p ||d - d'||_2^2                                             (4.6)
- ``"cosine"``: -<d, d'> / (||d||_2 ||d'||_2)          in [-1, 1], -1 when aligned       (4.7)
- ``"hi"``:     -sum_i min(|d_i|/||d||_1, |d'_i|/||d'||_1)   in [-1, 0], -1 when |d| ∝ |d'|   (4.8)
- ``"hi_thesis"``: eq. 4.8 as printed, -sum_i min(|d_i|, |d'_i|) / (||d||_1 ||d'||_1).  Not
  scale-invariant (its value for d = d' is -1/||d||_1), so the default ``"hi"`` reads the
  denominator as normalising each histogram, the usual histogram intersection.

Gradients are taken w.r.t. the model's input (after ``model.xaikit.normalize``).  Algorithm 3 runs five
passes through the network per regularized step (guided forward+backward, forward, backward with
``create_graph``, backward of L) instead of two; here one forward serves the guided and the standard
backward (the ReLU-family activations switch rule between them, :class:`~xaikit.attributors.guided.RuleSwitch`),
which gives the same teacher, dL_C/dx and parameter gradients bit for bit in four passes; grouped convolutions
run with a double backward that keeps their groups in one call (:mod:`.grouped_conv`: PyTorch loops over them,
3.8x a plain step on MobileNet-V2 instead of ~2x); :func:`step_cost` measures the cost.  Training follows
thesis §4.3.1 / weiaicunzai's pytorch-cifar100: SGD (momentum 0.9, weight decay 5e-4), lr 0.1
divided by 5 at epochs 60, 120, 160, 200 epochs, batch 128, one warm-up epoch, random crop
(padding 4) + horizontal flip.  ``lam=0`` is standard training.

Under torchrun (an initialized ``torch.distributed`` group) ``batch_size`` is the global batch:
each rank reads its shard of the epoch's order (:mod:`.distributed`), draws the augmentation of the
global batch and keeps its own images, and computes L_C and L_R as its share of the *global* means
(sums divided by the global batch size, so dL_C/dx and the teacher carry the one-process 1/n).
Gradients are then averaged over ranks with one manual all-reduce after ``backward`` rather than
by DDP: DDP documents ``torch.autograd.grad`` as unsupported and its reducer expects one backward
per forward, while this step has two (create_graph, then L).  Only rank 0 writes the checkpoint;
epoch metrics are summed over ranks.  Without BatchNorm (or with it frozen) W ranks reproduce the
one-process run up to round-off; BatchNorm in train mode normalizes by local-batch statistics.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import progress, save_atomic, training_threads
from ..data.base import collate
from ..errors import ConfigError, DataError, InputError
from ..models.zoo import plain_checkpoint, read_checkpoint
from . import distributed as D
from ..attributors.guided import RuleSwitch, guided, preserve_batchnorm_stats, unguided_activations
from .grouped_conv import grouped_double_backward

__all__ = ["ERRORS", "gradient_error", "regularized_loss", "train_interpretable", "evaluate",
           "step_cost", "augment_crop_flip", "random_rotation"]

_EPS = 1e-12


# ---------------------------------------------------------------------------- error functions
def _mae(d, t):
    return (d - t).abs().mean(1)


def _mse(d, t):
    return (d - t).pow(2).mean(1)


def _l2(v):
    return (v * v).sum(1).add(_EPS * _EPS).sqrt()  # smooth at 0 (no NaN gradient for a dead net)


def _cosine(d, t):
    return -(d * t).sum(1) / (_l2(d) * _l2(t))


def _hi(d, t):
    a, b = d.abs(), t.abs()
    a = a / (a.sum(1, keepdim=True) + _EPS)
    b = b / (b.sum(1, keepdim=True) + _EPS)
    return -torch.minimum(a, b).sum(1)


def _hi_thesis(d, t):
    a, b = d.abs(), t.abs()
    return -torch.minimum(a, b).sum(1) / (a.sum(1) * b.sum(1) + _EPS)


#: name -> E(d, d') on flattened (B, p) gradients, returning (B,) errors (eq. 4.5-4.8)
ERRORS = {"mae": _mae, "mse": _mse, "cosine": _cosine, "hi": _hi, "hi_thesis": _hi_thesis}


def gradient_error(delta: torch.Tensor, teacher: torch.Tensor, error: str = "cosine") -> torch.Tensor:
    """Per-image error E(delta_i, teacher_i) -> (B,) for (B, ...) gradient images (eq. 4.5-4.8)."""
    if error not in ERRORS:
        raise ConfigError(f"error={error!r} is not known; use one of {sorted(ERRORS)}.")
    if delta.shape != teacher.shape or delta.dim() < 2:
        raise InputError(f"gradient shapes {tuple(delta.shape)} and {tuple(teacher.shape)} must be "
                         "equal and batched (B, ...).")
    return ERRORS[error](delta.flatten(1), teacher.flatten(1))


# ---------------------------------------------------------------------------- the loss
def _logits(logits: torch.Tensor) -> torch.Tensor:
    if logits.dim() != 2:
        raise InputError(f"the model returned {tuple(logits.shape)}; expected (B, C) logits.")
    return logits


def regularized_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: float,
                     error: str = "cosine", warn: bool = True, total: int | None = None):
    """Algorithm 3: ``(L, parts)`` with L = L_C + lam * L_R (eq. 4.4), differentiable w.r.t. the
    parameters (double backprop through dL_C/dx); the guided teacher is detached.  ``x`` is the
    model input (B,C,H,W), ``y`` (B,) class indices.  ``parts``: ``L_C``, ``L_R``, ``L`` (floats),
    ``grad`` (dL_C/dx, detached) and ``guided`` (the teacher; both None when ``lam == 0``, which is
    plain training: no input gradient is computed).  Running BatchNorm statistics move once, as in
    a plain step.  Activations the guided rule does not cover are warned about (GuidedWarning).
    ``total``: the means of eq. 4.2/4.3 are taken over ``total`` images of which ``x`` is a part
    (data-parallel shards): L_C, L_R and the gradients are this part's share of the global ones."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise InputError("x must be a (B,C,H,W) image batch (the model's normalized input).")
    y = torch.as_tensor(y, device=x.device).long().reshape(-1)
    if y.numel() != x.shape[0]:
        raise InputError(f"{y.numel()} labels for {x.shape[0]} images; pass one class index per image.")
    if error not in ERRORS:
        raise ConfigError(f"error={error!r} is not known; use one of {sorted(ERRORS)}.")
    lam = float(lam)
    if total is not None and int(total) < x.shape[0]:
        raise InputError(f"total={total} is smaller than the batch of {x.shape[0]} images it should contain.")
    ce = F.cross_entropy if total is None else (lambda lg, t: F.cross_entropy(lg, t, reduction="sum") / total)
    if lam == 0:
        logits = model(x.detach())
        l_c = ce(_logits(logits), y)
        return l_c, {"L_C": l_c.item(), "L_R": 0.0, "L": l_c.item(), "grad": None, "guided": None,
                     "logits": logits.detach()}
    # one forward serves both gradients: its activations backpropagate by the guided rule for the detached
    # teacher d_G L_C/dx, then by the standard rule, in the graph, for dL_C/dx (the same values as a forward
    # of its own for the teacher, whose BatchNorm batch statistics are those of this batch too)
    switch = RuleSwitch("guided")
    xi = x.detach().requires_grad_(True)
    # grouped convolutions (MobileNet's depthwise ones) with a batched double backward (.grouped_conv)
    with guided(model, functional=True, warn=warn, switch=switch), grouped_double_backward(model):
        logits = _logits(model(xi))
    l_c = ce(logits, y)                                                # eq. 4.1-4.2
    (teacher,) = torch.autograd.grad(l_c, xi, retain_graph=True)       # guided "teacher", detached
    switch.rule = "standard"
    (delta,) = torch.autograd.grad(l_c, xi, create_graph=True)         # standard grad, in graph
    err = gradient_error(delta, teacher, error)
    l_r = err.mean() if total is None else err.sum() / total           # eq. 4.3
    loss = l_c + lam * l_r                                             # eq. 4.4
    return loss, {"L_C": l_c.item(), "L_R": l_r.item(), "L": loss.item(), "grad": delta.detach(),
                  "guided": teacher, "logits": logits.detach()}


# ---------------------------------------------------------------------------- augmentation
def _mine(draws, positions, batch: int, what: str) -> tuple:
    """This rank's share of draws made for a whole global batch (``positions`` of each), one per image."""
    if positions is not None:
        draws = tuple(d[positions] for d in draws)
    if len(draws[0]) != batch:
        raise InputError(f"{len(draws[0])} {what} draws for {batch} images; positions must pick one per image.")
    return tuple(draws)


def random_rotation(x: torch.Tensor, generator: torch.Generator, degrees: float, positions=None,
                    total: int | None = None) -> torch.Tensor:
    """Batched ``torchvision.transforms.RandomRotation(degrees)``: each image turned about its centre by an
    angle uniform in [-degrees, degrees], nearest-neighbour sampling, zero fill (torchvision's defaults).
    ``positions``/``total`` as :func:`augment_crop_flip`."""
    n = x.shape[0] if total is None else int(total)
    ang, = _mine(((torch.rand(n, generator=generator) * 2 - 1) * float(degrees),), positions, x.shape[0], "rotation")
    t = torch.deg2rad(ang).to(x.device, x.dtype)
    cos, sin = torch.cos(t), torch.sin(t)
    zero = torch.zeros_like(t)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)  # (B,2,3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def augment_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4,
                      positions=None, total: int | None = None) -> torch.Tensor:
    """Batched random crop (zero padding ``padding``) and horizontal flip, one draw per image.
    ``total``/``positions``: draw for a batch of ``total`` images and apply the draws at
    ``positions`` (a slice or index list) to ``x`` (one rank's part of a global batch)."""
    B, C, H, W = x.shape
    dev = x.device
    xp = F.pad(x, (padding,) * 4)
    n = B if total is None else int(total)
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    oy, ox, flip = (d.to(dev) for d in _mine((oy, ox, flip), positions, B, "augmentation"))
    rows = oy[:, None] + torch.arange(H, device=dev)[None]                       # (B,H)
    cols = ox[:, None] + torch.arange(W, device=dev)[None]                       # (B,W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    b = torch.arange(B, device=dev)[:, None, None]
    out = xp.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]          # (B,H,W,C)
    return out.permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------------- loop
#: the checkpoint holds tensors and plain values only (read with ``weights_only=True``): ``{"format",
#: "model", "optimizer", "scheduler" (state_dicts; MultiStepLR's milestone Counter stored as a dict),
#: "history" (dict of plain values), "epoch", "step" (int), "rng" (uint8 tensor), "config_hash" (str)}``
CHECKPOINT_FORMAT = "xaikit.interpretable/2"


def _read_checkpoint(path: Path, device) -> dict:
    """The loop's checkpoint, read without running code; an unreadable one is a DataError naming it."""

    state = read_checkpoint(path, device, what="interpretable-training checkpoint", error=DataError,
                            fix="delete it to train again (or pass another checkpoint path)")
    need = {"model", "optimizer", "scheduler", "history", "epoch", "step", "rng"}
    if not isinstance(state, dict) or not need <= set(state):
        raise DataError(f"interpretable-training checkpoint {path} is not one train_interpretable wrote (it lacks "
                        f"{sorted(need - set(state)) if isinstance(state, dict) else 'everything'}); delete it "
                        "to train again")
    return state


def _scheduler_state(sd: dict) -> dict:
    """MultiStepLR counts its milestones in a Counter (stored as a plain dict): give it one back."""
    sd = dict(sd)
    if isinstance(sd.get("milestones"), dict):
        sd["milestones"] = Counter(sd["milestones"])
    return sd


def _normalizer(model, normalize):
    if normalize is not None:
        return normalize
    info = getattr(model, "xaikit", None)
    return info.normalize if info is not None else (lambda z: z)


def _loader(dataset, batch_size, shuffle, seed, order=None):

    if order is not None:  # an explicit (sharded) order
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=list(order),
                                           collate_fn=collate, num_workers=0, drop_last=False)
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g,
                                       collate_fn=collate, num_workers=0, drop_last=False)


def _shuffled_order(n, seed, batch_size, total):
    """The order the one-process loop reads: ``_loader(..., shuffle=True, seed)`` iterated through
    :func:`progress` (tqdm.auto takes an iterator of its own first, which draws from the shared
    generator, so the same code path is replayed on indices)."""
    dl = torch.utils.data.DataLoader(range(n), batch_size=batch_size, shuffle=True,
                                     generator=torch.Generator().manual_seed(seed), num_workers=0)
    from tqdm.auto import tqdm  # what progress() wraps the loader in

    out = []
    for i, b in enumerate(tqdm(dl, total=total, disable=True)):
        if i >= total:
            break
        out += b.tolist()
    return out


def _labels(batch):
    if batch.labels.dim() != 1:
        raise InputError("interpretable-gradient training needs single-label datasets (int labels); "
                         "this dataset gives multi-hot labels.")
    return batch.labels


@torch.no_grad()
def evaluate(model: nn.Module, dataset, batch_size: int = 256, normalize=None, device=None) -> dict:
    """Top-1 accuracy (percent) and mean cross-entropy of ``model`` on an xaikit dataset."""
    dev = device or next(model.parameters()).device
    norm = _normalizer(model, normalize)
    was = model.training
    model.eval()
    n = correct = 0
    loss = 0.0
    try:
        for batch in _loader(dataset, batch_size, False, 0):
            x, y = norm(batch.images.to(dev)), _labels(batch).to(dev)
            out = model(x)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            n += len(y)
    finally:
        model.train(was)
    return {"acc": 100.0 * correct / max(n, 1), "loss": loss / max(n, 1), "n": n}


@training_threads()  # one intra-op thread: the trained weights do not depend on the core count
def train_interpretable(model: nn.Module, train_dataset, test_dataset=None, lam: float = 0.0,
                        error: str = "cosine", epochs: int = 200, lr: float = 0.1,
                        milestones=(60, 120, 160), gamma: float = 0.2, batch_size: int = 128,
                        momentum: float = 0.9, weight_decay: float = 5e-4, warmup_epochs: int = 1,
                        augment: bool = True, seed: int = 0, normalize=None, device=None,
                        checkpoint=None, eval_batch_size: int = 256, max_steps: int | None = None,
                        rotate: float = 0.0) -> dict:
    """Train ``model`` with L = L_C + lam * L_R (Algorithm 3) on an xaikit dataset; ``lam=0`` is
    standard training.  Defaults are thesis §4.3.1 (see module docstring); ``gamma=0.2`` is "÷5".
    Images (in [0,1]) are normalized with ``normalize`` or ``model.xaikit.normalize`` when present.
    Deterministic given ``seed`` (shuffling and augmentation draw from generators seeded by
    ``seed`` and the epoch).  ``checkpoint``: a path written after every epoch; when it exists
    with the same configuration, training resumes from it.  ``max_steps`` caps steps per epoch
    (quick runs).  ``rotate``: degrees of a random rotation after the crop and flip (the thesis' recipe,
    pytorch-cifar100: RandomRotation(15); default 0, off).  Returns the history: ``{"config", "unguided", "epochs": [per-epoch dict]}``
    with lr, train L/L_C/L_R/accuracy, test accuracy/loss and wall time per epoch.  The checkpoint holds
    tensors and plain values only and is read with ``weights_only=True``; a damaged one is a DataError
    naming the file.  Always fp32, whatever :func:`xaikit.config.train_precision` says for the other training
    loops: the input gradient is the quantity L_R trains, and MobileNet-V2's double backward is no faster in
    bf16 on a CPU (0.92x at batch 64)."""
    if error not in ERRORS:
        raise ConfigError(f"error={error!r} is not known; use one of {sorted(ERRORS)}.")
    if epochs < 1 or batch_size < 1:
        raise ConfigError("epochs and batch_size must be positive integers.")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev)
    norm = _normalizer(model, normalize)
    config = dict(lam=float(lam), error=error, epochs=int(epochs), lr=float(lr),
                  milestones=[int(m) for m in milestones], gamma=float(gamma), batch_size=int(batch_size),
                  momentum=float(momentum), weight_decay=float(weight_decay),
                  warmup_epochs=int(warmup_epochs), augment=bool(augment), seed=int(seed),
                  max_steps=max_steps, n_train=len(train_dataset))
    if rotate:  # pytorch-cifar100's RandomRotation(15); absent when off, so earlier checkpoints keep their key
        config["rotate"] = float(rotate)
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=gamma)
    steps_per_epoch = -(-len(train_dataset) // batch_size)
    if max_steps is not None:
        steps_per_epoch = min(steps_per_epoch, int(max_steps))
    warm_steps = warmup_epochs * steps_per_epoch
    history = {"config": config, "unguided": unguided_activations(model) if lam else [], "epochs": []}
    start, step = 0, 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    resumable = {k: v for k, v in config.items() if k != "epochs"}  # a run may be extended
    cfg_hash = hashlib.sha1(json.dumps(resumable, sort_keys=True).encode()).hexdigest()[:12]
    if ckpt is not None and ckpt.exists():
        state = _read_checkpoint(ckpt, dev)
        if state.get("config_hash") != cfg_hash:
            raise ConfigError(f"checkpoint {ckpt} was written by a different configuration; "
                              "delete it or pass another checkpoint path.")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(_scheduler_state(state["scheduler"]))
        history, start, step = state["history"], int(state["epoch"]), int(state["step"])
        history["config"] = config
        torch.set_rng_state(state["rng"].cpu())

    rank, world_size = D.world()
    local_bs = D.local_batch_size(batch_size, world_size)
    for epoch in range(start, epochs):
        model.train()
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        if world_size > 1:  # this rank's share of the one-process order, in local batches of B/W
            order = _shuffled_order(len(train_dataset), seed * 100003 + epoch, batch_size, steps_per_epoch)
            order = D.shard_indices(len(order), epoch, seed, rank=rank, world_size=world_size, order=order)
            loader = _loader(train_dataset, local_bs, False, 0, order=order)
        else:
            loader = _loader(train_dataset, batch_size, True, seed * 100003 + epoch)
        tot = {"L": 0.0, "L_C": 0.0, "L_R": 0.0, "correct": 0, "n": 0}
        bar = progress(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs} λ={lam:g}")
        for i, batch in enumerate(bar):
            if i >= steps_per_epoch:
                break
            if step < warm_steps:  # linear warm-up (pytorch-cifar100's WarmUpLR)
                for gparam in opt.param_groups:
                    gparam["lr"] = lr * (step + 1) / warm_steps
            x01 = batch.images.to(dev)
            n = len(x01)
            total = n * world_size if world_size > 1 else None   # the global batch this part belongs to
            if augment:
                x01 = augment_crop_flip(x01, gen, positions=slice(rank, None, world_size), total=total)
            if rotate:
                x01 = random_rotation(x01, gen, rotate, positions=slice(rank, None, world_size), total=total)
            x, y = norm(x01), _labels(batch).to(dev)
            opt.zero_grad(set_to_none=True)
            loss, parts = regularized_loss(model, x, y, lam, error, total=total)
            loss.backward()
            if world_size > 1:
                D.all_reduce_grads(model.parameters(), average=False)  # shares of the global mean add up
            opt.step()
            step += 1
            for k in ("L", "L_C", "L_R"):
                tot[k] += parts[k] * (total or n)
            tot["correct"] += (parts["logits"].argmax(1) == y).sum().item()
            tot["n"] += n
        if world_size > 1:
            s_ = D.all_reduce_sum([tot["L"], tot["L_C"], tot["L_R"], float(tot["correct"]), float(tot["n"])])
            tot = dict(zip(("L", "L_C", "L_R", "correct", "n"), s_))
        lr_now = opt.param_groups[0]["lr"]
        sched.step()  # milestones are absolute epochs (warm-up overrides lr step by step)
        row = {"epoch": epoch + 1, "lr": lr_now, "train_loss": tot["L"] / tot["n"],
               "train_ce": tot["L_C"] / tot["n"], "train_reg": tot["L_R"] / tot["n"],
               "train_acc": 100.0 * tot["correct"] / tot["n"]}
        if test_dataset is not None:
            ev = evaluate(model, test_dataset, eval_batch_size, norm, dev)
            row.update(test_acc=ev["acc"], test_loss=ev["loss"], test_n=ev["n"])
        row["time_s"] = time.perf_counter() - t0
        history["epochs"].append(row)
        if ckpt is not None and rank == 0:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            save_atomic(plain_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                                          "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                          "history": history, "epoch": epoch + 1, "step": step,
                                          "rng": torch.get_rng_state(), "config_hash": cfg_hash},
                                         "interpretable-training checkpoint"), ckpt)
        D.barrier()
    model.eval()
    return history


# ---------------------------------------------------------------------------- cost
def step_cost(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: float = 1.0,
              error: str = "cosine", repeats: int = 3) -> dict:
    """Wall time of one plain training step (forward + backward of L_C) vs one regularized step
    (Algorithm 3 + backward of L), median of ``repeats`` after one warm-up each.  No parameter is
    updated; gradients and BatchNorm statistics are restored.  The thesis counts 2 vs 5 passes."""
    if lam == 0:
        raise ConfigError("step_cost compares against a regularized step: pass lam != 0.")
    was = model.training
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [None if p.grad is None else p.grad.clone() for p in params]

    def run(lmb):
        for p in params:
            p.grad = None
        if x.is_cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        loss, _ = regularized_loss(model, x, y, lmb, error, warn=False)
        loss.backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    try:
        with preserve_batchnorm_stats(model):
            out = {}
            for key, lmb in (("plain_s", 0.0), ("regularized_s", lam)):
                run(lmb)
                out[key] = sorted(run(lmb) for _ in range(max(1, repeats)))[max(1, repeats) // 2]
    finally:
        for p, g in zip(params, saved):
            p.grad = g
        model.train(was)
    out.update(ratio=out["regularized_s"] / out["plain_s"], passes_plain=2, passes_regularized=5,
               batch_size=int(x.shape[0]))
    return out
