"""Thesis chapter 4 (interpretable gradients): Tables 4.1-4.3 and Figures 4.2-4.3 as functions.

Every model is trained with :func:`xaikit.training.interpretable.train_interpretable` (Algorithm 3,
L = L_C + lambda * L_R, eq. 4.3-4.8; ``lam = 0`` is standard training) and cached by its full
configuration under ``cache_dir()/interpretable`` (the loop's own checkpoint: a rerun loads it, a
longer run extends it).  Explanations are scored with AD/AG/AI (eq. 1.10, 1.11, 2.8) and
insertion/deletion AUC on the first ``images`` test images; per-image results go to a results store.

``ci``/``default``: synthetic 32 px data and xaikit's CIFAR-style ResNet-18 / MobileNet-V2 trained on
a CPU budget; ``full``: CIFAR-100 from ``cifar_root`` with the §4.3.1 schedule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pandas as pd
import torch

from ..config import cache_dir
from ..core.devices import back, on_model, runs_on_model, to_device
from ..core.targets import logits_of, predict, resolve_targets
from ..errors import ConfigError
from .common import dataset_root, label
from .store import ResultStore, config_hash

METHODS = ["gradcam", "gradcampp", "scorecam", "ablationcam", "xgradcam"]
#: the thesis calls XGrad-CAM "Axiom-CAM"
METHOD_LABELS = {"xgradcam": "Axiom-CAM"}
#: our architecture -> the published table's model
PAPER_MODEL = {"resnet18_cifar": "resnet18", "mobilenetv2_cifar": "mobilenetv2_100"}
#: our error-function name -> the published table's regularizer name
PAPER_REG = {"none": "none", "cosine": "cosine", "hi": "histogram", "hi_thesis": "histogram",
             "mae": "mae", "mse": "mse"}
REG_LABELS = {"none": "none (baseline)", "cosine": "cosine (4.7)", "hi": "histogram (4.8)",
              "hi_thesis": "histogram, as printed (4.8)", "mae": "MAE (4.5)", "mse": "MSE (4.6)"}
METRICS = ["top1", "AD", "AG", "AI", "insertion", "deletion"]


def mlabel(method: str) -> str:
    return METHOD_LABELS.get(method, label(method))


@dataclass
class Trained:
    """A model trained at one (arch, lambda, error) with its training history."""

    arch: str
    lam: float
    error: str
    model: torch.nn.Module
    history: dict
    key: str
    extra: dict = field(default_factory=dict)

    @property
    def regularizer(self) -> str:
        return "none" if self.lam == 0 else self.error

    @property
    def top1(self) -> float:
        return float(self.history["epochs"][-1].get("test_acc", float("nan")))


# ------------------------------------------------------------------------------------ data
def datasets(cfg: Mapping):
    """``(train, test)`` datasets of the profile: synthetic (``dataset="synthetic"``) or CIFAR-100."""
    from ..data import folders
    from ..data.synthetic import synthetic

    name = str(cfg.get("dataset", "synthetic"))
    size = int(cfg.get("image_size", 32))
    if name == "synthetic":
        common = dict(num_classes=int(cfg.get("num_classes", 10)), size=size, seed=int(cfg.get("seed", 0)))
        return (synthetic(int(cfg.get("train_images", 1000)), split="train", **common),
                synthetic(int(cfg.get("test_images", 200)), split="test", **common))
    if name == "cifar100":
        root = cfg.get("cifar_root")
        if not root:
            raise ConfigError("dataset='cifar100' needs cifar_root: the folder holding CIFAR-100's python "
                              "pickles (cifar-100-python/{train,test,meta}); see data/README.md")
        root = dataset_root(cfg, "cifar_root")
        return folders.cifar100(root, "train", size=size), folders.cifar100(root, "test", size=size)
    raise ConfigError(f"dataset={name!r}: use 'synthetic' or 'cifar100'")


# ------------------------------------------------------------------------------------ training
def _train_config(cfg: Mapping, arch: str, lam: float, error: str) -> dict:
    opts = dict((cfg.get("arch_options") or {}).get(arch, {}))
    return dict(arch=arch, arch_options=opts, dataset=str(cfg.get("dataset", "synthetic")),
                num_classes=int(cfg.get("num_classes", 10)), image_size=int(cfg.get("image_size", 32)),
                train_images=int(cfg.get("train_images", 1000)), test_images=int(cfg.get("test_images", 200)),
                seed=int(cfg.get("seed", 0)), lam=float(lam), error=error if lam else "none",
                epochs=int(cfg.get("epochs", 1)), lr=float(cfg.get("lr", 0.1)),
                milestones=[int(m) for m in (cfg.get("milestones") or [])], gamma=float(cfg.get("gamma", 0.2)),
                batch_size=int(cfg.get("batch_size", 128)), warmup_epochs=int(cfg.get("warmup_epochs", 1)),
                max_steps=cfg.get("max_steps"))


def train(cfg: Mapping, arch: str, lam: float, error: str = "cosine", data=None) -> Trained:
    """Train (or load from the cache) ``arch`` with L = L_C + lam * L_R(error) (Algorithm 3)."""
    from .. import models
    from ..training.interpretable import train_interpretable

    tc = _train_config(cfg, arch, lam, error)
    key = config_hash("ch4-train", tc)
    tr, te = data if data is not None else datasets(cfg)
    torch.manual_seed(tc["seed"])  # seeded initialisation
    model = models.load(arch, weights="random", num_classes=tc["num_classes"], input_size=tc["image_size"],
                        class_names=getattr(tr, "class_names", None), **tc["arch_options"])
    dev = cfg.get("device") or "cpu"
    ckpt = cache_dir() / "interpretable" / f"{arch}-{key}.pt"
    hist = train_interpretable(model, tr, te, lam=tc["lam"], error=error, epochs=tc["epochs"], lr=tc["lr"],
                               milestones=tc["milestones"], gamma=tc["gamma"], batch_size=tc["batch_size"],
                               warmup_epochs=tc["warmup_epochs"], seed=tc["seed"], device=dev,
                               checkpoint=ckpt, max_steps=tc["max_steps"])
    model.eval()
    return Trained(arch, float(lam), error if lam else "none", model, hist, key)


class Zoo:
    """Trains each (arch, lambda, error) once per notebook session and reuses it across tables."""

    def __init__(self, cfg: Mapping):
        self.cfg = cfg
        self._data = None
        self._models: dict = {}

    @property
    def data(self):
        if self._data is None:
            self._data = datasets(self.cfg)
        return self._data

    def get(self, arch: str, lam: float, error: str = "cosine") -> Trained:
        k = (arch, float(lam), error if lam else "none")
        if k not in self._models:
            self._models[k] = train(self.cfg, arch, lam, error, data=self.data)
        return self._models[k]

    def baseline(self, arch: str) -> Trained:
        return self.get(arch, 0.0)

    def table41_lambda(self, arch: str) -> float:
        lams = self.cfg.get("lambdas") or {}
        if arch not in lams:
            raise ConfigError(f"lambdas has no entry for {arch!r}: give the Table 4.1 lambda per model, "
                              f"e.g. lambdas={{'{arch}': 0.0075}}")
        return float(lams[arch])


# ------------------------------------------------------------------------------------ evaluation
def eval_batch(zoo: Zoo):
    from ..data.base import load_batch

    te = zoo.data[1]
    n = min(int(zoo.cfg.get("images", 8)), len(te))
    return load_batch(te, list(range(n)))


def scores(zoo: Zoo, t: Trained, methods: Sequence[str]) -> pd.DataFrame:
    """Per-image AD/AG/AI/insertion/deletion of ``methods`` on model ``t`` (results-store cached)."""
    from .chapter2 import _methods
    from .grid import evaluate

    cfg = zoo.cfg
    data = eval_batch(zoo)
    steps = int(cfg.get("insertion_steps", 32))
    meths = _methods(methods, cfg)
    mo = {"insertion": {"steps": steps}, "deletion": {"steps": steps}}
    key = config_hash("ch4-scores", t.key, list(data.names), meths, mo)
    st = ResultStore(key, root=cache_dir() / "results" / "04_interpretable_gradients",
                     meta=dict(model=t.arch, lam=t.lam, error=t.error, methods=list(meths)))
    f = evaluate(t.model, data, list(meths.items()), ["recognition", "insertion", "deletion"],
                 batch_size=int(cfg.get("eval_batch", 8)), store=st, model_name=t.arch,
                 dataset_name=str(cfg.get("dataset", "synthetic")), metric_options=mo, target="label")
    f = f.replace({"metric": {"I": "insertion", "D": "deletion"}})
    return f


def _rows(zoo: Zoo, t: Trained, methods: Sequence[str]) -> list[dict]:
    f = scores(zoo, t, methods)
    wide = f[f.metric.isin(METRICS)].pivot_table(index="method", columns="metric", values="value", aggfunc="mean")
    out = []
    for m in methods:
        if m not in wide.index:
            continue
        r = dict(model=t.arch, regularizer=t.regularizer, lam=t.lam, method=m, top1=t.top1)
        r.update({k: float(wide.loc[m, k]) for k in METRICS[1:] if k in wide.columns})
        out.append(r)
    return out


def _published(pid: str) -> pd.DataFrame:
    from .. import published as P

    return P.table(pid)


def side_by_side(rows: Sequence[dict], pid: str, match_lambda: bool = False, digits: int = 2) -> pd.DataFrame:
    """Reproduced rows next to the published numbers of the same (paper model, regularizer, method);
    with ``match_lambda`` the published lambda must equal ours (Table 4.3)."""
    pub = _published(pid)
    out = []
    for r in rows:
        pm, reg = PAPER_MODEL.get(r["model"], r["model"]), PAPER_REG.get(r["regularizer"], r["regularizer"])
        sel = pub[(pub.model == pm) & (pub.regularizer == reg)]
        if match_lambda and "lambda" in pub.columns:
            sel = sel[(sel["lambda"] - r["lam"]).abs() < 1e-12]
        row = {"model": r["model"], "paper model": pm, "regularizer": REG_LABELS.get(r["regularizer"], r["regularizer"]),
               "λ": r["lam"], "method": mlabel(r["method"])}
        if "lambda" in pub.columns and len(sel) and not match_lambda:
            row["paper λ"] = float(sel["lambda"].iloc[0])
        for m in METRICS:
            if m == "top1":
                hit = sel[sel.metric == "top1"]
            else:
                hit = sel[(sel.method == r["method"]) & (sel.metric == m)]
            row[f"{m} published"] = float(hit.value.iloc[0]) if len(hit) else float("nan")
            row[f"{m} reproduced"] = r.get(m, float("nan"))
        out.append(row)
    out = pd.DataFrame(out)
    return out.round({c: digits for c in out.columns if c.endswith(("published", "reproduced"))})


# ------------------------------------------------------------------------------------ tables
def table_41(zoo: Zoo, archs: Sequence[str], methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """Table 4.1: baseline vs cosine regularization (lambda per model), every CAM method."""
    rows = []
    for arch in archs:
        for t in (zoo.baseline(arch), zoo.get(arch, zoo.table41_lambda(arch), "cosine")):
            rows += _rows(zoo, t, methods)
    return side_by_side(rows, "thesis:4.1")


def table_42(zoo: Zoo, arch: str, errors: Sequence[str], lam: float, method: str = "gradcam") -> pd.DataFrame:
    """Table 4.2: choice of the error function E (eq. 4.5-4.8) at one lambda, Grad-CAM."""
    rows = _rows(zoo, zoo.baseline(arch), [method])
    for e in errors:
        rows += _rows(zoo, zoo.get(arch, lam, e), [method])
    return side_by_side(rows, "thesis:4.2")


def table_43(zoo: Zoo, arch: str, lambdas: Sequence[float], method: str = "gradcam") -> pd.DataFrame:
    """Table 4.3: the regularization coefficient lambda (cosine), Grad-CAM; published cells are
    filled where our lambda is one of the thesis' values."""
    rows = _rows(zoo, zoo.baseline(arch), [method])
    for lam in lambdas:
        if float(lam) != 0:
            rows += _rows(zoo, zoo.get(arch, lam, "cosine"), [method])
    return side_by_side(rows, "thesis:4.3", match_lambda=True)


@runs_on_model("x01", "y", like="x01")
def gradients(model, x01: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard dL_C/dx and guided d_G L_C/dx (the teacher of eq. 4.3) of a model in eval mode, on the
    device of ``x01`` (computed where the model lives)."""
    from ..training.guided import guided_gradient

    x = model.xaikit.normalize(x01).detach().requires_grad_(True)
    with torch.enable_grad():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        (g,) = torch.autograd.grad(loss, x)
    gg = guided_gradient(model, x.detach(), target=y, score="loss", warn=False)
    return g.detach(), gg


def alignment(g: torch.Tensor, gg: torch.Tensor) -> torch.Tensor:
    """Per-image cosine similarity <g, g'>/(|g||g'|) (minus eq. 4.7) -> (B,)."""
    a, b = g.flatten(1), gg.flatten(1)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-20)


def training_table(zoo: Zoo) -> pd.DataFrame:
    """Every model trained in this session: accuracy, final L_R, gradient/guided alignment on the
    evaluation images, training time."""
    data = eval_batch(zoo)
    rows = []
    for (arch, lam, err), t in zoo._models.items():
        g, gg = gradients(t.model, data.images, data.labels)
        ep = t.history["epochs"]
        rows.append({"model": arch, "regularizer": REG_LABELS.get(t.regularizer, t.regularizer), "λ": lam,
                     "epochs": len(ep), "top1": t.top1, "final train L_C": ep[-1]["train_ce"],
                     "final train L_R": ep[-1]["train_reg"] if lam else float("nan"),
                     "cos(∇L, guided ∇L) on test": float(alignment(g, gg).mean()),
                     "train time (s)": sum(e["time_s"] for e in ep)})
    return pd.DataFrame(rows).round(3)


def cost_table(zoo: Zoo, archs: Sequence[str], batch: int = 32, repeats: int = 3) -> pd.DataFrame:
    """Wall time of one regularized step (Algorithm 3: five passes) vs a plain step (two passes)."""
    from ..data.base import load_batch
    from ..training.interpretable import step_cost

    tr = zoo.data[0]
    b = load_batch(tr, list(range(min(batch, len(tr)))))
    rows = []
    for arch in archs:
        t = zoo.baseline(arch)
        dev = next(t.model.parameters()).device
        x = t.model.xaikit.normalize(b.images.to(dev))
        c = step_cost(t.model, x, b.labels.to(dev), lam=1.0, error="cosine", repeats=repeats)
        t.model.eval()
        rows.append({"model": arch, "batch": c["batch_size"], "plain step (s)": c["plain_s"],
                     "regularized step (s)": c["regularized_s"], "ratio": c["ratio"],
                     "passes plain": c["passes_plain"], "passes regularized": c["passes_regularized"]})
    return pd.DataFrame(rows).round(3)


# ------------------------------------------------------------------------------------ figures
def _grad_image(g: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """(B,3,H,W) gradients -> (B,H,W) magnitudes (max |.| over channels) scaled to [0,1] by each
    image's ``q`` quantile (the usual gradient visualisation)."""
    m = g.abs().amax(1)
    s = torch.quantile(m.flatten(1), q, dim=1).clamp_min(1e-20)[:, None, None]
    return (m / s).clamp(0, 1)


def _titles(t: Trained, images01, labels) -> list[str]:
    pred = predict(t.model, t.model.xaikit.normalize(images01)).tolist()
    inf = t.model.xaikit
    return [f"GT: {inf.short_name(int(l), 14)}" for l in labels.tolist()], pred


def gradient_figure(zoo: Zoo, arch: str, lam: float, n: int = 4):
    """Figure 4.2: input gradients of the baseline (standard and guided) and of the regularized
    model; titles give each gradient's cosine similarity with its model's guided gradient."""
    import matplotlib.pyplot as plt

    data = eval_batch(zoo)
    n = min(n, len(data))
    x, y = data.images[:n], data.labels[:n]
    base, reg = zoo.baseline(arch), zoo.get(arch, lam, "cosine")
    g0, gg0 = gradients(base.model, x, y)
    g1, gg1 = gradients(reg.model, x, y)
    cols = [("standard ∇x L, baseline", g0, alignment(g0, gg0)), ("guided ∇x L, baseline", gg0, None),
            (f"standard ∇x L, cosine λ={lam:g}", g1, alignment(g1, gg1)),
            (f"guided ∇x L, cosine λ={lam:g}", gg1, None)]
    fig, axes = plt.subplots(n, len(cols) + 1, figsize=(2.0 * (len(cols) + 1) + 0.6, 2.0 * n + 0.5),
                             squeeze=False, constrained_layout=True)
    titles, _ = _titles(base, x, y)
    h = None
    for i in range(n):
        axes[i, 0].imshow(x[i].permute(1, 2, 0).clamp(0, 1).numpy())
        axes[i, 0].set_ylabel(titles[i], fontsize=8)
        for j, (name, g, cos) in enumerate(cols, start=1):
            h = axes[i, j].imshow(_grad_image(g[i:i + 1])[0].numpy(), cmap="gray", vmin=0, vmax=1)
            t = (name + "\n") if i == 0 else ""
            if cos is not None:
                t += f"cos to guided = {float(cos[i]):.2f}"
            axes[i, j].set_title(t, fontsize=7.5)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=7.5)
    cb = fig.colorbar(h, ax=axes, shrink=0.8, fraction=0.03, pad=0.01)
    cb.set_label("|gradient| (max over RGB, / 99th pct)", fontsize=7)
    cb.ax.tick_params(labelsize=7)
    fig.suptitle(f"{arch}: input gradients, standard vs regularized training", fontsize=10)
    return fig


def saliency_figure(zoo: Zoo, arch: str, lam: float, methods: Sequence[str], n: int = 4):
    """Figure 4.3: CAM saliency maps of the baseline next to those of the cosine-regularized model
    (target = ground truth)."""
    from .. import attributors
    from ..reports.figures import saliency_grid
    from .chapter2 import _methods

    data = eval_batch(zoo)
    n = min(n, len(data))
    x01, y = data.images[:n], data.labels[:n]
    maps = {}
    meths = _methods(methods, zoo.cfg)
    for m, o in meths.items():
        for tag, t in (("baseline", zoo.baseline(arch)), (f"λ={lam:g}", zoo.get(arch, lam, "cosine"))):
            cam = attributors.create(m, t.model, **o)
            maps[f"{mlabel(m)}\n{tag}"] = cam(t.model.xaikit.normalize(x01), y).detach()
    titles, _ = _titles(zoo.baseline(arch), x01, y)
    return saliency_grid(x01, maps, row_titles=titles, size=1.6,
                         suptitle=f"{arch}: saliency maps, standard vs cosine-regularized training")


# ------------------------------------------------------------------------------------ claims
def claims(t41: pd.DataFrame, training: pd.DataFrame, tol: float) -> dict:
    """The chapter's robust claims on the reproduced tables: accuracy kept within ``tol`` points,
    AD improved by the cosine regularizer (Grad-CAM, and averaged over the CAM methods), and the
    regularized input gradient closer to the guided one than the baseline's."""
    r = t41.copy()
    base = r[r.regularizer == REG_LABELS["none"]]
    cos = r[r.regularizer == REG_LABELS["cosine"]]
    acc, ad_gc, ad_mean = [], [], []
    for model in dict.fromkeys(r.model):
        b, c = base[base.model == model], cos[cos.model == model]
        acc.append(abs(c["top1 reproduced"].iloc[0] - b["top1 reproduced"].iloc[0]) <= tol)
        bg, cg = b[b.method == "Grad-CAM"], c[c.method == "Grad-CAM"]
        ad_gc.append(bool(len(bg) and cg["AD reproduced"].iloc[0] < bg["AD reproduced"].iloc[0]))
        ad_mean.append(c["AD reproduced"].mean() < b["AD reproduced"].mean())
    tr = training
    col = "cos(∇L, guided ∇L) on test"
    aligned = []
    for model in dict.fromkeys(r.model):
        tm = tr[tr.model == model]
        b = tm[tm["regularizer"] == REG_LABELS["none"]][col]
        c = tm[tm["regularizer"] == REG_LABELS["cosine"]]
        aligned.append(bool(len(b) and len(c) and (c[col] > b.iloc[0]).all()))
    return {
        f"cosine regularization keeps top-1 accuracy within {tol:g} points of the baseline (every model)": all(acc),
        "cosine regularization lowers Grad-CAM AD (every model)": all(ad_gc),
        "cosine regularization lowers AD averaged over the five CAM methods (every model)": all(ad_mean),
        "regularized input gradients are closer (cosine) to guided gradients than the baseline's": all(aligned),
    }
