"""Chapter 3 module: mAP by hand and vs scikit-learn, accuracy on a tiny model, the claims logic."""
import pandas as pd
import pytest
import torch

from xaikit.experiments import chapter3 as ch3


def test_map_hand_case():
    # class 0: ranking pos, neg, pos -> AP = (1/1 + 2/3) / 2; class 1: neg, pos -> AP = 1/2
    scores = torch.tensor([[0.9, 0.8], [0.5, 0.1], [0.3, 0.7]])
    labels = torch.tensor([[1, 0], [0, 1], [1, 0]])
    # class 1 ranking: rows 0 (0.8, neg), 2 (0.7, neg), 1 (0.1, pos) -> AP = 1/3
    expected = 100 * ((1 + 2 / 3) / 2 + 1 / 3) / 2
    assert ch3.mean_average_precision(scores, labels) == pytest.approx(expected, abs=1e-5)


def test_map_agrees_with_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(40, 6, generator=g)
    labels = (torch.rand(40, 6, generator=g) > 0.6).long()
    ref = 100 * sum(skm.average_precision_score(labels[:, c], scores[:, c]) for c in range(6)) / 6
    assert ch3.mean_average_precision(scores, labels) == pytest.approx(ref, abs=1e-4)


class _Fixed(torch.nn.Module):
    """Returns stored logits; its ``xaikit.normalize`` is the identity."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.xaikit = type("I", (), {"normalize": staticmethod(lambda x: x)})()

    def forward(self, x):
        return self.logits[: len(x)] + 0 * self.w


def test_accuracy_single_and_multilabel():
    imgs = torch.zeros(3, 3, 4, 4)
    single = [{"image": imgs[i], "label": lab, "boxes": torch.zeros(0, 4), "box_labels": torch.zeros(0), "name": str(i)}
              for i, lab in enumerate([0, 1, 1])]
    m = _Fixed(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]))
    assert ch3.accuracy(m, single)["top1"] == pytest.approx(200 / 3)
    multi = [dict(d, label=torch.tensor(y)) for d, y in zip(single, [[1, 1], [1, 0], [0, 1]])]
    out = ch3.accuracy(m, multi)
    assert out["top1"] == pytest.approx(100 / 3)  # top class positive only for image 0
    assert out["mAP"] == pytest.approx(ch3.mean_average_precision(m.logits, torch.tensor([[1, 1], [1, 0], [0, 1]])))


def _tables(ag_ca=5.0, ai_ca=30.0, top_ca=80.0, top_cs=80.5, ag_cs=4.0):
    t31 = pd.DataFrame([
        {"model": "r", "paper dataset": "imagenet", "method": m, "pool": p, "AG reproduced": ag, "AI reproduced": ai}
        for m in ("Grad-CAM", "Score-CAM") for p, ag, ai in (("GAP", 3.0, 20.0), ("CA", ag_ca, ai_ca))])
    t33 = pd.DataFrame([{"model": "r", "paper model": "resnet18", "pool": "GAP", "stream": "", "top1 reproduced": 80.0},
                        {"model": "r", "paper model": "resnet18", "pool": "CA", "stream": "trained", "top1 reproduced": top_ca},
                        {"model": "lite", "paper model": "", "pool": "CA", "stream": "untrained, init=paper",
                         "top1 reproduced": 0.0}])
    t36 = pd.DataFrame([{"representation": "class_agnostic", "method": "none", "top1 reproduced": 80.0, "AG reproduced": None},
                        {"representation": "class_specific", "method": "none", "top1 reproduced": top_cs, "AG reproduced": None},
                        {"representation": "class_agnostic", "method": "Grad-CAM", "top1 reproduced": None, "AG reproduced": 5.0},
                        {"representation": "class_specific", "method": "Grad-CAM", "top1 reproduced": None, "AG reproduced": ag_cs}])
    return t31, t33, t36


def test_claims_true_and_false_cases():
    c = ch3.claims(*_tables())
    assert all(c.values()), c  # untrained Lite0 rows (no paper model) do not enter the accuracy claim
    c = list(ch3.claims(*_tables(ag_ca=2.0, ai_ca=10.0, top_ca=78.5, top_cs=82.0, ag_cs=6.0)).values())
    assert c == [False, False, False, False, False]
    # ties are not improvements
    assert not ch3.claims(*_tables(ag_ca=3.0))["CA-Stream improves AG over GAP for Grad-CAM and Score-CAM"]


def test_stream_checkpoints_are_keyed_by_the_backbone_they_were_trained_on(monkeypatch, tmp_path):
    """A stream checkpoint holds the stream's weights only: loading one trained on another backbone (e.g. a
    backbone trained on other scenes) would silently evaluate a mismatched pair (the bug this pins)."""
    import xaikit as xk

    monkeypatch.setenv("XAIKIT_CACHE", str(tmp_path))
    seen = []
    monkeypatch.setattr(ch3, "train_stream", lambda s, tr, **kw: seen.append(kw["checkpoint_dir"]))
    cfg = ch3.Params.create(synthetic_size=32, train_images=8, device="cpu")
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(xk.models.load("resnet18_cifar", weights="random", num_classes=cfg.synthetic_classes, width=4).eval())
    for i, net in enumerate(nets + [nets[0]]):
        ch3._CACHE.clear()
        monkeypatch.setattr(ch3, "backbone", lambda cfg, spec, setting="imagenet", net=net: net)
        ch3.stream(cfg, "resnet18_cifar@synthetic")
    assert seen[0] != seen[1] and seen[0] == seen[2]  # other weights, other checkpoint; same weights, same one
    ch3._CACHE.clear()
    ch3.stream(ch3.Params.create(synthetic_size=32, train_images=8, device="cpu",
                                 synthetic_scene={"background": "photos"}), "resnet18_cifar@synthetic")
    assert seen[3] != seen[0]  # other training scenes, other checkpoint
    ch3._CACHE.clear()


def test_map_interval_is_the_bootstrap_of_map_itself():
    import numpy as np

    from xaikit.experiments.chapter3 import map_halfwidth, mean_average_precision

    g = torch.Generator().manual_seed(0)
    s, y = torch.randn(60, 5, generator=g), (torch.rand(60, 5, generator=g) < 0.2).long()
    idx = np.random.default_rng(0).integers(0, 60, size=(1000, 60))  # the same seeded draws, one mAP at a time
    lo, hi = np.quantile([mean_average_precision(s[i], y[i]) for i in idx], [0.025, 0.975])
    assert map_halfwidth(s, y) == pytest.approx((hi - lo) / 2, abs=1e-9)
    assert map_halfwidth(y.float(), y) == 0.0  # scores that rank every positive first: mAP 100 in every resample
    assert map_halfwidth(s[:1], y[:1]) == 0.0 and np.isnan(map_halfwidth(s[:0], y[:0]))
