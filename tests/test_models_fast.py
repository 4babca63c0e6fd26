"""The inference twin (xaikit.models.fast): BatchNorm folding is exact, wrong folds are caught,
the twin follows the model's weights, and xaikit's capture hooks do not leak into it."""
import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit.models import fast
from _tiny import random_bn


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = random_bn(4, 1)
        self.conv2 = nn.Conv2d(4, 5, 1, bias=True)
        self.bn2 = random_bn(5, 2)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = self.bn2(self.conv2(x))
        return self.fc(x.mean((2, 3)))


class SharedConv(ConvBN):
    """conv's output feeds bn *and* the head: folding bn into conv would change the head's input."""

    def forward(self, x):
        a = self.conv(x)
        y = torch.relu(self.bn(a))
        y = self.bn2(self.conv2(y))
        return self.fc(y.mean((2, 3))) + a.mean((1, 2, 3))[:, None]


def test_fold_equals_batchnorm_by_hand():
    m = ConvBN().eval()
    x = torch.randn(2, 3, 8, 8)
    ref = m(x)
    # the folded conv by hand: W' = W g / sqrt(v + eps), b' = (0 - mu) g / sqrt(v + eps) + beta
    s = m.bn.weight / torch.sqrt(m.bn.running_var + m.bn.eps)
    w = m.conv.weight * s.view(-1, 1, 1, 1)
    b = -m.bn.running_mean * s + m.bn.bias
    import copy

    f = copy.deepcopy(m)
    assert xk.models.fold_batchnorm(f) == 2
    assert isinstance(f.bn, nn.Identity) and isinstance(f.bn2, nn.Identity)
    assert torch.allclose(f.conv.weight, w, atol=1e-6) and torch.allclose(f.conv.bias, b, atol=1e-6)
    assert torch.allclose(f(x), ref, atol=1e-5)


def test_twin_is_folded_channels_last_and_agrees():
    m = ConvBN().eval()
    x = torch.randn(3, 3, 8, 8)
    t = xk.models.inference_twin(m, x)
    assert t is not m and fast.describe(m) == "2 BatchNorm folded, channels-last"
    assert t.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not any(p.requires_grad for p in t.parameters())
    assert torch.allclose(t(x), m(x), atol=1e-5)
    assert xk.models.inference_twin(m, x) is t  # cached while the weights do not change


def test_twin_follows_weight_updates_and_modes():
    m = ConvBN().eval()
    x = torch.randn(2, 3, 8, 8)
    t1 = xk.models.inference_twin(m, x)
    with torch.no_grad():
        m.fc.weight.add_(1.0)  # an optimizer step is an in-place update like this one
    t2 = xk.models.inference_twin(m, x)
    assert t2 is not t1 and torch.allclose(t2(x), m(x), atol=1e-5)
    m.train()
    assert xk.models.inference_twin(m, x) is m  # batch statistics: nothing to fold
    m.eval()
    with fast.disabled():
        assert xk.models.inference_twin(m, x) is m
    fresh = ConvBN().eval()  # no example to check a twin on: the model itself
    assert xk.models.inference_twin(fresh) is fresh


def test_wrong_fold_is_caught_and_never_used():
    m = SharedConv().eval()
    x = torch.randn(2, 3, 8, 8)
    t = xk.models.inference_twin(m, x)
    assert fast.describe(m) == "channels-last"  # the folded copy disagreed, the plain copy is used
    assert torch.allclose(t(x), m(x), atol=1e-5)


def test_capture_hooks_are_not_copied():
    m = ConvBN().eval()
    x = torch.randn(2, 3, 8, 8)
    cam = xk.attributors.create("gradcam", m, layer="conv2")
    with cam.capture(replace=lambda out: out * 0) as cap:
        # no twin is built (nor checked) against a model whose layer is hooked
        assert xk.models.inference_twin(m, x) is m
        assert fast.describe(m) == "no twin built yet"
    t = xk.models.inference_twin(m, x)
    with cam.capture(replace=lambda out: out * 0) as cap:
        y = t(x)
        assert cap.raw is None  # the model's hook does not run on the twin
    assert torch.allclose(y, m(x), atol=1e-5)


def test_pass_counters_see_the_twins_passes():
    from xaikit.experiments.chapter1 import count_passes

    m = ConvBN().eval()
    x = torch.randn(3, 3, 8, 8)
    with count_passes(m) as c:  # twin built inside the block: its check passes are not counted
        xk.models.inference_twin(m, x)(x)
    assert c["forward"] == 3
    with count_passes(m) as c:  # the cached twin
        xk.models.inference_twin(m, x)(x[:2])
        m(x)
    assert c["forward"] == 5
    t = xk.models.inference_twin(m, x)
    assert not t._forward_hooks and not m._forward_hooks  # nothing left behind
    with count_passes(m) as c:
        xk.metrics.insertion(m, x, torch.rand(3, 8, 8), space="normalized", steps=4)
    assert c["forward"] == 3 + 3 * 5  # targets, then 5 points of the curve per image


def test_modules_keeping_graph_tensors_still_get_a_twin():
    m = ConvBN().eval()
    x = torch.randn(2, 3, 8, 8)
    m._atts = [m.conv.weight * 2]  # a stream keeps its last attention maps: not graph leaves
    t = xk.models.inference_twin(m, x)
    assert t is not m and torch.allclose(t(x), m(x), atol=1e-5)


def test_vit_and_convless_models_are_their_own_twin():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
    x = torch.randn(2, 3, 2, 2)
    assert xk.models.inference_twin(lin, x) is lin


@pytest.mark.slow
def test_bundled_lite0_twin_agrees_and_metrics_match_the_model():
    model = xk.models.load("tf_efficientnet_lite0", weights="bundled")
    items = xk.data.samples(["chelsea", "coffee"], size=224)
    x = model.xaikit.normalize(torch.stack([it["image"] for it in items]))
    t = xk.models.inference_twin(model, x)
    assert fast.describe(model).startswith("49 BatchNorm folded")
    with torch.inference_mode():
        assert (t(x) - model(x)).abs().max() < 1e-4
    sal = torch.rand(2, 224, 224)
    fast_auc = xk.metrics.insertion(model, x, sal, steps=16)
    with fast.disabled():
        slow_auc = xk.metrics.insertion(model, x, sal, steps=16)
    assert torch.allclose(fast_auc, slow_auc, atol=1e-5)
