"""Attributor base: registry, validation errors, normalization, upsampling, hooks."""
import pytest
import torch

import xaikit as xk
from xaikit.attributors import normalize_maps, upsample
from xaikit.errors import ConfigError, InputError, LayerError, XaikitError

from _tiny import tiny_gap

torch.set_num_threads(1)

CAM_NAMES = ["cam", "gradcam", "gradcampp", "xgradcam", "hirescam", "layercam", "scorecam", "ablationcam",
             "groupcam", "opticam", "fakecam"]


@pytest.fixture
def tiny():
    return tiny_gap(hidden=4)


def test_registry_names_and_alias(tiny):
    names = xk.attributors.available()
    assert set(CAM_NAMES) <= set(names)
    assert names == sorted(names)
    a = xk.attributors.create("axiomcam", tiny)
    assert type(a).__name__ == "XGradCAM"
    with pytest.raises(ConfigError, match="gradcam"):
        xk.attributors.create("gradcma", tiny)
    with pytest.raises(ConfigError, match="unknown option"):
        xk.attributors.create("gradcam", tiny, colour="red")


@pytest.mark.parametrize("name", ["gradcam", "layercam", "fakecam", "scorecam"])
def test_shapes_range_and_targets(tiny, name):
    x = torch.randn(3, 3, 16, 20)
    a = xk.attributors.create(name, tiny)
    s = a(x)
    assert s.shape == (3, 16, 20) and s.dtype == torch.float32
    assert s.min() >= 0 and s.max() <= 1
    assert torch.equal(a.explain(x).target, tiny(x).argmax(1))  # None -> predicted class
    assert a.explain(x, 2).target.tolist() == [2, 2, 2]
    assert a.explain(x, torch.tensor([0, 4, 1])).target.tolist() == [0, 4, 1]
    if name != "fakecam":
        assert a.explain(x).maps.shape == (3, 8, 10)


def test_bad_inputs_raise_helpful_errors(tiny):
    a = xk.attributors.create("gradcam", tiny)
    x = torch.randn(2, 3, 16, 16)
    with pytest.raises(InputError, match="num_classes=5"):
        a(x, 7)
    with pytest.raises(InputError, match="num_classes=5"):
        a(x, torch.tensor([0, -1]))
    with pytest.raises(InputError, match=r"shape \(2,\)"):
        a(x, torch.tensor([0, 1, 2]))
    with pytest.raises(InputError, match="integer"):
        a(x, torch.tensor([0.0, 1.0]))
    with pytest.raises(InputError, match="unsqueeze"):
        a(x[0])
    with pytest.raises(InputError, match="3 channels"):
        a(torch.randn(2, 16, 16, 3))
    with pytest.raises(InputError, match="dtype"):
        a((x * 100).to(torch.uint8))
    with pytest.raises(InputError, match="NaN"):
        a(torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(InputError, match="Tensor"):
        a(x.numpy())
    with pytest.raises(LayerError, match="features.3"):
        xk.attributors.create("gradcam", tiny, layer="features.33")
    with pytest.raises(LayerError, match="feature map"):
        xk.attributors.create("gradcam", tiny, layer="fc")(x)
    with pytest.raises(XaikitError):
        xk.attributors.create("cam", tiny, layer="features.1")(x)  # 4 channels != 6 classifier inputs


def test_vit_input_size_is_checked():
    vit = xk.models.load("vit_tiny_patch16_224", weights="random")
    a = xk.attributors.create("gradcam", vit)
    with pytest.raises(InputError, match="224x224"):
        a(torch.randn(1, 3, 128, 128))


def test_vit_reshape_transform_gives_grid_maps():
    torch.manual_seed(0)
    vit = xk.models.load("vit_tiny_patch16_224", weights="random", img_size=64)
    vit.xaikit.input_size = 64
    a = xk.attributors.create("gradcam", vit)
    low = a.explain(torch.randn(2, 3, 64, 64)).maps
    assert low.shape == (2, 4, 4) and torch.isfinite(low).all()


def test_normalize_maps_constant_and_range():
    m = torch.stack([torch.zeros(4, 4), torch.full((4, 4), 3.0), torch.arange(16.0).view(4, 4)])
    n = normalize_maps(m)
    assert not torch.isnan(n).any()
    assert (n[0] == 0).all() and (n[1] == 0).all()  # constant -> zeros (documented)
    assert n[2].min() == 0 and n[2].max() == 1
    torch.testing.assert_close(n[2], (m[2] - 0) / 15)


def test_constant_map_gives_no_nan(tiny):
    """A ReLU'd map that is all zero (class with negative evidence everywhere) stays finite."""
    with torch.no_grad():
        tiny.fc.weight.fill_(-1.0)
    x = torch.randn(2, 3, 16, 16)
    s = xk.attributors.create("gradcam", tiny)(x, 0)
    assert torch.isfinite(s).all() and (s == 0).all()


def test_upsample_shapes_and_bilinear():
    m = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    u = upsample(m, (4, 4))
    assert u.shape == (1, 4, 4)
    torch.testing.assert_close(u[0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))
    assert upsample(torch.rand(2, 3, 2, 2), 8).shape == (2, 3, 8, 8)


def test_frozen_model_still_gets_gradients(tiny):
    for p in tiny.parameters():
        p.requires_grad_(False)
    s = xk.attributors.create("gradcam", tiny)(torch.randn(2, 3, 16, 16))
    assert s.shape == (2, 16, 16) and s.max() > 0


def test_hooks_are_removed_even_on_error(tiny):
    a = xk.attributors.create("gradcam", tiny)
    with pytest.raises(InputError):
        a(torch.randn(2, 3, 16, 16), 9)
    a(torch.randn(1, 3, 16, 16))
    assert all(len(m._forward_hooks) == 0 for m in tiny.modules())


# ------------------------------------------------- fault audit (benchmarks/faults.py, issue 21)
class _MHANet(torch.nn.Module):
    """patch conv -> nn.MultiheadAttention (its output is a tuple the model unpacks) -> mean -> fc."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        y, _ = self.mha(t, t, t)
        return self.fc(y.mean(1))


def _tok(t):
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], 4, 4)


@pytest.mark.parametrize("b", [1, 2, 3])
def test_layer_with_a_tuple_output_keeps_the_model_whole(b):
    torch.manual_seed(0)
    m = _MHANet().eval()
    x = torch.randn(b, 3, 16, 16)
    e = xk.attributors.create("gradcam", m, layer="mha", reshape=_tok).explain(x, 1)
    with torch.no_grad():
        assert torch.allclose(e.logits, m(x), atol=1e-5)  # the hook used to replace (out, w) by out
    cap = {}
    h = m.mha.register_forward_hook(lambda mod, i, o: cap.__setitem__("a", o[0]))
    g, = torch.autograd.grad(m(x)[:, 1].sum(), cap["a"])
    h.remove()
    A, G = _tok(cap["a"].detach()), _tok(g)
    assert torch.allclose(e.maps, normalize_maps(torch.relu((G.mean((2, 3), keepdim=True) * A).sum(1))), atol=1e-5)


@pytest.mark.parametrize("frozen", [False, True])
def test_gradcam_before_an_inplace_add_is_taken_at_the_layer(frozen):
    """torchvision ResNet's block adds the shortcut to bn2's output in place: Grad-CAM at bn2 was the map
    at layer4.1 (trainable) or a leaf-variable error (frozen)."""
    torch.manual_seed(0)
    m = xk.models.load("torchvision:resnet18", weights="random", num_classes=4)
    for bn in [mm for mm in m.modules() if isinstance(mm, torch.nn.BatchNorm2d)]:
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.data.normal_(1, 0.3)
        bn.bias.data.normal_(0, 0.3)
    if frozen:
        m.requires_grad_(False)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    got = xk.attributors.create("gradcam", m, layer="layer4.1.bn2").explain(x, 1).maps
    cap = {}

    def keep(mod, i, o):  # reference: bn2's own output, the block's in-place add working on a copy
        cap["a"] = o
        return o.clone()

    h = m.layer4[1].bn2.register_forward_hook(keep)
    g, = torch.autograd.grad(m(x.clone().requires_grad_(True))[:, 1].sum(), cap["a"])
    h.remove()
    want = normalize_maps(torch.relu((g.mean((2, 3), keepdim=True) * cap["a"].detach()).sum(1)))
    assert torch.allclose(got, want, atol=1e-4)


def test_a_layer_module_of_another_model_is_refused_at_creation(tiny):
    with pytest.raises(LayerError, match="not part of"):
        xk.attributors.create("gradcam", tiny, layer=torch.nn.Conv2d(3, 4, 3))
    xk.attributors.create("gradcam", tiny, layer=tiny.features[3])  # its own module is fine


def test_non_finite_maps_and_logits_are_errors_not_zeros(tiny):
    m = torch.rand(2, 4, 4)
    m[1, 0, 0] = float("nan")
    with pytest.raises(InputError, match=r"maps \[1\].*NaN"):
        normalize_maps(m)
    bad = tiny_gap()
    with torch.no_grad():
        bad.features[2].weight.fill_(float("nan"))  # a NaN-weight checkpoint: maps were all zeros
    with pytest.raises(InputError, match="gradcam: the model returned NaN or infinite logits"):
        xk.attributors.create("gradcam", bad)(torch.randn(2, 3, 16, 16), 1)


def test_a_1x1_layer_map_warns():
    with pytest.warns(RuntimeWarning, match="1x1 feature map"):  # an all-zero map used to come silently
        _explain_small()


def _explain_small():
    # 8x8 images (the smallest accepted) through a model that halves twice more: a 1x1 layer map
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    return xk.attributors.create("gradcam", net, layer="3")(torch.randn(1, 3, 8, 8), 1)


@pytest.mark.parametrize("how", ["tuple", "dict", "ModelOutput"])
def test_models_returning_tuples_dicts_or_model_outputs(tiny, how):
    class Out:
        def __init__(self, y):
            self.logits = y

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = tiny

        def forward(self, x):
            y = self.m(x)
            return (y, y.sum()) if how == "tuple" else {"logits": y} if how == "dict" else Out(y)

    w = Wrapped()
    w.xaikit = tiny.xaikit
    x = torch.randn(2, 3, 16, 16)
    for name in ("gradcam", "scorecam", "rise"):
        opts = {"n_masks": 8, "grid": 4} if name == "rise" else {}
        lay = {} if name == "rise" else {"layer": "m.features.3"}
        a = xk.attributors.create(name, w, **lay, **opts).explain(x, 1)
        b = xk.attributors.create(name, tiny, **opts).explain(x, 1)
        assert torch.allclose(a.maps, b.maps, atol=1e-6) and torch.allclose(a.logits, b.logits), name


def test_cam_reads_the_linear_inside_a_dropout_classifier():
    torch.manual_seed(0)
    m = xk.models.load("torchvision:mobilenet_v2", weights="random", num_classes=4)
    x = torch.randn(2, 3, 64, 64)
    got = xk.attributors.create("cam", m).explain(x, 1, normalize=False).maps  # refused: "classifier ? inputs"
    with torch.no_grad():
        want = torch.einsum("k,bkhw->bhw", m.classifier[1].weight[1], m.features(x))
    assert torch.allclose(got, want, atol=1e-4)
    vgg_like = torch.nn.Sequential(torch.nn.Linear(1280, 1280), torch.nn.ReLU(), torch.nn.Linear(1280, 4))
    m.classifier = vgg_like  # a head that is not one linear layer stays refused
    with pytest.raises(LayerError, match="CAM needs"):
        xk.attributors.create("cam", m).explain(x, 1)
