"""AD / AG / AI, box study and ADCC against hand-computed values (thesis eq. 1.10–1.14, 2.8)."""
import math

import numpy as np
import pytest
import torch

import xaikit as xk
from xaikit.errors import ConfigError, InputError

from test_metrics_stubs import MeanLinear


def sig(z):
    return 1 / (1 + math.exp(-z))


def const_images(values, size=8):
    return torch.stack([torch.full((3, size, size), float(v)) for v in values])


def test_recognition_hand_computed():
    model = MeanLinear(k=(2.0, 0.0))
    x = const_images([1.0, -1.0])
    sal = torch.full((2, 8, 8), 0.5)
    r = xk.metrics.recognition(model, x, sal, target=0, reduce=False)
    p = [sig(2), sig(-2)]
    o = [sig(1), sig(-1)]
    ad = [max(p[i] - o[i], 0) / p[i] * 100 for i in range(2)]
    ag = [max(o[i] - p[i], 0) / (1 - p[i]) * 100 for i in range(2)]
    assert torch.allclose(r["p"], torch.tensor(p), atol=1e-6)
    assert torch.allclose(r["o"], torch.tensor(o), atol=1e-6)
    assert torch.allclose(r["AD"], torch.tensor(ad), atol=1e-4)
    assert torch.allclose(r["AG"], torch.tensor(ag), atol=1e-4)
    assert r["AI"].tolist() == [0.0, 100.0]
    m = xk.metrics.recognition(model, x, sal, target=0)
    assert m["AD"] == pytest.approx(np.mean(ad), abs=1e-4)
    assert m["AG"] == pytest.approx(np.mean(ag), abs=1e-4)
    assert m["AI"] == pytest.approx(50.0)


def test_recognition_edge_cases_p1_p0():
    # p = 1 exactly (float32 saturation): AG must be 0, not NaN; p = 0: AD must be 0
    model = MeanLinear(k=(400.0, 0.0))
    x = const_images([1.0, -1.0])
    sal = torch.full((2, 8, 8), 0.5)
    r = xk.metrics.recognition(model, x, sal, target=0, reduce=False)
    assert r["p"][0] == 1.0 and r["p"][1] == 0.0
    assert torch.isfinite(r["AD"]).all() and torch.isfinite(r["AG"]).all()
    assert r["AG"][0] == 0 and r["AD"][1] == 0
    # a constant zero map is defined: black image, logit 0 -> o = 1/2
    r0 = xk.metrics.recognition(model, x, torch.zeros(2, 8, 8), target=0, reduce=False)
    assert torch.allclose(r0["o"], torch.tensor([0.5, 0.5]))
    assert r0["AD"][0] == pytest.approx(50.0) and r0["AG"][1] == pytest.approx(50.0)


def test_target_none_is_prediction():
    model = MeanLinear(k=(2.0, -2.0))
    x = const_images([1.0, -1.0])
    r = xk.metrics.recognition(model, x, torch.full((2, 8, 8), 0.5), reduce=False)
    assert r["target"].tolist() == [0, 1]


def test_masking_space_pixel_vs_normalized():
    model = MeanLinear(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x01 = torch.rand(1, 3, 8, 8)
    x = (x01 - 0.5) / 0.5
    sal = torch.rand(1, 8, 8)
    xk.metrics.recognition(model, x, sal, target=0, space="pixel")
    assert torch.allclose(model.seen[-1], (x01 * sal[:, None] - 0.5) / 0.5, atol=1e-6)
    xk.metrics.recognition(model, x, sal, target=0, space="normalized")
    assert torch.allclose(model.seen[-1], x * sal[:, None], atol=1e-6)
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(2))
    with pytest.raises(ConfigError, match="space='normalized'"):
        xk.metrics.recognition(plain, x, sal, target=0)


def test_bad_saliency_inputs():
    model = MeanLinear()
    x = const_images([1.0])
    with pytest.raises(InputError, match="NaN"):
        xk.metrics.recognition(model, x, torch.full((1, 8, 8), float("nan")), target=0)
    with pytest.raises(InputError, match="upsample"):
        xk.metrics.recognition(model, x, torch.rand(1, 4, 4), target=0)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        xk.metrics.recognition(model, x, torch.full((1, 8, 8), 3.0), target=0)
    with pytest.raises(InputError, match="out of range"):
        xk.metrics.recognition(model, x, torch.rand(1, 8, 8), target=-1)


def test_box_study_hand_computed():
    model = MeanLinear(k=(2.0, 0.0))
    x = const_images([1.0], size=10)
    boxes = [torch.tensor([[0.0, 0.0, 5.0, 10.0]])]   # left half: |B| = 50 of 100 pixels
    sal = torch.full((1, 10, 10), 0.8)
    r = xk.metrics.box_study(model, x, sal, boxes, target=0, reduce=False)
    p = sig(2)
    for key, frac in {"S:=B": 0.5, "S:=I-B": 0.5, "S": 0.8, "B&S": 0.4, "S-B": 0.4}.items():
        assert r[key]["o"].item() == pytest.approx(sig(2 * frac), abs=1e-6), key
        assert r[key]["AD"].item() == pytest.approx((p - sig(2 * frac)) / p * 100, abs=1e-4), key
    # box labels select the target class; another class' box is ignored -> B empty
    r2 = xk.metrics.box_study(model, x, sal, boxes, target=0, box_labels=[torch.tensor([3])], reduce=False)
    assert r2["S:=B"]["o"].item() == pytest.approx(0.5)
    assert r2["S:=I-B"]["o"].item() == pytest.approx(p, abs=1e-6)


def test_adcc_hand_computed():
    model = MeanLinear(k=(3.0, 0.0))
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8) * 0.9 + 0.1

    def explainer(xx, t):  # channel mean, divided by the max: deterministic, input dependent
        e = xx.mean(1)
        return e / e.flatten(1).max(1)[0][:, None, None]

    r = xk.metrics.adcc(model, explainer, x, target=0, reduce=False)
    for i in range(2):
        s = explainer(x, None)[i].numpy().ravel()
        s2 = explainer(x * torch.from_numpy(s.reshape(1, 8, 8)), None)[i].numpy().ravel()
        coh = (np.corrcoef(s, s2)[0, 1] + 1) / 2
        com = np.abs(s).mean()
        p = sig(3 * x[i].mean().item())
        o = sig(3 * (x[i] * torch.from_numpy(s.reshape(8, 8))).mean().item())
        ad = max(p - o, 0) / p
        want = 3 / (1 / coh + 1 / (1 - com) + 1 / (1 - ad))
        assert r["Coherency"][i].item() == pytest.approx(coh * 100, abs=1e-3)
        assert r["Complexity"][i].item() == pytest.approx(com * 100, abs=1e-3)
        assert r["AD"][i].item() == pytest.approx(ad * 100, abs=1e-3)
        assert r["ADCC"][i].item() == pytest.approx(want * 100, abs=1e-3)


def test_adcc_constant_map_is_zero():
    model = MeanLinear()
    x = const_images([1.0, 0.5])
    r = xk.metrics.adcc(model, lambda xx, t: torch.full((xx.shape[0], 8, 8), 0.5), x, target=0,
                        reduce=False)
    assert r["Coherency"].tolist() == [0.0, 0.0] and r["ADCC"].tolist() == [0.0, 0.0]


@pytest.fixture(scope="module")
def bundled():
    model = xk.models.load("tf_efficientnet_lite0", weights="bundled")
    items = [it for it in xk.data.samples(size=224) if int(it["label"]) >= 0]
    x = model.xaikit.normalize(torch.stack([it["image"] for it in items]))
    y = torch.tensor([int(it["label"]) for it in items])
    return model, x, y


def test_fakecam_ad_ag_near_zero_on_bundled_model(bundled):
    """Poppi et al.: Fake-CAM (ones, top-left pixel 0) has near-perfect AD; thesis: AG near 0 too."""
    model, x, y = bundled
    fake = torch.ones(x.shape[0], 224, 224)
    fake[:, 0, 0] = 0
    r = xk.metrics.recognition(model, x, fake, target=y, reduce=False)
    assert len(y) >= 4
    assert r["AD"].max() < 1.0 and r["AG"].max() < 1.0
    assert (r["p"] - r["o"]).abs().max() < 5e-3
    # a real (non-trivial) masking by a centred blob changes the score much more
    yy, xx = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    blob = torch.exp(-((yy - 112) ** 2 + (xx - 112) ** 2) / (2 * 40.0 ** 2)).expand_as(fake)
    rb = xk.metrics.recognition(model, x, blob, target=y, reduce=False)
    assert (rb["p"] - rb["o"]).abs().mean() > 10 * (r["p"] - r["o"]).abs().mean()
