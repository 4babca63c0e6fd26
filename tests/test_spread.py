"""n and spread beside every mean (issue 23): the bootstrap interval, its columns through compare(), and claims
judged with it (True / False / "within noise")."""
import json

import numpy as np
import torch
import pandas as pd
import pytest

from xaikit.errors import ConfigError, InputError
from xaikit.experiments import WITHIN_NOISE, bootstrap_halfwidth, combine, compare, means, verdict
from xaikit.reports import Reporter
from xaikit.reports.index import claim_mark, claims_summary


def _tidy(spec, n=64, seed=0, metric="AG"):
    """Tidy per-image frame: spec {method: (mean, sd)} over the same n images."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame([dict(image=f"{i:03d}", method=m, model="r", dataset="d", metric=metric, value=mu + rng.normal(0, sd))
                         for m, (mu, sd) in spec.items() for i in range(n)])


def test_bootstrap_halfwidth_matches_the_normal_interval_and_edge_cases():
    rng = np.random.default_rng(1)
    v = rng.normal(10, 4, 400)
    normal = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    assert bootstrap_halfwidth(v) == pytest.approx(normal, rel=0.12)
    assert bootstrap_halfwidth(v) == bootstrap_halfwidth(v)  # seeded
    assert bootstrap_halfwidth([3.0] * 50) == 0.0  # no spread, no interval
    assert bootstrap_halfwidth([7.0]) == 0.0
    assert np.isnan(bootstrap_halfwidth([]))
    assert bootstrap_halfwidth([1.0, np.nan, 3.0, np.nan]) == bootstrap_halfwidth([1.0, 3.0])  # NaN skipped
    # two values 0 and 1: resampled means are 0, 0.5 or 1 -> the 95 % interval is [0, 1]
    assert bootstrap_halfwidth([0.0, 1.0]) == 0.5


def test_means_reports_n_and_the_interval_and_compare_keeps_them_beside_the_mean():
    f = _tidy({"gradcam": (50, 20), "opticam": (60, 20)}, n=48)
    f = f[~((f.method == "gradcam") & (f.image == "000"))]  # one image fewer for Grad-CAM
    w = means(f, ["AG"])
    assert list(w.columns) == ["model", "method", "n", "AG", "AG ±"]
    assert w.n.tolist() == [47, 48]
    g = f[f.method == "opticam"].value
    assert w["AG ±"].iloc[1] == pytest.approx(bootstrap_halfwidth(g))
    assert list(means(f, ["AG"], spread=False).columns) == ["model", "method", "AG"]
    t = compare(w, None, ["model", "method"], ["AG"])
    assert list(t.columns) == ["model", "method", "n", "AG published", "AG reproduced", "AG ±"]
    assert t["AG ±"].iloc[1] == round(w["AG ±"].iloc[1], 2)


def test_verdict_tells_a_lead_from_noise_and_from_a_contradiction():
    clear = compare(means(_tidy({"gradcam": (40, 10), "opticam": (60, 10)}), ["AG"]), None, ["model", "method"], ["AG"])
    assert verdict(clear, "AG", True, "Opti-CAM") is True
    assert verdict(clear, "AG", True, "Grad-CAM") is False       # Opti-CAM is ahead beyond noise
    assert verdict(clear, "AG", False, "Grad-CAM") is True       # lower is better: Grad-CAM clearly best
    close = compare(means(_tidy({"gradcam": (50, 20), "opticam": (52, 20)}), ["AG"]), None, ["model", "method"], ["AG"])
    assert verdict(close, "AG", True, "Opti-CAM") == WITHIN_NOISE
    assert verdict(close, "AG", True, "Grad-CAM") == WITHIN_NOISE  # behind, but not beyond noise
    # without intervals: the means alone, a tie is not a win
    tie = pd.DataFrame({"model": ["r", "r"], "method": ["Grad-CAM", "Opti-CAM"], "AG reproduced": [6.25, 6.25]})
    assert verdict(tie, "AG", True, "Opti-CAM") is False
    # groups: a claim must hold for every model
    two = pd.concat([clear, clear.assign(model="s", **{"AG reproduced": clear["AG reproduced"][::-1].values})])
    assert verdict(two, "AG", True, "Opti-CAM") is False
    with pytest.raises(ConfigError, match="no row of method"):
        verdict(clear, "AG", True, "RISE")


def test_combine():
    assert combine(True, True) is True
    assert combine(True, WITHIN_NOISE) == WITHIN_NOISE
    assert combine(WITHIN_NOISE, False) is False


def test_reporter_writes_within_noise_and_the_index_marks_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIKIT_REPORTS", str(tmp_path))
    rep = Reporter("02_nb", {"profile": "default", "seed": 0})
    out = rep.claims({"a": True, "b": WITHIN_NOISE, "c": False})
    assert json.loads((rep.dir / "claims.json").read_text())["claims"] == out == {"a": True, "b": WITHIN_NOISE, "c": False}
    with pytest.raises(InputError, match="within noise"):
        rep.claims({"d": "maybe"})
    assert [claim_mark(v)[0] for v in out.values()] == ["✓", "≈", "✗"]
    assert claims_summary(out) == "1/3 hold, 1 within noise"
    assert claims_summary({"a": True}) == "1/1 hold"


# ---------------------------------------------------------------------------- the harder scenes
def test_synthetic_scene_reaches_evaluation_and_training_data_and_is_checked(monkeypatch):
    import xaikit.experiments.specs as specs
    from xaikit.data.synthetic import HARD
    from xaikit.experiments import chapter2, chapter4, synthetic_eval_data
    from xaikit.experiments.common import scene

    cfg = chapter2.Params.create(synthetic_images=4, synthetic_scene=dict(HARD))
    plain = chapter2.Params.create(synthetic_images=4)
    hard, easy = synthetic_eval_data(cfg), synthetic_eval_data(plain)
    assert hard.images.shape == easy.images.shape and not torch.equal(hard.images, easy.images)
    assert scene(cfg, classes_per_image=2) == {**HARD, "classes_per_image": 2}
    assert scene(plain) == {}
    seen = {}
    monkeypatch.setattr(specs, "train_small", lambda arch, **kw: seen.update(kw) or torch.nn.Identity())
    specs.synthetic_model("resnet18_cifar", cfg, classes_per_image=2)
    assert seen["data"] == {**HARD, "classes_per_image": 2}  # the model learns the scenes it is evaluated on
    specs.synthetic_model("resnet18_cifar", plain)
    assert seen["data"] is None  # plain scenes keep the cache keys of the models trained before the option
    with pytest.raises(ConfigError, match="synthetic_scene has unknown option"):
        scene(chapter2.Params.create(synthetic_scene={"backgrnd": "photos"}))
    # chapter 4 trains on them too, and its cache key says so only when set
    c4 = chapter4.Params.create(synthetic_scene=dict(HARD))
    assert chapter4._train_config(c4, "resnet18_cifar", 1.0, "cosine")["scene"] == HARD
    assert "scene" not in chapter4._train_config(chapter4.Params.create(), "resnet18_cifar", 1.0, "cosine")


def test_bootstrap_takes_per_image_tensors():
    t = torch.tensor([100.0, 0.0, float("nan"), 100.0, 100.0])
    assert bootstrap_halfwidth(t) == bootstrap_halfwidth([100.0, 0.0, 100.0, 100.0])


def test_joint_bootstrap_of_a_statistic_of_means():
    from xaikit.experiments.study import bootstrap_halfwidth, bootstrap_halfwidth_of
    from xaikit.metrics import adcc_of_means
    rng = np.random.default_rng(3)
    a, b = rng.normal(50, 10, 40), rng.normal(20, 5, 40)
    # the statistic "mean of one column" is the plain bootstrap of that column (same seed, same draws)
    assert bootstrap_halfwidth_of(lambda m: m, [a]) == pytest.approx(bootstrap_halfwidth(a))
    # resampled jointly: a - a is 0 in every resample, whatever the spread of a
    assert bootstrap_halfwidth_of(lambda x, y: x - y, [a, a]) == 0.0
    # a NaN in any column drops that image from every column; one image: 0; none: NaN
    assert bootstrap_halfwidth_of(lambda x, y: x + y, [[1.0, np.nan], [2.0, 3.0]]) == 0.0
    assert np.isnan(bootstrap_halfwidth_of(lambda x: x, [[np.nan]]))
    # ADCC of means: arrays give arrays equal to the scalar formula element by element
    arr = adcc_of_means(np.array([60.0, 70.0]), np.array([30.0, 20.0]), np.array([10.0, 5.0]))
    assert arr.shape == (2,) and arr[1] == pytest.approx(adcc_of_means(70.0, 20.0, 5.0))
    assert adcc_of_means(60.0, 30.0, 10.0) == pytest.approx(300 / (100 / 60 + 100 / 70 + 100 / 90))
    assert 0 < bootstrap_halfwidth_of(adcc_of_means, [a, b, b / 4]) < 10


def test_verdict_pairs_the_images_where_the_table_keeps_them():
    from xaikit.experiments.study import keep_per_image, paired_ahead, per_image

    # a per-image difficulty (sd 20) that both methods share, Opti-CAM 3 points higher on every image (noise sd 1)
    rng = np.random.default_rng(0)
    n = 48
    base = rng.normal(50, 20, n)
    f = pd.DataFrame([dict(image=f"{i:03d}", method=m, model="r", dataset="d", metric="AG", value=base[i] + d + rng.normal(0, 1))
                      for m, d in (("gradcam", 0.0), ("opticam", 3.0)) for i in range(n)])
    t = compare(means(f, ["AG"]), None, ["model", "method"], ["AG"])
    assert t["AG ±"].min() > 3                                       # the two intervals overlap ...
    assert verdict(t, "AG", True, "Opti-CAM") == WITHIN_NOISE
    assert keep_per_image(t, f, ["AG"]) is t and set(per_image(t).method) == {"Grad-CAM", "Opti-CAM"}
    assert verdict(t, "AG", True, "Opti-CAM") is True                # ... but Opti-CAM leads on the images
    assert verdict(t, "AG", True, "Grad-CAM") is False
    assert verdict(t, "AG", False, "Grad-CAM") is True
    # independent noise of the same size as the lead: within noise also when paired
    g = _tidy({"gradcam": (50, 20), "opticam": (52, 20)})
    assert verdict(keep_per_image(compare(means(g, ["AG"]), None, ["model", "method"], ["AG"]), g, ["AG"]),
                   "AG", True, "Opti-CAM") == WITHIN_NOISE
    # paired_ahead by hand: +1 on each of three images is a lead whatever the spread of the images
    s = lambda v: pd.Series(v, index=["a", "b", "c"][: len(v)])  # noqa: E731
    assert paired_ahead(s([1.0, 52.0, 3.0]), s([0.0, 51.0, 2.0])) is True
    assert paired_ahead(s([1.0, 52.0, 3.0]), s([0.0, 51.0, 2.0]), higher=False) is False
    assert paired_ahead(s([1.0, 2.0]), s([1.0, 2.0])) == WITHIN_NOISE  # a tie
    assert paired_ahead(s([1.0, 2.0, 0.0]), s([0.0, 1.0, 5.0])) == WITHIN_NOISE  # +1, +1, -5: the interval holds 0
    assert paired_ahead(pd.Series([1.0], index=["x"]), s([0.0])) is None  # no shared image: no paired verdict
    # a metric the per-image values lack falls back to the intervals; tables holding them still concatenate
    assert verdict(t.rename(columns={"AG reproduced": "AI reproduced", "AG ±": "AI ±"}), "AI", True, "Opti-CAM") \
        == WITHIN_NOISE
    both = pd.concat([t, t.assign(model="s")])
    assert len(both) == 4


def test_row_ahead_picks_rows_by_several_columns_and_pairs_their_images():
    from xaikit.experiments.study import keep_per_image, row_ahead

    rng = np.random.default_rng(2)
    base = rng.normal(40, 15, 32)  # the images' own difficulty, shared by the two models
    f = pd.DataFrame([dict(image=f"{i:02d}", method="gradcam", model="r", pool=pool, metric="AG",
                           value=base[i] + lift + rng.normal(0, 0.5))
                      for pool, lift in (("GAP", 0.0), ("CA", 2.0)) for i in range(32)])
    t = compare(means(f, ["AG"], by=("model", "pool", "method")), None, ["model", "pool", "method"], ["AG"])
    ca, gap = {"model": "r", "method": "Grad-CAM", "pool": "CA"}, {"model": "r", "method": "Grad-CAM", "pool": "GAP"}
    assert row_ahead(t, "AG", ca, gap) == WITHIN_NOISE          # two overlapping intervals
    keep_per_image(t, f, ["AG"], by=("model", "pool", "method"))
    assert row_ahead(t, "AG", ca, gap) is True                  # CA higher on every image
    assert row_ahead(t, "AG", gap, ca) is False
    with pytest.raises(ConfigError, match="no row of the table"):
        row_ahead(t, "AG", {**ca, "pool": "PROJ"}, gap)


def test_proportion_halfwidth_is_the_bootstrap_of_the_hits():
    from xaikit.experiments import proportion_halfwidth

    assert proportion_halfwidth(50.0, 2) == 50.0                     # hits 100, 0: the interval is [0, 100]
    assert proportion_halfwidth(100.0, 40) == 0.0 and proportion_halfwidth(0.0, 40) == 0.0
    hits = np.r_[np.full(30, 100.0), np.zeros(70)]
    assert proportion_halfwidth(30.0, 100) == bootstrap_halfwidth(hits)
    assert proportion_halfwidth(30.0, 100) == pytest.approx(1.96 * np.sqrt(30 * 70 / 100), rel=0.15)  # binomial
    assert np.isnan(proportion_halfwidth(float("nan"), 10)) and np.isnan(proportion_halfwidth(50.0, 0))
