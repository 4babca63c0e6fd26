"""Fault audit of the reliability issue (#21): every bad input and fault it lists, run on tiny models.

Each case feeds one bad input or fault (a planted pickle, a train-mode model, a damaged results store, NaN
images, a tuple-output layer, an option out of range, a list file with ``../``, a failed notebook rerun ...)
to the library and classifies what happens:

    clear error          an xaikit.errors.XaikitError (names the problem and the fix)
    correct              the result is right (a tuple-output layer handled, a model left unchanged, ...)
    raw exception        any other exception (e.g. from deep inside torch)
    silent wrong result  a wrong value returned without an error
    code execution       a planted file ran code
    data loss            results or a report lost or never recomputed
    hang                 the case did not end within its time limit
    native abort         a subprocess died of a signal (heap corruption, segfault)

Prints one line per case and the totals, and exits 1 if any case is silent-wrong / code-execution / data-loss /
hang / native-abort or there are more than 5 raw exceptions (the issue's acceptance rule). CPU only, no
downloads, one thread, about a minute on 2 cores:

    .venv/bin/python benchmarks/faults.py              # --only 3. (cases whose id starts with "3.")  -v
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XAIKIT_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import xaikit as xk  # noqa: E402
from xaikit.errors import XaikitError  # noqa: E402

torch.set_num_threads(1)

OUTCOMES = ("clear error", "correct", "raw exception", "silent wrong result", "code execution", "data loss",
            "hang", "native abort")
FATAL = ("silent wrong result", "code execution", "data loss", "hang", "native abort")
MAX_RAW = 5
CASES: list = []
TMP = Path(tempfile.mkdtemp(prefix="xaikit-faults-"))
os.environ["XAIKIT_CACHE"] = str(TMP / "cache")  # never touch the user's caches


def case(cid: str, title: str, timeout: int = 60):
    def deco(fn):
        CASES.append((cid, title, fn, timeout))
        return fn
    return deco


class Outcome(Exception):
    def __init__(self, kind, detail):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


def wrong(detail):
    raise Outcome("silent wrong result", detail)


def expect_error(fn, *a, what="accepted", **kw):
    """Run ``fn``: an exception is classified by the runner; a return is a silent wrong result."""
    r = fn(*a, **kw)
    wrong(f"{what}: returned {_short(r)}")


def _short(r) -> str:
    if isinstance(r, torch.Tensor):
        return f"tensor{tuple(r.shape)} {r.dtype}" + (f" = {r.flatten()[:3].tolist()}" if r.numel() else "")
    s = repr(r)
    return s[:80]


def subproc(code: str, timeout: int):
    """(returncode or 'hang', stdout, stderr) of ``python -c code`` from the repository root."""
    env = dict(os.environ, OMP_NUM_THREADS="1", XAIKIT_QUIET="1", PYTHONPATH=str(ROOT))
    try:
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                           timeout=timeout, env=env, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return "hang", "", ""
    return r.returncode, r.stdout, r.stderr


# ------------------------------------------------------------------------------------------ tiny models
class TinyGAP(nn.Module):
    """conv -> ReLU -> conv(stride 2) -> ReLU (``features.3``) -> GAP -> fc; 16 px, 5 classes."""

    def __init__(self, k=6, c=5):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, k, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(k, c)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def tiny(seed=0, cls=TinyGAP):
    torch.manual_seed(seed)
    m = cls().eval()
    m.xaikit = xk.models.ModelInfo(name="tiny", num_classes=5, default_layer="features.3",
                                   feature_layer="features.3", classifier="fc", input_size=16)
    return m


class BNNet(nn.Module):
    """A small CNN with BatchNorm and dropout (GAP + linear head), 16 px, 5 classes."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.drop(self.features(x).mean((2, 3))))


def bn_net(seed=0):
    m = tiny(seed, BNNet)
    g = torch.Generator().manual_seed(seed)
    for bn in (m.features[1], m.features[4]):
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 0.1)
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
    m.xaikit = xk.models.ModelInfo(name="bnnet", num_classes=5, default_layer="features.5",
                                   feature_layer="features.5", classifier="fc", input_size=16)
    return m


_VIT = {}


def vit():
    if "m" not in _VIT:
        torch.manual_seed(0)
        _VIT["m"] = xk.models.load("vit_tiny_patch16_224", weights="random", num_classes=10, img_size=32, depth=2)
    return _VIT["m"]


def xs(n=2, size=16, seed=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def maps(n=2, size=16, seed=2):
    return torch.rand(n, size, size, generator=torch.Generator().manual_seed(seed))


def snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {n: m.training for n, m in model.named_modules()},
            {n: (p.grad, None if p.grad is None else p.grad.clone(), p.requires_grad)
             for n, p in model.named_parameters()})


def changes(model, snap) -> list:
    state, modes, grads = snap
    out = [f"state {k}" for k, v in state.items() if not torch.equal(model.state_dict()[k], v)]
    out += [f"mode {n}" for n, m in model.named_modules() if modes.get(n) != m.training]
    for n, p in model.named_parameters():
        g, val, req = grads[n]
        if p.grad is not g or p.requires_grad != req or (g is not None and not torch.equal(p.grad, val)):
            out.append(f"grad {n}")
    return out


def train_mode(model):
    model.train()
    mods = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if mods:
        mods[0].eval()  # a frozen BatchNorm inside a train-mode model must stay frozen
    first = next(model.parameters())
    first.grad = torch.full_like(first, 0.25)  # a gradient being accumulated must stay as it is
    return model


def values(r):
    if isinstance(r, dict):
        return [torch.as_tensor(v, dtype=torch.float64).flatten() for k, v in sorted(r.items())
                if isinstance(v, (torch.Tensor, float, int))]
    if hasattr(r, "maps"):
        return [r.maps.double().flatten()]
    if hasattr(r, "curves"):
        return [r.curves.double().flatten(), r.auc.double().flatten()]
    return [torch.as_tensor(r, dtype=torch.float64).flatten()]


def left_as_found(run, model_fn, x):
    """Run on a train-mode model: nothing of it may change, and the result must be the eval-mode result."""
    model = train_mode(model_fn())
    ref = copy.deepcopy(model).eval()
    snap = snapshot(model)
    got = run(model, x)
    ch = changes(model, snap)
    if ch:
        wrong(f"the model changed: {ch[:3]} ({len(ch)} in all)")
    want = run(ref, x)
    for u, v in zip(values(got), values(want)):
        if not torch.allclose(u, v, atol=1e-5, equal_nan=True):
            wrong(f"result differs from the eval-mode model's by {float((u - v).abs().nanmax()):.3g}")
    return "correct", "model unchanged (state, modes, grads); result = eval-mode result"


class Items(torch.utils.data.Dataset):
    def __init__(self, n=6, size=16, classes=5, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 3, size, size, generator=g)
        self.y = torch.arange(n) % classes

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"image": self.x[i], "label": int(self.y[i]), "boxes": torch.tensor([[2.0, 2.0, 9.0, 9.0]]),
                "box_labels": torch.tensor([int(self.y[i])]), "name": f"img{i}"}


class Planted:
    """Unpickling it without restriction runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def planted_torch(path, marker, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "payload": Planted(marker), **extra}, path)
    return path


def no_code(marker, fn, *a, **kw):
    """Run ``fn``; a marker file means the planted code ran."""
    try:
        r = fn(*a, **kw)
    finally:
        if Path(marker).exists():
            raise Outcome("code execution", f"the planted payload ran ({marker})")
    return r


def d(name) -> Path:
    p = TMP / name
    p.mkdir(parents=True, exist_ok=True)
    return p


# =============================================================== 1. code execution from files
@case("1.a", "models.load(weights=<pickle that runs code>)")
def _():
    m = d("1a") / "ran"
    no_code(m, xk.models.load, "resnet18_cifar", weights=planted_torch(d("1a") / "evil.pt", m), num_classes=2, width=8)
    wrong("planted checkpoint loaded")


@case("1.b", "small-model cache file that runs code (next run)")
def _():
    from xaikit.training import small as T

    cfg = dict(num_classes=2, size=16, n_train=8, n_test=4, epochs=1, batch_size=8, arch_kwargs={"width": 16}, seed=0)
    m = d("1b") / "ran"
    planted_torch(T.checkpoint_path(T.config("resnet18_cifar", **cfg)), m)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        no_code(m, T.train, "resnet18_cifar", **cfg)
    if not any("trained again" in str(x.message) or "evil" in str(x.message) or ".pt" in str(x.message) for x in w):
        wrong("a planted cache was replaced without saying so")
    return "correct", "refused without running it, named in a warning, retrained"


@case("1.c", "CA-Stream training checkpoint that runs code")
def _():
    from xaikit.streams import CAStream
    from xaikit.training import stream as ts

    m = d("1c") / "ran"
    planted_torch(d("1c") / "ck" / ts.CHECKPOINT, m, history=[], epoch=1)
    torch.manual_seed(0)
    net = xk.models.load("resnet18_cifar", weights="random", num_classes=2, width=16, input_size=16)
    no_code(m, ts.load_checkpoint, CAStream.wrap(net, start_stage=3, seed=0), d("1c") / "ck")
    wrong("planted stream checkpoint loaded")


@case("1.d", "interpretable-gradient training checkpoint that runs code")
def _():
    from xaikit.training.interpretable import train_interpretable

    m = d("1d") / "ran"
    ck = planted_torch(d("1d") / "evil.pt", m)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    no_code(m, train_interpretable, net, Items(8, 8, 2), None, epochs=1, checkpoint=ck, lam=0.5, error="mse",
            lr=0.05, milestones=(1,), batch_size=4, warmup_epochs=0, seed=0)
    wrong("planted checkpoint resumed")


@case("1.e", "CIFAR-100 pickle that runs code")
def _():
    from xaikit.data import folders as F

    root = d("1e") / "cifar-100-python"
    root.mkdir(exist_ok=True)
    m = d("1e") / "ran"
    (root / "test").write_bytes(pickle.dumps({b"data": Planted(m)}, protocol=4))
    (root / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"c"] * 100,
                                              b"coarse_label_names": [b"s"] * 20}))
    no_code(m, F.cifar100, d("1e"), "test")
    wrong("planted CIFAR pickle read")


@case("1.f", "map-cache file that runs code")
def _():
    from xaikit.experiments.store import MapCache

    mc = MapCache("k", root=d("1f"))
    m = d("1f") / "ran"
    planted_torch(mc._path("gradcam", ["a"], [0]), m)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = no_code(m, mc.get, "gradcam", ["a"], [0])
    if r is not None or not w:
        wrong(f"planted map cache served silently: {_short(r)}")
    return "correct", "named in a warning, removed, recomputed"


# ====================================================== 2. metrics/attributors on a train-mode model
def _sal(model, x):
    return maps(x.shape[0], x.shape[-1])


def _explainer(model):
    cam = xk.attributors.create("gradcam", model)
    return lambda xx, tt: cam(xx, tt)


METRIC_RUNS = {
    "recognition": lambda m, x: xk.metrics.recognition(m, x, _sal(m, x), 1, reduce=False),
    "insertion": lambda m, x: xk.metrics.insertion_curves(m, x, _sal(m, x), 1, steps=6),
    "deletion": lambda m, x: xk.metrics.deletion_curves(m, x, _sal(m, x), 1, steps=6),
    "overall": lambda m, x: xk.metrics.overall(m, x, _sal(m, x), 1, steps=6),
    "aopc": lambda m, x: xk.metrics.aopc(m, x, _sal(m, x), 1, patch_size=4, regions=3),
    "box_study": lambda m, x: xk.metrics.box_study(m, x, _sal(m, x), [torch.tensor([[2.0, 2, 9, 9]])] * 2, 1,
                                                  reduce=False),
    "adcc": lambda m, x: xk.metrics.adcc(m, _explainer(m), x, 1, reduce=False),
    "max_sensitivity": lambda m, x: xk.metrics.max_sensitivity(_explainer(m), x, 1, n=2, model=m),
}
for _name, _run in METRIC_RUNS.items():
    case(f"2.{_name}", f"{_name} on a train-mode BatchNorm model")(
        lambda _run=_run: left_as_found(_run, bn_net, xs()))


@case("2.evaluate", "evaluate() on a train-mode BatchNorm model")
def _():
    from xaikit.experiments.grid import evaluate

    def run(m, x):
        f = evaluate(m, Items(4), ["gradcam"], ["recognition", "insertion"],
                     metric_options={"insertion": {"steps": 6}}, batch_size=4)
        return torch.tensor(f[f.metric != "T"].value.to_numpy())
    return left_as_found(run, bn_net, None)


QUICK = {"rise": dict(n_masks=20, grid=4), "extremal": dict(max_iter=3, step=4, sigma=4.0),
         "opticam": dict(max_iter=3), "smoothgrad": dict(n=2), "integrated_gradients": dict(steps=3),
         "groupcam": dict(groups=3, blur_ksize=5, blur_sigma=2.0)}
VIT_METHODS = ("raw_attention", "rollout", "chefer", "tibav", "vit_reciprocam")


@case("2.attributors", "every attributor on a train-mode model (CNN with BatchNorm; ViT)", timeout=120)
def _():
    bad = []
    for name in xk.attributors.available():
        if name in VIT_METHODS:
            mf, x = (lambda: copy.deepcopy(vit())), torch.randn(2, 3, 32, 32)
        else:
            mf, x = bn_net, xs()
        try:
            left_as_found(lambda m, xx: xk.attributors.create(name, m, **QUICK.get(name, {})).explain(xx, 1), mf, x)
        except Outcome as o:
            bad.append(f"{name}: {o.detail}")
    if bad:
        wrong("; ".join(bad[:3]))
    return "correct", f"{len(xk.attributors.available())} methods: model unchanged, maps = eval-mode maps"


# ================================================================================== 3. result store
def _store_eval(store, metrics=("recognition",), n=6, model_name=None, methods=("gradcam",), seed=0, **kw):
    from xaikit.experiments.grid import evaluate

    return evaluate(tiny(seed), Items(n), methods, list(metrics), store=store, model_name=model_name,
                    batch_size=3, **kw)


def _vals(frame):
    f = frame[frame.metric != "T"]
    return {(r.image, r.method, r.model, r.metric): r.value for r in f.itertuples()}


@case("3.a", "a store write cut mid-line (full disk / kill) is recomputed")
def _():
    from xaikit.experiments.store import ResultStore

    st = ResultStore("a", root=d("3a"))
    ref = _vals(_store_eval(st))
    raw = st.path.read_bytes()
    st.path.write_bytes(raw[: len(raw) * 2 // 3])  # the last record(s) cut
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = _vals(_store_eval(ResultStore("a", root=d("3a"))))
    if got != ref:
        raise Outcome("data loss", f"{len(set(ref) - set(got))} of {len(ref)} values missing after the rerun")
    return "correct", "the torn record is skipped and recomputed; all values back"


@case("3.b", "a runner killed (SIGKILL) between records resumes exactly")
def _():
    code = f"""
        import os, signal, torch, sys
        sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
        import faults as F
        from xaikit.experiments.store import ResultStore
        from xaikit.experiments.grid import evaluate
        n = [0]
        def on_batch(b):
            n[0] += 1
            if n[0] == 2: os.kill(os.getpid(), signal.SIGKILL)
        evaluate(F.tiny(), F.Items(9), ["gradcam"], ["recognition"], store=ResultStore("b", root={str(d('3b'))!r}),
                 batch_size=3, on_batch=on_batch)
    """
    rc, out, err = subproc(code, 60)
    if rc != -signal.SIGKILL:
        raise Outcome("raw exception", f"setup: rc={rc} {err[-200:]}")
    from xaikit.experiments.store import ResultStore

    got = _vals(_store_eval(ResultStore("b", root=d("3b")), n=9))
    ref = _vals(_store_eval(None, n=9))
    if got != ref:
        raise Outcome("data loss", f"{len(set(ref) ^ set(got))} values differ after resuming")
    return "correct", "resumed: every value present and equal to a clean run"


@case("3.c", "a metric added on a rerun is computed")
def _():
    from xaikit.experiments.store import ResultStore

    _store_eval(ResultStore("c", root=d("3c")))
    f = _store_eval(ResultStore("c", root=d("3c")), metrics=["recognition", "insertion"],
                    metric_options={"insertion": {"steps": 4}})
    ins = f[f.metric == "I"]
    if len(ins) != 6 or ins.value.isna().any():
        raise Outcome("data loss", f"insertion rows after the rerun: {len(ins)} of 6")
    return "correct", "the record is recomputed with every metric"


@case("3.d", "a second model in the same store is computed")
def _():
    from xaikit.experiments.store import ResultStore

    _store_eval(ResultStore("d", root=d("3d")), model_name="m1")
    f = _store_eval(ResultStore("d", root=d("3d")), model_name="m2", seed=5)
    ref = _store_eval(None, model_name="m2", seed=5)
    if _vals(f) != _vals(ref):
        raise Outcome("data loss", "model m2's values are model m1's or missing")
    return "correct", "m2 computed; frame holds only m2's rows"


@case("3.e", "the frame returned holds exactly the rows asked for")
def _():
    from xaikit.experiments.store import ResultStore

    _store_eval(ResultStore("e", root=d("3e")), n=6)
    f = _store_eval(ResultStore("e", root=d("3e")), n=3)
    if sorted(set(f.image)) != [f"{i:06d}:img{i}" for i in range(3)]:
        wrong(f"{f.image.nunique()} images in the frame of a 3-image call")
    return "correct", "3 images asked, 3 returned"


@case("3.f", "method options changed on a rerun with the same store")
def _():
    from xaikit.experiments.store import ResultStore

    _store_eval(ResultStore("f", root=d("3f")), methods=[("gradcam", {"relu": True})])
    got = _store_eval(ResultStore("f", root=d("3f")), methods=[("gradcam", {"relu": False})],
                      metrics=["recognition"])
    ref = _store_eval(None, methods=[("gradcam", {"relu": False})])
    if _vals(got) != _vals(ref):
        wrong("the rerun returned the values of the earlier options (relu=True) for relu=False")
    return "correct", "values of the new options"


@case("3.g", "metric options changed on a rerun with the same store")
def _():
    from xaikit.experiments.store import ResultStore

    _store_eval(ResultStore("g", root=d("3g")), metrics=["insertion"], metric_options={"insertion": {"steps": 4}})
    got = _store_eval(ResultStore("g", root=d("3g")), metrics=["insertion"], metric_options={"insertion": {"steps": 16}})
    ref = _store_eval(None, metrics=["insertion"], metric_options={"insertion": {"steps": 16}})
    if _vals(got) != _vals(ref):
        wrong("the rerun returned the insertion AUCs of steps=4 for steps=16")
    return "correct", "values of the new options"


@case("3.h", "damaged store lines (bytes, `123`, an object without image) are skipped and recomputed")
def _():
    from xaikit.experiments.store import ResultStore

    st = ResultStore("h", root=d("3h"))
    ref = _vals(_store_eval(st))
    lines = st.path.read_bytes().splitlines(keepends=True)
    st.path.write_bytes(b"\xff\xfe garbage\n" + lines[0].replace(b'"image"', b'"imagex"') + b"123\n"
                        + b"".join(lines[1:]))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = _vals(_store_eval(ResultStore("h", root=d("3h"))))
    if got != ref:
        raise Outcome("data loss", f"{len(set(ref) - set(got))} values missing")
    if not any("damaged" in str(x.message) for x in w):
        wrong("damaged lines skipped without a word")
    return "correct", "3 damaged lines reported, the image recomputed"


@case("3.i", "corrupt map-cache file is named and recomputed")
def _():
    from xaikit.experiments.store import MapCache

    mc = MapCache("i", root=d("3i"))
    f0 = _store_eval(None, map_cache=mc)
    for p in d("3i").glob("i/*.pt"):
        p.write_bytes(p.read_bytes()[:40])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        f1 = _store_eval(None, map_cache=MapCache("i", root=d("3i")))
    if not any("map cache file" in str(x.message) for x in w):
        wrong("no warning naming the damaged file")
    if _vals(f0) != _vals(f1):
        wrong("values differ after recomputing")
    return "correct", "warning names the file; maps recomputed; same values"


@case("3.j", "unknown metric is refused before any map is computed")
def _():
    calls = []

    class Counting(TinyGAP):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    from xaikit.experiments.grid import evaluate

    try:
        evaluate(tiny(0, Counting), Items(3), ["gradcam"], ["recognition", "nope"])
    except XaikitError as e:
        if calls:
            wrong(f"refused only after {len(calls)} forward passes: {e}")
        raise
    wrong("unknown metric accepted")


@case("3.k", "evaluate(methods='gradcam') (a bare string)")
def _():
    try:
        f = _store_eval(None, methods="gradcam")
    except XaikitError as e:
        wrong(f"refused: {e}")
    if set(f.method) != {"gradcam"}:
        wrong(f"methods {sorted(set(f.method))}")
    return "correct", "one method 'gradcam'"


# ========================================================================== 4. non-finite values
@case("4.a", "NaN images -> recognition")
def _():
    x = xs()
    x[0, 0, 0, 0] = float("nan")
    expect_error(xk.metrics.recognition, tiny(), x, maps(), 1)


@case("4.b", "NaN images -> insertion")
def _():
    x = xs()
    x[1] = float("nan")
    expect_error(xk.metrics.insertion, tiny(), x, maps(), 1, steps=4)


@case("4.c", "infinite images -> gradcam")
def _():
    x = xs()
    x[0, 1, 2, 3] = float("inf")
    expect_error(xk.attributors.create("gradcam", tiny()), x)


@case("4.d", "NaN map -> insertion/deletion AUC")
def _():
    s = maps()
    s[0, 3, 3] = float("nan")
    expect_error(xk.metrics.deletion, tiny(), xs(), s, 1, steps=4)


@case("4.e", "normalize_maps of a NaN map")
def _():
    m = torch.rand(2, 4, 4)
    m[0, 0, 0] = float("nan")
    expect_error(xk.attributors.normalize_maps, m, what="a NaN map normalized")


@case("4.f", "NaN-weight checkpoint -> load, gradcam")
def _():
    torch.manual_seed(0)
    m = xk.models.load("resnet18_cifar", weights="random", num_classes=4, width=8, input_size=32)
    sd = {k: (v.fill_(float("nan")) if v.is_floating_point() and k.endswith("weight") else v)
          for k, v in m.state_dict().items()}
    torch.save(sd, d("4f") / "nan.pt")
    m2 = xk.models.load("resnet18_cifar", weights=d("4f") / "nan.pt", num_classes=4, width=8, input_size=32)
    expect_error(xk.attributors.create("gradcam", m2), torch.randn(2, 3, 32, 32), what="maps of a NaN model")


@case("4.g", "NaN-weight model -> recognition")
def _():
    m = tiny()
    with torch.no_grad():
        m.fc.weight.fill_(float("nan"))
    expect_error(xk.metrics.recognition, m, xs(), maps(), 1)


@case("4.h", "explainer returning NaN -> max_sensitivity")
def _():
    expect_error(xk.metrics.max_sensitivity, lambda x, t: torch.full(x.shape[:1] + x.shape[2:], float("nan")),
                 xs(), 1, n=2)


@case("4.i", "NaN maps of a method (score NaN) -> explain")
def _():
    class NaNAt(TinyGAP):
        def forward(self, x):
            return super().forward(x) * float("nan")

    expect_error(xk.attributors.create("gradcam", tiny(0, NaNAt)), xs(), 1)


# =========================================================================== 5. native abort
@case("5.a", "training narrow ResNets (width 3-7) with channels-last on CPU", timeout=200)
def _():
    code = """
        import torch
        torch.set_num_threads(1)
        from xaikit.training import small
        for w in (3, 5, 7):
            small.train("resnet18_cifar", arch_kwargs={"width": w}, size=16, n_train=14, n_test=2, batch_size=7,
                        epochs=1, cache=False)
        print("ok")
    """
    rc, out, err = subproc(code, 180)
    if rc == "hang":
        raise Outcome("hang", "did not end in 180 s")
    if isinstance(rc, int) and rc < 0:
        raise Outcome("native abort", f"signal {-rc}: {err.strip().splitlines()[-1:]}")
    if rc != 0:
        raise Outcome("raw exception", err.strip().splitlines()[-1])
    return "correct", "widths 3, 5, 7 trained a step each"


# ============================================================================ 6. steps and pixels
@case("6.a", "insertion steps=200000 on 16x16 (more steps than pixels)", timeout=90)
def _():
    code = """
        import torch, sys
        torch.set_num_threads(1)
        sys.path.insert(0, "benchmarks")
        import faults as F, xaikit as xk
        a = xk.metrics.insertion(F.tiny(), F.xs(), F.maps(), 1, steps=200000)
        b = xk.metrics.insertion(F.tiny(), F.xs(), F.maps(), 1, steps=256)
        print("DIFF", float((a - b).abs().max()))
    """
    rc, out, err = subproc(code, 60)
    if rc == "hang":
        raise Outcome("hang", "steps=200000 on 16x16 did not end in 60 s")
    if rc != 0:
        raise Outcome("raw exception", err.strip().splitlines()[-1])
    diff = float(out.split("DIFF")[1])
    if diff > 1e-6:
        wrong(f"AUC with 200000 steps differs from 256 steps by {diff:.3g}")
    return "correct", "capped at the 256 pixels: same AUC as steps=256"


@case("6.b", "insertion steps=1000 vs 256 on 16x16: same AUC")
def _():
    a = xk.metrics.insertion(tiny(), xs(), maps(), 1, steps=1000)
    b = xk.metrics.insertion(tiny(), xs(), maps(), 1, steps=256)
    if not torch.allclose(a, b, atol=1e-6):
        wrong(f"AUC shifts by {float((a - b).abs().max()):.3g}")
    return "correct", "steps capped at the pixel count"


# ================================================================================ 7. dry run
def _fake_nb(folder, source, name="01_x"):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("rep = ...")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return folder / f"{name}.ipynb"


@case("7.a", "dry run: accuracy_models whose weights are not cached")
def _():
    from xaikit import preflight as P
    from xaikit import profiles as PR

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(d("7a") / "hub"))
    import huggingface_hub.constants as hfc

    hf, hfc.HF_HUB_CACHE = hfc.HF_HUB_CACHE, str(d("7a") / "hf")
    try:
        archs = PR.declared_parameters(ROOT / "notebooks" / "01_background.ipynb")["table11_archs"]
        rep = P.check({"01_background": {"accuracy_models": ["resnet50"], "device": "cpu"}}, cuda_available=False,
                      declared={"01_background": {"table11_archs": archs}})
    finally:
        torch.hub.set_dir(old)
        hfc.HF_HUB_CACHE = hf
    if rep.ok:
        wrong("'profile OK' without the resnet50 weights")
    line = rep.problems[0].line()
    if "Fix:" not in line:
        raise Outcome("raw exception", line)
    return "clear error", line[:110]


@case("7.b", "dry run: n_rows: three (a str for an int parameter)")
def _():
    from xaikit import profiles as PR

    nb = _fake_nb(d("7b"), "profile = 'ci'\nn_rows = 3")
    lines = PR.check_profile("p", {"01_x": {"n_rows": "three"}}, [nb])
    if not lines:
        wrong("'profile OK'")
    return "clear error", lines[0][:110]


# ================================================================= 8. tuple / dict / ModelOutput outputs
class Wrapped(TinyGAP):
    def __init__(self, how):
        super().__init__()
        self.load_state_dict(tiny().state_dict())
        self.how, self.xaikit = how, tiny().xaikit
        self.eval()

    def forward(self, x):
        y = super().forward(x)
        if self.how == "tuple":
            return y, y.sum()
        if self.how == "dict":
            return {"logits": y, "aux": y * 2}

        class ModelOutput:  # Hugging Face style
            logits = y
        return ModelOutput()


for _how in ("tuple", "dict", "ModelOutput"):
    @case(f"8.{_how}", f"model whose forward returns a {_how}: gradcam, scorecam, recognition, insertion")
    def _(_how=_how):
        ref, m = tiny(), Wrapped(_how)
        x, s = xs(), maps()
        for name in ("gradcam", "scorecam"):
            a = xk.attributors.create(name, m).explain(x, 1).maps
            b = xk.attributors.create(name, ref).explain(x, 1).maps
            if not torch.allclose(a, b, atol=1e-6):
                wrong(f"{name} maps differ from the plain model's")
        if not torch.allclose(xk.metrics.insertion(m, x, s, 1, steps=4), xk.metrics.insertion(ref, x, s, 1, steps=4)):
            wrong("insertion differs")
        r1, r2 = xk.metrics.recognition(m, x, s, 1), xk.metrics.recognition(ref, x, s, 1)
        if any(abs(r1[k] - r2[k]) > 1e-6 for k in r2):
            wrong("recognition differs")
        return "correct", "maps and metrics = the plain model's"


# ========================================================================= 9. unchecked options
def _create(name, model=None, **opts):
    return lambda: xk.attributors.create(name, model if model is not None else tiny(), **opts)(xs(), 1)


OPTION_CASES = {
    "groupcam theta=150": _create("groupcam", theta=150),
    "groupcam blur_ksize=0": _create("groupcam", blur_ksize=0),
    "opticam max_iter=-3": _create("opticam", max_iter=-3),
    "opticam lr=-0.1": _create("opticam", lr=-0.1),
    "aopc patch_size=0": lambda: xk.metrics.aopc(tiny(), xs(), maps(), 1, patch_size=0),
    "aopc regions=0": lambda: xk.metrics.aopc(tiny(), xs(), maps(), 1, regions=0),
    "aopc regions=-2": lambda: xk.metrics.aopc(tiny(), xs(), maps(), 1, regions=-2),
    "insertion klen=0": lambda: xk.metrics.insertion(tiny(), xs(), maps(), 1, steps=4, klen=0),
    "insertion klen=4 (even)": lambda: xk.metrics.insertion(tiny(), xs(), maps(), 1, steps=4, klen=4),
    "insertion sigma=0": lambda: xk.metrics.insertion(tiny(), xs(), maps(), 1, steps=4, sigma=0),
    "max_sensitivity n=0": lambda: xk.metrics.max_sensitivity(_explainer(tiny()), xs(), 1, n=0),
    "rollout discard_ratio=1.5": lambda: xk.attributors.create("rollout", vit(), discard_ratio=1.5),
    "raw_attention block=99": lambda: xk.attributors.create("raw_attention", vit(), block=99)(torch.randn(1, 3, 32, 32)),
    "models.load num_classes=0": lambda: xk.models.load("resnet18_cifar", weights="random", num_classes=0, width=8),
    "models.load torchvision num_classes=0": lambda: xk.models.load("torchvision:resnet18", weights="random",
                                                                    num_classes=0),
    "models.load num_classes=-3": lambda: xk.models.load("resnet18_cifar", weights="random", num_classes=-3, width=8),
    "models.load name=None": lambda: xk.models.load(None, weights="random"),
    "models.load device='cuda' without a GPU": lambda: xk.models.load("resnet18_cifar", weights="random", width=8,
                                                                      device="cuda"),
    "gradcam relu='no'": _create("gradcam", relu="no"),
    "gradcam 0-d float target 1.7": lambda: xk.attributors.create("gradcam", tiny())(xs(), torch.tensor(1.7)),
    "recognition 0-d float target 1.7": lambda: xk.metrics.recognition(tiny(), xs(), maps(), torch.tensor(1.7)),
    "gradcam float 0-255 images": lambda: xk.attributors.create("gradcam", tiny())(torch.rand(2, 3, 16, 16) * 255, 1),
    "recognition float 0-255 images": lambda: xk.metrics.recognition(tiny(), torch.rand(2, 3, 16, 16) * 255, maps(), 1),
}
for _k, _fn in OPTION_CASES.items():
    case(f"9.{_k.split()[0]}:{_k.split(' ', 1)[1]}", _k)(lambda _fn=_fn, _k=_k: expect_error(_fn))


@case("9.np.int64 target", "target np.int64(1) is accepted as class 1")
def _():
    m, x = tiny(), xs()
    a = xk.attributors.create("gradcam", m).explain(x, np.int64(1))
    b = xk.attributors.create("gradcam", m).explain(x, 1)
    r = xk.metrics.recognition(m, x, maps(), np.int64(1))
    if not (torch.equal(a.maps, b.maps) and a.target.tolist() == [1, 1]) or not r:
        wrong("np.int64(1) not class 1")
    return "correct", "same maps as target=1"


@case("9.8x8 resnet", "8x8 images into a torchvision ResNet (1x1 layer4 map)")
def _():
    torch.manual_seed(0)
    m = xk.models.load("torchvision:resnet18", weights="random", num_classes=4)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = xk.attributors.create("gradcam", m)(torch.randn(1, 3, 8, 8), 1)
    if not w:
        wrong(f"an all-{float(s.max()):g} map without a warning")
    return "correct", f"warned: {str(w[0].message)[:90]}"


# ========================================================================= 10. path traversal
def _img(path):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(path)


@case("10.cub", "CUB images.txt with ../")
def _():
    from xaikit.data import folders as F

    root = d("10cub") / "CUB_200_2011"
    _img(root / "images" / "001.A" / "a.jpg")
    _img(d("10cub") / "outside.jpg")
    for f, text in (("image_class_labels.txt", "1 1\n2 1\n"), ("train_test_split.txt", "1 0\n2 0\n"),
                    ("bounding_boxes.txt", "1 0 0 4 4\n2 0 0 4 4\n"), ("classes.txt", "1 001.A\n"),
                    ("images.txt", "1 001.A/a.jpg\n2 ../../outside.jpg\n")):
        (root / f).write_text(text)
    expect_error(F.cub, root, what="read a file outside the dataset")


@case("10.voc", "VOC val.txt with ../")
def _():
    from xaikit.data import folders as F

    root = d("10voc") / "VOC2012"
    for s in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / s).mkdir(parents=True, exist_ok=True)
    _img(d("10voc") / "secret.jpg")
    (d("10voc") / "secret.xml").write_text("<annotation><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                                           "<xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>")
    (root / "ImageSets" / "Main" / "val.txt").write_text("../../secret\n")
    expect_error(F.voc, root, "val", what="read a file outside the dataset")


@case("10.mit67", "MIT-67 TestImages.txt with ../")
def _():
    from xaikit.data import folders as F

    root = d("10mit") / "mit67"
    _img(root / "Images" / "bakery" / "b.jpg")
    _img(d("10mit") / "secret.jpg")
    (root / "TrainImages.txt").write_text("bakery/b.jpg\n")
    (root / "TestImages.txt").write_text("bakery/../../../secret.jpg\n")
    expect_error(F.mit67, root, "test", what="read a file outside the dataset")


@case("10.store", "ResultStore('../../x') and MapCache('../x')")
def _():
    from xaikit.experiments.store import MapCache, ResultStore

    root = d("10store") / "a" / "b"
    for fn in (lambda: ResultStore("../../x", root=root), lambda: MapCache("../x", root=root)):
        try:
            fn()
        except XaikitError:
            continue
        wrong("a store outside its root was created")
    if (d("10store") / "x").exists():
        wrong("folder created outside the root")
    return "clear error", "both refused: 'must be a plain name'"


@case("10.profile", "profile named x/../../y")
def _():
    from xaikit import profiles as PR
    from xaikit.reports import provenance as prov

    for fn in (lambda: PR.load_profile("x/../../y"), lambda: prov.profile_root("x/../../y", d("10p") / "r")):
        try:
            fn()
        except XaikitError:
            continue
        wrong("profile name accepted")
    return "clear error", "refused by load_profile and profile_root"


# ================================================================================== 11. runner
def _fake_execute(how):
    import pandas as pd
    import nbformat
    import papermill as pm

    def execute(src, out, parameters=None, **kw):
        rep = xk.reports.Reporter(Path(src).stem, dict(parameters))
        rep.table(pd.DataFrame({"value": [parameters["value"]]}), "1.1", caption="value")
        nbformat.write(nbformat.read(src, as_version=4), out)
        if how == "fail":
            raise pm.PapermillExecutionError(1, 2, "x", "ZeroDivisionError", "division by zero", [])
        if how == "interrupt":
            raise KeyboardInterrupt

    return execute


def _runner(tag, value, how):
    import papermill as pm
    from xaikit import run as xr

    nbs = d(f"11{tag}") / "nbs"
    if not nbs.exists():
        _fake_nb(nbs, "profile = 'ci'\nvalue = 1", "01_nb")
    prof = d(f"11{tag}") / "prof.yaml"
    prof.write_text("01_nb: " + json.dumps({"value": value}) + "\n")
    old = pm.execute_notebook
    pm.execute_notebook = _fake_execute(how)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return xr.run(str(prof), notebooks=nbs, reports=d(f"11{tag}") / "reports", log=lambda s: None)
    finally:
        pm.execute_notebook = old


def _report(tag, name="01_nb"):
    from xaikit.reports import provenance as prov

    f = d(f"11{tag}") / "reports" / "_prof" / name
    if not (f / "provenance.json").exists():
        return None, None
    return (f / "tables" / "table_1_1.csv").read_text(), prov.read_json(f / "provenance.json")["run"]


for _how in ("fail", "interrupt"):
    @case(f"11.{_how}", f"a rerun that {'fails' if _how == 'fail' else 'is interrupted'} after a complete report")
    def _(_how=_how):
        _runner(_how, 11, "pass")
        _runner(_how, 22, _how)
        table, run = _report(_how)
        if table is None or "11" not in table or run.get("status") != "passed":
            raise Outcome("data loss", f"the complete report was replaced: {run}")
        ptable, prun = _report(_how, "01_nb.failed")
        if prun is None or not prun.get("partial") or prun.get("status") == "passed":
            wrong(f"the partial report is not stamped partial: {prun}")
        return "correct", f"complete report kept; partial one stamped {prun['status']}, partial=True"


@case("11.killed", "a runner killed (SIGKILL) mid-notebook")
def _():
    from xaikit.reports import provenance as prov
    from xaikit.reports.index import write_index

    _runner("k", 11, "pass")
    nbs, reports = d("11k") / "nbs", d("11k") / "reports"
    code = f"""
        import os, signal, pandas as pd, papermill as pm, xaikit as xk
        from xaikit import run as xr
        def execute(src, out, parameters=None, **kw):
            rep = xk.reports.Reporter("01_nb", dict(parameters))
            rep.table(pd.DataFrame({{"v": [1]}}), "1.1")
            os.kill(os.getpid(), signal.SIGKILL)
        pm.execute_notebook = execute
        xr.run({str(d('11k') / 'prof.yaml')!r}, notebooks={str(nbs)!r}, reports={str(reports)!r})
    """
    rc, out, err = subproc(code, 120)
    write_index(reports / "_prof")
    md = (reports / "_prof" / "index.md").read_text()
    table, run = _report("k")
    if table is None or "11" not in table:
        raise Outcome("data loss", "the complete report is gone")
    if "run interactively" in md or "unknown" in md:
        wrong("the killed run is listed as unknown")
    return "correct", "complete report kept; the dead run's folder is hidden and not listed"


# ========================================================================= peer-library findings
class MHANet(nn.Module):
    """patch conv -> nn.MultiheadAttention (a layer whose output is a tuple) -> mean -> fc."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        y, _ = self.mha(t, t, t)
        return self.fc(y.mean(1))


def _tokens_to_map(t):
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], 4, 4)


@case("P.tuple-layer", "hooked layer whose output is a tuple (nn.MultiheadAttention), batches of 1, 2, 3")
def _():
    torch.manual_seed(0)
    m = MHANet().eval()
    for b in (1, 2, 3):
        x = xs(b)
        e = xk.attributors.create("gradcam", m, layer="mha", reshape=_tokens_to_map).explain(x, 1)
        with torch.no_grad():
            ref = m(x)
        if not torch.allclose(e.logits, ref, atol=1e-5):
            wrong(f"batch {b}: logits under the hook differ from model(x) by {float((e.logits - ref).abs().max()):.3g}")
        # reference Grad-CAM at the attention output
        cap = {}
        h = m.mha.register_forward_hook(lambda mod, i, o: cap.__setitem__("a", o[0]))
        xx = x.clone()
        out = m(xx)
        h.remove()
        g, = torch.autograd.grad(out[:, 1].sum(), cap["a"])
        A, G = _tokens_to_map(cap["a"].detach()), _tokens_to_map(g)
        want = xk.attributors.normalize_maps(torch.relu((G.mean((2, 3), keepdim=True) * A).sum(1)))
        if not torch.allclose(e.maps, want, atol=1e-5):
            wrong(f"batch {b}: map differs from Grad-CAM at the attention output")
    return "correct", "logits = model(x) and maps = reference Grad-CAM for batches 1, 2, 3"


def _bn2_reference(m, x, target):
    """Grad-CAM at layer4.1.bn2 of a torchvision ResNet: the hook keeps bn2's own output A (the block's
    in-place add then works on a copy) and differentiates the score with respect to A."""
    cap = {}

    def hook(mod, i, o):
        cap["a"] = o
        return o.clone()

    h = m.layer4[1].bn2.register_forward_hook(hook)
    with torch.enable_grad():
        xx = x.clone().requires_grad_(True)  # frozen models: still a graph through A
        out = m(xx)
        g, = torch.autograd.grad(out[torch.arange(len(x)), target].sum(), cap["a"])
    h.remove()
    A = cap["a"].detach()
    return xk.attributors.normalize_maps(torch.relu((g.mean((2, 3), keepdim=True) * A).sum(1)))


for _frozen in (False, True):
    @case(f"P.inplace-{'frozen' if _frozen else 'trainable'}",
          f"Grad-CAM at torchvision layer4.1.bn2 (in-place add/ReLU after it), {'frozen' if _frozen else 'trainable'} weights")
    def _(_frozen=_frozen):
        torch.manual_seed(0)
        m = xk.models.load("torchvision:resnet18", weights="random", num_classes=4)
        for bn in [mm for mm in m.modules() if isinstance(mm, nn.BatchNorm2d)]:
            bn.running_mean.normal_(0, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.data.normal_(1, 0.3)
            bn.bias.data.normal_(0, 0.3)
        if _frozen:
            m.requires_grad_(False)
        x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(3))
        e = xk.attributors.create("gradcam", m, layer="layer4.1.bn2").explain(x, 1)
        want = _bn2_reference(m, x, torch.tensor([1, 1]))
        if not torch.allclose(e.maps, want, atol=1e-4):
            wrong(f"map differs from the reference at bn2 by {float((e.maps - want).abs().max()):.3g}")
        return "correct", "= reference Grad-CAM at bn2 (not at layer4.1)"


@case("P.guard-modes", "model_guard restores each submodule's own mode (eval BN inside a train-mode model)")
def _():
    m = train_mode(bn_net())
    snap = snapshot(m)
    xk.attributors.create("gradcam", m)(xs(), 1)
    ch = changes(m, snap)
    if ch:
        wrong(f"changed: {ch[:3]}")
    return "correct", "every submodule's mode and grad restored"


@case("P.guard-raise", "model_guard when model.eval() raises")
def _():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.ok = nn.Dropout()

        def train(self, mode=True):
            if not mode:
                raise RuntimeError("this module refuses eval()")
            return super().train(mode)

    m = bn_net()
    m.extra = Bad()
    m.train()
    modes = {n: s.training for n, s in m.named_modules()}
    try:
        xk.attributors.create("gradcam", m)(xs(), 1)
    except RuntimeError:
        pass
    now = {n: s.training for n, s in m.named_modules()}
    if now != modes:
        wrong(f"modes not restored: {[n for n in modes if modes[n] != now[n]][:3]}")
    return "correct", "the model's own error propagates; every mode restored"


@case("P.mobilenet_v2", "CAM on torchvision mobilenet_v2 (classifier = Sequential(Dropout, Linear))")
def _():
    torch.manual_seed(0)
    m = xk.models.load("torchvision:mobilenet_v2", weights="random", num_classes=4)
    x = torch.randn(2, 3, 64, 64)
    try:
        e = xk.attributors.create("cam", m).explain(x, 1, normalize=False)
    except XaikitError as err:
        wrong(f"CAM refused: {err}")
    # CAM = sum_k w_k A_k with the Linear's weights (dropout is the identity at inference)
    with torch.no_grad():
        A = m.features(x)
    want = torch.einsum("k,bkhw->bhw", m.classifier[1].weight[1], A)
    if not torch.allclose(e.maps, want, atol=1e-4):
        wrong("CAM map differs from the classifier-weighted feature maps")
    return "correct", f"classifier {m.xaikit.classifier!r}: CAM runs"


@case("P.vit_b_16 layer", "torchvision vit_b_16 default layer exists")
def _():
    torch.manual_seed(0)
    m = xk.models.load("torchvision:vit_b_16", weights="random", num_classes=4)
    xk.models.get_layer(m, m.xaikit.default_layer)
    return "correct", f"default layer {m.xaikit.default_layer!r} exists"


@case("P.foreign-layer", "a layer module that is not part of the model")
def _():
    m = tiny()
    try:
        a = xk.attributors.create("gradcam", m, layer=nn.Conv2d(3, 4, 3))
    except XaikitError:
        raise
    try:
        a(xs(), 1)
    except XaikitError as e:
        raise Outcome("raw exception", f"accepted at creation, refused only at call time: {e}")
    wrong("a foreign layer accepted")


@case("P.reshape=1", "reshape=1 refused at creation")
def _():
    expect_error(xk.attributors.create, "gradcam", tiny(), reshape=1)


@case("P.target-bools", "metrics take target [False, 0]")
def _():
    expect_error(xk.metrics.recognition, tiny(), xs(), maps(), [False, 0])


for _k, _v in (("steps", 1.5), ("batch_size", 0), ("batch_size", 1.5)):
    case(f"P.insertion {_k}={_v}", f"insertion {_k}={_v}")(
        lambda _k=_k, _v=_v: expect_error(xk.metrics.insertion, tiny(), xs(), maps(), 1,
                                          **({"steps": 4} if _k != "steps" else {}), **{_k: _v}))


@case("P.float64", "a float64 model: maps' dtype said or kept")
def _():
    m = tiny().double()
    e = xk.attributors.create("gradcam", m).explain(xs().double(), 1)
    ref = xk.attributors.create("gradcam", tiny()).explain(xs(), 1)
    doc = (xk.attributors.Attributor.explain.__doc__ or "") + (xk.attributors.Explanation.__doc__ or "")
    if e.maps.dtype != torch.float64 and "float32 whatever the model's dtype" not in doc:
        wrong(f"float64 model, {e.maps.dtype} maps, not documented")
    if not torch.allclose(e.maps.double(), ref.maps.double(), atol=1e-5):
        wrong("maps differ from the float32 model's")
    return "correct", f"maps {e.maps.dtype} ({'kept' if e.maps.dtype == torch.float64 else 'documented as float32'})"


@case("P.pointing-ties", "pointing game with tied maxima (one outside the box first, one inside)")
def _():
    s = torch.zeros(1, 32, 32)
    s[0, 0, 0] = 1.0     # first in row-major order, outside the box (distance > tolerance)
    s[0, 20, 20] = 1.0   # inside the box
    box = [torch.tensor([[16.0, 16.0, 24.0, 24.0]])]
    first = xk.metrics.pointing_game(s, box, 0, tolerance=0, reduce=False)
    anyt = xk.metrics.pointing_game(s, box, 0, tolerance=0, reduce=False, sp_ties="any")
    if first.tolist() != [0.0] or anyt.tolist() != [100.0]:
        wrong(f"sp_ties='first' -> {first.tolist()}, 'any' -> {anyt.tolist()} (documented: 0 and 100)")
    return "correct", "sp_ties='first' misses, 'any' hits, as documented"


# ==================================================================================== the runner
def classify(e: BaseException) -> tuple[str, str]:
    if isinstance(e, Outcome):
        return e.kind, e.detail
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, XaikitError):
        return "clear error", f"{type(e).__name__}: {msg}"
    tb = traceback.extract_tb(e.__traceback__)
    where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
    return "raw exception", f"{type(e).__name__} at {where}: {msg}"


class _Alarm(BaseException):
    pass


def _alarm(signum, frame):
    raise _Alarm()


def run_case(fn, timeout):
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = fn()
        kind, detail = r if isinstance(r, tuple) else ("correct", str(r))
    except _Alarm:
        kind, detail = "hang", f"no end within {timeout} s"
    except Exception as e:  # noqa: BLE001 - classifying every exception is the point
        kind, detail = classify(e)
    finally:
        signal.alarm(0)
    return kind, detail, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="run the cases whose id starts with this")
    ap.add_argument("-v", action="store_true", help="full detail lines")
    a = ap.parse_args(argv)
    rows = []
    t0 = time.perf_counter()
    for cid, title, fn, timeout in CASES:
        if not cid.startswith(a.only):
            continue
        kind, detail, secs = run_case(fn, timeout)
        rows.append((cid, kind, detail))
        width = None if a.v else 110
        print(f"{cid:<34} {kind:<20} {secs:5.1f}s  {title}\n{'':>34} {detail[:width]}", flush=True)
    tot = Counter(k for _, k, _ in rows)
    print(f"\n{len(rows)} cases in {time.perf_counter() - t0:.0f} s")
    print("| outcome | cases |\n|---|---|")
    for k in OUTCOMES:
        print(f"| {k} | {tot.get(k, 0)} |")
    bad = [r for r in rows if r[1] in FATAL]
    raw = [r for r in rows if r[1] == "raw exception"]
    for cid, kind, detail in bad + raw:
        print(f"{kind.upper()}: {cid}: {detail}")
    ok = not bad and len(raw) <= MAX_RAW
    print("PASS" if ok else f"FAIL: {len(bad)} fatal, {len(raw)} raw exceptions (at most {MAX_RAW})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
