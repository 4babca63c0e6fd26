"""Thesis chapter 4 (interpretable gradients): Tables 4.1-4.3 and Figures 4.2-4.3 as functions.

Every model is trained with :func:`xaikit.training.interpretable.train_interpretable` (Algorithm 3,
L = L_C + lambda * L_R, eq. 4.3-4.8; ``lam = 0`` is standard training) and cached by its full
configuration under ``<cache>/interpretable`` (the loop's own checkpoint: a rerun loads it, a
longer run extends it). Explanations are scored with AD/AG/AI (eq. 1.10, 1.11, 2.8) and
insertion/deletion AUC on the first ``images`` test images, through the chapter's :class:`Study`.

``ci``/``default``: synthetic 32 px data and xaikit's CIFAR-style ResNet-18 / MobileNet-V2 trained on
a CPU budget; ``full``: CIFAR-100 from ``cifar_root`` with the §4.3.1 schedule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch

from .. import models
from .. import published as P
from ..config import cache_dir
from ..core.devices import model_device, runs_on_model
from ..data import folders
from ..data.base import load_batch
from ..data.synthetic import synthetic
from ..errors import ConfigError
from ..reports.figures import saliency_grid
from ..attributors.guided import guided_gradient
from ..training.grouped_conv import grouped_convs
from ..training.interpretable import step_cost, train_interpretable
from .common import dataset_root, rows_for, scene
from .params import ChapterParams, param
from .store import config_hash
from .study import (SPREAD, EvalSet, Study, combine, compare, hold_per_image, keep_per_image, label, means, per_image,
                    proportion_halfwidth, row_ahead)

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
SALIENCY = ["AD", "AG", "AI", "insertion", "deletion"]


@dataclass
class Params(ChapterParams):
    """Parameters of notebooks/04_interpretable_gradients.ipynb (defaults: the ``ci`` profile)."""

    dataset: str = param("synthetic", "synthetic, or cifar100 (full)")
    normalization: str = param("half", "network input normalization: half (mean and std 0.5) or cifar100 (the "
                                       "CIFAR-100 training set's per-channel mean and std, as pytorch-cifar100; full)")
    rotate: float = param(0.0, "degrees of the training RandomRotation after crop and flip (the thesis' recipe, "
                               "pytorch-cifar100: 15; full)")
    cifar_root: str = param("", "CIFAR-100 python folder (full)")
    num_classes: int = param(10, "classes of the data set (CIFAR-100: 100)")
    image_size: int = param(32, "image size (px)")
    synthetic_scene: dict = param({}, "scene options of the synthetic data (xk.data.synthetic.HARD; {}: plain "
                                      "textured scenes)")
    train_images: int = param(64, "training images")
    test_images: int = param(64, "test images")
    models: list[str] = param(["resnet18_cifar"], "architectures trained")
    arch_options: dict = param({"resnet18_cifar": {"width": 8}, "mobilenetv2_cifar": {"width_mult": 0.25}},
                               "architecture options per model")
    epochs: int = param(1, "training epochs (the thesis: 200)")
    lr: float = param(0.05, "learning rate")
    milestones: list[int] = param([], "epochs where the learning rate is multiplied by gamma")
    gamma: float = param(0.2, "learning-rate factor at each milestone")
    batch_size: int = param(32, "training batch size")
    warmup_epochs: int = param(0, "linear warm-up epochs")
    max_steps: int | None = param(None, "cap on steps per epoch (quick runs)")
    lambdas: dict = param({"resnet18_cifar": 1.0, "mobilenetv2_cifar": 1.0}, "Table 4.1's λ per model")
    errors: list[str] = param(["cosine", "hi"], "error functions E of Table 4.2")
    error_lambda: float = param(1.0, "λ of Table 4.2 (every error function without an entry in error_lambdas)")
    error_lambdas: dict = param({}, "λ of Table 4.2 per error function, where one λ cannot fit all: MAE and MSE "
                                    "of input gradients are orders of magnitude smaller than cosine "
                                    "(default profile: {mae: 1.0e4, mse: 1.0e7}, so that λ·E is about as large as cosine's at λ 1)")
    lambda_sweep: list[float] = param([1.0], "λ values of Table 4.3")
    methods: list[str] = param(METHODS, "CAM methods of Table 4.1")
    images: int = param(8, "test images explained")
    eval_batch: int = param(8, "images per evaluation batch")
    insertion_steps: int = param(16, "insertion / deletion steps")
    chunk: int | None = param(None, "forward passes per chunk of the perturbation methods; None: from the image size")
    figure_images: int = param(2, "rows of Figures 4.2 and 4.3")
    cost_batch: int = param(8, "batch of the step-cost measurement")
    cost_repeats: int = param(1, "repeats of the step-cost measurement")
    accuracy_tolerance: float = param(5.0, "points of top-1 the regularized model may lose (claims)")


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
def datasets(cfg: Params):
    """``(train, test)`` datasets of the parameters: synthetic (``dataset="synthetic"``) or CIFAR-100."""
    if cfg.dataset == "synthetic":
        common = dict(num_classes=cfg.num_classes, size=cfg.image_size, seed=cfg.seed, **scene(cfg))
        return (synthetic(cfg.train_images, split="train", **common), synthetic(cfg.test_images, split="test", **common))
    if cfg.dataset == "cifar100":
        if not cfg.cifar_root:
            raise ConfigError("dataset='cifar100' needs cifar_root: the folder holding CIFAR-100's python "
                              "pickles (cifar-100-python/{train,test,meta}); see data/README.md")
        root = dataset_root(cfg, "cifar_root")
        return (folders.cifar100(root, "train", size=cfg.image_size), folders.cifar100(root, "test", size=cfg.image_size))
    raise ConfigError(f"dataset={cfg.dataset!r}: use 'synthetic' or 'cifar100'")


# ------------------------------------------------------------------------------------ training
def _train_config(cfg: Params, arch: str, lam: float, error: str) -> dict:
    return dict(arch=arch, arch_options=dict(cfg.arch_options.get(arch, {})), dataset=cfg.dataset,
                num_classes=cfg.num_classes, image_size=cfg.image_size, train_images=cfg.train_images,
                test_images=cfg.test_images, seed=cfg.seed, lam=float(lam), error=error if lam else "none",
                epochs=cfg.epochs, lr=cfg.lr, milestones=[int(m) for m in cfg.milestones], gamma=cfg.gamma,
                batch_size=cfg.batch_size, warmup_epochs=cfg.warmup_epochs, max_steps=cfg.max_steps,
                # recorded only when not the default, so the models cached before these options keep their keys
                **({"normalization": cfg.normalization} if cfg.normalization != "half" else {}),
                **({"rotate": float(cfg.rotate)} if cfg.rotate else {}),
                **({"scene": scene(cfg)} if cfg.synthetic_scene and cfg.dataset == "synthetic" else {}))


#: pytorch-cifar100 (weiaicunzai) conf/global_settings.py CIFAR100_TRAIN_MEAN / CIFAR100_TRAIN_STD
CIFAR100_MEAN = (0.5070751592371323, 0.48654887331495095, 0.4409178433670343)
CIFAR100_STD = (0.2673342858792401, 0.2564384629170883, 0.27615047132568404)


def train(cfg: Params, arch: str, lam: float, error: str = "cosine", data=None) -> Trained:
    """Train (or load from the cache) ``arch`` with L = L_C + lam * L_R(error) (Algorithm 3)."""
    tc = _train_config(cfg, arch, lam, error)
    tr, te = data if data is not None else datasets(cfg)
    torch.manual_seed(tc["seed"])  # seeded initialisation
    model = models.load(arch, weights="random", num_classes=tc["num_classes"], input_size=tc["image_size"],
                        class_names=getattr(tr, "class_names", None), **tc["arch_options"])
    # a regularized model with grouped convolutions trains through the batched double backward (training.
    # grouped_conv), whose rounding differs from PyTorch's: its key says so (the others keep theirs)
    key = config_hash("ch4-train", {**tc, **({"double_backward": "grouped"} if lam and grouped_convs(model) else {})})
    if cfg.normalization == "cifar100":
        model.xaikit.mean, model.xaikit.std = CIFAR100_MEAN, CIFAR100_STD
    elif cfg.normalization != "half":
        raise ConfigError(f"normalization={cfg.normalization!r}: use 'half' or 'cifar100'")
    ckpt = cache_dir() / "interpretable" / f"{arch}-{key}.pt"
    hist = train_interpretable(model, tr, te, lam=tc["lam"], error=error, epochs=tc["epochs"], lr=tc["lr"],
                               milestones=tc["milestones"], gamma=tc["gamma"], batch_size=tc["batch_size"],
                               warmup_epochs=tc["warmup_epochs"], seed=tc["seed"], device=cfg.torch_device,
                               checkpoint=ckpt, max_steps=tc["max_steps"], rotate=float(cfg.rotate))
    model.eval()
    return Trained(arch, float(lam), error if lam else "none", model, hist, key)


class Zoo:
    """Trains each (arch, lambda, error) once per notebook session and reuses it across tables; holds the
    chapter's :class:`Study` (``zoo.study``)."""

    def __init__(self, study: Study):
        self.study = study
        self.cfg: Params = study.cfg
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
        if arch not in self.cfg.lambdas:
            raise ConfigError(f"lambdas has no entry for {arch!r}: give the Table 4.1 lambda per model, "
                              f"e.g. lambdas={{'{arch}': 0.0075}}")
        return float(self.cfg.lambdas[arch])

    def eval_set(self, t: Trained) -> EvalSet:
        """The trained model with the first ``images`` test images."""
        te = self.data[1]
        data = load_batch(te, list(range(min(self.cfg.images, len(te)))))
        return EvalSet(f"{t.arch}@{t.key}", t.model, data, self.cfg.dataset)


# ------------------------------------------------------------------------------------ evaluation
def _rows(zoo: Zoo, t: Trained, methods: Sequence[str]) -> pd.DataFrame:
    """Per-method means of AD/AG/AI/insertion/deletion on model ``t``, with its top-1 (one row per method)."""
    cfg = zoo.cfg
    chunk = {} if not cfg.chunk else {"batch_size": int(cfg.chunk)}
    steps = {"steps": cfg.insertion_steps}
    f = zoo.study.evaluate(zoo.eval_set(t), rows_for(methods, {"scorecam": chunk, "ablationcam": chunk}),
                           ["recognition", "insertion", "deletion"], batch_size=cfg.eval_batch,
                           metric_options={"insertion": steps, "deletion": steps}, tag="ch4")
    f = f.replace({"metric": {"I": "insertion", "D": "deletion"}})
    wide = means(f, SALIENCY, by=("method",))
    wide = wide.set_index("method").reindex([m for m in methods if m in set(wide.method)]).reset_index()
    # top-1 over the test images (a training-log number: its interval from the hit count and n)
    n_test = t.history["epochs"][-1].get("test_n") or len(datasets(cfg)[1])
    out = wide.assign(model=t.arch, regularizer=t.regularizer, lam=t.lam, top1=t.top1,
                      **{f"top1 {SPREAD}": proportion_halfwidth(t.top1, n_test)})
    # the per-image values under the shown table's keys (side_by_side): the claims pair two models image by image
    shown = f.assign(method=f.method.map(mlabel), model=t.arch, regularizer=REG_LABELS.get(t.regularizer, t.regularizer),
                     **{"λ": t.lam})
    return keep_per_image(out, shown, SALIENCY, by=("model", "regularizer", "λ", "method"), relabel=False)


def _stack(rows: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Rows of several trained models (:func:`_rows`) as one frame, with their per-image values."""
    return hold_per_image(pd.concat(rows, ignore_index=True), [per_image(r) for r in rows])


def side_by_side(rows: pd.DataFrame, pid: str, match_lambda: bool = False) -> pd.DataFrame:
    """Reproduced rows (:func:`_rows`) next to the published numbers of the same (paper model, regularizer,
    method); top-1 is method-independent (Table 4.1 prints it on its own rows, ``method='none'``); with
    ``match_lambda`` the published λ must equal ours (Table 4.3), else the paper's λ is shown beside ours."""
    pub = P.table(pid)
    r = rows.reset_index(drop=True).assign(**{"paper model": rows.model.map(lambda m: PAPER_MODEL.get(m, m)).values,
                                              "reg": rows.regularizer.map(lambda g: PAPER_REG.get(g, g)).values,
                                              "λ": rows.lam.values})
    keys = {"paper model": "model", "reg": "regularizer", "method": "method"}
    if match_lambda:
        keys["λ"] = "lambda"
    spread = [c for c in r.columns if c == "n" or c.endswith(f" {SPREAD}")]
    sal = compare(r[list(keys) + spread + SALIENCY], pid, keys, SALIENCY, relabel=None)
    per_method_top1 = not (pub[pub.metric == "top1"].method == "none").all()
    top_cols = list(keys) + ["top1"] + ([f"top1 {SPREAD}"] if f"top1 {SPREAD}" in r.columns else [])
    top = compare((r if per_method_top1 else r.assign(method="none"))[top_cols], pid, keys, ["top1"], relabel=None)
    out = pd.DataFrame({"model": r.model, "paper model": r["paper model"],
                        "regularizer": r.regularizer.map(lambda g: REG_LABELS.get(g, g)), "λ": r["λ"]})
    if not match_lambda and "lambda" in pub.columns:
        lam = {(m, g): float(v) for m, g, v in pub[["model", "regularizer", "lambda"]].drop_duplicates().itertuples(index=False)}
        out["paper λ"] = [lam.get((pm, g), float("nan")) for pm, g in zip(r["paper model"], r["reg"])]
    out["method"] = r.method.map(mlabel)
    # n and each metric's 95 % half-width (study.means) beside its mean, as every chapter's tables
    shown = ([c for c in ("n",) if c in sal.columns]
             + [c for m in SALIENCY for c in (f"{m} published", f"{m} reproduced", f"{m} {SPREAD}") if c in sal.columns])
    out = pd.concat([out, top[[c for c in ("top1 published", "top1 reproduced", f"top1 {SPREAD}") if c in top]],
                     sal[shown]], axis=1)
    # metrics to 2 decimals; λ as given (the thesis' 0.0075 is not 0.01)
    out = out.round({c: 2 for c in out.columns if c.endswith((" published", " reproduced", f" {SPREAD}"))})
    out.attrs.update(published_id=pid, published_empty=top.attrs["published_empty"] + sal.attrs["published_empty"],
                     directions={**top.attrs.get("directions", {}), **sal.attrs.get("directions", {})})
    return hold_per_image(out, [per_image(rows)])


# ------------------------------------------------------------------------------------ tables
def table_41(zoo: Zoo, archs: Sequence[str], methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """Table 4.1: baseline vs cosine regularization (lambda per model), every CAM method."""
    rows = [_rows(zoo, t, methods) for arch in archs
            for t in (zoo.baseline(arch), zoo.get(arch, zoo.table41_lambda(arch), "cosine"))]
    return side_by_side(_stack(rows), "thesis:4.1")


def table_42(zoo: Zoo, arch: str, errors: Sequence[str], lam: float, method: str = "gradcam",
             lambdas: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Table 4.2: choice of the error function E (eq. 4.5-4.8), Grad-CAM: each at ``lambdas[E]`` where given,
    else at ``lam`` (the thesis uses one λ; the errors' scales differ by orders of magnitude, so at our scale
    one λ leaves MAE and MSE without effect -- the λ column says which was used)."""
    lams = dict(lambdas or {})
    unknown = sorted(set(lams) - set(errors))
    if unknown:
        raise ConfigError(f"error_lambdas names error function(s) {unknown} that are not in errors={list(errors)}")
    rows = [_rows(zoo, zoo.baseline(arch), [method])]
    rows += [_rows(zoo, zoo.get(arch, float(lams.get(e, lam)), e), [method]) for e in errors]
    return side_by_side(_stack(rows), "thesis:4.2")


def table_43(zoo: Zoo, arch: str, lambdas: Sequence[float], method: str = "gradcam") -> pd.DataFrame:
    """Table 4.3: the regularization coefficient lambda (cosine), Grad-CAM; published cells are
    filled where our lambda is one of the thesis' values."""
    rows = [_rows(zoo, zoo.baseline(arch), [method])]
    rows += [_rows(zoo, zoo.get(arch, lam, "cosine"), [method]) for lam in lambdas if float(lam) != 0]
    return side_by_side(_stack(rows), "thesis:4.3", match_lambda=True)


@runs_on_model("x01", "y", like="x01")
def gradients(model, x01: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard dL_C/dx and guided d_G L_C/dx (the teacher of eq. 4.3) of a model in eval mode, on the
    device of ``x01`` (computed where the model lives)."""
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
    """Every model trained in this session: accuracy, final L_R and λ·L_R (its weight in the loss),
    gradient/guided alignment on the evaluation images, training time."""
    out = []
    for (arch, lam, err), t in zoo._models.items():
        data = zoo.eval_set(t).data
        g, gg = gradients(t.model, data.images, data.labels)
        ep = t.history["epochs"]
        out.append({"model": arch, "regularizer": REG_LABELS.get(t.regularizer, t.regularizer), "λ": lam,
                    "epochs": len(ep), "top1": t.top1, "final train L_C": ep[-1]["train_ce"],
                    "final train L_R": ep[-1]["train_reg"] if lam else float("nan"),
                    # what the regularizer weighs in the loss: MAE/MSE's L_R is tiny, λ·L_R is not
                    "final train λ·L_R": lam * ep[-1]["train_reg"] if lam else float("nan"),
                    "cos(∇L, guided ∇L) on test": float(alignment(g, gg).mean()),
                    "train time (s)": sum(e["time_s"] for e in ep)})
    return pd.DataFrame(out).round(6)


def cost_table(zoo: Zoo, archs: Sequence[str], batch: int = 32, repeats: int = 3) -> pd.DataFrame:
    """Wall time of one regularized step (Algorithm 3: five passes) vs a plain step (two passes)."""
    tr = zoo.data[0]
    b = load_batch(tr, list(range(min(batch, len(tr)))))
    out = []
    for arch in archs:
        t = zoo.baseline(arch)
        b_dev = b.to(model_device(t.model))  # one move per batch (core.devices)
        c = step_cost(t.model, t.model.xaikit.normalize(b_dev.images), b_dev.labels, lam=1.0, error="cosine",
                      repeats=repeats)
        t.model.eval()
        out.append({"model": arch, "batch": c["batch_size"], "plain step (s)": c["plain_s"],
                    "regularized step (s)": c["regularized_s"], "ratio": c["ratio"],
                    "passes plain": c["passes_plain"], "passes regularized": c["passes_regularized"]})
    return pd.DataFrame(out).round(3)


# ------------------------------------------------------------------------------------ figures
def _grad_image(g: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """(B,3,H,W) gradients -> (B,H,W) magnitudes (max |.| over channels) scaled to [0,1] by each
    image's ``q`` quantile (the usual gradient visualisation)."""
    m = g.abs().amax(1)
    s = torch.quantile(m.flatten(1), q, dim=1).clamp_min(1e-20)[:, None, None]
    return (m / s).clamp(0, 1)


def _titles(t: Trained, images01, labels) -> list[str]:
    inf = t.model.xaikit
    return [f"GT: {inf.short_name(int(v), 14)}" for v in labels.tolist()]


def gradient_figure(zoo: Zoo, arch: str, lam: float, n: int = 4):
    """Figure 4.2: input gradients of the baseline (standard and guided) and of the regularized
    model; titles give each gradient's cosine similarity with its model's guided gradient."""
    base, reg = zoo.baseline(arch), zoo.get(arch, lam, "cosine")
    data = zoo.eval_set(base).data
    n = min(n, len(data))
    x, y = data.images[:n], data.labels[:n]
    g0, gg0 = gradients(base.model, x, y)
    g1, gg1 = gradients(reg.model, x, y)
    cols = [("standard ∇x L, baseline", g0, alignment(g0, gg0)), ("guided ∇x L, baseline", gg0, None),
            (f"standard ∇x L, cosine λ={lam:g}", g1, alignment(g1, gg1)),
            (f"guided ∇x L, cosine λ={lam:g}", gg1, None)]
    fig, axes = plt.subplots(n, len(cols) + 1, figsize=(2.0 * (len(cols) + 1) + 0.6, 2.0 * n + 0.5),
                             squeeze=False, constrained_layout=True)
    titles = _titles(base, x, y)
    h = None
    for i in range(n):
        axes[i, 0].imshow(x[i].permute(1, 2, 0).clamp(0, 1).as_subclass(torch.Tensor).numpy())
        axes[i, 0].set_ylabel(titles[i], fontsize=8)
        for j, (name, g, cos) in enumerate(cols, start=1):
            h = axes[i, j].imshow(_grad_image(g[i:i + 1])[0].as_subclass(torch.Tensor).numpy(), cmap="gray",
                                  vmin=0, vmax=1)
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
    (target = ground truth), from the tables' map cache."""
    maps = {}
    x01 = y = None
    for tag, t in (("baseline", zoo.baseline(arch)), (f"λ={lam:g}", zoo.get(arch, lam, "cosine"))):
        x01, got, _ = zoo.study.maps(zoo.eval_set(t), rows_for(methods), n)
        y = zoo.eval_set(t).data.labels[: x01.shape[0]]
        for m, v in got.items():
            maps[(m, tag)] = v
    ordered = {f"{mlabel(m)}\n{tag}": maps[(m, tag)] for m in methods for tag in ("baseline", f"λ={lam:g}")}
    return saliency_grid(x01, ordered, row_titles=_titles(zoo.baseline(arch), x01, y), size=1.6,
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
        ad_gc.append(row_ahead(t41, "AD", {"model": model, "regularizer": REG_LABELS["cosine"], "method": "Grad-CAM"},
                               {"model": model, "regularizer": REG_LABELS["none"], "method": "Grad-CAM"}, higher=False)
                     if len(bg) and len(cg) else False)
        ad_mean.append(c["AD reproduced"].mean() < b["AD reproduced"].mean())
    col = "cos(∇L, guided ∇L) on test"
    aligned = []
    for model in dict.fromkeys(r.model):
        tm = training[training.model == model]
        b = tm[tm["regularizer"] == REG_LABELS["none"]][col]
        c = tm[tm["regularizer"] == REG_LABELS["cosine"]]
        aligned.append(bool(len(b) and len(c) and (c[col] > b.iloc[0]).all()))
    return {
        f"cosine regularization keeps top-1 accuracy within {tol:g} points of the baseline (every model)": all(acc),
        "cosine regularization lowers Grad-CAM AD (every model)": combine(*ad_gc),
        "cosine regularization lowers AD averaged over the five CAM methods (every model)": all(ad_mean),
        "regularized input gradients are closer (cosine) to guided gradients than the baseline's": all(aligned),
    }
