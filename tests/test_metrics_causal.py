"""Insertion / deletion / over-all / AOPC: hand-computed curves and a per-step reference loop."""
import math

import numpy as np
import pytest
import torch

import xaikit as xk
from xaikit.core.conventions import gaussian_blur

from test_metrics_stubs import MeanLinear, tiny_cnn


def sig(z):
    return 1 / (1 + math.exp(-z))


def test_auc_is_trapezoid_on_unit_interval():
    c = torch.tensor([[1.0, 0.5, 0.0], [0.2, 0.9, 0.4]])
    want = [np.trapezoid(r, np.linspace(0, 1, 3)) for r in c.numpy()]
    assert torch.allclose(xk.metrics.auc(c), torch.tensor(want, dtype=torch.float32))


def test_step_counts_and_ranks():
    assert xk.metrics.step_counts(224 * 224, 224)[:3].tolist() == [0, 224, 448]
    assert xk.metrics.step_counts(10, 4).tolist() == [0, 3, 6, 9, 10]
    sal = torch.tensor([[[0.1, 0.9], [0.5, 0.5]]])
    assert xk.metrics.pixel_ranks(sal).tolist() == [[3, 0, 1, 2]]   # ties in raster order


def test_deletion_black_closed_form():
    """Deleting k of HW pixels of a constant image v leaves mean v (1 - k/HW): p_k = σ(2 v (1 - k/HW))."""
    model = MeanLinear(k=(2.0, 0.0))
    x = torch.full((1, 3, 4, 4), 1.0)
    sal = torch.rand(1, 4, 4)
    r = xk.metrics.deletion_curves(model, x, sal, target=0, steps=4)
    want = [sig(2 * (1 - k / 16)) for k in (0, 4, 8, 12, 16)]
    assert r.counts.tolist() == [0, 4, 8, 12, 16]
    assert torch.allclose(r.curves[0], torch.tensor(want), atol=1e-6)
    assert r.auc[0].item() == pytest.approx(np.trapezoid(want, np.linspace(0, 1, 5)), abs=1e-6)


def test_insertion_order_follows_saliency():
    """Inserting the bright half first must beat inserting it last (a stub sensitive to brightness)."""
    model = MeanLinear(k=(4.0, 0.0))
    x = torch.zeros(2, 3, 4, 4)
    x[:, :, :, :2] = 1.0
    good = torch.zeros(4, 4)
    good[:, :2] = 1
    good = good + torch.linspace(0, 0.1, 16).view(4, 4)
    sal = torch.stack([good / good.max(), 1 - good / good.max()])
    r = xk.metrics.insertion_curves(model, x, sal, target=0, steps=8, substrate="black")
    assert r.auc[0] > r.auc[1]
    assert torch.allclose(r.curves[:, 0], torch.tensor([0.5, 0.5]))        # black start: logit 0
    assert torch.allclose(r.curves[0, 4], r.curves[0, -1])               # bright half all in at step 4


def reference_curve(model, x, sal, t, steps, insert, substrate):
    """Straightforward per-image, per-step loop (RISE's CausalMetric), pixel space."""
    info = model.xaikit
    x01 = info.denormalize(x)
    H, W = x.shape[-2:]
    HW = H * W
    per = math.ceil(HW / steps)
    base = torch.zeros_like(x01) if substrate == "black" else gaussian_blur(x01)
    curves = []
    for i in range(x.shape[0]):
        order = np.argsort(-sal[i].numpy().ravel(), kind="stable")
        cur = (base[i] if insert else x01[i]).clone().reshape(3, -1)
        fill = (x01[i] if insert else base[i]).reshape(3, -1)
        vals = []
        for s in range(steps + 1):
            with torch.no_grad():
                out = model(info.normalize(cur.reshape(1, 3, H, W)))
            vals.append(out.softmax(-1)[0, t[i]].item())
            idx = order[s * per:(s + 1) * per]
            cur[:, idx] = fill[:, idx]
        curves.append(vals)
    return torch.tensor(curves)


@pytest.mark.parametrize("insert,substrate", [(True, "blur"), (False, "black"), (False, "blur")])
def test_causal_agrees_with_reference_loop(insert, substrate):
    model = tiny_cnn()
    torch.manual_seed(1)
    x = model.xaikit.normalize(torch.rand(3, 3, 24, 24))
    sal = torch.rand(3, 24, 24)
    t = torch.tensor([0, 3, 1])
    fn = xk.metrics.insertion_curves if insert else xk.metrics.deletion_curves
    r = fn(model, x, sal, t, steps=20, substrate=substrate, batch_size=7)
    ref = reference_curve(model, x, sal, t, 20, insert, substrate)
    assert (r.curves - ref).abs().max() < 1e-5
    assert torch.allclose(r.auc, xk.metrics.auc(ref), atol=1e-6)
    # endpoints: insertion goes from the substrate to x, deletion from x to the substrate
    p_x = model(x).softmax(-1).gather(1, t[:, None])[:, 0]
    end = r.curves[:, -1] if insert else r.curves[:, 0]
    assert torch.allclose(end, p_x, atol=1e-5)


def test_overall_and_logit_score():
    model = tiny_cnn()
    torch.manual_seed(2)
    x = model.xaikit.normalize(torch.rand(2, 3, 16, 16))
    sal = torch.rand(2, 16, 16)
    ins = xk.metrics.insertion(model, x, sal, 0, steps=8)
    dele = xk.metrics.deletion(model, x, sal, 0, steps=8)
    assert torch.allclose(xk.metrics.overall(model, x, sal, 0, steps=8), ins - dele)
    lg = xk.metrics.insertion_curves(model, x, sal, 0, steps=8, score="logit")
    assert torch.allclose(lg.curves[:, -1], model(x)[:, 0], atol=1e-5)


def test_constant_map_is_defined():
    model = tiny_cnn()
    x = model.xaikit.normalize(torch.rand(1, 3, 16, 16))
    a = xk.metrics.deletion(model, x, torch.full((1, 16, 16), 0.3), 0, steps=8)
    assert torch.isfinite(a).all()


def test_aopc_hand_computed():
    """Stub on mean(x): replacing patch j by 0 lowers the mean by its share; AOPC = mean of drops."""
    model = MeanLinear(k=(2.0, 0.0))
    x = torch.full((1, 3, 4, 4), 1.0)
    x[:, :, :2, :2] = 3.0                                 # top-left patch is bright
    sal = torch.zeros(1, 4, 4)
    sal[:, :2, :2] = 1.0                                  # and most salient
    sal[:, 2:, 2:] = 0.5
    r = xk.metrics.aopc_curves(model, x, sal, target=0, patch_size=2, regions=2, baseline="zero")
    p0 = sig(2 * 1.5)
    # mean(x) = (4*3 + 12*1)/16 = 1.5; without the top-left patch 12/16; without bottom-right too 8/16
    d1 = p0 - sig(2 * 0.75)
    d2 = p0 - sig(2 * 0.5)
    assert torch.allclose(r.curves[0], torch.tensor([d1, d2]), atol=1e-6)
    assert r.aopc[0].item() == pytest.approx((0 + d1 + d2) / 3, abs=1e-6)
