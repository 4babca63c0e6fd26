"""Thesis chapter 3 (CA-Stream): Tables 3.1-3.6 and Figures 3.3-3.4 as functions of the notebook's parameters.

GAP vs CA-Stream: every backbone is evaluated twice, once as is (GAP) and once with its pooling replaced
by a trained CA-Stream (``xk.streams.CAStream.wrap`` on a *copy* of the backbone, which it freezes).
``ci``/``default``: small models trained on synthetic data (single-label for ImageNet, ``classes_per_image=2``
standing in for Pascal VOC, ``fine_grained=True`` for CUB), streams trained on the same synthetic data and
cached by configuration; the bundled EfficientNet-Lite0 gives the 224-px complexity row and the
untrained-vs-GAP-initialized accuracy rows (no ImageNet to train a stream on). ``full``: the thesis'
networks on ImageNet / VOC / CUB at the paths given in the profile.
"""
from __future__ import annotations

import copy
import textwrap
from typing import Mapping, Sequence

import pandas as pd
import torch

from ..config import cache_dir
from ..core.devices import back, on_model, to_device
from ..core.targets import logits_of, predict, resolve_targets
from ..data.base import Batch, load_batch
from ..errors import ConfigError
from .common import chunk, dataset_root, label, means
from .grid import evaluate
from .store import ResultStore, config_hash

METHODS = ["gradcam", "gradcampp", "scorecam"]
#: synthetic settings standing in for the thesis' datasets
SETTINGS = {"imagenet": {}, "voc2012": {"classes_per_image": 2}, "cub200": {"fine_grained": True}}
#: which published model each of ours stands beside at ci/default (identity at full)
PAPER_MODEL = {"resnet18_cifar": "resnet18", "mobilenetv2_cifar": "resnet50", "tf_efficientnet_lite0": "resnet50"}
METRIC_NAMES = {"I": "insertion", "D": "deletion"}
_CACHE: dict = {}


# ------------------------------------------------------------------------------------------ data/models
def _spec(spec: str) -> tuple[str, str]:
    if "@" not in spec:
        raise ConfigError(f"model spec {spec!r} must look like 'name@weights', e.g. 'resnet18_cifar@synthetic' "
                          "or 'resnet50@imagenet'")
    return tuple(spec.split("@", 1))


def datasets(cfg: Mapping, spec: str, setting: str = "imagenet"):
    """``(train, test)`` datasets for a backbone spec and a setting (imagenet / voc2012 / cub200)."""
    name, weights = _spec(spec)
    if weights == "synthetic":
        from ..data.synthetic import synthetic

        kw = dict(num_classes=int(cfg.get("synthetic_classes", 10)), size=int(cfg.get("synthetic_size", 32)),
                  seed=int(cfg.get("seed", 0)), **SETTINGS[setting])
        return (synthetic(int(cfg.get("train_images", 1000)), split="train", **kw),
                synthetic(int(cfg.get("test_images", 200)), split="test", **kw))
    from ..data import folders

    roots = {"imagenet": ("imagenet_train_root", "imagenet_root"), "voc2012": ("voc_root", "voc_root"),
             "cub200": ("cub_root", "cub_root")}[setting]
    for r in roots:
        if not cfg.get(r):
            raise ConfigError(f"{spec} in setting {setting!r} needs the dataset path {r!r}: set it in "
                              "profiles/full.yaml (see data/README.md for the layout)")
    size = int(cfg.get("image_size") or 224)
    if setting == "imagenet":
        return (folders.imagenet_train(dataset_root(cfg, roots[0]), size=size),
                folders.imagenet_val(dataset_root(cfg, roots[1]), size=size, boxes=False,
                                     limit=int(cfg.get("test_images", 50000))))
    if setting == "voc2012":
        root = dataset_root(cfg, "voc_root")
        return folders.voc(root, split="train", size=size), folders.voc(root, split="val", size=size)
    root = dataset_root(cfg, "cub_root")
    return folders.cub(root, split="train", size=size), folders.cub(root, split="test", size=size)


def backbone(cfg: Mapping, spec: str, setting: str = "imagenet") -> torch.nn.Module:
    """The GAP model of a spec (small models trained on the setting's synthetic data, cached)."""
    from .specs import load_model

    name, weights = _spec(spec)
    if weights == "synthetic":
        return load_model(spec, cfg, **SETTINGS[setting])
    key = config_hash("ch3-backbone", spec, setting, {k: cfg.get(k) for k in FINETUNE_KEYS},
                      cfg.get("random_weights"), cfg.get("image_size"), int(cfg.get("seed", 0)))
    if key in _CACHE:
        return _CACHE[key]
    model = load_model(spec, cfg)
    if setting != "imagenet":  # thesis §3.4: the ImageNet network is fine-tuned to VOC / CUB as the baseline
        model = finetuned(cfg, model, spec, setting)
    _CACHE[key] = model
    return model


#: notebook parameters of the VOC / CUB fine-tuning of ImageNet backbones (Table 3.2)
FINETUNE_KEYS = ("finetune_epochs", "finetune_lr", "finetune_lr_step", "finetune_batch_size")


def finetuned(cfg: Mapping, model, spec: str, setting: str):
    """``model`` with a new head for the setting's classes (VOC: 20, multi-label; CUB: 200), every layer
    fine-tuned on its training split (:func:`xaikit.training.finetune.finetune`); resumable, cached by
    configuration. The recipe is not published: SGD, momentum 0.9, weight decay 1e-4, the profile's epochs,
    learning rate and step, RandomResizedCrop + flip."""
    from ..training.finetune import FinetuneConfig, finetune

    tr, _ = datasets(cfg, spec, setting)
    fc = FinetuneConfig(epochs=int(cfg.get("finetune_epochs") or 20), lr=float(cfg.get("finetune_lr") or 0.01),
                        lr_step=int(cfg.get("finetune_lr_step") or 15),
                        batch_size=int(cfg.get("finetune_batch_size") or 64), seed=int(cfg.get("seed", 0)))
    key = config_hash("ch3-finetune", spec, setting, fc.key(), fc.epochs, len(tr), getattr(tr, "root", ""),
                      cfg.get("random_weights"), cfg.get("image_size"))
    finetune(model, tr, num_classes=tr.num_classes, config=fc, class_names=tr.class_names,
             checkpoint_dir=cache_dir() / "finetune" / key)
    return model.eval()


def stream(cfg: Mapping, spec: str, setting: str = "imagenet", start_stage: int = 0, variant: str = "ca",
           class_specific: bool = False, init: str = "paper", train: bool = True):
    """A CA-Stream on a fresh copy of the backbone, trained (thesis §3.4 recipe, scaled by the profile)
    on the setting's training set; checkpoints are cached by configuration, so reruns only load them."""
    from ..streams import CAStream
    from ..training.stream import train as train_stream

    key = config_hash("ca-stream", spec, setting, start_stage, variant, class_specific, init, train,
                      {k: cfg.get(k) for k in ("seed", "synthetic_size", "synthetic_classes", "train_images",
                                              "train_epochs", "stream_epochs", "stream_lr", "stream_lr_step", "stream_batch_size")})
    if key in _CACHE:
        return _CACHE[key]
    s = CAStream.wrap(copy.deepcopy(backbone(cfg, spec, setting)), start_stage=start_stage, variant=variant,
                      class_specific=class_specific, init=init, seed=int(cfg.get("seed", 0)))
    if train:
        tr, _ = datasets(cfg, spec, setting)
        epochs = int(cfg.get("stream_epochs", 2))
        train_stream(s, tr, epochs=epochs, batch_size=int(cfg.get("stream_batch_size", 64)),
                     lr=float(cfg.get("stream_lr", 0.05)), lr_step=max(1, int(cfg.get("stream_lr_step") or epochs)),
                     seed=int(cfg.get("seed", 0)), checkpoint_dir=cache_dir() / "streams" / key)
    s.eval()
    s.xaikit_cache_key = key  # saliency() caches results per trained stream, whichever table asks
    _CACHE[key] = s
    return s


def eval_batch(cfg: Mapping, spec: str, setting: str = "imagenet") -> Batch:
    """The images the saliency metrics are computed on (first ``images`` of the test split)."""
    _, te = datasets(cfg, spec, setting)
    return load_batch(te, list(range(min(int(cfg.get("images", 8)), len(te)))))


# ------------------------------------------------------------------------------------------ metrics
def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """mAP in percent (Pascal VOC protocol without interpolation): mean over classes with at least one
    positive of the average precision ``AP_c = (1/P_c) sum_k precision@k * rel_k`` over images ranked by score."""
    scores, labels = scores.float(), (labels > 0).float()
    order = scores.argsort(0, descending=True)
    rel = labels.gather(0, order)
    prec = rel.cumsum(0) / torch.arange(1, len(rel) + 1, dtype=torch.float32)[:, None]
    pos = rel.sum(0)
    ap = (prec * rel).sum(0) / pos.clamp_min(1)
    return float(100 * ap[pos > 0].mean())


@torch.no_grad()
def accuracy(model, dataset, batch_size: int = 256) -> dict:
    """``top1`` (percent; multi-label: the top class is a positive) and, for multi-hot labels, ``mAP``."""
    from ..data.base import collate

    scores, labels = [], []
    dev = next(iter(model.parameters())).device
    for i in range(0, len(dataset), batch_size):
        b = collate([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))])
        scores.append(model(model.xaikit.normalize(b.images.to(dev))).float().cpu())
        labels.append(b.labels)
    s, y = torch.cat(scores), torch.cat(labels)
    if y.dim() == 2:
        return {"top1": float(100 * (y.gather(1, s.argmax(1, keepdim=True)) > 0).float().mean()),
                "mAP": mean_average_precision(s, y)}
    return {"top1": float(100 * (s.argmax(1) == y).float().mean())}


def saliency(cfg: Mapping, model, data: Batch, methods: Sequence[str], tag: str) -> pd.DataFrame:
    """Per-(method) means of AD, AG, AI, insertion, deletion (percent) on ``data``, cached per image."""
    steps = int(cfg.get("insertion_steps", 224))
    opts = {"scorecam": chunk(cfg)}
    ms = [(m, opts.get(m, {})) for m in methods]
    mo = {"insertion": {"steps": steps}, "deletion": {"steps": steps}}
    # the same trained stream appears in several tables (Table 3.1's CA model is Table 3.5's S0 and
    # Table 3.6's class-agnostic row): key its results by the stream's own config, not the table's tag
    key = config_hash("ch3", getattr(model, "xaikit_cache_key", tag), cfg.get("profile"), list(data.names), ms, steps, int(cfg.get("seed", 0)),
                      {k: cfg.get(k) for k in ("synthetic_size", "synthetic_classes", "train_images", "train_epochs",
                                              "stream_epochs", "stream_lr")})
    st = ResultStore(key, root=cache_dir() / "results" / "03_ca_stream", meta=dict(tag=tag, methods=list(methods)))
    f = evaluate(model, data, ms, ["recognition", "insertion", "deletion"], batch_size=int(cfg.get("batch_size", 8)),
                 store=st, model_name=tag, dataset_name="eval", metric_options=mo, target="label")
    f = f.assign(metric=f.metric.replace(METRIC_NAMES))
    w = means(f, ["AD", "AG", "AI", "insertion", "deletion"])
    return w.drop(columns="model")


def _published(pid: str, keys: Mapping[str, object], metrics: Sequence[str]) -> dict:
    from .. import published as P

    t = P.table(pid)
    for k, v in keys.items():
        if k in t.columns:
            t = t[t[k].astype(str) == str(v)]
    return {f"{m} published": (float(t[t.metric == m].value.iloc[0]) if (t.metric == m).any() else float("nan"))
            for m in metrics}


def _side(rows: list[dict], metrics: Sequence[str]) -> pd.DataFrame:
    """Order columns as ``<keys>, <m> published, <m> reproduced`` for each metric."""
    df = pd.DataFrame(rows)
    keys = [c for c in df.columns if not c.endswith((" published", " reproduced"))]
    cols = keys + [f"{m} {w}" for m in metrics for w in ("published", "reproduced") if f"{m} {w}" in df]
    return df[cols].round(2)


SAL = ["AD", "AG", "AI", "insertion", "deletion"]


# ------------------------------------------------------------------------------------------ tables
def gap_vs_ca_table(cfg: Mapping, specs: Sequence[str], methods: Sequence[str], setting: str = "imagenet",
                    published_id: str = "thesis:3.1") -> pd.DataFrame:
    """Tables 3.1 / 3.2 (interpretability part): AD/AG/AI/I/D per backbone, method and pooling (GAP, CA)."""
    rows = []
    for spec in specs:
        name = _spec(spec)[0]
        data = eval_batch(cfg, spec, setting)
        for pool, model in (("gap", backbone(cfg, spec, setting)), ("ca", stream(cfg, spec, setting))):
            w = saliency(cfg, model, data, methods, f"{spec}/{setting}/{pool}")
            for _, r in w.iterrows():
                paper = PAPER_MODEL.get(name, name)
                rows.append({"model": name, "paper model": paper, "dataset": setting, "method": label(r.method),
                             "pool": pool.upper(),
                             **_published(published_id, dict(model=paper, method=r.method, pool=pool,
                                                               dataset=setting), SAL),
                             **{f"{m} reproduced": r[m] for m in SAL}})
    df = _side(rows, SAL)
    rank = {label(m): i for i, m in enumerate(methods)}
    return df.sort_values(["model", "dataset", "method", "pool"], key=lambda s: s.map(rank) if s.name == "method"
                          else (s.map({"GAP": 0, "CA": 1}) if s.name == "pool" else s), kind="stable").reset_index(drop=True)


def setting_table(cfg: Mapping, spec: str, methods: Sequence[str],
                  settings: Sequence[str] = ("voc2012", "cub200")) -> pd.DataFrame:
    """Table 3.2 (interpretability part): GAP vs CA on the VOC and CUB stand-ins."""
    return pd.concat([gap_vs_ca_table(cfg, [spec], methods, s, "thesis:3.2") for s in settings],
                     ignore_index=True)


def recognition_table(cfg: Mapping, spec: str, settings: Sequence[str] = ("voc2012", "cub200")) -> pd.DataFrame:
    """Table 3.2 (recognition part): mAP on the VOC stand-in, top-1 on the CUB stand-in, GAP vs CA."""
    rows = []
    for setting in settings:
        _, te = datasets(cfg, spec, setting)
        metric = "mAP" if setting == "voc2012" else "top1"
        for pool, model in (("gap", backbone(cfg, spec, setting)), ("ca", stream(cfg, spec, setting))):
            acc = accuracy(model, te)
            rows.append({"model": _spec(spec)[0], "dataset": setting, "pool": pool.upper(), "metric": metric,
                         "published": _published("thesis:3.2", dict(pool=pool, dataset=setting, method="none"),
                                                 [metric])[f"{metric} published"],
                         "reproduced": acc[metric]})
    return pd.DataFrame(rows).round(2)


def complexity_table(cfg: Mapping, specs: Sequence[str], lite_spec: str | None = None) -> pd.DataFrame:
    """Table 3.3: GFLOPs, parameters (M), stream share of the backbone (%) and top-1, GAP vs CA.

    With ``lite_spec`` (the bundled EfficientNet-Lite0): complexity at 224 px, and top-1 on the bundled
    labelled photos of GAP, an *untrained* CA-Stream (paper init) and a GAP-initialized one (equal to GAP
    by construction): there is no ImageNet here to train the stream on."""
    from ..streams import complexity

    rows = []
    for spec in specs:
        name = _spec(spec)[0]
        paper = PAPER_MODEL.get(name, name)
        s = stream(cfg, spec)
        size = int(s.xaikit.input_size or cfg.get("synthetic_size", 32))
        c = complexity(s, input_size=size)
        _, te = datasets(cfg, spec)
        for pool, model in (("gap", backbone(cfg, spec)), ("ca", s)):
            pub = _published("thesis:3.3", dict(model=paper, pool=pool), ["GFLOPs", "params_M", "param_pct", "top1"])
            rep = {"GFLOPs": c["gflops_" + pool], "params_M": (c["params_backbone"] if pool == "gap" else c["params_total"]) / 1e6,
                   "param_pct": c["param_pct"] if pool == "ca" else float("nan"), "top1": accuracy(model, te)["top1"]}
            rows.append({"model": name, "paper model": paper, "pool": pool.upper(), "stream": "trained" if pool == "ca" else "",
                         "input px": size, **pub, **{f"{k} reproduced": v for k, v in rep.items()}})
    if lite_spec:
        from .common import photo_data

        name = _spec(lite_spec)[0]
        gap = backbone(cfg, lite_spec)
        data = photo_data(cfg, n=11, size=gap.xaikit.input_size)
        keep = [i for i, y in enumerate(data.labels.tolist()) if y >= 0]
        x, y = gap.xaikit.normalize(data.images[keep]), data.labels[keep]
        for pool, init in (("gap", None), ("ca", "paper"), ("ca", "gap")):
            model = gap if init is None else stream(cfg, lite_spec, init=init, train=False)
            c = complexity(model if init else stream(cfg, lite_spec, init="gap", train=False), input_size=224)
            top1 = float(100 * (predict(model, x) == y).float().mean())
            rep = {"GFLOPs": c["gflops_" + pool], "params_M": (c["params_backbone"] if pool == "gap" else c["params_total"]) / 1e6,
                   "param_pct": c["param_pct"] if pool == "ca" else float("nan"), "top1": top1}
            rows.append({"model": name, "paper model": "", "pool": pool.upper(),
                         "stream": "" if init is None else f"untrained, init={init}", "input px": 224,
                         **{f"{k} published": float("nan") for k in rep}, **{f"{k} reproduced": v for k, v in rep.items()}})
    return _side(rows, ["GFLOPs", "params_M", "param_pct", "top1"])


def _variant_rows(cfg, spec, methods, variants, pid, pid_key) -> pd.DataFrame:
    name = _spec(spec)[0]
    paper = PAPER_MODEL.get(name, name) if _spec(spec)[1] != "imagenet" else name
    _, te = datasets(cfg, spec)
    data = eval_batch(cfg, spec)
    rows = []
    for val, kw in variants:
        s = stream(cfg, spec, **kw)
        n = sum(p.numel() for p in s.stream_parameters()) / 1e6
        acc = accuracy(s, te)["top1"]
        base = {"model": name, "paper model": paper, pid_key: val}
        rows.append({**base, "method": "none",
                     **_published(pid, {pid_key: val, "method": "none"}, ["params_M", "top1"]),
                     "params_M reproduced": n, "top1 reproduced": acc})
        if methods:
            w = saliency(cfg, s, data, methods, f"{spec}/{pid_key}={val}")
            for _, r in w.iterrows():
                rows.append({**base, "method": label(r.method),
                             **_published(pid, {pid_key: val, "method": r.method}, SAL),
                             **{f"{m} reproduced": r[m] for m in SAL}})
    return _side(rows, ["params_M", "top1"] + SAL)


def block_table(cfg: Mapping, spec: str) -> pd.DataFrame:
    """Table 3.4: CA (eq. 3.3) vs PROJ→CA (eq. 3.8) block: stream parameters (M) and top-1."""
    return _variant_rows(cfg, spec, [], [("ca", {"variant": "ca"}), ("proj_ca", {"variant": "proj_ca"})],
                         "thesis:3.4", "block")


def placement_table(cfg: Mapping, spec: str, methods: Sequence[str], placements: Sequence[int] = (0, 1, 2, 3, 4)) -> pd.DataFrame:
    """Table 3.5: stream placement S_l-S_L: stream parameters, top-1 and AD/AG/AI/I/D."""
    n = len(stream(cfg, spec).points)  # S0..S_{n-1} of the full stream
    ok = [p for p in placements if p < n]
    return _variant_rows(cfg, spec, methods, [(f"S{p}-S{n - 1}", {"start_stage": p}) for p in ok],
                         "thesis:3.5", "placement")


def class_specific_table(cfg: Mapping, spec: str, methods: Sequence[str]) -> pd.DataFrame:
    """Table 3.6: class-agnostic vs class-specific initial query: parameters, top-1, AD/AG/AI/I/D."""
    t = _variant_rows(cfg, spec, methods, [("class_agnostic", {}), ("class_specific", {"class_specific": True})],
                      "thesis:3.6", "representation")
    return t


# ------------------------------------------------------------------------------------------ figures
def _maps(model, x, t, methods, cfg):
    from .. import attributors

    opts = {"scorecam": chunk(cfg)}
    return {m: attributors.create(m, model, **opts.get(m, {}))(x, t).detach() for m in methods}


def maps_figure(cfg: Mapping, spec: str, methods: Sequence[str], n: int = 4):
    """Figure 3.3: saliency maps of the GAP model and of the CA model, and the stream's raw attention."""
    from ..reports.figures import saliency_grid

    data = eval_batch(cfg, spec)
    k = min(n, len(data.names))
    imgs, labels = data.images[:k], data.labels[:k]
    gap, ca = backbone(cfg, spec), stream(cfg, spec)
    x = gap.xaikit.normalize(imgs)
    t = resolve_targets(gap, x, labels, "label")
    maps = {}
    mg, mc = _maps(gap, x, t, methods, cfg), _maps(ca, x, t, methods, cfg)
    for m in methods:
        maps[f"{label(m)} GAP"] = mg[m]
        maps[f"{label(m)} CA"] = mc[m]
    maps["raw attention"] = ca.attention(x, upsample=True)
    inf = gap.xaikit
    pg, pc = predict(gap, x).tolist(), predict(ca, x).tolist()
    titles = [f"GT: {inf.short_name(int(y), 18)}\nGAP: {inf.short_name(a, 18)}\nCA: {inf.short_name(b, 18)}"
              for y, a, b in zip(t.tolist(), pg, pc)]
    return saliency_grid(imgs, maps, row_titles=titles,
                         suptitle=f"{_spec(spec)[0]}: GAP vs CA-Stream saliency maps (target = ground truth)")


def unseen_figure(cfg: Mapping, spec: str, n: int = 4):
    """Figure 3.4: the stream's raw attention on images of classes neither the backbone nor the stream saw
    (synthetic classes ``C..2C-1``; with real weights, the bundled photos)."""
    from ..reports.figures import saliency_grid

    s = stream(cfg, spec)
    name, weights = _spec(spec)
    if weights == "synthetic":
        from ..data.synthetic import synthetic

        c = int(cfg.get("synthetic_classes", 10))
        ds = synthetic(20 * n, num_classes=2 * c, size=int(cfg.get("synthetic_size", 32)),
                       seed=int(cfg.get("seed", 0)) + 1, split="test")
        idx = [i for i in range(len(ds)) if int(ds[i]["label"]) >= c][:n]
        b = load_batch(ds, idx)
        names = [ds.class_names[int(y)] for y in b.labels] if hasattr(ds, "class_names") else [str(int(y)) for y in b.labels]
    else:
        from .common import photo_data

        b = photo_data(cfg, n=n, size=s.xaikit.input_size)
        names = list(b.names)
    x = s.xaikit.normalize(b.images)
    att = s.attention(x, upsample=True)
    pred = predict(s, x).tolist()
    # class names such as "green circle (striped)": wrapped, not cut, so the row says which class it is
    titles = ["\n".join(textwrap.wrap(f"unseen: {nm}", 20) + [f"pred: {s.xaikit.short_name(p, 18)}"])
              for nm, p in zip(names, pred)]
    return saliency_grid(b.images, {"raw attention": att}, row_titles=titles,
                         suptitle=f"{name}+CA-Stream: raw attention on unseen classes")


# ------------------------------------------------------------------------------------------ claims
def claims(t31: pd.DataFrame, t33: pd.DataFrame, t36: pd.DataFrame, tol: float = 1.0) -> dict:
    """The chapter's qualitative claims on the reproduced tables (thesis §3.5)."""
    acc = t33[t33.stream.isin(["", "trained"]) & t33["paper model"].ne("")].pivot_table(
        index="model", columns="pool", values="top1 reproduced")

    def improves(metric):
        w = t31[t31.method.isin(["Grad-CAM", "Score-CAM"])].pivot_table(
            index=["model", "dataset", "method"], columns="pool", values=f"{metric} reproduced")
        return bool(len(w)) and bool((w["CA"] > w["GAP"]).all())

    r = t36[t36.method == "none"].set_index("representation")
    sal = t36[t36.method != "none"].groupby("representation")["AG reproduced"].mean()
    return {
        f"CA-Stream top-1 is at most {tol:g} point below GAP for every trained backbone":
            bool(len(acc)) and bool((acc["CA"] >= acc["GAP"] - tol).all()),
        "CA-Stream improves AG over GAP for Grad-CAM and Score-CAM": improves("AG"),
        "CA-Stream improves AI over GAP for Grad-CAM and Score-CAM": improves("AI"),
        f"class-specific queries bring no top-1 gain (≤ {tol:g} point over class-agnostic)":
            bool(r.loc["class_specific", "top1 reproduced"] <= r.loc["class_agnostic", "top1 reproduced"] + tol),
        "class-specific queries bring no AG gain over class-agnostic":
            bool(sal.get("class_specific", float("nan")) <= sal.get("class_agnostic", float("nan"))),
    }
