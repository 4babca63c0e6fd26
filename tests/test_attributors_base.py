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
