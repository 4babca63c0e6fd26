"""Chapter 1 module: measured complexity, pass counting, accuracy and the catalogues' introspection."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit.experiments import chapter1 as ch1


def test_complexity_matches_torchvision_metadata():
    # torchvision's ResNet18_Weights metadata: 11,689,512 parameters, 1.814 GFLOPS (multiply-adds)
    c = ch1.complexity("torchvision:resnet18")
    assert c["params_M"] * 1e6 == pytest.approx(11689512, abs=0.5)
    assert c["GFLOPs"] == pytest.approx(1.814, rel=0.01)


def test_count_passes_forward_and_backward():
    m = nn.Sequential(nn.Linear(4, 3))
    with ch1.count_passes(m) as c:
        with torch.no_grad():
            m(torch.zeros(5, 4))
        m(torch.zeros(3, 4, requires_grad=True)).sum().backward()
    assert c == {"forward": 8, "backward": 3}


class _Fixed(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.p = nn.Parameter(torch.zeros(1))
        self.xaikit = SimpleNamespace(normalize=lambda x: x)

    def forward(self, x):
        return self.logits[x[:, 0, 0, 0].long()]


def test_topk_accuracy_hand_case():
    logits = torch.tensor([[0., 1, 2, 3, 4, 5, 6],    # top1 = 6, top5 = {2..6}
                           [6., 5, 4, 3, 2, 1, 0],    # top1 = 0, top5 = {0..4}
                           [0., 0, 9, 0, 0, 0, 0]])
    x = torch.arange(3.0)[:, None, None, None].expand(3, 3, 2, 2)
    labels = torch.tensor([6, 5, -1])                 # hit@1; miss@1 and miss@5 (5 is 6th); skipped
    a = ch1.topk_accuracy(_Fixed(logits), x, labels)
    assert a == {"top1": 50.0, "top5": 50.0, "n": 2}


def test_measure_method_counts_on_a_small_model():
    torch.manual_seed(0)
    model = xk.models.load("resnet18_cifar", weights="random")
    x = torch.rand(2, 3, 32, 32)
    t = torch.tensor([1, 2])
    g = ch1.measure_method("gradcam", model, x, t)
    c = ch1.measure_method("cam", model, x, t)
    assert g["runs"] and g["in [0,1]"] and g["forward passes / image"] == 1 and g["needs gradients"]
    assert c["forward passes / image"] == 1 and not c["needs gradients"]
    bad = ch1.measure_method("gradcam", model, x, t, layer="no_such_layer")
    assert not bad["runs"] and "LayerError" in bad["error"]


def test_catalogue_families_and_metric_filter():
    info = ch1.method_info("scorecam")
    assert info["family"] == "CAM-based" and "Wang" in info["reference"]
    assert ch1.method_info("rollout")["applies to"] == "ViT"
    m = nn.Linear(1, 1)
    args = ch1._metric_args(xk.metrics.pixel_ranks, m, None, 0, 0, 0, 0, 0)
    assert args is None  # a helper of sal only is not a metric
    args = ch1._metric_args(xk.metrics.recognition, m, None, "x", "sal", "t", "b", "p")
    assert args == {"model": m, "x": "x", "sal": "sal", "target": "t"}


def test_catalogue_reference_is_the_first_sentence_not_cut_at_abbreviations():
    assert ch1._first_sentence(xk.metrics.adcc).startswith("ADCC (Poppi et al. 2021; thesis eq. 1.12")
    assert ch1._first_sentence(xk.metrics.insertion).startswith("Insertion AUC per image (thesis Alg. 1)")

    def f():
        """One sentence. Another one."""
    assert ch1._first_sentence(f) == "One sentence"


@pytest.mark.parametrize("views,n", [("ten_crop", 70), ("centre", 7)])
def test_table_1_1_bundled_row_scores_each_view(tmp_path, monkeypatch, views, n):
    # the row counts its views: 7 labelled photos, ten TenCrop views each by default (their centre crops alone
    # are the photos Lite0 names, top-5 100 % by construction)
    monkeypatch.setattr(ch1, "complexity", lambda name, size=224: {"params_M": 1.0, "GFLOPs": 1.0})
    cfg = ch1.Params.from_namespace({"accuracy_views": views})
    row = ch1.table_1_1(xk.experiments.study.Study("01_background", cfg, root=tmp_path)).iloc[-1]
    assert row["accuracy on"].endswith(f"({n} images)") and ("ten-crop" in row["accuracy on"]) == (views == "ten_crop")
    assert 0 <= row["top1 reproduced"] <= row["top5 reproduced"] <= 100
    # each view is scored: the percentages are multiples of 100 / n
    assert row["top1 reproduced"] * n / 100 == pytest.approx(round(row["top1 reproduced"] * n / 100), abs=0.01)
