"""Gradient attributors: agreement with captum (test-only oracle), completeness, batch invariance."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit.attributors.gradient import path_weights, reduce_channels
from xaikit.errors import ConfigError, InputError

captum_attr = pytest.importorskip("captum.attr")
torch.set_num_threads(1)


def pearson(a, b):
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


@pytest.fixture(scope="module")
def effnet():
    return xk.models.load("tf_efficientnet_lite0", weights="bundled")


@pytest.fixture(scope="module")
def photos(effnet):
    items = xk.data.samples(size=224, crop_pct=1.0)
    byname = {it["name"]: it for it in items}
    imgs = torch.stack([byname["chelsea"]["image"], byname["coffee"]["image"]])
    return effnet.xaikit.normalize(imgs), torch.tensor([285, 967])


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return xk.models.load("resnet18", weights="random", num_classes=10)


def small_x(n=3, size=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


def test_saliency_matches_captum_on_real_model(effnet, photos):
    x, t = photos
    sal = xk.attributors.create("saliency", effnet)
    ours = sal.attributions(x, t)
    ref = captum_attr.Saliency(effnet).attribute(x.clone(), target=t, abs=False)
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))
    m = sal(x, t)
    assert m.shape == (2, 224, 224) and float(m.min()) >= 0 and float(m.max()) == pytest.approx(1.0)
    # default reduction is max_c |g_c| (Simonyan et al.)
    expected = xk.attributors.normalize_maps(ref.abs().amax(1))
    assert torch.allclose(m, expected, atol=1e-5)


def test_guided_backprop_matches_captum(resnet):
    x = small_x(2)
    t = torch.tensor([3, 7])
    gb = xk.attributors.create("guided_backprop", resnet)
    ours = gb.attributions(x, t)
    ref = captum_attr.GuidedBackprop(resnet).attribute(x.clone(), target=t)
    assert pearson(ours, ref) >= 0.999
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    # guided gradients differ from plain gradients on a ReLU net
    plain = xk.attributors.create("saliency", resnet).attributions(x, t)
    assert pearson(ours, plain) < 0.99


def test_smoothgrad_matches_captum_with_identical_noise(effnet, photos, monkeypatch):
    x, t = photos
    sg = xk.attributors.create("smoothgrad", effnet, n=4, stdev=0.3, seed=5, batch_size=4)
    ours = sg.attributions(x, t)
    noise = sg.noise(x)  # (n, B, 3, H, W)
    flat = noise.transpose(0, 1).reshape((-1,) + tuple(x.shape[1:]))  # captum order: image-major

    def fixed(inp, stdev, n):
        assert n == 4
        return inp.repeat_interleave(n, dim=0) + flat

    monkeypatch.setattr(captum_attr.NoiseTunnel, "_add_noise_to_input", staticmethod(fixed))
    ref = captum_attr.NoiseTunnel(captum_attr.Saliency(effnet)).attribute(
        x.clone(), nt_type="smoothgrad", nt_samples=4, stdevs=0.3, target=t, abs=False)
    assert pearson(ours, ref) >= 0.999
    assert torch.allclose(ours, ref, rtol=1e-3, atol=1e-5 * float(ref.abs().max()))


def test_smoothgrad_seed_and_noise_level():
    model = xk.models.load("resnet18", weights="random", num_classes=10)
    x = small_x(2)
    a = xk.attributors.create("smoothgrad", model, n=3, seed=1).attributions(x, 0)
    b = xk.attributors.create("smoothgrad", model, n=3, seed=1).attributions(x, 0)
    c = xk.attributors.create("smoothgrad", model, n=3, seed=2).attributions(x, 0)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    sg = xk.attributors.create("smoothgrad", model, n=2, noise_level=0.1)
    span = x.flatten(1).amax(1) - x.flatten(1).amin(1)
    assert torch.allclose(sg.sigma(x), 0.1 * span)
    # with zero noise SmoothGrad is the plain gradient
    z = xk.attributors.create("smoothgrad", model, n=2, stdev=0.0).attributions(x, 0)
    g = xk.attributors.create("saliency", model).attributions(x, 0)
    assert torch.allclose(z, g, atol=1e-6)


def test_integrated_gradients_matches_captum_on_real_model(effnet, photos):
    x, t = photos
    # batch_size=16 runs all 2 x 8 path points in one forward pass, as captum does
    ig = xk.attributors.create("integrated_gradients", effnet, steps=8, batch_size=16)
    ours = ig.attributions(x, t)
    ref = captum_attr.IntegratedGradients(effnet).attribute(
        x.clone(), baselines=torch.zeros_like(x), target=t, n_steps=8, method="gausslegendre")
    assert pearson(ours, ref) >= 0.999
    assert torch.allclose(ours, ref, rtol=1e-3, atol=1e-5 * float(ref.abs().max()))
    # chunking the path (3 steps per pass) changes only float32 round-off
    chunked = xk.attributors.create("integrated_gradients", effnet, steps=8, batch_size=6).attributions(x, t)
    assert float((chunked - ours).abs().max()) <= 1e-4 * float(ref.abs().max())


@pytest.mark.parametrize("method", ["riemann_middle", "riemann_left", "riemann_right"])
def test_integrated_gradients_riemann_matches_captum(resnet, method):
    x = small_x(2)
    t = torch.tensor([2, 5])
    ours = xk.attributors.create("integrated_gradients", resnet, steps=5, method=method,
                                 batch_size=10).attributions(x, t)
    ref = captum_attr.IntegratedGradients(resnet).attribute(x.clone(), target=t, n_steps=5, method=method)
    assert pearson(ours, ref) >= 0.999
    assert torch.allclose(ours, ref, rtol=1e-3, atol=1e-5 * float(ref.abs().max()))


def test_trapezoid_relation_to_captum(resnet):
    x = small_x(2)
    ours = xk.attributors.create("integrated_gradients", resnet, steps=6,
                                 method="riemann_trapezoid").attributions(x, 1)
    ref = captum_attr.IntegratedGradients(resnet).attribute(x.clone(), target=1, n_steps=6,
                                                            method="riemann_trapezoid")
    # captum's trapezoid weights are 1/m (ends halved), ours 1/(m-1): a constant ratio (m-1)/m
    assert torch.allclose(ours * 5 / 6, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))


def test_path_weights_integrate_exactly():
    for method in ("gausslegendre", "riemann_trapezoid", "riemann_middle"):
        a, w = path_weights(7, method)
        assert w.sum() == pytest.approx(1.0)
        assert (a * w).sum() == pytest.approx(0.5)  # int_0^1 a da, exact for these rules
    a, w = path_weights(5, "gausslegendre")
    assert (a ** 4 * w).sum() == pytest.approx(0.2)


def test_ig_completeness(resnet):
    x = small_x(2)
    ig = xk.attributors.create("integrated_gradients", resnet, steps=32)
    total, gap = ig.completeness(x, torch.tensor([3, 8]))
    assert torch.allclose(total, gap, rtol=0.02, atol=1e-3 * float(gap.abs().max()))


def test_ig_completeness_exact_on_linear_model():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 16 * 16, 5))
    x = small_x(2, size=16)
    ig = xk.attributors.create("integrated_gradients", model, steps=3, method="riemann_left",
                               baseline="black")
    total, gap = ig.completeness(x, torch.tensor([0, 4]))
    assert torch.allclose(total, gap, atol=1e-4)
    # on a linear model IG = (x - x') * grad (hand-computed)
    g = xk.attributors.create("saliency", model).attributions(x, torch.tensor([0, 4]))
    base = ig.baseline_for(x)
    assert torch.allclose(ig.attributions(x, torch.tensor([0, 4])), (x - base) * g, atol=1e-5)


def test_reduce_channels_hand_computed():
    a = torch.tensor([[[[1.0]], [[-3.0]], [[2.0]]]])  # (1, 3, 1, 1)
    assert reduce_channels(a, "abs_max").item() == 3.0
    assert reduce_channels(a, "abs_sum").item() == 6.0
    assert reduce_channels(a, "sum").item() == 0.0
    assert reduce_channels(a, "max").item() == 2.0
    assert reduce_channels(a, "l2").item() == pytest.approx(14 ** 0.5)
    with pytest.raises(ConfigError):
        reduce_channels(a, "median")


@pytest.mark.parametrize("name,opts", [("saliency", {}), ("guided_backprop", {}),
                                       ("smoothgrad", {"n": 3}), ("integrated_gradients", {"steps": 4})])
def test_batch_of_three_equals_single_calls(resnet, name, opts):
    x = small_x(3)
    att = xk.attributors.create(name, resnet, batch_size=5, **opts)
    full = att(x)
    e = att.explain(x, upsample=True)
    assert torch.allclose(e.maps, full) and e.extras["attributions"].shape == (3, 3, 64, 64)
    tgt = e.target
    singles = torch.cat([att(x[i:i + 1]) for i in range(3)])
    assert torch.allclose(full, singles, atol=1e-5)
    assert full.shape == (3, 64, 64)
    assert torch.equal(tgt, resnet(x).argmax(1))


def test_bad_inputs(resnet):
    sal = xk.attributors.create("saliency", resnet)
    with pytest.raises(InputError):
        sal(torch.zeros(3, 64, 64))
    with pytest.raises(InputError):
        sal(small_x(2), target=torch.tensor([1, 2, 3]))
    with pytest.raises(InputError):
        sal(small_x(1), target=10)
    with pytest.raises(ConfigError):
        xk.attributors.create("saliency", resnet, reduce="median")
    with pytest.raises(ConfigError):
        xk.attributors.create("integrated_gradients", resnet, method="simpson")
    with pytest.raises(ConfigError):
        xk.attributors.create("smoothgrad", resnet, n=0)
    with pytest.raises(InputError):
        xk.attributors.create("integrated_gradients", resnet, baseline=torch.zeros(2, 3, 5, 5))(small_x(1))
