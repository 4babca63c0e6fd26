"""The attributors' public API: typed, documented, checked options; one result type (Explanation); the
shared vocabulary of xaikit.core; hooks that leave a model as they found it; no import circle."""
import ast
import inspect
import json
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit.attributors import Explanation
from xaikit.core.devices import host
from xaikit.errors import ConfigError
from xaikit.models import fast
from xaikit.models.hooks import model_guard

from _tiny import tiny_gap

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
VIT_METHODS = ("raw_attention", "rollout", "chefer", "tibav", "vit_reciprocam")
#: small settings so that every method runs in a fraction of a second on 16 px images
QUICK = {"rise": dict(n_masks=20, grid=4), "extremal": dict(max_iter=3, step=4, sigma=4.0),
         "opticam": dict(max_iter=3), "smoothgrad": dict(n=2), "integrated_gradients": dict(steps=3),
         "groupcam": dict(groups=3, blur_ksize=5, blur_sigma=2.0)}
#: what each method puts in Explanation.extras (besides what every CAM method has: "weights")
EXTRAS = {"scorecam": {"scores", "n_forward"}, "ablationcam": {"scores"},
          "groupcam": {"masks", "gains", "baseline_score"}, "opticam": {"u", "history", "steps"},
          "rise": {"n_masks", "p", "n_forward"}, "extremal": {"masks", "energy", "area", "areas"},
          "saliency": {"attributions"}, "guided_backprop": {"attributions"}, "integrated_gradients": {"attributions"},
          "smoothgrad": {"attributions", "sigma"}, "raw_attention": {"block"}, "vit_reciprocam": {"grid", "n_forward"},
          "tibav": {"relevance"}}
CAM_FAMILY = ("cam", "gradcam", "gradcampp", "xgradcam", "hirescam", "layercam", "scorecam", "ablationcam",
              "groupcam", "opticam")
REMOVED = ("last_target", "last_logits", "last_weights", "last_scores", "last_masks", "last_energy", "last_area",
           "history", "steps", "u", "_raw", "_group_alpha", "n_forward", "return_history")


class BNNet(nn.Module):
    """A small CNN with BatchNorm (GAP + linear head, CAM-ready), 16 px inputs, 5 classes."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def bn_net(seed=0) -> BNNet:
    torch.manual_seed(seed)
    m = BNNet()
    g = torch.Generator().manual_seed(seed)
    for bn in (m.features[1], m.features[4]):
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 0.1)
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
    m.xaikit = xk.models.ModelInfo(name="bnnet", num_classes=5, default_layer="features.5",
                                   feature_layer="features.5", classifier="fc", input_size=16)
    return m


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return xk.models.load("vit_tiny_patch16_224", weights="random", num_classes=10, img_size=32, depth=2)


def options(name):
    return xk.attributors.options_of(name)


def args_section(doc: str) -> str:
    assert "Args:" in doc
    return doc.split("Args:", 1)[1]


# ------------------------------------------------------------------------------------- options
@pytest.mark.parametrize("name", xk.attributors.available())
def test_every_method_has_a_typed_documented_signature(name):
    cls = xk.attributors.method_class(name)
    sig = inspect.signature(cls)
    params = list(sig.parameters.values())
    assert [p.name for p in params[:2]] == ["model", "layer"] and params[1].default is None
    opts = params[2:]
    assert opts and all(p.kind is p.KEYWORD_ONLY for p in opts)       # keyword-only options
    assert all(p.default is not p.empty for p in opts)                  # with their defaults
    assert all(p.annotation is not p.empty for p in opts)               # and type hints
    assert "batch_size" in sig.parameters
    doc = inspect.getdoc(cls)
    first = doc.split("\n\n")[0]
    assert "(" in first and re.search(r"\d{4}", first), first           # names the method and its paper
    section = args_section(doc)
    for p in opts:                                                      # every option documented
        assert re.search(rf"^\s+{p.name}:", section, re.M), (name, p.name)
    assert set(options(name)) == {p.name for p in opts}


def test_help_shows_every_option_with_its_default():
    model = tiny_gap()
    cam = xk.attributors.create("scorecam", model)
    text = pydoc.render_doc(cam, renderer=pydoc.plaintext)
    sig = inspect.signature(type(cam))
    want = {"score": "logit", "mask_space": "normalized", "align_corners": True, "channel_softmax": True,
            "minmax_eps": 0.0, "relu": True, "twin": True, "batch_size": None}
    for k, v in want.items():
        assert sig.parameters[k].default == v
        assert re.search(rf"{k}: [^=]+= {re.escape(repr(v))}", text), k
        assert re.search(rf"^\s+{k}:", args_section(text.replace("|  ", "")), re.M), k
    assert text.count("Score-CAM (Wang et al.") == 1


def test_options_dict_holds_every_resolved_option_and_is_json():
    model = tiny_gap()
    for name in xk.attributors.available():
        if name in VIT_METHODS:
            continue
        a = xk.attributors.create(name, model)
        want = set(options(name)) - {"batch_size", "reshape"}
        assert set(a.options) == want, name
        json.dumps(a.options)
    a = xk.attributors.create("rise", model, masks=torch.ones(3, 16, 16))
    assert a.options["masks"].startswith("tensor(3, 16, 16):sha1=") and a.options["n_masks"] == 3
    json.dumps(a.options)
    b = xk.attributors.create("integrated_gradients", model, baseline=torch.zeros(1, 3, 1, 1))
    assert b.options["baseline"].startswith("tensor(1, 3, 1, 1)")


def test_aliases_resolve_to_the_canonical_vocabulary():
    model = tiny_gap()
    a = xk.attributors.create("gradcam", model, score="prob")
    assert a.options["score"] == "softmax"
    assert xk.attributors.create("scorecam", model, mask_space="input").options["mask_space"] == "normalized"
    assert xk.attributors.create("groupcam", model, gain_score="log_prob").options["gain_score"] == "log_softmax"
    assert xk.attributors.create("rise", model, baseline="zeros").options["baseline"] == "mean"
    assert xk.attributors.create("opticam", model).options["mask_space"] == "pixel"


def test_unknown_option_lists_the_valid_ones():
    model = tiny_gap()
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['colour'\].*'relu'.*'score'"):
        xk.attributors.create("gradcam", model, colour="red")
    with pytest.raises(ConfigError, match="did you mean 'max_iter'"):
        xk.attributors.create("opticam", model, max_iters=3)
    with pytest.raises(ConfigError, match="return_history"):
        xk.attributors.create("opticam", model, return_history=True)  # removed: read explain(...).extras


@pytest.mark.parametrize("name,opts,match", [
    ("groupcam", {"theta": 150}, r"theta=150 .*\[0, 100\)"),
    ("groupcam", {"theta": -1}, r"theta=-1"),
    ("groupcam", {"blur_ksize": 0}, r"blur_ksize=0 .*>= 1"),
    ("groupcam", {"blur_ksize": 50}, r"blur_ksize=50 .*odd"),
    ("groupcam", {"blur_sigma": 0}, r"blur_sigma=0"),
    ("groupcam", {"groups": 0}, r"groups=0"),
    ("groupcam", {"mask_space": "screen"}, r"mask_space='screen'.*'normalized', 'pixel'"),
    ("opticam", {"max_iter": -3}, r"max_iter=-3"),
    ("opticam", {"lr": -0.1}, r"lr=-0.1 .*\(0"),
    ("opticam", {"lr": 0}, r"lr=0"),
    ("opticam", {"normalization": "l2"}, r"normalization='l2'.*'range'"),
    ("opticam", {"objective": "x"}, r"objective='x'.*'mask', 'diff'"),
    ("gradcam", {"relu": "no"}, r"relu='no' must be True or False"),
    ("gradcam", {"relu": 1}, r"relu=1 must be True or False"),
    ("gradcam", {"score": "probs"}, r"score='probs'.*'logit', 'softmax', 'log_softmax'"),
    ("scorecam", {"minmax_eps": -1}, r"minmax_eps=-1"),
    ("scorecam", {"twin": "yes"}, r"twin='yes'"),
    ("ablationcam", {"ablation": "mean"}, r"ablation='mean'.*'zero', 'gradcam'"),
    ("ablationcam", {"batch_size": 0}, r"batch_size=0"),
    ("rise", {"p": 1.5}, r"p=1.5"),
    ("rise", {"n_masks": 2.5}, r"n_masks=2.5 .*whole number"),
    ("rise", {"baseline": "grey"}, r"baseline='grey'.*'black', 'mean'"),
    ("rise", {"masks": torch.full((2, 16, 16), 2.0)}, r"masks must hold values in \[0, 1\]"),
    ("extremal", {"areas": (0.1, 1.0)}, r"areas=1.0"),
    ("extremal", {"num_levels": 1}, r"num_levels=1"),
    ("extremal", {"optimizer": "lbfgs"}, r"optimizer='lbfgs'"),
    ("smoothgrad", {"noise_level": -0.1}, r"noise_level=-0.1"),
    ("smoothgrad", {"nt_type": "vargrad"}, r"nt_type='vargrad'"),
    ("integrated_gradients", {"steps": 0}, r"steps=0"),
    ("integrated_gradients", {"baseline": "grey"}, r"baseline='grey'"),
    ("saliency", {"reduce": "median"}, r"reduce='median'.*'abs_max'"),
    ("guided_backprop", {"score": "softmax"}, r"score='softmax'.*logit"),
])
def test_bad_options_are_refused_at_construction(name, opts, match):
    with pytest.raises(ConfigError, match=match):
        xk.attributors.create(name, tiny_gap(), **opts)


@pytest.mark.parametrize("name,opts,match", [
    ("raw_attention", {"block": 99}, r"block=99 is out of range: this model has 2 blocks"),
    ("raw_attention", {"block": -3}, r"block=-3 is out of range"),
    ("raw_attention", {"head_fusion": "median"}, r"head_fusion='median'.*'mean'"),
    ("rollout", {"discard_ratio": 1.5}, r"discard_ratio=1.5 .*\[0, 1\)"),
    ("rollout", {"start_block": 2}, r"start_block=2 is out of range"),
    ("rollout", {"residual": "true"}, r"residual='true' must be True or False"),
    ("chefer", {"score": "x"}, r"score='x'"),
    ("vit_reciprocam", {"tap": "mlp"}, r"tap='mlp'.*'norm1', 'block'"),
    ("vit_reciprocam", {"kernel": "box"}, r"kernel='box'"),
    ("vit_reciprocam", {"cls_token": 0}, r"cls_token=0"),
])
def test_bad_transformer_options_are_refused(vit, name, opts, match):
    with pytest.raises(ConfigError, match=match):
        xk.attributors.create(name, vit, **opts)


def test_valid_block_indices(vit):
    assert xk.attributors.create("raw_attention", vit, block=-2).options["block"] == -2
    x = torch.randn(1, 3, 32, 32)
    e0 = xk.attributors.create("raw_attention", vit, block=0).explain(x, normalize=False)
    e1 = xk.attributors.create("raw_attention", vit, block=-2).explain(x, normalize=False)
    assert e0.extras["block"] == e1.extras["block"] == 0 and torch.equal(e0.maps, e1.maps)


# -------------------------------------------------------------------------------- explanation
def _snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {n: m.training for n, m in model.named_modules()},
            {n: (p.grad, None if p.grad is None else p.grad.clone(), p.requires_grad)
             for n, p in model.named_parameters()})


def _assert_unchanged(model, snap, name):
    state, modes, grads = snap
    now = model.state_dict()
    for k, v in state.items():
        assert torch.equal(now[k], v), (name, k)
    assert {n: m.training for n, m in model.named_modules()} == modes, name
    for n, p in model.named_parameters():
        g, val, req = grads[n]
        assert p.grad is g and p.requires_grad == req, (name, n)
        assert g is None or torch.equal(p.grad, val), (name, n)


@pytest.mark.parametrize("name", xk.attributors.available())
def test_every_method_explains_and_leaves_a_train_mode_model_untouched(vit, name):
    if name in VIT_METHODS:
        model, x = vit, torch.randn(2, 3, 32, 32)
        model.train()
    else:
        model, x = bn_net(), torch.randn(2, 3, 16, 16)
        model.train()
        model.features[1].eval()  # a frozen BatchNorm inside a model in train mode stays frozen
        model.fc.weight.grad = torch.ones_like(model.fc.weight)  # a gradient being accumulated stays as it is
    try:
        snap = _snapshot(model)
        a = xk.attributors.create(name, model, **QUICK.get(name, {}))
        e = a.explain(host(x), 1)  # a reader's (strict-mode) tensor: the method moves it itself
        _assert_unchanged(model, snap, name)
        assert isinstance(e, Explanation)
        assert e.maps.dim() == 3 and e.maps.shape[0] == 2 and e.maps.dtype == torch.float32
        assert float(e.maps.min()) >= 0 and float(e.maps.max()) <= 1
        assert e.target.tolist() == [1, 1]
        assert e.logits is None if name == "fakecam" else e.logits.shape == (2, model.xaikit.num_classes)
        want = EXTRAS.get(name, set()) | ({"weights"} if name in CAM_FAMILY else set())
        assert set(e.extras) == want, (name, set(e.extras))
        for k in REMOVED:  # a call leaves nothing behind (IG's `steps` is an option, not a result)
            assert k not in vars(a) or k in a.options, (name, k)
        up = a.explain(x, 1, upsample=True)
        assert up.maps.shape == (2, *x.shape[-2:])
        sal = a(x)  # the one-line path: predicted class, input size, [0, 1]
        assert sal.shape == (2, *x.shape[-2:]) and float(sal.min()) >= 0 and float(sal.max()) <= 1
        _assert_unchanged(model, snap, name)
    finally:
        model.eval()


def test_explanation_moves_every_tensor():
    e = Explanation(torch.rand(2, 4, 4), torch.tensor([1, 2]), torch.rand(2, 5),
                    {"weights": torch.rand(2, 3), "history": [torch.rand(3)], "n_forward": 7})
    m = e.to("meta")
    assert m.maps.is_meta and m.target.is_meta and m.logits.is_meta
    assert m.extras["weights"].is_meta and m.extras["history"][0].is_meta and m.extras["n_forward"] == 7
    assert e.to(None) is e and e.maps.device.type == "cpu"
    assert "maps=(2, 4, 4)" in repr(e)


def test_extras_are_the_removed_side_attributes():
    model, x = tiny_gap(), torch.randn(2, 3, 16, 16)
    e = xk.attributors.create("scorecam", model).explain(x, 0)
    K = 6
    assert e.extras["scores"].shape == (2, K) and e.extras["weights"].shape == (2, K)
    assert 1 <= e.extras["n_forward"] <= 2 * K + 1
    e = xk.attributors.create("groupcam", model, groups=3, theta=None).explain(x, 0)
    assert e.extras["masks"].shape == (2, 3, 8, 8) and e.extras["gains"].shape == (2, 3)
    e = xk.attributors.create("opticam", model, max_iter=4).explain(x, 0)
    assert e.extras["history"].shape[1] == 2 and (e.extras["steps"] <= 4).all()
    assert e.extras["history"].shape[0] == int(e.extras["steps"].max()) + 1
    e = xk.attributors.create("extremal", model, max_iter=2, step=4, sigma=4.0, areas=(0.1, 0.2)).explain(x, 0)
    assert e.extras["masks"].shape == (2, 2, 16, 16) and e.extras["area"].shape == (2, 2)
    assert e.extras["areas"] == (0.1, 0.2)


# ----------------------------------------------------------------------------------- the twin
@pytest.mark.parametrize("name", ["scorecam", "ablationcam", "groupcam", "opticam", "rise", "extremal"])
def test_twin_option_chooses_the_network(name):
    model, x = bn_net().eval(), torch.randn(2, 3, 16, 16)
    on = xk.attributors.create(name, model, **QUICK.get(name, {}))
    off = xk.attributors.create(name, model, twin=False, **QUICK.get(name, {}))
    assert on.options["twin"] is True and off.options["twin"] is False
    assert on.fast(x) is not model and off.fast(x) is model
    with fast.disabled():  # kept for benchmarks: switches the twin off everywhere
        assert on.fast(x) is model
    a, b = on.explain(x, 2, normalize=False).maps, off.explain(x, 2, normalize=False).maps
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-4 * float(b.abs().max()) + 1e-6), name


def test_ablationcam_twin_falls_back_where_the_twin_folds_the_layer():
    """A convolution whose BatchNorm the twin folds outputs something else in the twin: the ablated passes
    must run on the model there, and the weights must not change."""
    model, x = bn_net().eval(), torch.randn(2, 3, 16, 16)
    a = xk.attributors.create("ablationcam", model, layer="features.3")  # conv followed by a BatchNorm
    with torch.no_grad():
        net, lay = a._network(x, model.features[:4](x))
        assert net is model and lay is model.features[3]
        b = xk.attributors.create("ablationcam", model, layer="features.5")  # after the BatchNorm: the twin
        net, _ = b._network(x, model.features(x))
    assert net is not model
    for layer in ("features.3", "features.5"):
        on = xk.attributors.create("ablationcam", model, layer=layer).explain(x, 1).extras["weights"]
        off = xk.attributors.create("ablationcam", model, layer=layer, twin=False).explain(x, 1).extras["weights"]
        assert torch.allclose(on, off, rtol=1e-3, atol=1e-5), layer


# ------------------------------------------------------------------------------------- hooks
def test_model_guard_restores_each_submodules_own_mode_and_grads():
    model = bn_net().train()
    model.features[1].eval()
    g = torch.ones_like(model.fc.bias)
    model.fc.bias.grad = g
    with model_guard(model):
        assert not any(m.training for m in model.modules())
        model.fc.bias.grad = None
    assert model.training and not model.features[1].training and model.features[4].training
    assert model.fc.bias.grad is g


def test_model_guard_restores_when_eval_raises():
    class Stubborn(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(2)

        def train(self, mode=True):
            if not mode:
                self.bn.training = False  # half-way, then fails
                raise RuntimeError("cannot switch")
            return super().train(mode)

    m = Stubborn()
    with pytest.raises(RuntimeError, match="cannot switch"):
        with model_guard(m):
            pass
    assert m.training and m.bn.training


def test_fast_and_hooks_do_not_import_attributors():
    for rel in ("xaikit/models/fast.py", "xaikit/models/hooks.py"):
        tree = ast.parse((ROOT / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert "attributors" not in (node.module or ""), rel
            elif isinstance(node, ast.Import):
                assert not any("attributors" in a.name for a in node.names), rel
    code = ("import sys, xaikit.models.fast, xaikit.models.hooks; "
            "assert not [m for m in sys.modules if m.startswith('xaikit.attributors')]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_one_vocabulary_no_duplicates_left():
    import xaikit.config as config
    import xaikit.core.conventions as conv
    import xaikit.core.targets as targets

    assert not hasattr(config, "auto_batch")  # config is the floor below core: one definition, in core
    for n in ("check_input", "check_target", "resolve_target", "class_score", "chunks", "mask_input",
              "gaussian_blur", "LayerCapture", "model_guard"):
        assert not hasattr(xk.attributors, n), n
    # the method modules use xaikit.core's conventions and the models' hooks; they define none of their own
    shared = set(dir(conv)) | set(dir(targets)) | {"LayerCapture", "model_guard", "check_input", "mask_input"}
    for mod in ("base", "cam", "score", "opticam", "gradient", "perturbation", "transformer"):
        tree = ast.parse((ROOT / f"xaikit/attributors/{mod}.py").read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not defined & shared, (mod, defined & shared)
    assert xk.models.LayerCapture is xk.models.hooks.LayerCapture
