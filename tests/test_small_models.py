"""Small models (shapes, metadata, exact CAM head, ReLU modules) and their cached, deterministic trainer."""
import json

import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit.errors import ConfigError, WeightsError
from xaikit.models import get_layer
from xaikit.training import small as T

ARCHS = {"resnet18_cifar": dict(width=8), "mobilenetv2_cifar": dict(width_mult=0.25),
         "deit_tiny_synth": dict(embed_dim=32, depth=2, num_heads=2)}


def _stage_shapes(model, x):
    out = {}
    hooks = [get_layer(model, s).register_forward_hook(lambda m, i, o, s=s: out.__setitem__(s, o.shape))
             for s in model.xaikit.stages]
    try:
        y = model(x)
    finally:
        for h in hooks:
            h.remove()
    return y, out


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_forward_shapes_and_metadata_layers(arch):
    torch.manual_seed(0)
    m = xk.models.load(arch, weights="random", num_classes=5, **ARCHS[arch])
    inf = m.xaikit
    assert not m.training and inf.num_classes == 5 and inf.mean == (0.5, 0.5, 0.5) and inf.input_size == 32
    x = torch.rand(2, 3, 32, 32)
    y, stages = _stage_shapes(m, x)
    assert y.shape == (2, 5)
    for name in (inf.default_layer, inf.feature_layer, inf.classifier):
        assert isinstance(get_layer(m, name), nn.Module)
    assert isinstance(get_layer(m, inf.classifier), nn.Linear)
    assert len(inf.stages) >= (2 if inf.is_vit else 4) and set(stages) == set(inf.stages)
    if inf.is_vit:
        assert inf.grid_size == (8, 8) and all(s[1] == 65 for s in stages.values())
        assert inf.reshape(torch.zeros(2, 65, 32)).shape == (2, 32, 8, 8)
        assert not any(b.attn.fused_attn for b in m.blocks)  # attention maps reachable by hooks
    else:
        res = [stages[s][-1] for s in inf.stages]
        assert res == sorted(res, reverse=True) and res[0] == 32 and res[-1] == 4
        assert len({r for r in res}) >= 4  # the stages span the resolutions


@pytest.mark.parametrize("arch", ["resnet18_cifar", "mobilenetv2_cifar"])
def test_cnn_relu_modules_and_exact_cam_decomposition(arch):
    torch.manual_seed(0)
    m = xk.models.load(arch, weights="random", num_classes=4, **ARCHS[arch])
    relus = [mod for mod in m.modules() if isinstance(mod, nn.ReLU)]
    assert relus and not any(isinstance(mod, nn.ReLU6) for mod in m.modules())
    # each ReLU module is called exactly once per forward (activation swapping / hooks stay unambiguous)
    calls = {}
    for r in relus:
        r.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls.get(id(mod), 0) + 1))
    feats = {}
    get_layer(m, m.xaikit.feature_layer).register_forward_hook(lambda mod, i, o: feats.__setitem__("A", o))
    x = torch.rand(3, 3, 32, 32)
    logits = m(x)
    assert set(calls.values()) == {1} and len(calls) == len(relus)
    # GAP + linear head: logit_c = mean_hw(sum_k w_k^c A^k) + b_c  (CAM, thesis eq. 1.3)
    fc = get_layer(m, m.xaikit.classifier)
    cam = torch.einsum("ck,bkhw->bchw", fc.weight, feats["A"])
    assert torch.allclose(cam.mean((2, 3)) + fc.bias, logits, atol=1e-5)


def test_small_models_refuse_pretrained_weights_and_bad_vit_size():
    with pytest.raises(WeightsError, match="train it"):
        xk.models.load("resnet18_cifar", weights="imagenet")
    with pytest.raises(ConfigError, match="patch_size"):
        xk.models.load("deit_tiny_synth", weights="random", img_size=30)


# -------------------------------------------------------------------------------------- trainer
TINY = dict(num_classes=4, size=32, n_train=256, n_test=200, epochs=3, lr=0.05, batch_size=32,
            arch_kwargs={"width": 8}, seed=0)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIKIT_CACHE", str(tmp_path))
    return tmp_path


def test_tiny_training_beats_chance_and_second_call_hits_cache(cache, monkeypatch):
    m = T.train("resnet18_cifar", **TINY)
    rec = m.train_record
    assert rec["test_accuracy"] >= 0.6, rec  # chance is 0.25 on 4 balanced classes
    assert m.xaikit.weights.startswith("checkpoint:") and m.xaikit.class_names[0] == "red circle"
    pts = list((cache / "models").glob("*.pt"))
    assert len(pts) == 1 and json.loads(pts[0].with_suffix(".json").read_text())["test_accuracy"] == rec["test_accuracy"]
    # the recorded accuracy is the one evaluate() measures on the test split
    test = xk.data.synthetic(200, 4, 32, seed=0, split="test")
    assert T.evaluate(m, test) == pytest.approx(rec["test_accuracy"])

    def boom(*a, **k):
        raise AssertionError("trained again instead of loading the cached checkpoint")

    monkeypatch.setattr(torch.optim.SGD, "step", boom)
    m2 = T.train("resnet18_cifar", **TINY)
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert m2.train_record["train_time_s"] == rec["train_time_s"]


def test_training_is_deterministic_and_config_keyed(cache):
    cfg = dict(TINY, n_train=96, n_test=32, epochs=1)
    a = T.train("resnet18_cifar", cache=False, **cfg)
    b = T.train("resnet18_cifar", cache=False, **cfg)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not list(cache.glob("models/*.pt"))  # cache=False writes nothing
    c1, c2 = T.config("resnet18_cifar", **cfg), T.config("resnet18_cifar", **dict(cfg, seed=1))
    assert T.config_hash(c1) != T.config_hash(c2) and T.config_hash(c1) == T.config_hash(dict(c1))
    with pytest.raises(ConfigError, match="unknown training option"):
        T.config("resnet18_cifar", learning_rate=0.1)
    with pytest.raises(ConfigError, match="pass those as train"):
        T.config("resnet18_cifar", data={"size": 64})
    with pytest.raises(ConfigError, match="no training defaults"):
        T.train("resnet50")


def test_training_runs_on_one_thread_whatever_the_caller_has(cache, monkeypatch):
    # the thread count changes a CPU's float rounding, which a few epochs of SGD amplify: one thread makes a
    # trained model the same on any core count or --jobs (config.training_threads)
    cfg = dict(TINY, n_train=96, n_test=32, epochs=1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = T.train("resnet18_cifar", cache=False, **cfg)
        assert a.train_record["threads"] == 1 and torch.get_num_threads() == 2  # restored afterwards
        torch.set_num_threads(1)
        b = T.train("resnet18_cifar", cache=False, **cfg)
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(va, vb), k
        monkeypatch.setenv("XAIKIT_TRAIN_THREADS", "2")
        assert T.train("resnet18_cifar", cache=False, **cfg).train_record["threads"] == 2
        monkeypatch.setenv("XAIKIT_TRAIN_THREADS", "many")
        with pytest.raises(ConfigError, match="XAIKIT_TRAIN_THREADS='many'"):
            T.train("resnet18_cifar", cache=False, **cfg)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("arch,kw", [("mobilenetv2_cifar", dict(arch_kwargs={"width_mult": 0.25})),
                                     ("deit_tiny_synth", dict(arch_kwargs=ARCHS["deit_tiny_synth"], lr=2e-3))])
def test_other_archs_train_and_reload(cache, arch, kw):
    m = T.train(arch, num_classes=4, n_train=64, n_test=32, epochs=1, batch_size=32, seed=0, **kw)
    assert m.train_record["history"][0]["loss"] > 0
    m2 = T.train(arch, num_classes=4, n_train=64, n_test=32, epochs=1, batch_size=32, seed=0, **kw)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(m(x), m2(x)) and m2.xaikit.name == arch


def test_multilabel_training_uses_multihot_targets(cache):
    m = T.train("resnet18_cifar", **dict(TINY, n_train=64, n_test=32, epochs=1, data={"classes_per_image": 2}))
    assert 0.0 <= m.train_record["test_accuracy"] <= 1.0 and m.train_record["chance"] == pytest.approx(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(T.DEFAULTS))
def test_default_config_reaches_well_above_chance(cache, arch):
    m = T.train(arch)
    rec = m.train_record
    assert rec["test_accuracy"] > 0.7, rec  # chance 0.1


# ----------------------------------------------- MobileNet-V2 as in the thesis' chapter 4 recipe
class _RefBottleneck(nn.Module):
    """Test-only reference: weiaicunzai/pytorch-cifar100 models/mobilenetv2.py LinearBottleNeck."""

    def __init__(self, cin, cout, stride, t=6):
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(cin, cin * t, 1), nn.BatchNorm2d(cin * t), nn.ReLU6(),
            nn.Conv2d(cin * t, cin * t, 3, stride=stride, padding=1, groups=cin * t), nn.BatchNorm2d(cin * t),
            nn.ReLU6(), nn.Conv2d(cin * t, cout, 1), nn.BatchNorm2d(cout))
        self.add = stride == 1 and cin == cout

    def forward(self, x):
        r = self.residual(x)
        return r + x if self.add else r


def _ref_mobilenetv2(class_num=100):
    """Test-only reference: pytorch-cifar100 MobileNetV2 (pre, stage1-7, conv1, pool, conv2)."""
    def stage(n, cin, cout, s, t):
        return [_RefBottleneck(cin, cout, s, t)] + [_RefBottleneck(cout, cout, 1, t) for _ in range(n - 1)]

    layers = [nn.Conv2d(3, 32, 1, padding=1), nn.BatchNorm2d(32), nn.ReLU6(), _RefBottleneck(32, 16, 1, 1),
              *stage(2, 16, 24, 2, 6), *stage(3, 24, 32, 2, 6), *stage(4, 32, 64, 2, 6), *stage(3, 64, 96, 1, 6),
              *stage(3, 96, 160, 1, 6), _RefBottleneck(160, 320, 1, 6),
              nn.Conv2d(320, 1280, 1), nn.BatchNorm2d(1280), nn.ReLU6(), nn.AdaptiveAvgPool2d(1),
              nn.Conv2d(1280, class_num, 1), nn.Flatten(1)]
    return nn.Sequential(*layers)


def test_mobilenetv2_pytorch_cifar100_layout_is_the_reference_architecture():
    ref = _ref_mobilenetv2(100)
    m = xk.models.load("mobilenetv2_cifar", weights="random", num_classes=100, width_mult=1.0,
                       layout="pytorch_cifar100")
    n = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert n(m) == n(ref) == 2369380
    # the same tensors in the same order: copy the reference's weights in and compare outputs
    pairs = list(zip([p for p in ref.state_dict().values()], m.state_dict().values()))
    assert all(a.shape == b.reshape(a.shape).shape for a, b in pairs)
    m.load_state_dict({k: v.reshape(m.state_dict()[k].shape) for k, v in zip(m.state_dict(), ref.state_dict().values())})
    ref.eval(), m.eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(m(x), ref(x), atol=1e-5)
    assert get_layer(m, m.xaikit.feature_layer)(torch.zeros(1, 320, 5, 5)).shape[-1] == 5  # 32 px -> 5x5
    with pytest.raises(ConfigError, match="layout"):
        xk.models.load("mobilenetv2_cifar", weights="random", layout="v3")


def _conv_dtypes():
    """Patch Conv2d.forward to record the dtypes of its outputs while training."""
    seen = set()
    orig = nn.Conv2d.forward

    def fwd(self, x):
        out = orig(self, x)
        if self.training:
            seen.add(out.dtype)
        return out
    return seen, orig, fwd


def test_train_precision_setting_and_bf16_training_is_another_cached_model(cache, monkeypatch):
    from xaikit import config as C
    monkeypatch.setenv("XAIKIT_CPU_BF16", "0")
    monkeypatch.delenv("XAIKIT_TRAIN_PRECISION", raising=False)
    assert C.train_precision("cpu") == "fp32" and C.train_tag("cpu") == () and C.train_key("k", "cpu") == "k"
    monkeypatch.setenv("XAIKIT_CPU_BF16", "1")
    assert C.train_precision("cpu") == "fp32"  # the default: models the same on every machine
    monkeypatch.setenv("XAIKIT_TRAIN_PRECISION", "auto")  # auto: bf16 on a CPU that runs it natively, fp32 on CUDA
    assert C.train_precision("cpu") == "bf16" and C.train_precision("cuda") == "fp32"
    assert C.train_key("k", torch.device("cpu")) == "k-bf16" and C.train_key("k", "cuda:0") == "k"
    monkeypatch.setenv("XAIKIT_TRAIN_PRECISION", "fp32")
    assert C.train_precision("cpu") == "fp32"
    monkeypatch.setenv("XAIKIT_TRAIN_PRECISION", "half")
    with pytest.raises(ConfigError, match="XAIKIT_TRAIN_PRECISION='half'"):
        C.train_precision("cpu")

    cfg = dict(TINY, n_train=64, n_test=32, epochs=1)
    seen, orig, fwd = _conv_dtypes()
    monkeypatch.setattr(nn.Conv2d, "forward", fwd)
    monkeypatch.setenv("XAIKIT_TRAIN_PRECISION", "fp32")
    a = T.train("resnet18_cifar", **cfg)
    assert seen == {torch.float32} and a.train_record["precision"] == "fp32"
    seen.clear()
    monkeypatch.setenv("XAIKIT_TRAIN_PRECISION", "bf16")
    b = T.train("resnet18_cifar", **cfg)
    # the convolutions ran in bf16 (autocast), the weights stay fp32, and it is a second checkpoint, not the first
    assert seen == {torch.bfloat16} and b.train_record["precision"] == "bf16"
    assert all(p.dtype == torch.float32 for p in b.parameters())
    assert len(list((cache / "models").glob("*.pt"))) == 2
    assert any(not torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))
    monkeypatch.setenv("XAIKIT_TRAIN_PRECISION", "fp32")  # back to fp32: the first checkpoint is loaded again
    c = T.train("resnet18_cifar", **cfg)
    assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), c.state_dict().values()))
