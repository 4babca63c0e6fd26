"""Interpretable-gradient training (thesis ch.4, Algorithm 3): error functions on hand cases,
double backprop against finite differences with the teacher held fixed, detached teacher,
training loop determinism / schedule / resume."""
import warnings

import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit.training.grouped_conv import grouped_double_backward

from xaikit.errors import ConfigError, InputError
from xaikit.attributors.guided import GuidedWarning, guided_gradient
from xaikit.training.interpretable import (augment_crop_flip, gradient_error, regularized_loss,
                                           step_cost, train_interpretable)


# ------------------------------------------------------------------------------ error functions
def _g(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_mae_mse_two_elements():
    d, t = _g([1.0, 2.0]), _g([3.0, -1.0])
    assert gradient_error(d, t, "mae").item() == pytest.approx(2.5)   # (2 + 3) / 2
    assert gradient_error(d, t, "mse").item() == pytest.approx(6.5)   # (4 + 9) / 2
    assert gradient_error(d, d, "mae").item() == 0 and gradient_error(d, d, "mse").item() == 0


def test_cosine_hand_cases_and_scale_invariance():
    d = _g([1.0, 2.0, -2.0])
    assert gradient_error(d, d, "cosine").item() == pytest.approx(-1.0)        # minimum
    assert gradient_error(d, -3 * d, "cosine").item() == pytest.approx(1.0)    # maximum
    assert gradient_error(_g([1.0, 0.0]), _g([0.0, 5.0]), "cosine").item() == pytest.approx(0.0)
    assert gradient_error(_g([1.0, 1.0]), _g([1.0, 0.0]), "cosine").item() == pytest.approx(-2 ** -0.5)
    assert gradient_error(7 * d, d, "cosine").item() == pytest.approx(-1.0)


def test_histogram_intersection_hand_cases():
    a = _g([1.0, 3.0])
    assert gradient_error(a, a, "hi").item() == pytest.approx(-1.0)            # identical: -1, its minimum
    assert gradient_error(a, 10 * a, "hi").item() == pytest.approx(-1.0)
    assert gradient_error(a, -a, "hi").item() == pytest.approx(-1.0)           # |.| histograms
    assert gradient_error(a, _g([3.0, 1.0]), "hi").item() == pytest.approx(-0.5)  # -(.25 + .25)
    assert gradient_error(_g([2.0, 0.0]), _g([0.0, 1.0]), "hi").item() == pytest.approx(0.0)
    # eq. 4.8 as printed: -(min(1,3) + min(3,1)) / (4 * 4)
    assert gradient_error(a, _g([3.0, 1.0]), "hi_thesis").item() == pytest.approx(-0.125)
    assert gradient_error(a, a, "hi_thesis").item() == pytest.approx(-0.25)    # -1/||a||_1


def test_errors_are_per_image_on_image_shapes():
    torch.manual_seed(0)
    d, t = torch.randn(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    for name in ("mae", "mse", "cosine", "hi"):
        e = gradient_error(d, t, name)
        assert e.shape == (3,)
        assert e[1].item() == pytest.approx(gradient_error(d[1:2], t[1:2], name).item(), rel=1e-6)
    with pytest.raises(ConfigError, match="cosine"):
        gradient_error(d, t, "l1")


# ------------------------------------------------------------------------------ the loss
def _tiny(act=nn.ReLU, bn=True, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    layers = [nn.Conv2d(3, 6, 3, padding=1), act(), nn.Conv2d(6, 8, 3, stride=2, padding=1)]
    layers += [nn.BatchNorm2d(8)] if bn else []
    layers += [act(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 2 * 2, 4)]
    return nn.Sequential(*layers).to(dtype)


def _graph_nodes(t):
    seen, stack, names = set(), [t.grad_fn], set()
    while stack:
        f = stack.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        names.add(type(f).__name__)
        stack += [n for n, _ in f.next_functions]
    return names


def test_teacher_is_guided_gradient_of_mean_ce_and_detached():
    m = _tiny().train()
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    bn = m[3]
    n0 = bn.num_batches_tracked.item()
    loss, parts = regularized_loss(m, x, y, 0.5, "cosine")
    assert bn.num_batches_tracked.item() == n0 + 1  # running stats move once, as in a plain step
    teacher = parts["guided"]
    assert teacher.grad_fn is None and not teacher.requires_grad
    torch.testing.assert_close(teacher, guided_gradient(m, x, y, score="loss"))  # batch stats in train
    nodes = _graph_nodes(loss)
    assert not any("Guided" in n for n in nodes)                       # no path through the teacher
    assert "ConvolutionBackwardBackward0" in nodes                     # double backprop, through the
    assert any("SwitchedAct" in n for n in nodes)                      # activations' standard rule
    assert parts["L"] == pytest.approx(parts["L_C"] + 0.5 * parts["L_R"], rel=1e-6)


def _two_forward_reference(m, x, y, lam, error):
    """Algorithm 3 as first written: the teacher from a guided forward and backward of its own (BatchNorm
    statistics restored), then a standard forward, dL_C/dx with create_graph, the loss; returns the
    parameter gradients, the teacher and dL_C/dx."""
    teacher = guided_gradient(m, x, target=y, score="loss", warn=False)
    xi = x.detach().requires_grad_(True)
    with grouped_double_backward(m):  # as regularized_loss (test_grouped_double_backward_... checks it alone)
        l_c = nn.functional.cross_entropy(m(xi), y)
    (d,) = torch.autograd.grad(l_c, xi, create_graph=True)
    loss = l_c + lam * gradient_error(d, teacher, error).mean()
    grads = torch.autograd.grad(loss, [p for p in m.parameters()])
    return grads, teacher, d.detach()


@pytest.mark.parametrize("arch", ["tiny_relu", "tiny_relu6", "tiny_leaky", "tiny_inplace", "resnet18_cifar",
                                  "mobilenetv2_cifar"])
def test_one_forward_equals_a_forward_for_the_teacher_and_one_for_the_loss(arch):
    """The teacher and dL_C/dx read from one forward (activations switched from the guided to the standard
    rule between the two backward passes) equal, bit for bit, the algorithm with a forward of its own for
    the teacher: same teacher, same dL_C/dx, same parameter gradients, BatchNorm statistics moved once."""
    import copy

    if arch.startswith("tiny"):
        act = {"tiny_relu": nn.ReLU, "tiny_relu6": nn.ReLU6, "tiny_leaky": lambda: nn.LeakyReLU(0.1),
               "tiny_inplace": lambda: nn.ReLU(inplace=True)}[arch]
        m = _tiny(act=act, seed=2).train()
        x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    else:
        kw = {"resnet18_cifar": {"width": 8}, "mobilenetv2_cifar": {"width_mult": 0.25}}[arch]
        torch.manual_seed(0)
        m = xk.models.load(arch, weights="random", num_classes=4, **kw).train()
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    y = torch.tensor([0, 1, 2, 3])
    ref_model = copy.deepcopy(m)
    grads_ref, teacher_ref, d_ref = _two_forward_reference(ref_model, x, y, 0.7, "cosine")
    loss, parts = regularized_loss(m, x, y, 0.7, "cosine", warn=False)
    grads = torch.autograd.grad(loss, [p for p in m.parameters()])
    assert torch.equal(parts["guided"], teacher_ref) and torch.equal(parts["grad"], d_ref)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_ref))
    assert not torch.equal(parts["guided"], parts["grad"])  # the two rules did differ
    for a, b in zip(m.modules(), ref_model.modules()):
        if isinstance(a, nn.BatchNorm2d):
            assert torch.equal(a.running_mean, b.running_mean) and int(a.num_batches_tracked) == 1


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 1, 4), (2, 1, 1, 4), (1, 2, 2, 2), (2, 0, 1, 4)])
def test_grouped_conv_first_and_second_derivatives(stride, padding, dilation, groups):
    from xaikit.training.grouped_conv import _Conv

    g = torch.Generator().manual_seed(stride * 10 + padding)
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 4 // groups, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    conf = ((stride,) * 2, (padding,) * 2, (dilation,) * 2, groups)
    f = lambda x, w: _Conv.apply(x, w, conf)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, w)) and torch.autograd.gradgradcheck(f, (x, w))
    assert torch.equal(f(x, w), nn.functional.conv2d(x, w, None, stride, padding, dilation, groups))


def test_grouped_double_backward_equals_pytorchs_and_is_restored():
    """MobileNet-V2's depthwise convolutions through regularized_loss: the parameter gradients with the batched
    double backward (.grouped_conv) equal PyTorch's own (which loops over the groups) in float64; the plain
    gradients (lambda = 0, no swap) and the forward are unchanged; the modules are restored on exit."""
    import copy
    from unittest import mock

    from xaikit.training import grouped_conv as G

    torch.manual_seed(0)
    m = xk.models.load("mobilenetv2_cifar", weights="random", num_classes=4, width_mult=0.25).double().train()
    convs = G.grouped_convs(m)
    assert convs and all(c.groups == c.in_channels > 1 for c in convs)  # the depthwise ones, and only those
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    y = torch.tensor([0, 1, 2, 3])
    ref = copy.deepcopy(m)
    loss, parts = regularized_loss(m, x, y, 0.7, "cosine", warn=False)
    grads = torch.autograd.grad(loss, list(m.parameters()))
    with mock.patch.object(G, "grouped_convs", lambda model: []):  # PyTorch's double backward throughout
        loss_ref, parts_ref = regularized_loss(ref, x, y, 0.7, "cosine", warn=False)
        grads_ref = torch.autograd.grad(loss_ref, list(ref.parameters()))
    assert torch.equal(loss, loss_ref) and torch.equal(parts["grad"], parts_ref["grad"])  # forward, dL_C/dx
    assert all(torch.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(grads, grads_ref))
    assert all("forward" not in c.__dict__ for c in convs)  # restored
    with pytest.raises(RuntimeError), G.grouped_double_backward(m):
        raise RuntimeError("inside the block")
    assert all("forward" not in c.__dict__ for c in convs)  # restored on error too


@pytest.mark.parametrize("error", ["mse", "cosine", "hi"])
def test_reg_gradient_matches_finite_differences_with_fixed_teacher(error):
    """d(lam L_R)/dtheta from double backprop = central differences of lam * E(dL_C/dx(theta), T)
    with the teacher T held fixed (detached): the first conv only gets L_R's gradient through
    dL_C/dx, so a missing create_graph or a teacher left in the graph would both break it."""
    m = _tiny(bn=False, dtype=torch.float64).eval()
    x, y = torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.tensor([1, 2])
    lam = 2.0
    loss, parts = regularized_loss(m, x, y, lam, error)
    w = m[0].weight
    (g_total,) = torch.autograd.grad(loss, w)
    (g_ce,) = torch.autograd.grad(regularized_loss(m, x, y, 0.0)[0], w)
    g_reg = g_total - g_ce
    teacher = parts["guided"]

    def reg_fixed_teacher():
        xi = x.clone().requires_grad_(True)
        (d,) = torch.autograd.grad(nn.functional.cross_entropy(m(xi), y), xi)
        return lam * gradient_error(d, teacher, error).mean().item()

    h = 1e-6
    for i in [(0, 0, 0, 0), (3, 1, 2, 1), (5, 2, 1, 2), (2, 0, 1, 1)]:
        w.data[i] += h
        up = reg_fixed_teacher()
        w.data[i] -= 2 * h
        dn = reg_fixed_teacher()
        w.data[i] += h
        fd = (up - dn) / (2 * h)
        assert g_reg[i].item() == pytest.approx(fd, rel=1e-4, abs=1e-10)
    assert g_reg.abs().max() > 1e-7  # L_R really reaches the parameters


def test_lambda_zero_is_plain_cross_entropy_step_and_differs_from_regularized():
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])

    def one_step(lam, manual=False):
        m = _tiny(seed=1).train()
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        loss = nn.functional.cross_entropy(m(x), y) if manual else regularized_loss(m, x, y, lam)[0]
        loss.backward()
        opt.step()
        return torch.cat([p.detach().flatten() for p in m.parameters()])

    p0, pm, p1 = one_step(0.0), one_step(0.0, manual=True), one_step(10.0)
    torch.testing.assert_close(p0, pm, rtol=0, atol=0)
    assert (p1 - p0).abs().max() > 1e-4


def test_non_relu_activations_are_reported():
    m = _tiny(act=nn.GELU).train()
    with pytest.warns(GuidedWarning, match="GELU"):
        loss, _ = regularized_loss(m, torch.randn(2, 3, 8, 8), torch.tensor([0, 1]), 1.0, "mse")
    assert torch.isfinite(loss)


@pytest.mark.parametrize("lib", ["torchvision", "timm"])
def test_resnet18_random_regularized_backward(lib):
    if lib == "timm":
        timm = pytest.importorskip("timm")
        m = timm.create_model("resnet18", pretrained=False, num_classes=5)
    else:
        tv = pytest.importorskip("torchvision")
        torch.manual_seed(0)
        m = tv.models.resnet18(num_classes=5)
    m.train()
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 4])
    with warnings.catch_warnings():
        warnings.simplefilter("error", GuidedWarning)  # all ReLU: fully guided
        loss, parts = regularized_loss(m, x, y, 1.0, "cosine")
    loss.backward()
    assert torch.isfinite(loss) and -1 <= parts["L_R"] <= 1
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert m.conv1.weight.grad.abs().sum() > 0


def test_bad_inputs():
    m = _tiny()
    with pytest.raises(InputError, match="labels"):
        regularized_loss(m, torch.randn(2, 3, 8, 8), torch.tensor([0, 1, 2]), 1.0)
    with pytest.raises(ConfigError, match="error"):
        regularized_loss(m, torch.randn(2, 3, 8, 8), torch.tensor([0, 1]), 1.0, "kl")


# ------------------------------------------------------------------------------ augmentation
def test_augment_crop_flip_gives_crops_of_padded_image():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 5, 5)
    out = augment_crop_flip(x, torch.Generator().manual_seed(3), padding=1)
    xp = nn.functional.pad(x, (1, 1, 1, 1))
    for b in range(6):
        cands = [c for oy in range(3) for ox in range(3)
                 for c in (xp[b, :, oy:oy + 5, ox:ox + 5], xp[b, :, oy:oy + 5, ox:ox + 5].flip(-1))]
        assert any(torch.equal(out[b], c) for c in cands)
    out0 = augment_crop_flip(x, torch.Generator().manual_seed(3), padding=0)
    assert all(torch.equal(out0[b], x[b]) or torch.equal(out0[b], x[b].flip(-1)) for b in range(6))


# ------------------------------------------------------------------------------ training loop
class _Toy(torch.utils.data.Dataset):
    """Class c = bright square in quadrant c, on noise: xaikit item dicts."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 4, (n,), generator=g)
        self.x = torch.rand(n, 3, 8, 8, generator=g) * 0.3
        for c in range(4):
            r, q = divmod(c, 2)
            self.x[self.y == c, :, 4 * r:4 * r + 4, 4 * q:4 * q + 4] += 0.7

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"image": self.x[i], "label": int(self.y[i]), "boxes": torch.zeros(0, 4),
                "box_labels": torch.zeros(0, dtype=torch.long), "name": f"toy/{i}"}


_KW = dict(epochs=3, lr=0.05, milestones=(1, 2), gamma=0.2, batch_size=8, warmup_epochs=0, seed=5)


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.state_dict().values() if p.is_floating_point()])


def test_training_deterministic_schedule_and_lambda_effect():
    tr, te = _Toy(24, 0), _Toy(16, 1)
    m1, m2, m0 = _tiny(seed=2), _tiny(seed=2), _tiny(seed=2)
    h1 = train_interpretable(m1, tr, te, lam=1.0, error="cosine", **_KW)
    h2 = train_interpretable(m2, tr, te, lam=1.0, error="cosine", **_KW)
    h0 = train_interpretable(m0, tr, te, lam=0.0, **_KW)
    torch.testing.assert_close(_params(m1), _params(m2), rtol=0, atol=0)
    assert [r["train_loss"] for r in h1["epochs"]] == [r["train_loss"] for r in h2["epochs"]]
    assert [r["lr"] for r in h1["epochs"]] == pytest.approx([0.05, 0.01, 0.002])  # ÷5 at 1, 2
    assert all(r["train_reg"] == 0 for r in h0["epochs"]) and all(r["train_reg"] < 0 for r in h1["epochs"])
    assert (_params(m1) - _params(m0)).abs().max() > 1e-4
    assert {"test_acc", "test_loss", "train_acc", "time_s"} <= set(h1["epochs"][0])
    assert h1["unguided"] == []


def test_warmup_is_linear_over_first_epoch():
    m = _tiny()
    h = train_interpretable(m, _Toy(16, 0), None, lam=0.0, epochs=2, lr=0.1, milestones=(10,),
                            batch_size=4, warmup_epochs=1, seed=0)
    # epoch 1 ends at the full lr after 4 warm-up steps (0.025, 0.05, 0.075, 0.1)
    assert [r["lr"] for r in h["epochs"]] == pytest.approx([0.1, 0.1])


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    tr = _Toy(16, 0)
    kw = dict(_KW, batch_size=8)
    full = _tiny(seed=3)
    train_interpretable(full, tr, None, lam=0.5, error="mse", **kw)
    ck = tmp_path / "run.pt"
    part = _tiny(seed=3)
    train_interpretable(part, tr, None, lam=0.5, error="mse", checkpoint=ck, **dict(kw, epochs=2))
    fresh = _tiny(seed=9)  # different init: everything must come from the checkpoint
    h = train_interpretable(fresh, tr, None, lam=0.5, error="mse", checkpoint=ck, **kw)
    assert len(h["epochs"]) == 3
    torch.testing.assert_close(_params(fresh), _params(full), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="different configuration"):
        train_interpretable(_tiny(), tr, None, lam=0.1, error="mse", checkpoint=ck, **kw)


def test_step_cost_restores_state():
    m = _tiny().train()
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    before = {k: v.clone() for k, v in m.state_dict().items()}
    c = step_cost(m, x, y, lam=1.0, repeats=1)
    assert c["plain_s"] > 0 and c["regularized_s"] > 0 and c["passes_regularized"] == 5
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in m.parameters()) and m.training


def test_defaults_are_thesis_schedule_and_reachable_from_xk():
    """§4.3.1: 200 epochs, lr 0.1, ÷5 at 60/120/160, batch 128; SGD momentum 0.9 and weight decay
    5e-4 as in weiaicunzai/pytorch-cifar100, which the thesis follows."""
    import inspect

    import xaikit as xk

    sig = inspect.signature(xk.training.interpretable.train_interpretable).parameters
    got = {k: sig[k].default for k in ("epochs", "lr", "milestones", "gamma", "batch_size",
                                        "momentum", "weight_decay", "lam")}
    assert got == {"epochs": 200, "lr": 0.1, "milestones": (60, 120, 160), "gamma": 0.2,
                   "batch_size": 128, "momentum": 0.9, "weight_decay": 5e-4, "lam": 0.0}
    assert xk.training.guided.guided_gradient is guided_gradient


def test_random_rotation_is_torchvisions_random_rotation():
    """pytorch-cifar100's RandomRotation(15) (the thesis' recipe), batched: same angles -> torchvision's
    rotate with nearest sampling and zero fill, pixel for pixel."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    from xaikit.training.interpretable import random_rotation

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ang = (torch.rand(4, generator=torch.Generator().manual_seed(5)) * 2 - 1) * 15
    y = random_rotation(x, torch.Generator().manual_seed(5), 15)
    ref = torch.stack([TF.rotate(x[i], float(ang[i]), interpolation=InterpolationMode.NEAREST) for i in range(4)])
    assert torch.equal(y, ref)
    assert torch.equal(random_rotation(x, torch.Generator().manual_seed(5), 0.0), x)
