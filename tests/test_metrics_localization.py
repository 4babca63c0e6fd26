"""Localization metrics (thesis eq. 1.16–1.22) and the per-category pointing game, by hand."""
import math

import pytest
import torch

import xaikit as xk
from xaikit.errors import InputError


def blob_map():
    s = torch.zeros(1, 10, 10)
    s[0, 2:6, 2:6] = 1.0          # largest component: box [2, 2, 6, 6] (xyxy, exclusive), 16 px
    s[0, 9, 9] = 1.0              # a smaller, separate component
    return s


def test_box_masks_rasterize_pixel_centres():
    m = xk.metrics.box_masks([torch.tensor([[0.5, 0.0, 2.0, 1.0], [3.0, 2.0, 4.0, 4.0]])], (4, 5))
    want = torch.zeros(4, 5, dtype=torch.bool)
    want[0, 0:2] = True
    want[2:4, 3] = True
    assert torch.equal(m[0], want)


def test_localization_hand_computed():
    s = blob_map()
    gt = [torch.tensor([[2.0, 2.0, 6.0, 8.0]])]           # 24 px, contains the 16-px blob
    probs = torch.tensor([[0.5, 0.3, 0.2]])
    r = xk.metrics.localization(s, gt, probs, target=0)
    iou = 16 / 24
    assert r["LE"] == pytest.approx((1 - iou) * 100, abs=1e-4)
    assert r["OM"] == pytest.approx((1 - iou) * 100, abs=1e-4)
    P, R = 16 / 17, 16 / 24                                 # the stray pixel is outside the box
    assert r["EP"] == pytest.approx(P * 100, abs=1e-4)
    assert r["F1"] == pytest.approx(2 * P * R / (P + R) * 100, abs=1e-4)
    assert r["SP"] == 100.0
    assert r["SM"] == pytest.approx(math.log(16 / 100) - math.log(0.5), abs=1e-5)
    assert r["BA"] == pytest.approx(200 / 3, abs=1e-4)      # IoU 2/3 passes δ=0.3, 0.5, not 0.7
    wrong = xk.metrics.localization(s, gt, probs, target=1)
    assert wrong["OM"] == pytest.approx(100.0) and wrong["LE"] == pytest.approx(r["LE"])
    assert wrong["SM"] == pytest.approx(math.log(0.16) - math.log(0.3), abs=1e-5)
    ilsvrc = xk.metrics.localization(s, gt, probs, target=0, iou_threshold=0.5)
    assert ilsvrc["OM"] == 0.0 and ilsvrc["LE"] == 0.0


def test_pointing_tolerance():
    s = torch.zeros(1, 10, 10)
    s[0, 0, 0] = 1.0                                         # peak at pixel centre (0.5, 0.5)
    gt = [torch.tensor([[5.0, 5.0, 10.0, 10.0]])]           # distance to the corner: 4.5·√2 ≈ 6.36
    hits = {tol: xk.metrics.localization(s, gt, tolerance=tol)["SP"] for tol in (0, 5, 7, 15)}
    assert hits == {0: 0.0, 5: 0.0, 7: 100.0, 15: 100.0}


def test_edge_cases_empty_boxes_constant_and_nan():
    s = torch.cat([blob_map(), torch.full((1, 10, 10), 0.4)])
    gt = [torch.zeros(0, 4), torch.tensor([[0.0, 0.0, 5.0, 5.0]])]
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2]])
    r = xk.metrics.localization(s, gt, probs, target=[0, 0], reduce=False)
    assert all(math.isnan(v[0]) for k, v in r.items() if k != "BA_hits")    # no box: NaN
    # constant map: {S > mean} is empty -> no predicted box: IoU 0, |B_p| = 0
    assert r["LE"][1] == 100.0 and r["OM"][1] == 100.0
    assert r["SM"][1].item() == pytest.approx(math.log(0.05) - math.log(0.8), abs=1e-5)
    assert r["EP"][1].item() == pytest.approx(25.0)          # 25 of 100 equal pixels inside
    m = xk.metrics.localization(s, gt, probs, target=[0, 0])
    assert m["LE"] == 100.0                                  # the NaN image is left out of the mean
    with pytest.raises(InputError, match="NaN"):
        xk.metrics.localization(torch.full((1, 4, 4), float("nan")), [torch.zeros(0, 4)])
    with pytest.raises(InputError, match="probs"):
        xk.metrics.localization(s, gt, torch.tensor([0, 1]))


def test_box_labels_select_target_class():
    s = blob_map()
    gt = [torch.tensor([[2.0, 2.0, 6.0, 8.0], [6.0, 6.0, 10.0, 10.0]])]
    r = xk.metrics.localization(s, gt, target=[1], box_labels=[torch.tensor([0, 1])], tolerance=0)
    assert r["LE"] > 90 and r["SP"] == 0.0                   # only the second box counts
    r0 = xk.metrics.localization(s, gt, target=[0], box_labels=[torch.tensor([0, 1])])
    assert r0["LE"] == pytest.approx(100 / 3, abs=1e-4)


def test_pointing_game_mean_over_categories():
    s = torch.zeros(4, 10, 10)
    s[:, 1, 1] = 1.0
    inside = torch.tensor([[0.0, 0.0, 3.0, 3.0]])
    outside = torch.tensor([[6.0, 6.0, 10.0, 10.0]])
    boxes = [inside, inside, outside, outside]
    r = xk.metrics.pointing_game(s, boxes, target=[0, 0, 0, 1], tolerance=0)
    assert r["per_category"] == {0: pytest.approx(200 / 3), 1: 0.0}
    assert r["SP"] == pytest.approx(100 / 3)                 # not the image mean (50)
    assert xk.metrics.pointing_game(s, boxes, [0, 0, 0, 1], tolerance=0, reduce=False).tolist() == \
        [100.0, 100.0, 0.0, 0.0]
