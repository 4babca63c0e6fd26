"""The metrics' public API: keyword-only, documented and validated options, one return type per function,
the core vocabulary, refusal of non-finite values and bad targets, any model output convention, and models
left exactly as they were found (train-mode BatchNorm, per-submodule modes, ``.grad`` fields)."""
import copy
import inspect

import numpy as np
import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit.core import devices as D
from xaikit.errors import ConfigError, InputError, XaikitError
from xaikit.models.zoo import ModelInfo

from test_metrics_stubs import tiny_cnn

M = xk.metrics
H = 16


# ------------------------------------------------------------------------------------------ fixtures
class BNNet(nn.Module):
    """Conv-BN-ReLU-Dropout, GAP, linear: its outputs depend on train/eval mode."""

    def __init__(self, c=4, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5),
                                      nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.fc = nn.Linear(8, c)
        with torch.no_grad():
            for bn in (self.features[1], self.features[5]):
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_var.uniform_(0.5, 1.5)
        self.xaikit = ModelInfo(name="bnnet", num_classes=c, mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.3))

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def data(B=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, H, H, generator=g), torch.rand(B, H, H, generator=g)


def explainer_for(model):
    """Input-gradient maps through ``.backward()``: it accumulates into the model's ``.grad`` fields."""
    model = getattr(model, "inner", model)  # the plain-logits model inside a test wrapper

    def explain(x, t):
        x = x.detach().clone().requires_grad_(True)
        out = model(x)
        out.gather(1, torch.as_tensor(t).view(-1, 1)).sum().backward()
        e = x.grad.abs().sum(1)
        return (e / e.flatten(1).max(1)[0].clamp(min=1e-12).view(-1, 1, 1)).detach()
    return explain


def boxes(B):
    return [torch.tensor([[2.0, 2.0, 10.0, 12.0]])] * B


# every metric that runs a model, as fn(model, x, sal, target, **options)
RUNS = {
    "recognition": lambda m, x, s, t, **k: M.recognition(m, x, s, t, reduce=False, **k),
    "box_study": lambda m, x, s, t, **k: M.box_study(m, x, s, boxes(x.shape[0]), t, reduce=False, **k),
    "adcc": lambda m, x, s, t, **k: M.adcc(m, explainer_for(m), x, t, reduce=False, **k),
    "insertion": lambda m, x, s, t, **k: M.insertion(m, x, s, t, steps=4, **k),
    "insertion_curves": lambda m, x, s, t, **k: M.insertion_curves(m, x, s, t, steps=4, **k),
    "deletion": lambda m, x, s, t, **k: M.deletion(m, x, s, t, steps=4, **k),
    "deletion_curves": lambda m, x, s, t, **k: M.deletion_curves(m, x, s, t, steps=4, **k),
    "overall": lambda m, x, s, t, **k: M.overall(m, x, s, t, steps=4, **k),
    "aopc": lambda m, x, s, t, **k: M.aopc(m, x, s, t, patch_size=4, regions=3, **k),
    "aopc_curves": lambda m, x, s, t, **k: M.aopc_curves(m, x, s, t, patch_size=4, regions=3, **k),
    "max_sensitivity": lambda m, x, s, t, **k: M.max_sensitivity(explainer_for(m), x, t, n=2, model=m, **k),
}


def values(r):
    if isinstance(r, M.Curves):
        return [v for v in (r.auc, r.aopc, r.curves) if v is not None]
    if isinstance(r, dict):
        return [w for v in r.values() for w in values(v)]
    return [torch.as_tensor(r)]


# ------------------------------------------------------------------------------------------ signatures
DATA = {"recognition": ["model", "x", "sal", "target"], "box_study": ["model", "x", "sal", "boxes", "target"],
        "adcc": ["model", "explainer", "x", "target"], "max_sensitivity": ["explainer", "x", "target"],
        "localization": ["sal", "boxes", "probs", "target"], "pointing_game": ["sal", "boxes", "target"],
        **{f: ["model", "x", "sal", "target"] for f in ("insertion", "insertion_curves", "deletion",
                                                         "deletion_curves", "overall", "aopc", "aopc_curves")}}


@pytest.mark.parametrize("name", sorted(DATA))
def test_options_are_keyword_only_with_defaults_and_documented(name):
    fn = getattr(M, name)
    assert name in M.__all__
    params = list(inspect.signature(fn).parameters.values())
    doc = inspect.getdoc(fn)
    assert "Args:" in doc and "Returns:" in doc
    assert [p.name for p in params[:len(DATA[name])]] == DATA[name]
    for p in params[len(DATA[name]):]:
        assert p.kind is p.KEYWORD_ONLY and p.default is not p.empty, (name, p.name)
        assert f"{p.name}:" in doc or f"{p.name}," in doc, (name, p.name)
    names = [p.name for p in params]
    assert "return_curves" not in names
    if "model" in names:
        assert inspect.signature(fn).parameters["twin"].default is True


def test_one_return_type_and_curves_agree_with_the_scalars():
    model = tiny_cnn()
    x, sal = data(3)
    t = torch.tensor([0, 2, 1])
    for fn in ("insertion", "deletion"):
        a = getattr(M, fn)(model, x, sal, t, steps=7)
        c = getattr(M, fn + "_curves")(model, x, sal, t, steps=7)
        assert isinstance(a, torch.Tensor) and a.shape == (3,)
        assert isinstance(c, M.Curves) and c.aopc is None and c.regions is None
        assert torch.equal(c.auc, a) and c.curves.shape == (3, 8) and c.counts.shape == (8,)
        assert torch.equal(c.target, t) and torch.allclose(M.auc(c.curves), a)
    a = M.aopc(model, x, sal, t, patch_size=4, regions=5)
    c = M.aopc_curves(model, x, sal, t, patch_size=4, regions=5)
    assert torch.equal(c.aopc, a) and c.curves.shape == (3, 5) and c.regions.tolist() == [1, 2, 3, 4, 5]
    assert c.auc is None and c.counts is None
    assert torch.allclose(c.curves.sum(1) / 6, a)
    with pytest.raises(TypeError):
        M.insertion(model, x, sal, t, steps=4, return_curves=True)
    assert isinstance(M.recognition(model, x, sal, t), dict) and isinstance(M.recognition(model, x, sal, t,
                                                                                           reduce=False), dict)


def test_curves_come_back_on_the_device_of_the_images():
    model = tiny_cnn()
    x, sal = data()
    D.set_strict(True)
    try:
        hx, hs = D.host(x), D.host(sal)   # data-reader tensors, never moved by the caller
        c = M.insertion_curves(model, hx, hs, 0, steps=4)
        assert all(v.device == x.device for v in (c.auc, c.curves, c.counts, c.target))
        assert M.aopc_curves(model, hx, hs, 0, patch_size=4, regions=2).curves.shape == (2, 2)
    finally:
        D.set_strict(None)
    assert c.to("cpu").curves.shape == (2, 5)


# ------------------------------------------------------------------------------------------ vocabulary
def test_scores_substrates_and_spaces_use_the_core_vocabulary():
    model = tiny_cnn()
    x, sal = data()
    kw = dict(steps=6)
    p = M.insertion(model, x, sal, 0, score="softmax", **kw)
    assert torch.equal(M.insertion(model, x, sal, 0, score="prob", **kw), p)
    assert torch.equal(M.insertion(model, x, sal, 0, **kw), p)                 # the default is the softmax
    lg = M.insertion_curves(model, x, sal, 0, score="log_softmax", **kw).curves
    assert torch.allclose(lg.exp(), M.insertion_curves(model, x, sal, 0, **kw).curves, atol=1e-6)
    with pytest.raises(ConfigError, match="score"):
        M.deletion(model, x, sal, 0, score="probs", **kw)
    # deletion's "zero" is the core's alias of "mean": 0 of the normalized input
    assert torch.equal(M.deletion(model, x, sal, 0, substrate="zero", **kw),
                       M.deletion(model, x, sal, 0, substrate="mean", **kw))
    assert torch.equal(M.deletion(model, x, sal, 0, substrate=0.0, **kw),
                       M.deletion(model, x, sal, 0, substrate="mean", **kw))
    with pytest.raises(ConfigError, match="substrate"):
        M.deletion(model, x, sal, 0, substrate="gray", **kw)
    with pytest.raises(ConfigError, match="substrate"):
        M.deletion(model, x, sal, 0, substrate=float("nan"), **kw)
    with pytest.raises(ConfigError, match="space"):
        M.insertion(model, x, sal, 0, space="rgb", **kw)
    # "black" is pixel 0 in every space: without the model's mean/std the error names the alternative
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ConfigError, match="substrate='black'.*substrate='mean'"):
        M.deletion(plain, x, sal, 0, space="normalized", **kw)
    assert torch.isfinite(M.deletion(plain, x, sal, 0, space="normalized", substrate="mean", **kw)).all()
    ak = dict(patch_size=4, regions=3)
    assert torch.equal(M.aopc(model, x, sal, 0, baseline="zero", **ak), M.aopc(model, x, sal, 0, baseline="mean", **ak))
    assert torch.isfinite(M.aopc(model, x, sal, 0, baseline="blur", **ak)).all()
    with pytest.raises(ConfigError, match="baseline"):
        M.aopc(model, x, sal, 0, baseline="white", **ak)


def test_insertion_blur_is_the_core_zero_padded_blur_in_pixel_space():
    from xaikit.core.conventions import gaussian_blur

    model = tiny_cnn()
    x, sal = data()
    c = M.insertion_curves(model, x, sal, 0, steps=4, klen=5, sigma=2.0)
    start = model.xaikit.normalize(gaussian_blur(model.xaikit.denormalize(x), 5, 2.0, padding="zeros"))
    assert torch.allclose(c.curves[:, 0], model(start).softmax(-1)[:, 0], atol=1e-5)


# ------------------------------------------------------------------------------------------ options
def test_steps_are_whole_numbers_capped_at_the_pixel_count():
    model = tiny_cnn()
    x, sal = data()
    for bad in (1.5, 0, -3, True, "10", None):
        with pytest.raises(ConfigError, match="steps"):
            M.insertion(model, x, sal, 0, steps=bad)
    big = M.deletion_curves(model, x, sal, 0, steps=10 ** 6)
    full = M.deletion_curves(model, x, sal, 0, steps=H * H)
    assert big.curves.shape == (2, H * H + 1) and torch.equal(big.counts, full.counts)
    assert torch.equal(big.auc, full.auc) and torch.equal(big.curves, full.curves)
    assert torch.equal(M.insertion(model, x, sal, 0, steps=10 ** 6), M.insertion(model, x, sal, 0, steps=256))
    assert M.step_counts(16, 100).tolist() == list(range(17))
    assert torch.equal(M.insertion(model, x, sal, 0, steps=np.int64(4)), M.insertion(model, x, sal, 0, steps=4))


@pytest.mark.parametrize("fn,opts,match", [
    ("insertion", {"batch_size": 0}, "batch_size"),
    ("insertion", {"batch_size": 2.5}, "batch_size"),
    ("insertion", {"klen": 4}, "klen"),
    ("insertion", {"klen": 0}, "klen"),
    ("insertion", {"klen": 3.5}, "klen"),
    ("insertion", {"sigma": 0}, "sigma"),
    ("insertion", {"sigma": -1.0}, "sigma"),
    ("insertion", {"sigma": float("nan")}, "sigma"),
    ("insertion", {"twin": "yes"}, "twin"),
    ("deletion", {"klen": 2}, "klen"),
    ("aopc", {"patch_size": 0}, "patch_size"),
    ("aopc", {"regions": 0}, "regions"),
    ("aopc", {"regions": 2.5}, "regions"),
    ("aopc", {"batch_size": -1}, "batch_size"),
    ("recognition", {"reduce": "no"}, "reduce"),
    ("recognition", {"batch_size": 0}, "batch_size"),
    ("recognition", {"space": "rgb"}, "space"),
])
def test_options_are_validated_with_the_option_named(fn, opts, match):
    model = tiny_cnn()
    x, sal = data()
    with pytest.raises(ConfigError, match=match):
        getattr(M, fn)(model, x, sal, 0, **opts)


def test_max_sensitivity_and_localization_options():
    model = tiny_cnn()
    x, sal = data()
    e = explainer_for(model)
    with pytest.raises(ConfigError, match="n=0"):
        M.max_sensitivity(e, x, 0, n=0)
    with pytest.raises(ConfigError, match="radius"):
        M.max_sensitivity(e, x, 0, radius=-0.1)
    with pytest.raises(ConfigError, match="n="):
        M.max_sensitivity(e, x, 0, n=1.5)
    assert M.max_sensitivity(e, x, 0, radius=0.0, n=1).tolist() == [0.0, 0.0]   # no noise, no change
    with pytest.raises(ConfigError, match="tolerance"):
        M.localization(sal, boxes(2), tolerance=-1)
    with pytest.raises(ConfigError, match="iou_threshold"):
        M.localization(sal, boxes(2), iou_threshold=1.5)
    with pytest.raises(ConfigError, match="deltas"):
        M.localization(sal, boxes(2), deltas=(0.5, 2))
    with pytest.raises(ConfigError, match="tolerance"):
        M.pointing_game(sal, boxes(2), [0, 1], tolerance=float("inf"))


# ------------------------------------------------------------------------------------------ targets
@pytest.mark.parametrize("name", sorted(RUNS))
def test_targets_are_checked_like_the_attributors(name):
    model = tiny_cnn()
    x, sal = data()
    for bad in ([False, 0], True, 1.7, torch.tensor(1.7), torch.tensor([0.0, 1.0]), [0, 1, 2], 9, -1):
        with pytest.raises(InputError, match="target"):
            RUNS[name](model, x, sal, bad)
    a = RUNS[name](model, x, sal, np.int64(1))
    b = RUNS[name](model, x, sal, 1)
    c = RUNS[name](model, x, sal, np.array([1, 1]))
    for u, v, w in zip(values(a), values(b), values(c)):
        assert torch.allclose(u, v, equal_nan=True) and torch.allclose(u, w, equal_nan=True)


def test_localization_targets_are_checked():
    _, sal = data()
    probs = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    for bad in ([False, 0], 1.7, [0, 5]):
        with pytest.raises(InputError, match="target"):
            M.localization(sal, boxes(2), probs, bad)
        with pytest.raises(InputError, match="target"):
            M.pointing_game(sal, boxes(2), bad if bad != [0, 5] else [0, 1, 1])
    assert M.localization(sal, boxes(2), probs, np.int64(0)) == M.localization(sal, boxes(2), probs, 0)


# ------------------------------------------------------------------------------------------ non-finite
@pytest.mark.parametrize("name", sorted(RUNS))
def test_nan_images_and_maps_raise(name):
    model = tiny_cnn()
    x, sal = data()
    xn = x.clone()
    xn[1, 0, 3, 3] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        RUNS[name](model, xn, sal, 0)
    sn = sal.clone()
    sn[0, 0, 0] = float("inf")
    with pytest.raises(InputError, match="NaN or infinite"):
        if name == "adcc":
            M.adcc(model, explainer_for(model), x, 0, sal=sn)
        elif name == "max_sensitivity":
            M.max_sensitivity(explainer_for(model), x, 0, sal=sn, n=2)
        else:
            RUNS[name](model, x, sn, 0)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_nan_model_outputs_raise(name):
    model = tiny_cnn()
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = float("nan")
    x, sal = data()
    with pytest.raises(XaikitError, match="NaN"):
        RUNS[name](model, x, sal, 0)


class DarkNaN(nn.Module):
    """Finite logits on the clean images, NaN on images whose mean is below zero (the black substrate)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.xaikit = ModelInfo(name="darknan", num_classes=2, mean=(0.5,) * 3, std=(0.25,) * 3)

    def forward(self, x):
        out = self.lin(x.mean((2, 3)))
        dark = x.mean((1, 2, 3)) < -1.5
        return torch.where(dark[:, None], torch.full_like(out, float("nan")), out)


def test_nan_outputs_on_perturbed_images_name_the_metric():
    x = torch.full((1, 3, H, H), 0.5)   # normalized; pixel black = -2
    sal = torch.rand(1, H, H)
    with pytest.raises(InputError, match="deletion images"):
        M.deletion(DarkNaN(), x, sal, 0, steps=4)
    with pytest.raises(InputError, match=r"model\(x ⊙ S\)"):
        M.recognition(DarkNaN(), x, torch.zeros(1, H, H), 0)


# ------------------------------------------------------------------------------------------ outputs
class Wrapped(nn.Module):
    def __init__(self, inner, kind):
        super().__init__()
        self.inner, self.kind = inner, kind
        self.xaikit = inner.xaikit

    def forward(self, x):
        out = self.inner(x)
        if self.kind == "tuple":
            return out, out.mean()
        if self.kind == "dict":
            return {"logits": out, "features": out * 2}
        if self.kind == "object":
            return type("Out", (), {"logits": out, "loss": None})()
        if self.kind == "dict_no_logits":
            return {"scores": out}
        return "nonsense"


@pytest.mark.parametrize("kind", ["tuple", "dict", "object"])
@pytest.mark.parametrize("name", sorted(RUNS))
def test_tuple_dict_and_logits_outputs_are_read(name, kind):
    inner = tiny_cnn()
    x, sal = data()
    want = RUNS[name](inner, x, sal, 1)
    got = RUNS[name](Wrapped(inner, kind), x, sal, 1)
    for u, v in zip(values(want), values(got)):
        assert torch.allclose(u, v, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("kind", ["dict_no_logits", "str"])
def test_outputs_without_logits_are_refused_clearly(kind):
    x, sal = data()
    for name in ("recognition", "insertion", "aopc"):
        with pytest.raises(InputError, match="not class logits"):
            RUNS[name](Wrapped(tiny_cnn(), kind), x, sal, 0)


# ------------------------------------------------------------------------------------------ the model
def snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {n: m.training for n, m in model.named_modules()},
            {n: (None if p.grad is None else (p.grad, p.grad.clone())) for n, p in model.named_parameters()})


def assert_same(model, snap):
    state, modes, grads = snap
    now = model.state_dict()
    assert set(now) == set(state)
    for k, v in state.items():
        assert torch.equal(now[k], v), f"state {k} changed"
    assert {n: m.training for n, m in model.named_modules()} == modes
    for n, p in model.named_parameters():
        if grads[n] is None:
            assert p.grad is None, f"{n}.grad appeared"
        else:
            assert p.grad is grads[n][0] and torch.equal(p.grad, grads[n][1]), f"{n}.grad changed"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_train_mode_batchnorm_model_is_left_as_found(name):
    model = BNNet().train()
    model.features[5].eval()                     # mixed modes: each submodule gets its own back
    model.fc.weight.grad = torch.full_like(model.fc.weight, 0.25)   # a gradient left by a training step
    x, sal = data()
    snap = snapshot(model)
    got = RUNS[name](model, x, sal, 1)
    assert_same(model, snap)
    # the metric saw the model in eval mode: the numbers of an eval-mode copy
    ref = copy.deepcopy(model).eval()
    want = RUNS[name](ref, x, sal, 1)
    for u, v in zip(values(got), values(want)):
        assert torch.allclose(u, v, atol=1e-5, equal_nan=True), name
    assert_same(model, snap)


def test_localization_leaves_inputs_alone_and_attributor_models_are_guarded():
    model = BNNet().train()
    x, sal = data()
    snap = snapshot(model)

    class Explainer:                              # an attributor-like object: its .model is guarded too
        def __init__(self, m):
            self.model = m

        def __call__(self, xx, t):
            return explainer_for(self.model)(xx, t)

    M.max_sensitivity(Explainer(model), x, 1, n=2)
    assert_same(model, snap)


def test_twin_option():
    model = BNNet().eval()
    x, sal = data()
    a = M.insertion_curves(model, x, sal, 0, steps=5, twin=True)
    b = M.insertion_curves(model, x, sal, 0, steps=5, twin=False)
    assert torch.allclose(a.curves, b.curves, atol=1e-5)
    r1 = M.recognition(model, x, sal, 0, reduce=False, twin=False)
    r2 = M.recognition(model, x, sal, 0, reduce=False)
    assert torch.allclose(r1["p"], r2["p"], atol=1e-6) and torch.allclose(r1["o"], r2["o"], atol=1e-6)
    with pytest.raises(ConfigError, match="twin"):
        M.aopc(model, x, sal, 0, twin=1)
