"""CAM family: agreement with the grad-cam package on a real ImageNet model and real photos,
and the defining properties of each method (thesis ch. 1-2, Group-CAM paper)."""
import numpy as np
import pytest
import torch
import torchvision

import xaikit as xk
from xaikit.data.base import load_batch
from xaikit.models.zoo import get_layer

from _tiny import tiny_gap

pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    return xk.models.load("tf_efficientnet_lite0", weights="bundled")


@pytest.fixture(scope="module")
def photos(model):
    b = load_batch(xk.data.samples(names=["chelsea", "coffee", "motorcycle"], size=224, crop_pct=1.0)).to("cpu")
    return model.xaikit.normalize(b.images), b.labels


def pearson(a, b):
    a = torch.as_tensor(a).reshape(len(a), -1).double()
    b = torch.as_tensor(np.asarray(b)).reshape(len(b), -1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-30)).numpy()


def gradcam_reference(cls, model, layer, x, target, **kw):
    """grad-cam's map at layer resolution, after its ReLU, before its resizing."""
    ref = cls(model, [get_layer(model, layer)], **kw)
    targets = [ClassifierOutputTarget(int(c)) for c in target]
    try:
        ref(input_tensor=x, targets=targets)
        acts = ref.activations_and_grads.activations[0].numpy()
        grads = ref.activations_and_grads.gradients[0].numpy() if ref.activations_and_grads.gradients else None
        cam = ref.get_cam_image(x, get_layer(model, layer), targets, acts, grads, False)
    finally:
        ref.activations_and_grads.release()
    return np.maximum(cam, 0)


@pytest.mark.parametrize("name,cls", [("gradcam", "GradCAM"), ("gradcampp", "GradCAMPlusPlus"),
                                      ("xgradcam", "XGradCAM"), ("hirescam", "HiResCAM"),
                                      ("layercam", "LayerCAM")])
def test_gradient_cams_agree_with_gradcam_package(model, photos, name, cls):
    x, labels = photos
    ours = xk.attributors.create(name, model, layer="conv_head")
    e = ours.explain(x)
    low = e.maps
    assert torch.equal(e.target, labels)  # the bundled model gets these three right
    ref = gradcam_reference(getattr(pgc, cls), model, "conv_head", x, e.target)
    r = pearson(low, ref)
    assert r.min() >= 0.999, r
    # normalization convention: identical to grad-cam's scale_cam_image up to its 1e-7
    refn = (ref - ref.min((1, 2), keepdims=True)) / (ref.max((1, 2), keepdims=True) - ref.min((1, 2), keepdims=True))
    assert np.abs(low.numpy() - refn).max() < 1e-3


# Score-CAM / Ablation-CAM in grad-cam loop over images and channels: a post-ReLU mid layer
# (240 channels, 16x16 at 128 px, min activation 0) and 1 image keep the oracle fast.
MID = "blocks.2.1.bn2"


@pytest.fixture(scope="module")
def small(model):
    b = load_batch(xk.data.samples(names=["chelsea"], size=128)).to("cpu")
    return model.xaikit.normalize(b.images)


@pytest.mark.slow
def test_scorecam_agrees_with_gradcam_package(model, small):
    ours = xk.attributors.create("scorecam", model, layer=MID, minmax_eps=1e-8)
    e = ours.explain(small)
    low = e.maps
    ref = gradcam_reference(pgc.ScoreCAM, model, MID, small, e.target)
    assert pearson(low, ref).min() >= 0.999


@pytest.mark.slow
def test_ablationcam_agrees_with_gradcam_package(model, small):
    ours = xk.attributors.create("ablationcam", model, layer=MID)
    e = ours.explain(small)
    low = e.maps
    ref = gradcam_reference(pgc.AblationCAM, model, MID, small, e.target)
    assert pearson(low, ref).min() >= 0.999


# ------------------------------------------------------------------ tiny GAP + linear model
@pytest.fixture
def tiny():
    return tiny_gap()


def test_cam_decomposes_the_logit_exactly(tiny):
    x = torch.randn(4, 3, 16, 16)
    cam = xk.attributors.create("cam", tiny)
    for t in range(5):
        raw = cam.explain(x, t, normalize=False).maps  # h = identity, not normalized
        logit = tiny(x)[:, t]
        torch.testing.assert_close(raw.mean((1, 2)) + tiny.fc.bias[t], logit, atol=1e-5, rtol=1e-5)


def test_cam_on_bundled_model_decomposes_logit(model, photos):
    x, labels = photos
    cam = xk.attributors.create("cam", model)  # default layer: feature layer bn2
    raw = cam.explain(x[:2], labels[:2], normalize=False).maps
    fc = model.classifier
    logits = model(x[:2]).gather(1, labels[:2, None])[:, 0]
    torch.testing.assert_close(raw.mean((1, 2)) + fc.bias[labels[:2]], logits, atol=1e-3, rtol=1e-4)


def test_gradcam_equals_cam_at_the_gap_layer(tiny):
    """With GAP + linear, dy_c/dA^k_ij = W_ck / hw: Grad-CAM = ReLU(CAM) up to the factor hw."""
    x = torch.randn(3, 3, 16, 16)
    g = xk.attributors.create("gradcam", tiny).explain(x, 2, normalize=False).maps
    c = xk.attributors.create("cam", tiny).explain(x, 2, normalize=False).maps
    hw = c.shape[1] * c.shape[2]
    torch.testing.assert_close(g * hw, c.clamp_min(0), atol=1e-5, rtol=1e-5)


def test_fakecam_is_its_definition(tiny):
    x = torch.randn(2, 3, 16, 20)
    s = xk.attributors.create("fakecam", tiny)(x, 1)
    want = torch.ones(2, 16, 20)
    want[:, 0, 0] = 0
    assert torch.equal(s, want)


def test_groupcam_one_group_without_denoising_is_gradcam(tiny):
    """Group-CAM paper §1: with G = 1 and no de-noising, M'_0 = n(Grad-CAM), so the normalized
    Group-CAM map equals the normalized Grad-CAM map when the gain alpha_0 > 0, and is 0 otherwise."""
    x = torch.randn(4, 3, 16, 16)
    gc = xk.attributors.create("groupcam", tiny, groups=1, theta=None, blur_ksize=5, blur_sigma=2.0)
    e = gc.explain(x, 3)
    s = e.maps
    g = xk.attributors.create("gradcam", tiny).explain(x, 3).maps
    pos = e.extras["weights"][:, 0] > 0
    assert pos.any()
    torch.testing.assert_close(s[pos], g[pos], atol=1e-5, rtol=1e-5)
    assert torch.all(s[~pos] == 0)


def test_groupcam_gain_definition(tiny):
    """alpha_l = F_c(I'_l) - F_c(blur) with I'_l = I * M'_l + blur * (1 - M'_l) (eq. 5-6)."""
    x = torch.randn(2, 3, 16, 16)
    gc = xk.attributors.create("groupcam", tiny, groups=3, theta=50, blur_ksize=5, blur_sigma=2.0)
    e = gc.explain(x, 0)
    assert torch.equal(e.extras["gains"], e.extras["weights"])
    base = torchvision.transforms.functional.gaussian_blur(x, [5, 5], [2.0, 2.0])  # the official code's blur
    m = torch.nn.functional.interpolate(e.extras["masks"], size=(16, 16), mode="bilinear", align_corners=False)
    for l in range(3):
        inp = x * m[:, l:l + 1] + base * (1 - m[:, l:l + 1])
        want = tiny(inp).softmax(1)[:, 0] - tiny(base).softmax(1)[:, 0]
        torch.testing.assert_close(e.extras["gains"][:, l], want, atol=1e-5, rtol=1e-4)
    # de-noising keeps at most 50 % of the pixels of each group mask
    frac = (e.extras["masks"] > 0).float().mean((2, 3))
    assert (frac <= 0.5 + 1e-6).all()


def test_scorecam_weights_are_softmax_of_masked_scores(tiny):
    x = torch.randn(2, 3, 16, 16)
    sc = xk.attributors.create("scorecam", tiny, batch_size=5)
    e = sc.explain(x, 4, normalize=False)
    s = e.maps
    A = tiny.features(x)
    up = torch.nn.functional.interpolate(A, size=(16, 16), mode="bilinear", align_corners=True)
    lo, hi = up.amin((2, 3), keepdim=True), up.amax((2, 3), keepdim=True)
    n = torch.where(hi > lo, (up - lo) / (hi - lo).clamp_min(1e-30), torch.zeros_like(up))
    scores = torch.stack([tiny(x * n[:, k:k + 1])[:, 4] for k in range(A.shape[1])], 1)
    torch.testing.assert_close(e.extras["scores"], scores, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e.extras["weights"], scores.softmax(1), atol=1e-5, rtol=1e-5)
    want = (scores.softmax(1)[:, :, None, None] * A).sum(1).clamp_min(0)
    torch.testing.assert_close(s, want, atol=1e-5, rtol=1e-5)


def test_ablationcam_weights_by_definition(tiny):
    x = torch.randn(2, 3, 16, 16)
    ab = xk.attributors.create("ablationcam", tiny, batch_size=4)
    e = ab.explain(x, 1)
    A = tiny.features(x)
    y = tiny.fc(A.mean((2, 3)))[:, 1]
    for k in range(A.shape[1]):
        Ak = A.clone()
        Ak[:, k] = 0
        yk = tiny.fc(Ak.mean((2, 3)))[:, 1]
        torch.testing.assert_close(e.extras["weights"][:, k], (y - yk) / y, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(e.extras["scores"][:, k], yk, atol=1e-5, rtol=1e-4)


def test_batch_equals_single_images(model, photos):
    x, _ = photos
    for name in ("gradcam", "gradcampp", "layercam", "groupcam"):
        a = xk.attributors.create(name, model, **({"groups": 8} if name == "groupcam" else {}))
        batch = a.explain(x[:, :, :128, :128]).maps
        single = torch.cat([a.explain(x[i:i + 1, :, :128, :128]).maps for i in range(3)])
        torch.testing.assert_close(batch, single, atol=1e-4, rtol=1e-4)


def test_opticam_objective_increases_and_beats_initialization(model):
    b = load_batch(xk.data.samples(names=["chelsea", "coffee", "motorcycle"], size=64)).to("cpu")
    x = model.xaikit.normalize(b.images)
    oc = xk.attributors.create("opticam", model, max_iter=8)
    e = oc.explain(x, upsample=True)
    s, hist = e.maps, e.extras["history"]
    assert torch.allclose(s, oc(x), atol=1e-6)  # the one-line path gives the same maps
    assert s.shape == (3, 64, 64) and s.min() >= 0 and s.max() <= 1
    assert hist.shape == (9, 3)
    assert (hist[-1] > hist[0]).all()                     # beats the uniform initialization
    assert (hist[1:] - hist[:-1]).mean() > 0               # increases on average
    # the returned map is the convex combination softmax(u) . A (eq. 2.4), h = identity
    torch.testing.assert_close(e.extras["weights"].sum(1), torch.ones(3))
    torch.testing.assert_close(e.extras["weights"], e.extras["u"].softmax(1))
    # whole-batch optimization = per-image optimization (Adam is element-wise); float noise in
    # near-zero gradients is amplified by Adam's normalization, hence a correlation check
    single = torch.cat([oc.explain(x[i:i + 1]).maps for i in range(3)])
    assert pearson(oc.explain(x).maps, single).min() > 0.99


@pytest.mark.parametrize("objective,normalization", [("mask", "max"), ("diff", "range"), ("mask", "sigmoid")])
def test_opticam_options(tiny, objective, normalization):
    x = torch.randn(2, 3, 16, 16)
    oc = xk.attributors.create("opticam", tiny, objective=objective, normalization=normalization, max_iter=10)
    e = oc.explain(x, 0)
    s, history = e.maps, e.extras["history"]
    assert torch.isfinite(s).all() and s.shape == (2, 8, 8)
    assert (history[-1] >= history[0] - 1e-6).all()
    if objective == "diff":
        assert (history <= 0).all()


def test_opticam_early_stop(tiny):
    """A constant objective (zero-weight classifier) stops after one step."""
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        tiny.fc.weight.zero_()
    oc = xk.attributors.create("opticam", tiny, max_iter=50)
    e = oc.explain(x, 0)
    assert e.extras["steps"].tolist() == [1, 1] and e.extras["history"].shape[0] == 2


def test_no_parameter_grads_and_eval_mode(tiny):
    x = torch.randn(2, 3, 16, 16)
    tiny.train()
    for name in ("gradcam", "opticam", "groupcam"):
        xk.attributors.create(name, tiny, **({"max_iter": 2} if name == "opticam" else {}))(x)
        assert all(p.grad is None for p in tiny.parameters())
        assert tiny.training  # the mode is restored
    assert all(p.requires_grad for p in tiny.parameters())
