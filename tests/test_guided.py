"""Guided backpropagation machinery (xaikit.attributors.guided): agreement with captum's GuidedBackprop,
hand-computed rules for ReLU6 / LeakyReLU, restoration of the model, reporting of what stays standard."""
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xaikit.errors import InputError
from xaikit.attributors.guided import GuidedWarning, guided, guided_gradient, unguided_activations

captum_attr = pytest.importorskip("captum.attr")


def _captum(model, x, target):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return captum_attr.GuidedBackprop(model).attribute(x.clone(), target=target)


def _tiny(inplace=False, act=nn.ReLU):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), act(inplace=inplace) if act is nn.ReLU else act(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), act(inplace=inplace) if act is nn.ReLU else act(),
        nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)).eval()


@pytest.mark.parametrize("inplace", [False, True])
def test_equals_captum_tiny(inplace):
    m = _tiny(inplace)
    x = torch.randn(3, 3, 16, 16)
    t = torch.tensor([0, 2, 4])
    g = guided_gradient(m, x, target=t)
    ref = _captum(_tiny(False), x, t)  # captum's hooks on a non-in-place twin (same weights)
    assert g.shape == x.shape and not g.requires_grad
    torch.testing.assert_close(g, ref, rtol=0, atol=1e-7)
    assert g.abs().sum() > 0


def test_equals_captum_resnet18_and_differs_from_plain_gradient():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=10).eval()  # in-place ReLU reused twice per block
    x = torch.randn(2, 3, 64, 64)
    t = torch.tensor([1, 3])
    g = guided_gradient(m, x, target=t)
    torch.testing.assert_close(g, _captum(m, x, t), rtol=1e-6, atol=1e-8)
    xi = x.clone().requires_grad_(True)
    m(xi)[[0, 1], [1, 3]].sum().backward()
    assert (xi.grad - g).abs().max() > 0.1 * g.abs().max()  # guided != standard gradient


def test_predicted_target_and_loss_score_match_captum():
    m = _tiny()
    x = torch.randn(4, 3, 16, 16)
    pred = m(x).argmax(1)
    torch.testing.assert_close(guided_gradient(m, x), _captum(m, x, pred), rtol=0, atol=1e-7)

    t = torch.tensor([1, 0, 3, 2])

    class MeanCE(nn.Module):  # per-image CE / B: summed by captum = gradient of the mean CE
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, z):
            return F.cross_entropy(self.net(z), t, reduction="none") / len(t)

    ref = _captum(MeanCE(m), x, None)
    torch.testing.assert_close(guided_gradient(m, x, t, score="loss"), ref, rtol=1e-5, atol=1e-9)


class _Pointwise(nn.Module):
    """logit = sum_j w_j act(x_j) over the 4 pixels of a (1,1,2,2) image: the guided gradient is
    max(0, w_j * act'(x_j)) by hand."""

    def __init__(self, act, w):
        super().__init__()
        self.act, self.w = act, torch.tensor(w)

    def forward(self, x):
        return (self.act(x).flatten(1) * self.w).sum(1, keepdim=True)


@pytest.mark.parametrize("act,x,w,expected", [
    (nn.ReLU(), [-1.0, 0.5, 3.0, 7.0], [1.0, -1.0, 2.0, 1.0], [0.0, 0.0, 2.0, 1.0]),
    (nn.ReLU6(), [-1.0, 0.5, 3.0, 7.0], [1.0, -1.0, 2.0, 1.0], [0.0, 0.0, 2.0, 0.0]),
    (nn.ReLU6(inplace=True), [-1.0, 0.5, 3.0, 7.0], [1.0, -1.0, 2.0, 1.0], [0.0, 0.0, 2.0, 0.0]),
    (nn.LeakyReLU(0.1), [-1.0, 0.5, -2.0, 3.0], [1.0, -1.0, -1.0, 2.0], [0.1, 0.0, 0.0, 2.0]),
])
def test_hand_rules(act, x, w, expected):
    m = _Pointwise(act, w)
    g = guided_gradient(m, torch.tensor(x).view(1, 1, 2, 2), target=0)
    torch.testing.assert_close(g.flatten(), torch.tensor(expected))


def test_model_is_restored_even_after_error():
    m = _tiny(inplace=True)
    x = torch.randn(2, 3, 16, 16)

    def out_and_grad():
        xi = x.clone().requires_grad_(True)
        y = m(xi)
        y[:, 0].sum().backward()
        return y.detach(), xi.grad

    y0, g0 = out_and_grad()
    with pytest.raises(RuntimeError):
        with guided(m):
            yg, gg = out_and_grad()
            raise RuntimeError("boom")
    torch.testing.assert_close(yg, y0)          # guided forward = same values
    assert not torch.allclose(gg, g0)           # ... different backward
    for mod in m.modules():
        assert "forward" not in mod.__dict__
    y1, g1 = out_and_grad()
    torch.testing.assert_close(y1, y0)
    torch.testing.assert_close(g1, g0)          # standard backward again


def test_train_mode_keeps_bn_stats_and_param_grads():
    m = _tiny().train()
    bn = m[3]
    mu, n = bn.running_mean.clone(), bn.num_batches_tracked.clone()
    guided_gradient(m, torch.randn(4, 3, 16, 16), target=1)
    assert torch.equal(bn.running_mean, mu) and torch.equal(bn.num_batches_tracked, n)
    assert all(p.grad is None for p in m.parameters())


def test_non_relu_modules_are_reported():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.Conv2d(4, 4, 3), nn.SiLU(), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    assert unguided_activations(m) == ["1 (GELU)", "3 (SiLU)"]
    with pytest.warns(GuidedWarning, match=r"1 \(GELU\).*3 \(SiLU\)"):
        with guided(m) as rep:
            m(torch.randn(1, 3, 8, 8))
    assert rep.guided == ["4"] and not rep.complete
    assert rep.functional_unguided == {}  # F.gelu inside nn.GELU is not double-counted


class _Functional(nn.Module):
    def __init__(self, fn):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2, self.fc = nn.Conv2d(3, 6, 3), nn.Conv2d(6, 6, 3), nn.Linear(6, 4)
        self.fn = fn

    def forward(self, x):
        x = self.fn(self.c1(x))
        x = self.fn(self.c2(x))
        return self.fc(x.mean((2, 3)))


def test_functional_relu_is_guided_and_other_functionals_reported():
    x = torch.randn(2, 3, 10, 10)
    mod = _Functional(nn.ReLU())      # module version, checked against captum
    fun = _Functional(F.relu)         # same weights, functional relu invisible to a module scan
    ref = _captum(mod, x, torch.tensor([0, 3]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all guided: no warning
        g = guided_gradient(fun, x, target=torch.tensor([0, 3]))
    torch.testing.assert_close(g, ref, rtol=0, atol=1e-7)
    inpl = _Functional(lambda z: z.relu_())
    torch.testing.assert_close(guided_gradient(inpl, x, torch.tensor([0, 3])), ref, rtol=0, atol=1e-7)

    gel = _Functional(F.gelu)
    with pytest.warns(GuidedWarning, match="gelu x2"):
        with guided(gel) as rep:
            gel(x)
    assert rep.functional_unguided == {"gelu": 2}
    with pytest.warns(GuidedWarning, match="relu x2"):
        with guided(fun, functional=False) as rep:
            fun(x)
    assert rep.functional_unguided == {"relu": 2} and rep.functional_guided == {}


def test_bad_inputs_raise_clear_errors():
    m = _tiny()
    with pytest.raises(InputError, match="batch dimension"):
        guided_gradient(m, torch.randn(3, 16, 16))
    with pytest.raises(InputError, match="out of range"):
        guided_gradient(m, torch.randn(2, 3, 16, 16), target=9)
    with pytest.raises(InputError, match="2 images"):
        guided_gradient(m, torch.randn(2, 3, 16, 16), target=torch.tensor([0, 1, 2]))
    with pytest.raises(InputError, match="score"):
        guided_gradient(m, torch.randn(2, 3, 16, 16), score="prob")
