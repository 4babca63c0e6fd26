"""Data-parallel training helpers (torchrun / ``torch.distributed``; NCCL on GPU, gloo on CPU).

Both training loops (:mod:`.stream`, :mod:`.interpretable`) use these when a process group is
initialized; without one everything reduces to the single-process path (rank 0 of 1).

Sharding is DistributedSampler-like but built so that ``W`` ranks reproduce a one-process run on
the same *global* batch: the epoch's global order (a permutation seeded by ``seed`` and ``epoch``)
is cut to a multiple of ``W`` (at most ``W-1`` images dropped, none when ``W == 1``) and rank ``r``
takes positions ``r, r+W, r+2W, ...``.  Read in local batches of ``B/W``, rank ``r``'s ``k``-th batch
is exactly positions ``r::W`` of the one-process run's ``k``-th batch of ``B``, and every rank takes
the same number of steps.  With equal local batch sizes, the average of the ranks' mean losses is
the global mean loss, so averaging gradients (DDP) gives the one-process gradient up to round-off.

    torchrun --nproc_per_node=4 my_script.py     # my_script calls init_from_env() first
"""
from __future__ import annotations

import os
from typing import NamedTuple, Sequence

import torch

from ..errors import ConfigError

__all__ = ["init_from_env", "is_initialized", "is_main", "world", "shard_indices", "epoch_order",
           "local_batch_size", "all_reduce_mean", "all_reduce_sum", "barrier", "all_reduce_grads"]


class World(NamedTuple):
    rank: int
    size: int


def is_initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init_from_env(backend: str | None = None) -> World:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...).

    Backend: NCCL when CUDA is available, gloo otherwise (or ``backend``).  On GPU, each process
    uses ``cuda:LOCAL_RANK``.  Without torchrun variables (``WORLD_SIZE`` unset or 1) nothing is
    initialized and ``(0, 1)`` is returned; an already initialized group is kept."""
    import torch.distributed as dist

    if is_initialized():
        return world()
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(0, 1)
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run one process")
    for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise ConfigError(f"WORLD_SIZE={size} but {var} is not set; launch with torchrun "
                              "(torchrun --nproc_per_node=N script.py) which sets them")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return world()


def world() -> World:
    """``(rank, size)`` of the initialized process group; ``(0, 1)`` without one."""
    import torch.distributed as dist

    if is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World(0, 1)


def is_main() -> bool:
    """True on rank 0 (the only rank that writes checkpoints, logs and files)."""
    return world().rank == 0


def epoch_order(n: int, epoch: int, seed: int) -> list[int]:
    """The global data order of one epoch: ``randperm(n)`` seeded by ``seed * 100003 + epoch``."""
    g = torch.Generator().manual_seed(int(seed) * 100003 + int(epoch))
    return torch.randperm(int(n), generator=g).tolist()


def augment_generator(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of one rank's augmentation draws in one epoch (seeded by seed, epoch and rank), so a
    seed gives the same crops on every device."""
    return torch.Generator().manual_seed(int(seed) * 100003 + int(epoch) * 1009 + int(rank))


def shard_indices(n: int, epoch: int, seed: int, *, rank: int | None = None, world_size: int | None = None,
                  order: Sequence[int] | None = None) -> list[int]:
    """This rank's indices for ``epoch``, in the order to read them: positions ``rank::world_size``
    of the global order (``order``, default :func:`epoch_order`) cut to a multiple of ``world_size``.
    Disjoint across ranks, equal lengths, a function of ``(n, epoch, seed)`` only."""
    r, w = world() if rank is None and world_size is None else (rank or 0, world_size or 1)
    if w < 1 or not 0 <= r < w:
        raise ConfigError(f"rank {r} is outside world size {w}")
    order = list(order) if order is not None else epoch_order(n, epoch, seed)
    if w == 1:
        return order
    if len(order) < w:
        raise ConfigError(f"{len(order)} training images cannot be split over {w} processes; "
                          "use fewer processes or more images")
    order = order[: len(order) - len(order) % w]
    return order[r::w]


def local_batch_size(batch_size: int, world_size: int | None = None) -> int:
    """Per-rank batch of a global ``batch_size`` (must be divisible by the world size)."""
    w = world().size if world_size is None else int(world_size)
    if batch_size % w:
        raise ConfigError(f"batch_size={batch_size} is the global batch and must be divisible by the "
                          f"{w} processes; use a multiple of {w}")
    return batch_size // w


def all_reduce_sum(x):
    """Sum of ``x`` (float or tensor) over ranks; ``x`` itself without a process group."""
    if not is_initialized():
        return x
    import torch.distributed as dist

    t = torch.as_tensor(x, dtype=torch.float64).clone()
    dev = _comm_device()
    t = t.to(dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    if isinstance(x, torch.Tensor):
        return t.to(x.device, x.dtype)
    return t.item() if t.dim() == 0 else t.cpu().tolist()


def all_reduce_mean(x):
    """Mean of ``x`` (float or tensor) over ranks; ``x`` itself without a process group."""
    if not is_initialized():
        return x
    s = all_reduce_sum(x)
    w = world().size
    if isinstance(s, list):
        return [v / w for v in s]
    return s / w


def all_reduce_grads(params, average: bool = True) -> None:
    """Average (or, ``average=False``, sum) ``p.grad`` over ranks in place with one flat
    all-reduce: the manual equivalent of DDP's gradient averaging, for steps DDP does not cover."""
    if not is_initialized():
        return
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    if average:
        flat /= world().size
    i = 0
    for g in grads:
        g.copy_(flat[i:i + g.numel()].view_as(g))
        i += g.numel()


def barrier() -> None:
    if is_initialized():
        import torch.distributed as dist

        dist.barrier()


def _comm_device():
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def wrap_ddp(module: torch.nn.Module, **kw):
    """``DistributedDataParallel(module)`` when a group is initialized (device ids on GPU), else
    ``module``.  Only parameters with ``requires_grad`` are synchronized (frozen backbones are not)."""
    if not is_initialized():
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    dev = next(module.parameters()).device
    if dev.type == "cuda":
        kw.setdefault("device_ids", [dev.index])
    return DDP(module, **kw)
