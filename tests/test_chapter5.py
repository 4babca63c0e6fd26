"""Chapter 5 (ViT-ReciproCAM) experiment logic: variant naming, paper-model mapping, spec errors,
the ablation arithmetic on a tiny random DeiT, FLOP counting and the claims."""
import pandas as pd
import pytest
import torch

import xaikit as xk
from xaikit.data.base import collate
from xaikit.errors import ConfigError
from xaikit.experiments import chapter5 as ch5
from xaikit.experiments.common import EvalSet


def test_variant_labels_match_published_spellings():
    assert ch5.variant("ViT-ReciproCAM", cls_token=False) == (
        "ViT-ReciproCAM_wo_cls_token", ("vit_reciprocam", {"kernel": "single", "cls_token": False}))
    lab, (m, o) = ch5.variant("ViT-ReciproCAM [3x3]", tap="block")
    assert lab == "ViT-ReciproCAM [3x3]_block" and o == {"kernel": "gaussian", "tap": "block"}
    # the labels exist in the published tables
    pub = set(xk.published.table("reciprocam:3").method_label) | set(xk.published.table("reciprocam:4").method_label)
    assert {"ViT-ReciproCAM_wo_cls_token", "ViT-ReciproCAM [3x3]_block"} <= pub


def test_paper_model_and_spec_errors():
    assert ch5.paper_model("deit_tiny_synth:base@synthetic") == "deit_base_patch16_224"
    assert ch5.paper_model("deit_tiny_synth@synthetic") == "deit_small_patch16_224"
    assert ch5.paper_model("timm:deit_tiny_patch16_224@fb_in1k") == "deit_tiny_patch16_224"
    cfg = ch5.Params.create(synthetic_sizes={"small": {}}, device="cpu")
    with pytest.raises(ConfigError, match="synthetic_sizes"):
        xk.experiments.resolve_eval_set("deit_tiny_synth:huge@synthetic", cfg)
    with pytest.raises(ConfigError, match="synthetic-only"):
        xk.experiments.resolve_eval_set("deit_tiny_synth:small@imagenet", cfg)


def test_published_columns_separate_kernels(tiny, tmp_path):
    study = xk.experiments.Study("05_test", ch5.Params.create(device="cpu", batch_size=2), root=tmp_path)
    t1 = ch5.adcc_table(study, [EvalSet("timm:deit_base_patch16_224@fb_in1k", tiny.model, tiny.data, "random")])
    pub = t1.set_index("method")["ADCC published"]
    assert pub["ViT-ReciproCAM [3x3]"] == 69.11 and pub["ViT-ReciproCAM"] == 59.03
    t3 = ch5.cls_token_table(study, [EvalSet("timm:deit_tiny_patch16_224@fb_in1k", tiny.model, tiny.data, "random")])
    assert t3.set_index("method").loc["ViT-ReciproCAM [3x3]", "ADCC wo_cls_token published"] == 69.78


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = xk.models.load("deit_tiny_synth", weights="random", num_classes=3, input_size=16, embed_dim=16,
                           depth=2, num_heads=2)
    g = torch.Generator().manual_seed(1)
    items = [{"image": torch.rand(3, 16, 16, generator=g), "label": i % 3, "boxes": torch.zeros(0, 4),
              "box_labels": torch.zeros(0, dtype=torch.long), "name": f"r{i}"} for i in range(2)]
    return EvalSet("tiny@random", model, collate(items), "random")


def _study(tmp_path, **kw):
    return xk.experiments.Study("05_test", ch5.Params.create(device="cpu", batch_size=2, chunk=64, **kw), root=tmp_path)


def test_ablation_table_diff_and_defaults_shared(tiny, tmp_path):
    study = _study(tmp_path)
    t1 = ch5.adcc_table(study, [tiny])
    t3 = ch5.cls_token_table(study, [tiny])
    assert list(t1.method) == list(ch5.VARIANTS) and len(t3) == 2
    assert ((t1.filter(like="reproduced") >= 0) & (t1.filter(like="reproduced") <= 100)).all().all()
    # the default column of the ablation is Table 1's ADCC of the same method
    d = t1.set_index("method")["ADCC reproduced"]
    for _, r in t3.iterrows():
        assert r["ADCC default reproduced"] == pytest.approx(d[r["method"]], abs=0.01)
        assert r["diff reproduced"] == pytest.approx(r["ADCC wo_cls_token reproduced"] - r["ADCC default reproduced"],
                                                     abs=0.02)


def test_time_table_counts_flops(tiny, tmp_path):
    t2 = ch5.time_table(_study(tmp_path, time_images=1, time_repeats=1), tiny)
    fl = t2.set_index("method")["GFLOP reproduced"]
    # both masks run the same h*w copies of the last block: identical FLOPs
    assert fl["ViT-ReciproCAM"] == fl["ViT-ReciproCAM [3x3]"] > 0
    assert t2.set_index("method").loc["ViT-ReciproCAM", "ratio reproduced"] == 1.0


def _t1(adcc):
    return pd.DataFrame([{"model": m, "method": k, "ADCC reproduced": v} for m, d in adcc.items() for k, v in d.items()])


def test_claims_true_and_false():
    t2 = pd.DataFrame({"method": list(ch5.VARIANTS), "GFLOP reproduced": [3.0, 1.0, 1.0]})
    good = _t1({"a": {"Relevance": 60, "ViT-ReciproCAM": 62, "ViT-ReciproCAM [3x3]": 70},
                "b": {"Relevance": 60, "ViT-ReciproCAM": 61, "ViT-ReciproCAM [3x3]": 65}})
    assert all(ch5.claims(good, t2).values())
    bad = _t1({"a": {"Relevance": 60, "ViT-ReciproCAM": 62, "ViT-ReciproCAM [3x3]": 70},
               "b": {"Relevance": 66, "ViT-ReciproCAM": 65, "ViT-ReciproCAM [3x3]": 65}})  # tie is not a win
    c = ch5.claims(bad, t2.assign(**{"GFLOP reproduced": [1.0, 1.0, 2.0]}))
    assert list(c.values()) == [False, False, False]


def test_claims_within_noise_and_table_spread(tiny, tmp_path):
    t2 = pd.DataFrame({"method": list(ch5.VARIANTS), "GFLOP reproduced": [3.0, 1.0, 1.0]})
    good = _t1({"a": {"Relevance": 60, "ViT-ReciproCAM": 62, "ViT-ReciproCAM [3x3]": 70}})
    c = ch5.claims(good.assign(**{"ADCC ±": [1.0, 5.0, 3.0]}), t2)  # 70 ± 3 vs 62 ± 5 overlap; vs 60 ± 1 not
    assert c["ViT-ReciproCAM [3x3] has a higher ADCC than the single-token mask (every model)"] == "within noise"
    assert c["ViT-ReciproCAM [3x3] has a higher ADCC than Relevance (every model)"] is True
    # Table 1 carries n and an interval beside every mean (the 2 tiny images: n = 2)
    t1 = ch5.adcc_table(_study(tmp_path), [tiny])
    assert (t1["n"] == 2).all() and {f"{k} ±" for k in ch5.ADCC_METRICS} <= set(t1.columns)
    assert (t1.filter(like="±") >= 0).all().all()


def test_adcc_difference_interval_is_paired():
    import numpy as np

    from xaikit.experiments.chapter5 import _adcc_diff_halfwidth

    rng = np.random.default_rng(0)
    per = pd.DataFrame({"Coherency": rng.uniform(40, 90, 30), "Complexity": rng.uniform(10, 40, 30),
                        "Drop": rng.uniform(5, 50, 30)}, index=[f"{i:02d}" for i in range(30)])
    per["ADCC"] = rng.uniform(40, 80, 30)
    a = {"_per_image": per, "_of_means": False}
    # per-image ADCC: b = a + 2 on every image -> a difference of exactly 2 in every resample
    assert _adcc_diff_halfwidth(a, {"_per_image": per.assign(ADCC=per.ADCC + 2), "_of_means": False}) == pytest.approx(0.0, abs=1e-9)
    assert _adcc_diff_halfwidth(a, {"_per_image": per.assign(ADCC=rng.uniform(40, 80, 30)), "_of_means": False}) > 1
    # ADCC of means (vitcam's aggregate): the same images' values give a zero difference whatever the resample
    m = {"_per_image": per, "_of_means": True}
    assert _adcc_diff_halfwidth(m, {"_per_image": per.copy(), "_of_means": True}) == 0.0
