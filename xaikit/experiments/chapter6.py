"""Group-CAM (Zhang et al. 2021): every table and figure of the paper, as functions of the notebook's
parameters.

- Table 1: insertion (blurred start), deletion (black) and over-all = insertion - deletion AUC (§4.3);
- Table 2: ablation over the number of groups G (θ = 70); Figure 5: sweep of the threshold θ (G = 32);
- Table 3: running time per image; Table 4: pointing game, per category then mean (§4.4);
- Figures 2-4: visual comparison, class-discriminative maps (two classes of one image), curves;
- §5 / Figure 7: fine-tuning with Group-CAM-masked inputs (``finetune``).

``ci``/``default`` profiles: the bundled EfficientNet-Lite0 on the bundled photos and a small CNN
trained on synthetic data (exact boxes for the pointing game); ``full``: VGG19 / ResNet-50 on ImageNet
(and COCO for the pointing game). Per-image results are cached in a :class:`ResultStore`.
"""
from __future__ import annotations

import copy
import hashlib
import time
import weakref
from typing import Mapping, Sequence

import pandas as pd
import torch

from ..config import cache_dir, progress, seed_everything
from ..core.devices import back, model_device, on_model, synchronize, to_device
from ..core.targets import logits_of, predict, resolve_targets
from .chapter1 import count_passes
from .common import EvalSet, chunk, compare, label, means
from .grid import evaluate
from .store import ResultStore, config_hash

METHODS = ["gradcam", "gradcampp", "rise", "scorecam", "groupcam"]
#: which column of the paper each of our models stands beside
PAPER_MODEL = {"tf_efficientnet_lite0": "vgg19", "resnet18_cifar": "vgg19", "mobilenetv2_cifar": "vgg19",
               "vgg19": "vgg19", "torchvision:vgg19": "vgg19", "resnet50": "resnet50",
               "torchvision:resnet50": "resnet50"}
TIME_MODEL = {k: "resnet50" for k in PAPER_MODEL}
POINTING_MODEL = {k: "resnet50" for k in PAPER_MODEL}


def method_options(cfg: Mapping) -> dict:
    """Per-method options from the profile (RISE masks, Score-CAM / Group-CAM chunk sizes)."""
    c = chunk(cfg)
    return {"rise": {"n_masks": int(cfg.get("rise_masks", 4000)), **c},
            "scorecam": dict(c), "ablationcam": dict(c), "groupcam": dict(c)}


def methods(names: Sequence[str], cfg: Mapping) -> dict:
    """``{name: options}`` for the methods this build ships (others are left out, not faked)."""
    from .. import attributors

    known = set(attributors.available())
    mo = method_options(cfg)
    return {m: dict(mo.get(m, {})) for m in names if m in known}


def _map_cache(es: EvalSet):
    """One map cache per eval set (keyed by its images, labels and weights): every table and figure
    of the chapter explains an image with a method once (Figures 2 and 4 read Table 1's maps,
    Table 2's G = 32 row and Figure 5's θ = 70 point read Table 1's Group-CAM maps)."""
    from .chapter2 import _eval_key
    from .store import MapCache

    return MapCache(_eval_key({}, es), root=cache_dir() / "maps" / "06_group_cam")


def run(cfg: Mapping, es: EvalSet, meths: Mapping, metrics: Sequence[str], tag: str,
        metric_options: Mapping | None = None) -> pd.DataFrame:
    """Per-image results of ``meths`` x ``metrics`` on an eval set (computed once, then read back)."""
    key = config_hash(tag, cfg.get("profile"), es.key, es.dataset, list(es.data.names), int(cfg.get("seed", 0)),
                      dict(meths), list(metrics), metric_options or {},
                      {k: cfg.get(k) for k in ("synthetic_size", "synthetic_classes", "train_epochs",
                                              "train_images", "insertion_steps")})
    st = ResultStore(key, root=cache_dir() / "results" / "06_group_cam",
                     meta=dict(tag=tag, model=es.key, dataset=es.dataset, methods=list(meths)))
    return evaluate(es.model, es.data, [(m, dict(o)) for m, o in meths.items()], metrics,
                    batch_size=int(cfg.get("batch_size", 8)), store=st, model_name=es.name,
                    dataset_name=es.dataset, metric_options=metric_options, target="label",
                    map_cache=_map_cache(es))


def _io_options(cfg) -> dict:
    steps = int(cfg.get("insertion_steps", 224))
    return {"insertion": {"steps": steps}, "deletion": {"steps": steps}}


def _with_overall(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds ``overall = I - D`` per image (Group-CAM §4.3)."""
    w = frame[frame.metric.isin(["I", "D"])].pivot_table(index=["image", "method", "model", "dataset"],
                                                         columns="metric", values="value").reset_index()
    w["value"] = w["I"] - w["D"]
    w["metric"] = "overall"
    return pd.concat([frame, w[["image", "method", "model", "dataset", "metric", "value"]]], ignore_index=True)


def _rename(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={"I": "insertion", "D": "deletion"})


# ---------------------------------------------------------------------------------------- tables
def insertion_deletion_table(cfg, sets: Sequence[EvalSet], names: Sequence[str]) -> pd.DataFrame:
    """Table 1: insertion (↑), deletion (↓), over-all (↑) AUC in percent per model and method."""
    frames = [_with_overall(run(cfg, es, methods(names, cfg), ["insertion", "deletion"], "io",
                                _io_options(cfg))) for es in sets]
    wide = _rename(means(pd.concat(frames), ["I", "D", "overall"]))
    return compare(wide, "groupcam:1", ["insertion", "deletion", "overall"], PAPER_MODEL, order=names)


def _groupcam_io(cfg, es: EvalSet, **opts) -> pd.Series:
    o = dict(method_options(cfg)["groupcam"], **opts)
    tag = "gc-" + "-".join(f"{k}={v}" for k, v in sorted(opts.items()))
    f = _with_overall(run(cfg, es, {"groupcam": o}, ["insertion", "deletion"], tag, _io_options(cfg)))
    return _rename(means(f, ["I", "D", "overall"])).iloc[0]


def groups_table(cfg, es: EvalSet, groups: Sequence[int], theta: float = 70.0) -> pd.DataFrame:
    """Table 2: Group-CAM insertion / deletion / over-all for each number of groups G (θ = 70).

    G larger than the layer's channel count K is left out (a group needs at least one channel)."""
    K = _channels(es)
    rows = []
    for G in groups:
        if G > K:
            continue
        r = _groupcam_io(cfg, es, groups=int(G), theta=float(theta))
        rows.append({"model": es.name, "G": int(G), **{m: r[m] for m in ("insertion", "deletion", "overall")}})
    out = pd.DataFrame(rows)
    return out.merge(_published_groups(), on="G", how="left", suffixes=(" reproduced", " published")).round(2)


def _channels(es: EvalSet) -> int:
    """Channels K of the model's default CAM layer."""
    return _channels_of(es.model, es.data.images[:1])


def _published_groups() -> pd.DataFrame:
    from .. import published as P

    t = P.table("groupcam:2")
    w = t.pivot_table(index="groups", columns="metric", values="value", aggfunc="first").reset_index()
    w.columns.name = None
    return w.rename(columns={"groups": "G"})[["G", "insertion", "deletion", "overall"]]


def theta_table(cfg, es: EvalSet, thetas: Sequence[float], groups: int = 32) -> pd.DataFrame:
    """Figure 5's data: insertion / deletion / over-all for each threshold θ (G = 32, or K if smaller)."""
    G = min(int(groups), _channels(es))
    rows = []
    for th in thetas:
        r = _groupcam_io(cfg, es, groups=G, theta=float(th))
        rows.append({"model": es.name, "theta": float(th), "G": G,
                     **{m: r[m] for m in ("insertion", "deletion", "overall")}})
    return pd.DataFrame(rows).round(2)


def time_table(cfg, es: EvalSet, names: Sequence[str], n: int | None = None, repeats: int = 1) -> pd.DataFrame:
    """Table 3: wall-clock seconds per image (one image at a time, after one warm-up call), next to
    the paper's (RTX 2080Ti) numbers. Times are machine-specific: compare the ranking, not the values."""
    from .. import attributors

    n = min(int(n or cfg.get("time_images", 2)), len(es.data))
    x = on_model(es.model, es.model.xaikit.normalize(es.data.images[:n]))  # timed calls start on the device
    t = resolve_targets(es.model, x, es.data.labels[:n], "label")
    rows = []
    for m, o in methods(names, cfg).items():
        cam = attributors.create(m, es.model, **o)
        with count_passes(es.model) as passes:  # warm-up (RISE draws its masks, allocator warms)
            cam(x[:1], t[:1])
        ts = []
        for _ in range(int(repeats)):
            for i in range(n):
                synchronize(x.device)
                t0 = time.perf_counter()
                cam(x[i:i + 1], t[i:i + 1])
                synchronize(x.device)  # CUDA runs asynchronously: time the work, not its launch
                ts.append(time.perf_counter() - t0)
        rows.append({"model": es.name, "method": m, "time_s": sum(ts) / len(ts),
                     "passes": int(passes["forward"] + passes["backward"])})
    df = pd.DataFrame(rows)
    out = compare(df, "groupcam:3", ["time_s"], TIME_MODEL, order=names, digits=4)
    # forward + backward passes of the network per image: the machine-independent cost behind the times
    return out.merge(df.assign(method=df.method.map(label))[["model", "method", "passes"]],
                     on=["model", "method"], how="left")


def pointing_table(cfg, es: EvalSet, names: Sequence[str], tolerance: float | None = None) -> pd.DataFrame:
    """Table 4: pointing-game accuracy (percent) per category and its mean over categories (§4.4).

    A hit: the maximum of the map lies within ``tolerance`` pixels of a box of the target class
    (15 px at 224, scaled with the image size by default)."""
    from .. import attributors
    from ..metrics.localization import pointing_game

    H = es.data.images.shape[-1]
    tol = float(tolerance if tolerance is not None else 15.0 * H / 224)
    x = on_model(es.model, es.model.xaikit.normalize(es.data.images))
    t = resolve_targets(es.model, x, es.data.labels, "label")
    bs = int(cfg.get("batch_size", 8))
    per, means_ = {}, {}
    for m, o in methods(names, cfg).items():
        cam = attributors.create(m, es.model, **o)
        sal = torch.cat([cam(x[i:i + bs], t[i:i + bs]).detach() for i in range(0, len(x), bs)])
        r = pointing_game(sal, es.data.boxes, t, box_labels=es.data.box_labels, tolerance=tol)
        per[label(m)] = r["per_category"]
        means_[m] = r["SP"]
    inf = es.model.xaikit
    cats = sorted({c for d in per.values() for c in d})
    table = pd.DataFrame({meth: [d.get(c, float("nan")) for c in cats] for meth, d in per.items()},
                         index=[inf.class_name(c) for c in cats])
    table.index.name = "category"
    mean = compare(pd.DataFrame([{"model": es.name, "method": m, "SP": v} for m, v in means_.items()]),
                   "groupcam:4", ["SP"], POINTING_MODEL, order=names)
    return table.round(1), mean


# --------------------------------------------------------------------------------------- figures
_MAPS: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def maps_for(es: EvalSet, meths: Mapping, images01: torch.Tensor, target) -> dict:
    """Maps of every method for any images and targets (Figure 3's second classes), keyed by label,
    memoized per (model, method, options, images, targets) within the kernel."""
    from .. import attributors

    x = es.model.xaikit.normalize(images01)
    tgt = None if target is None else tuple(torch.as_tensor(target).reshape(-1).tolist())
    key_imgs = hashlib.sha1(images01.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    memo = _MAPS.setdefault(es.model, {})  # dies with the model: no stale maps for a new one
    out = {}
    for m, o in meths.items():
        key = (m, repr(sorted(o.items())), key_imgs, tgt)
        if key not in memo:
            memo[key] = attributors.create(m, es.model, **o)(x, target).detach()
        out[label(m)] = memo[key]
    return out


def table_maps(cfg, es: EvalSet, meths: Mapping, n: int) -> dict:
    """``{label: (n,H,W)}`` maps of the first ``n`` images for the ground-truth targets, read from the
    chapter's map cache (the tables computed them: batches as in :func:`run`)."""
    _, maps = evaluate(es.model, es.data, [(m, dict(o)) for m, o in meths.items()], [],
                       batch_size=int(cfg.get("batch_size", 8)), model_name=es.name, dataset_name=es.dataset,
                       target="label", map_cache=_map_cache(es), keep_maps=True)
    return {label(m): v[:n] for m, v in maps.items()}


def saliency_figure(cfg, es: EvalSet, names: Sequence[str], n: int):
    """Figure 2: images (rows) explained by every method (columns), target = ground truth where known."""
    from ..reports.figures import saliency_grid
    from .chapter2 import row_titles

    data = es.data[list(range(min(n, len(es.data))))]
    maps = table_maps(cfg, es, methods(names, cfg), len(data))
    return saliency_grid(data.images, maps, row_titles=row_titles(es, data.images, data.labels),
                         suptitle=f"{es.name}: saliency maps")


def two_classes(cfg, es: EvalSet, n: int = 2):
    """Images and two classes per image for Figure 3: two ground-truth classes of a synthetic image
    with ``classes_per_image=2`` (synthetic models), else the two top predictions (photos, ImageNet)."""
    from .common import synthetic_eval_data

    if es.dataset == "synthetic":
        data = synthetic_eval_data(cfg, n=n, classes_per_image=2)
        imgs = data.images
        lab = data.labels
        logits = logits_of(es.model, es.model.xaikit.normalize(imgs)).masked_fill(lab <= 0, float("-inf"))
        pair = logits.topk(2, dim=1).indices
    else:
        imgs = es.data.images[:n]
        pair = logits_of(es.model, es.model.xaikit.normalize(imgs)).topk(2, dim=1).indices
    return imgs, pair


def class_figure(cfg, es: EvalSet, names: Sequence[str] = ("gradcam", "groupcam"), n: int = 2):
    """Figure 3: class-discriminative maps — for each image, each method's map for two classes."""
    import matplotlib.pyplot as plt

    from ..reports.figures import overlay, saliency_colorbar

    imgs, pair = two_classes(cfg, es, n)
    meths = methods(names, cfg)
    probs = logits_of(es.model, es.model.xaikit.normalize(imgs)).softmax(-1)
    cols = [(k, m) for k in (0, 1) for m in meths]
    fig, axes = plt.subplots(len(imgs), 1 + len(cols), figsize=(2.3 * (1 + len(cols)) + 0.6, 2.5 * len(imgs)),
                             squeeze=False, constrained_layout=True)
    maps = [maps_for(es, meths, imgs, pair[:, k]) for k in (0, 1)]
    inf = es.model.xaikit
    handle = None
    for r in range(len(imgs)):
        overlay(axes[r, 0], imgs[r], None, title="input")
        for c, (k, m) in enumerate(cols, 1):
            cls = int(pair[r, k])
            handle = overlay(axes[r, c], imgs[r], maps[k][label(m)][r],
                             title=f"{label(m)}\n{inf.short_name(cls, 16)} ({probs[r, cls]:.2f})")
    if handle is not None:
        saliency_colorbar(fig, handle, axes)
    fig.suptitle(f"{es.name}: maps for two classes of the same image", fontsize=10)
    return fig


def curves_figure(cfg, es: EvalSet, names: Sequence[str], n: int | None = None):
    """Figure 4: insertion and deletion curves of every method, averaged over the first ``n`` images."""
    import matplotlib.pyplot as plt

    from .. import metrics as M
    from ..reports.figures import curves

    steps = int(cfg.get("insertion_steps", 224))
    data = es.data[list(range(min(int(n or len(es.data)), len(es.data))))]
    x = es.model.xaikit.normalize(data.images)
    t = resolve_targets(es.model, x, data.labels, "label")
    maps = table_maps(cfg, es, methods(names, cfg), len(data))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    ins = {m: M.insertion(es.model, x, s, t, steps=steps, return_curves=True)["curves"] for m, s in maps.items()}
    dele = {m: M.deletion(es.model, x, s, t, steps=steps, return_curves=True)["curves"] for m, s in maps.items()}
    curves(axes[0], ins, title="insertion (higher AUC is better)", legend=True)
    curves(axes[1], dele, title="deletion (lower AUC is better)", legend=True)
    fig.suptitle(f"{es.name}: mean curves over {len(x)} images (AUC in legend)", fontsize=10)
    fig.tight_layout()
    return fig


def theta_figure(theta: pd.DataFrame):
    """Figure 5: deletion, insertion and over-all AUC against the threshold θ."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, m in zip(axes, ("deletion", "insertion", "overall")):
        for model, g in theta.groupby("model", sort=False):
            ax.plot(g.theta, g[m], "o-", label=model)
        ax.set_xlabel("θ (percentile)")
        ax.set_ylabel(f"{m} AUC (%)")
        ax.set_title(m + (" (lower is better)" if m == "deletion" else " (higher is better)"), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------ fine-tuning
def groupcam_augment(model, images01: torch.Tensor, target: torch.Tensor, groups: int = 16,
                     blur_ksize: int = 51, blur_sigma: float = 50.0, batch_size: int = 256) -> torch.Tensor:
    """Group-CAM §5: saliency M for the ground-truth class with ``groups`` groups and no de-noising,
    binarized at its mean per image, then eq. 5: ``M * I + (1 - M) * blur(I)`` (pixel space [0, 1]).

    (The paper also drops the gradient weights w^c to skip back-propagation; we keep them, so the
    masks are those of Group-CAM itself — slower, same masks up to that simplification.)"""
    from .. import attributors
    from ..attributors.cam import gaussian_blur

    was = model.training
    model.eval()  # Group-CAM's forward passes must not update BatchNorm statistics
    inf = model.xaikit
    G = min(int(groups), _channels_of(model, images01[:1]))
    cam = attributors.create("groupcam", model, groups=G, theta=None, batch_size=batch_size)
    sal = cam(inf.normalize(images01), target).detach()
    m = (sal > sal.flatten(1).mean(1)[:, None, None]).float()[:, None]
    out = images01 * m + gaussian_blur(images01, blur_ksize, blur_sigma) * (1 - m)
    model.train(was)
    return out


def _channels_of(model, x01) -> int:
    """Channels K of the model's default CAM layer (one forward of one image)."""
    from .. import attributors

    A = attributors.create("gradcam", model).features(model.xaikit.normalize(x01[:1]), None)[0]
    return int(A.shape[1])


def finetune(cfg, base: torch.nn.Module, epochs: int, n_train: int, n_test: int, lr: float = 0.01,
             batch_size: int = 64, groups: int = 16, snapshots: list | None = None) -> pd.DataFrame:
    """§5 at the profile's scale: fine-tune copies of ``base`` (a small model trained on synthetic data)
    on fresh synthetic images, plain vs Group-CAM-masked (``groupcam_augment``), with identical
    seed, data order, SGD (momentum 0.9, weight decay 1e-4, lr divided by 10 at 3/4 of the epochs,
    as the paper's 15-of-20 schedule). Returns top-1 test accuracy (percent) before and after each.

    ``snapshots``: a list that receives ``(epoch, state_dict)`` of the Group-CAM-fine-tuned model
    before training (epoch 0) and after every epoch, for :func:`finetune_figure` (Figure 8)."""
    from ..data.synthetic import synthetic
    from ..models import to_channels_last
    from ..training.small import evaluate as accuracy

    C, S, seed = int(cfg.get("synthetic_classes", 10)), int(cfg.get("synthetic_size", 32)), int(cfg.get("seed", 0))
    train_ds = synthetic(n=n_train, num_classes=C, size=S, seed=seed + 101, split="train")
    test_ds = synthetic(n=n_test, num_classes=C, size=S, seed=seed, split="test")
    x, y = train_ds.tensors(bar=False)
    rows = [{"model": "base (before fine-tuning)", "epochs": 0, "top-1": accuracy(base, test_ds) * 100}]
    for kind in ("plain", "groupcam"):
        seed_everything(seed)
        model = copy.deepcopy(base)
        model.xaikit = base.xaikit
        to_channels_last(model)  # the faster layout for training on CPU (single backward)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, [max(1, (3 * epochs) // 4)], 0.1)
        gen = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        steps = (len(x) + batch_size - 1) // batch_size
        keep = snapshots is not None and kind == "groupcam"
        if keep:
            snapshots.append((0, _state(model)))
        for epoch in progress(range(epochs), total=epochs, desc=f"fine-tune ({kind})"):
            perm = torch.randperm(len(x), generator=gen)
            for s in range(steps):
                idx = perm[s * batch_size:(s + 1) * batch_size]
                xb, yb = to_device((x[idx], y[idx]), model_device(model))  # one move per batch
                if kind == "groupcam":
                    xb = groupcam_augment(model, xb, yb, groups=groups)
                model.train()
                loss = torch.nn.functional.cross_entropy(model(model.xaikit.normalize(xb)), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sched.step()
            if keep:
                snapshots.append((epoch + 1, _state(model)))
        model.eval()
        rows.append({"model": f"fine-tuned, {'Group-CAM-masked' if kind == 'groupcam' else 'plain'} images",
                     "epochs": epochs, "top-1": accuracy(model, test_ds) * 100,
                     "time_s": time.perf_counter() - t0})
    out = pd.DataFrame(rows)
    out["paper top-1 (ResNet-50, ImageNet)"] = [float("nan"), 76.15, 76.74]
    return out.round(2)


def _state(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def finetune_figure(cfg, base: torch.nn.Module, snapshots: Sequence, n: int = 3):
    """Figure 8: Group-CAM maps (the chapter's options, ground-truth class) of the first ``n`` synthetic
    test images, from the model before fine-tuning (epoch 0) and after each epoch of fine-tuning with
    Group-CAM-masked images; each title gives the probability of the ground-truth class."""
    import matplotlib.pyplot as plt

    from .. import attributors
    from ..errors import InputError
    from ..reports.figures import overlay, saliency_colorbar
    from .common import synthetic_eval_data

    if not snapshots:
        raise InputError("finetune_figure needs the snapshots of a fine-tuning run: pass snapshots=[] to "
                         "ch6.finetune(...) and then the same list here")
    data = synthetic_eval_data(cfg, n=n)
    imgs, y = data.images, data.labels
    opts = methods(["groupcam"], cfg)["groupcam"]
    model = copy.deepcopy(base)
    model.xaikit = base.xaikit
    fig, axes = plt.subplots(len(imgs), 1 + len(snapshots), figsize=(1.9 * (1 + len(snapshots)) + 0.6,
                             1.9 * len(imgs) + 0.5), squeeze=False, constrained_layout=True)
    handle = None
    for c, (epoch, state) in enumerate(snapshots, 1):
        model.load_state_dict(state)
        model.eval()
        x = model.xaikit.normalize(imgs)
        sal = attributors.create("groupcam", model, **opts)(x, y).detach()
        p = logits_of(model, x).softmax(-1).gather(1, y[:, None])[:, 0]
        for r in range(len(imgs)):
            handle = overlay(axes[r, c], imgs[r], sal[r], title=f"epoch {epoch}: p={p[r]:.2f}")
    for r in range(len(imgs)):
        overlay(axes[r, 0], imgs[r], None, title="image" if r == 0 else None)
        axes[r, 0].set_ylabel(f"GT: {base.xaikit.short_name(int(y[r]), 18)}", fontsize=8)
    saliency_colorbar(fig, handle, axes)
    fig.suptitle("Group-CAM maps while fine-tuning with Group-CAM-masked images (epoch 0 = before)",
                 fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------- claims
def claims(t1: pd.DataFrame, t3: pd.DataFrame, t4: pd.DataFrame | None = None) -> dict:
    """The paper's claims on the reproduced tables: Group-CAM has the best over-all score among the
    compared CAMs (per model), it is faster than Score-CAM, and (Table 4) at least as good as Grad-CAM
    in the pointing game."""
    from .common import best

    cams = t1[t1.method.isin([label(m) for m in ("gradcam", "gradcampp", "scorecam", "groupcam")])]
    pp = t3.set_index("method")["passes"]
    out = {
        "Group-CAM has the best over-all score among the compared CAMs (every model)":
            set(best(cams, "overall", True, exclude=())) == {"Group-CAM"},
        # wall time flips with machine load; the passes per image behind it do not
        "Group-CAM needs fewer network passes per image than Score-CAM": bool(pp["Group-CAM"] < pp["Score-CAM"]),
    }
    if t4 is not None and len(t4):
        sp = t4.set_index("method")["SP reproduced"]
        out["Group-CAM's pointing accuracy >= Grad-CAM's"] = bool(sp["Group-CAM"] >= sp["Grad-CAM"])
    return out
