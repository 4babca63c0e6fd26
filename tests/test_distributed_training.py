"""Data-parallel training (issue 9): sharding helpers by hand, and 2 gloo processes on CPU training
to the same weights as 1 process on the same global batch (CA-Stream with DDP; interpretable
gradients, double backprop, with a manual gradient all-reduce)."""
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

import xaikit as xk
from xaikit.errors import ConfigError
from xaikit.training import distributed as D


# ------------------------------------------------------------------------------------ helpers
def test_shard_indices_disjoint_equal_cover_of_the_epoch_order():
    n, w = 11, 3
    shards = [D.shard_indices(n, epoch=2, seed=5, rank=r, world_size=w) for r in range(w)]
    order = D.epoch_order(n, 2, 5)
    assert sorted(order) == list(range(n))
    assert all(len(s) == 3 for s in shards)                    # 11 -> 9 used, 2 dropped (< w)
    flat = [i for s in shards for i in s]
    assert len(set(flat)) == 9 and set(flat) == set(order[:9])
    # rank r's k-th local batch of B/w = positions r::w of the global k-th batch of B
    B = 6
    for k in range(2):
        glob = order[k * B:(k + 1) * B][: len(order[:9]) - k * B]
        for r in range(w):
            assert shards[r][k * (B // w):(k + 1) * (B // w)] == glob[r::w]
    assert D.shard_indices(n, 2, 5, rank=0, world_size=1) == order      # one process: the order itself
    assert D.epoch_order(n, 3, 5) != order                              # reshuffled per epoch


def test_shard_errors_and_single_process_defaults():
    with pytest.raises(ConfigError, match="outside world size"):
        D.shard_indices(4, 0, 0, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="divisible"):
        D.local_batch_size(10, 4)
    assert D.local_batch_size(12, 4) == 3
    assert D.world() == (0, 1) and D.is_main()
    assert D.all_reduce_mean(2.5) == 2.5
    assert D.init_from_env() == (0, 1)       # no torchrun variables: nothing initialized


# ------------------------------------------------------------------------------- the data
class Spots(Dataset):
    """Class = which half holds a bright square (as in test_training_stream.py)."""

    def __init__(self, n=16, size=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            img = 0.2 * torch.rand(3, size, size, generator=g)
            k = size // 4
            y = int(torch.randint(0, size - k, (1,), generator=g))
            x = int(torch.randint(0, size // 2 - k, (1,), generator=g)) + (i % 2) * size // 2
            img[:, y:y + k, x:x + k] = 1.0
            self.items.append({"image": img, "label": i % 2, "boxes": torch.zeros(0, 4),
                               "box_labels": torch.zeros(0, dtype=torch.long), "name": f"spots/{i}"})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _stream():
    from xaikit.streams import CAStream

    torch.manual_seed(0)
    m = xk.models.load("resnet18", weights="random", num_classes=2)   # BatchNorm frozen (eval) in the stream
    return CAStream.wrap(m, start_stage=2, seed=0)


def _tiny():
    """No BatchNorm: data parallelism is then exact (ReLU modules: the guided rule applies)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, stride=2, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))


def _norm(z):
    return (z - 0.5) / 0.25


STREAM_KW = dict(epochs=2, batch_size=8, lr=0.05, lr_step=1, seed=3)
INTERP_KW = dict(lam=0.5, error="mse", epochs=2, lr=0.05, milestones=(1,), batch_size=8, warmup_epochs=1,
                 augment=True, seed=4, normalize=_norm)


def _worker(rank, world, initfile, out, ckdir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{initfile}", rank=rank, world_size=world)
    try:
        from xaikit.training import interpretable as ti
        from xaikit.training import stream as ts

        s = _stream()
        h_s = ts.train(s, Spots(), checkpoint_dir=f"{ckdir}/stream", **STREAM_KW)
        m = _tiny()
        h_i = ti.train_interpretable(m, Spots(n=12, size=16), checkpoint=f"{ckdir}/interp.pt", **INTERP_KW)
        torch.save({"stream": s.stream_state_dict(), "hist_s": h_s, "interp": m.state_dict(),
                    "hist_i": h_i["epochs"], "mean": D.all_reduce_mean(float(rank))}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.filterwarnings("ignore")
def test_two_gloo_ranks_train_the_one_process_weights(tmp_path):
    import torch.multiprocessing as mp

    from xaikit.training import interpretable as ti
    from xaikit.training import stream as ts

    s = _stream()
    h_s = ts.train(s, Spots(), **STREAM_KW)
    m = _tiny()
    h_i = ti.train_interpretable(m, Spots(n=12, size=16), **INTERP_KW)
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path), str(tmp_path / "ck")), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["mean"] == r1["mean"] == 0.5
    # CA-Stream under DDP: same stream weights as one process, on both ranks
    ref = s.stream_state_dict()
    moved = False
    for k, v in ref.items():
        for r in (r0, r1):
            assert torch.allclose(r["stream"][k], v, atol=1e-5, rtol=1e-4), k
        moved |= not torch.equal(v, _stream().stream_state_dict()[k])
    assert moved
    for a, b in zip(h_s, r0["hist_s"]):   # epoch metrics summed over ranks = the one-process ones
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["acc"] == b["acc"] and a["lr"] == b["lr"]
    # interpretable gradients (double backprop, augmentation, warm-up): same weights
    for k, v in m.state_dict().items():
        for r in (r0, r1):
            assert torch.allclose(r["interp"][k], v, atol=1e-6, rtol=1e-5), k
    for a, b in zip(h_i["epochs"], r0["hist_i"]):
        for key in ("train_loss", "train_ce", "train_reg", "train_acc", "lr"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-8), key
    # only rank 0 wrote checkpoints, and they hold the trained state
    ck = torch.load(tmp_path / "ck" / "interp.pt", weights_only=False)
    assert ck["epoch"] == 2 and all(torch.allclose(ck["model"][k], v, atol=1e-6) for k, v in m.state_dict().items())
    assert (tmp_path / "ck" / "stream" / "last.pt").exists()
    assert not list((tmp_path / "ck").rglob("*.tmp"))
