"""Thesis chapter 2 (Opti-CAM): every table and figure, as functions of the notebook's parameters.

``default`` profile: classification tables on the bundled EfficientNet-Lite0 with the bundled photos and
on small models trained on synthetic data; the localization / bounding-box tables on synthetic data
with exact boxes; transformer rows on a tiny DeiT trained on synthetic data. ``full``: ImageNet
validation with the thesis' networks. Per-image results go to the results store, so a rerun or an
interrupted run does not recompute what is done.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
import torch

from ..config import cache_dir
from ..core.devices import back, on_model, to_device
from ..core.targets import logits_of, predict, resolve_targets
from .common import EvalSet, chunk, compare, label, means, resolve_eval_set
from .grid import evaluate
from .store import ResultStore, config_hash

CNN_METHODS = ["fakecam", "gradcam", "gradcampp", "scorecam", "ablationcam", "xgradcam", "layercam",
               "extremal", "opticam"]
VIT_METHODS = ["fakecam", "gradcam", "gradcampp", "scorecam", "xgradcam", "layercam", "extremal",
               "raw_attention", "rollout", "chefer", "opticam"]
#: at the default profile, which column of the paper each of our models stands beside
PAPER_MODEL = {"tf_efficientnet_lite0": "resnet50", "resnet18_cifar": "vgg16", "mobilenetv2_cifar": "vgg16",
               "deit_tiny_synth": "deit_b", "vit_base_patch16_224": "vit_b", "deit_base_patch16_224": "deit_b",
               "resnet50": "resnet50", "vgg16": "vgg16", "torchvision:vgg16": "vgg16",
               "torchvision:resnet50": "resnet50"}


def method_options(cfg: Mapping) -> dict:
    """Per-method options derived from the profile (Opti-CAM steps, chunk sizes)."""
    opts = {"opticam": {"max_iter": int(cfg.get("opticam_steps", 100))},
            "extremal": {"max_iter": int(cfg.get("extremal_steps", 100))},
            "scorecam": chunk(cfg), "ablationcam": chunk(cfg)}
    return opts


def _methods(names: Sequence[str], cfg: Mapping, extra: Mapping | None = None) -> dict:
    from .. import attributors

    known = set(attributors.available())
    mo = method_options(cfg)
    out = {}
    for m in names:
        base = m.split(":")[0]
        if base not in known:
            continue  # a method this build does not ship is left out of the table, not faked
        out[m] = dict(mo.get(base, {}), **(extra or {}).get(m, {}))
    return out


def _eval_key(cfg: Mapping, es: EvalSet) -> str:
    """Everything that determines an eval set's results: its images (content), model (weights) and labels."""
    from .common import fingerprint

    return config_hash(es.key, es.dataset, list(es.data.names), fingerprint(es.data.images),
                       fingerprint(es.data.labels), fingerprint(es.model))


def run(cfg: Mapping, es: EvalSet, methods: Mapping, metrics: Sequence[str], tag: str,
        metric_options: Mapping | None = None) -> pd.DataFrame:
    """Per-image results of ``methods`` x ``metrics`` on an eval set, read back from the results store
    when already computed. One store per (method, options, metrics), one map cache per eval set: a map
    is computed once and shared by every table (Table 2.8 reuses Table 2.1's reference rows).
    ``methods`` maps a row name (e.g. ``opticam`` or ``opticam:diff:max``) to the attributor options."""
    from .store import MapCache

    ek = _eval_key(cfg, es)
    cache = MapCache(ek, root=cache_dir() / "maps" / "02_opti_cam")
    frames = []
    for row, opts in methods.items():
        key = config_hash(ek, row, opts, list(metrics), metric_options or {}, cfg.get("insertion_steps"))
        st = ResultStore(key, root=cache_dir() / "results" / "02_opti_cam",
                         meta=dict(tag=tag, model=es.key, dataset=es.dataset, method=row, options=opts))
        f = evaluate(es.model, es.data, [(row.split(":")[0], dict(opts))], metrics,
                     batch_size=int(cfg.get("batch_size", 8)), store=st, model_name=es.name,
                     dataset_name=es.dataset, metric_options=metric_options, target="label", map_cache=cache)
        frames.append(f.assign(method=row))
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------- tables
def classification_table(cfg, sets: Sequence[EvalSet], methods: Sequence[str], published_id: str) -> pd.DataFrame:
    """Tables 2.1 / 2.2: AD, AG, AI (percent) and T (seconds per batch of 8) per model and method."""
    frames = [run(cfg, es, _methods(methods, cfg), ["recognition"], "classification") for es in sets]
    wide = means(pd.concat(frames), ["AD", "AG", "AI", "T"])
    return compare(wide, published_id, ["AD", "AG", "AI", "T"], PAPER_MODEL, order=methods)


def more_metrics_table(cfg, sets: Sequence[EvalSet], methods: Sequence[str], n: int | None = None) -> pd.DataFrame:
    """Table 2.3: AOPC (percent), Max-Sensitivity, ADCC (percent), on the first ``n`` images of each set."""
    frames = []
    for es in sets:
        if n is not None:
            es = EvalSet(es.key, es.model, es.data[list(range(min(int(n), len(es.data))))], es.dataset)
        f = run(cfg, es, _methods(methods, cfg), ["aopc", "max_sensitivity", "adcc"], "more",
                metric_options={"max_sensitivity": {"n": int(cfg.get("ms_samples", 10))}})
        f = f.copy()
        f.loc[f.metric == "AOPC", "value"] *= 100
        frames.append(f)
    wide = means(pd.concat(frames), ["AOPC", "MS", "ADCC"])
    return compare(wide, "thesis:2.3", ["AOPC", "MS", "ADCC"], PAPER_MODEL, order=methods)


def insertion_deletion_table(cfg, sets: Sequence[EvalSet], methods_by_kind: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Table 2.4: insertion (I, blurred start) and deletion (D, black) AUC in percent."""
    steps = int(cfg.get("insertion_steps", 224))
    frames = []
    for es in sets:
        ms = methods_by_kind["vit" if es.model.xaikit.is_vit else "cnn"]
        frames.append(run(cfg, es, _methods(ms, cfg), ["insertion", "deletion"], "io",
                          metric_options={"insertion": {"steps": steps}, "deletion": {"steps": steps}}))
    wide = means(pd.concat(frames), ["I", "D"])
    order = list(dict.fromkeys(sum((list(v) for v in methods_by_kind.values()), [])))
    return compare(wide, "thesis:2.4", ["I", "D"], PAPER_MODEL, order=order)


def box_study_table(cfg, es: EvalSet, methods: Sequence[str]) -> pd.DataFrame:
    """Table 2.5: AD/AG/AI with S := B, S := I∖B, and for each map S, B∩S and S∖B."""
    f = run(cfg, es, _methods(methods, cfg), ["box_study"], "boxes")
    f = f[f.metric.str.contains("/")].copy()
    f[["which", "m"]] = f.metric.str.split("/", expand=True)
    rows = []
    names = {"S": "S", "B&S": "B∩S", "S-B": "S∖B"}
    for method, g in f.groupby("method", sort=False):
        row = {"method": label(method)}
        for (which, m), v in g.groupby(["which", "m"]).value.mean().items():
            if which in names:
                row[f"{m} {names[which]}"] = v
        rows.append(row)
        if method == list(dict.fromkeys(f.method))[0]:  # S := B and S := I∖B do not depend on the method
            for which, nm in (("S:=B", "S := B"), ("S:=I-B", "S := I∖B")):
                gg = g[g.which == which]
                if len(gg):
                    rows.insert(len(rows) - 1, {"method": nm, **{f"{m} S": v for m, v in gg.groupby("m").value.mean().items()}})
    out = pd.DataFrame(rows)
    cols = ["method"] + [f"{m} {w}" for m in ("AD", "AG", "AI") for w in ("S", "B∩S", "S∖B") if f"{m} {w}" in out]
    return out[cols].round(2)


def localization_table(cfg, sets: Sequence[EvalSet], methods: Sequence[str], published_id: str) -> pd.DataFrame:
    """Tables 2.6 / 2.7: OM, LE, F1, BA, SP, EP (percent), SM."""
    metrics = ["OM", "LE", "F1", "BA", "SP", "EP", "SM"]
    frames = [run(cfg, es, _methods(methods, cfg), ["localization"], "loc") for es in sets]
    wide = means(pd.concat(frames), metrics)
    return compare(wide, published_id, metrics, PAPER_MODEL, order=methods)


ABLATION = [("mask", "range"), ("diff", "range"), ("mask", "max"), ("diff", "max"), ("mask", "sigmoid"),
            ("diff", "sigmoid")]


def ablation(cfg, es: EvalSet, reference: Sequence[str]) -> pd.DataFrame:
    """Table 2.8 computed variant by variant (each variant its own method key in the store)."""
    rows = []
    ref = run(cfg, es, _methods(reference, cfg), ["recognition"], "classification")
    for (method, g) in means(ref, ["AD", "AG", "AI"]).groupby("method", sort=False):
        rows.append({"method": label(method), "objective": "", "normalization": "",
                     **g[["AD", "AG", "AI"]].iloc[0].to_dict()})
    base = method_options(cfg)["opticam"]
    for obj, norm in ABLATION:
        f = run(cfg, es, {"opticam": dict(base, objective=obj, normalization=norm)}, ["recognition"],
                f"ablation-{obj}-{norm}")
        w = means(f, ["AD", "AG", "AI"]).iloc[0]
        rows.append({"method": "Opti-CAM", "objective": obj.capitalize(), "normalization": norm.capitalize(),
                     "AD": w.AD, "AG": w.AG, "AI": w.AI})
    out = pd.DataFrame(rows)
    pub = _published_ablation()
    return out.merge(pub, on=["method", "objective", "normalization"], how="left",
                     suffixes=(" reproduced", " published")).round(2)


def _published_ablation() -> pd.DataFrame:
    from .. import published as P

    t = P.table("thesis:2.8")
    t = t.assign(method=t.method.map(label))
    cols = [c for c in ("objective", "normalization") if c in t.columns]
    for c in ("objective", "normalization"):
        if c not in t.columns:
            t[c] = ""
    t["objective"] = t["objective"].fillna("").astype(str).str.capitalize()
    t["normalization"] = t["normalization"].fillna("").astype(str).str.capitalize()
    w = t.pivot_table(index=["method", "objective", "normalization"], columns="metric", values="value",
                      aggfunc="first").reset_index()
    w.columns.name = None
    return w[["method", "objective", "normalization"] + [m for m in ("AD", "AG", "AI") if m in w.columns]]


# --------------------------------------------------------------------------------------- figures
def maps_for(es: EvalSet, methods: Mapping, n: int, cfg: Mapping) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """Images, ``{label: (n,H,W)}`` maps and targets of the first ``n`` images of an eval set, read from
    the same map cache as the tables (a figure never recomputes a map a table already has)."""
    from .store import MapCache

    cache = MapCache(_eval_key(cfg, es), root=cache_dir() / "maps" / "02_opti_cam")
    _, maps = evaluate(es.model, es.data, [(m.split(":")[0], dict(o)) for m, o in methods.items()], [],
                       batch_size=int(cfg.get("batch_size", 8)), model_name=es.name, dataset_name=es.dataset,
                       target="label", map_cache=cache, keep_maps=True)
    n = min(int(n), len(es.data))
    data = es.data[list(range(n))]
    t = resolve_targets(es.model, es.model.xaikit.normalize(data.images), data.labels, "label")
    return data.images, {label(m): v[:n] for m, v in maps.items()}, t


def row_titles(es: EvalSet, images_x: torch.Tensor, labels: torch.Tensor) -> list[str]:
    pred = predict(es.model, es.model.xaikit.normalize(images_x))
    inf = es.model.xaikit
    out = []
    for lab, p in zip(labels.tolist(), pred.tolist()):
        gt = inf.short_name(lab, 18) if isinstance(lab, int) and lab >= 0 else "—"
        out.append(f"GT: {gt}\npred: {inf.short_name(p, 18)}")
    return out


def saliency_figure(cfg, es: EvalSet, methods: Sequence[str], n: int):
    """Figure 2.2: the photos (rows) explained by every method (columns)."""
    from ..reports.figures import saliency_grid

    imgs, maps, t = maps_for(es, _methods(methods, cfg), n, cfg)
    labels = es.data.labels[: imgs.shape[0]]
    return saliency_grid(imgs, maps, row_titles=row_titles(es, imgs, labels),
                         suptitle=f"{es.name}: saliency maps (target = ground truth where known)")


def failure_figure(cfg, es: EvalSet, n: int = 3):
    """Figure 2.3: the ``n`` images where Score-CAM gains most over Opti-CAM on insertion/deletion
    (gain = I_Score − I_Opti + D_Opti − D_Score, in AUC points; negative where Opti-CAM is better),
    with both maps and their insertion and deletion curves."""
    import matplotlib.pyplot as plt

    from .. import metrics as M
    from ..reports.figures import curves, overlay, saliency_colorbar

    steps = int(cfg.get("insertion_steps", 224))
    meths = _methods(["scorecam", "opticam"], cfg)
    imgs, maps, t = maps_for(es, meths, len(es.data), cfg)
    x = es.model.xaikit.normalize(imgs)
    res = {}
    for m, s in maps.items():
        res[m] = (M.insertion(es.model, x, s, t, steps=steps, return_curves=True),
                  M.deletion(es.model, x, s, t, steps=steps, return_curves=True))
    gap = (res["Score-CAM"][0]["auc"] - res["Opti-CAM"][0]["auc"]) + (res["Opti-CAM"][1]["auc"] - res["Score-CAM"][1]["auc"])
    pick = gap.argsort(descending=True)[:n].tolist()
    fig, axes = plt.subplots(len(pick), 4, figsize=(11.6, 2.6 * len(pick) + 0.4), squeeze=False,
                             constrained_layout=True)
    titles = row_titles(es, imgs[pick], es.data.labels[pick])
    handle = None
    for r, i in enumerate(pick):
        for c, m in enumerate(("Score-CAM", "Opti-CAM")):
            ins, dele = res[m][0]["auc"][i] * 100, res[m][1]["auc"][i] * 100
            handle = overlay(axes[r, c], imgs[i], maps[m][i], title=f"{m}  I={ins:.1f} D={dele:.1f}")
        axes[r, 0].set_ylabel(titles[r], fontsize=8)
        curves(axes[r, 2], {m: res[m][0]["curves"][i] for m in maps},
               title=f"insertion (Score-CAM gain {float(gap[i]) * 100:+.1f})", legend=True)
        curves(axes[r, 3], {m: res[m][1]["curves"][i] for m in maps}, title="deletion", legend=True)
    saliency_colorbar(fig, handle, axes[:, :2], shrink=0.6, fraction=0.04)
    fig.suptitle(f"{es.name}: the {len(pick)} images where Score-CAM gains most over Opti-CAM on insertion/deletion "
                 "(gain = ΔI − ΔD, AUC points)", fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------- claims
def claims(t21: pd.DataFrame, t26: pd.DataFrame, t28: pd.DataFrame, fake_tol: float = 5.0) -> dict:
    """The chapter's qualitative claims, evaluated on the reproduced tables."""
    from .common import best

    def col(df, m):
        return f"{m} reproduced" if f"{m} reproduced" in df.columns else m

    fake = t21[t21.method == "Fake-CAM"]
    loc_metrics = [("OM", False), ("LE", False), ("F1", True), ("BA", True), ("SP", True), ("EP", True),
                   ("SM", False)]
    loc_wins = sum("Opti-CAM" in best(t26, m, hi) for m, hi in loc_metrics)
    op = t28[t28.method == "Opti-CAM"]
    mask = op[op.objective == "Mask"].set_index("normalization")
    diff = op[op.objective == "Diff"].set_index("normalization")
    return {
        "Opti-CAM has the best AD (excluding Fake-CAM)": set(best(t21, "AD", False)) == {"Opti-CAM"},
        "Opti-CAM has the best AG (excluding Fake-CAM)": set(best(t21, "AG", True)) == {"Opti-CAM"},
        f"Fake-CAM has near-zero AD (< {fake_tol}%)": bool((fake[col(t21, "AD")] < fake_tol).all()),
        f"Fake-CAM has near-zero AG (< {fake_tol}%)": bool((fake[col(t21, "AG")] < fake_tol).all()),
        "Opti-CAM does not win most localization metrics": loc_wins < len(loc_metrics) / 2,
        "Mask beats Diff in AG for every normalization": bool(
            (mask[col(t28, "AG")] > diff[col(t28, "AG")].reindex(mask.index)).all()),
    }
