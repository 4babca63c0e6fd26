"""Chapter 6 (Group-CAM) experiment logic: over-all score, §5 augmentation, pointing table, claims."""
import math

import pandas as pd
import pytest
import torch

import xaikit as xk
from xaikit.experiments import chapter6 as ch6
from xaikit.experiments.common import EvalSet
from xaikit.data.base import load_batch
from xaikit.data.synthetic import synthetic


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    m = xk.models.load("resnet18_cifar", weights="random", num_classes=4, input_size=32, width=8)
    return m.eval()


def test_overall_is_insertion_minus_deletion_per_image():
    f = pd.DataFrame([
        dict(image="a", method="gradcam", model="m", dataset="d", metric="I", value=60.0),
        dict(image="a", method="gradcam", model="m", dataset="d", metric="D", value=15.0),
        dict(image="b", method="gradcam", model="m", dataset="d", metric="I", value=40.0),
        dict(image="b", method="gradcam", model="m", dataset="d", metric="D", value=30.0),
    ])
    out = ch6._with_overall(f)
    ov = out[out.metric == "overall"].set_index("image").value
    assert ov["a"] == 45.0 and ov["b"] == 10.0
    assert len(out) == 6  # the original rows are kept


def test_groupcam_augment_keeps_salient_pixels_and_blurs_the_rest(small):
    from xaikit.core.conventions import gaussian_blur

    x = load_batch(synthetic(n=3, num_classes=4, size=32, seed=1)).images
    y = torch.tensor([0, 1, 2])
    bn = [b.running_mean.clone() for b in small.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    small.train()
    out = ch6.groupcam_augment(small, x, y, groups=4)
    assert small.training  # mode restored
    after = [b.running_mean for b in small.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(bn, after))  # Group-CAM's passes did not touch BN stats
    blur = gaussian_blur(x, 51, 50.0, padding="reflect")
    keep = (out - x).abs().amax(1) < 1e-6
    blurred = (out - blur).abs().amax(1) < 1e-6
    assert bool((keep | blurred).all())  # every pixel is either the image or its blurred copy (binary mask)
    # the binarized map is above its mean somewhere and below somewhere (not all-or-nothing) for each image
    differs = (x - blur).abs().amax(1) > 1e-3
    assert all(bool((keep & differs)[i].any()) and bool((blurred & differs)[i].any()) for i in range(3))


def test_published_groups_are_the_paper_table():
    w = pd.DataFrame({"model": "m", "G": [1, 32], "insertion": 0.0, "deletion": 0.0, "overall": 0.0})
    g = xk.experiments.compare(w, "groupcam:2", {"G": "groups"}, ["insertion", "deletion", "overall"],
                               relabel=None).set_index("G")
    assert g.loc[32, "overall published"] == pytest.approx(54.17)
    assert g.loc[1, "insertion published"] - g.loc[1, "deletion published"] == pytest.approx(
        g.loc[1, "overall published"], abs=0.011)


def _study(tmp_path, **kw):
    cfg = ch6.Params.create(device="cpu", batch_size=4, synthetic_classes=4, synthetic_size=32, **kw)
    return xk.experiments.Study("06_test", cfg, root=tmp_path)


def test_pointing_table_per_category_and_mean(small, tmp_path):
    data = load_batch(synthetic(n=6, num_classes=4, size=32, seed=2, split="test"))
    es = EvalSet("resnet18_cifar@synthetic", small, data, "synthetic")
    cats, mean = ch6.pointing_table(_study(tmp_path), es, ["gradcam", "groupcam"])
    assert list(cats.columns) == ["n", "Grad-CAM", "Group-CAM"]
    assert ((cats[["Grad-CAM", "Group-CAM"]] >= 0) & (cats[["Grad-CAM", "Group-CAM"]] <= 100)).all().all()
    # n per category: the images explained for it that have a box of it, together the mean's n
    assert (cats.n >= 1).all() and cats.n.sum() == mean.n.iloc[0]
    # the mean over categories of the per-category table is the reported mean
    for m in ("Grad-CAM", "Group-CAM"):
        row = mean[mean.method == m].iloc[0]
        assert row["SP reproduced"] == pytest.approx(cats[m].mean(), abs=0.06)
        assert row["SP published"] == {"Grad-CAM": 56.7, "Group-CAM": 57.5}[m]


def _t1(ins, dele=None):
    dele = dele or {m: 10.0 for m in ins}
    t = pd.DataFrame({"model": "m", "method": list(ins), "insertion reproduced": list(ins.values()),
                      "deletion reproduced": [dele[m] for m in ins]})
    t["overall reproduced"] = t["insertion reproduced"] - t["deletion reproduced"]
    return t


def test_claims_follow_the_tables():
    t3 = pd.DataFrame({"method": ["Grad-CAM", "Score-CAM", "RISE", "Group-CAM"], "passes": [1, 129, 8000, 34],
                       "time_s reproduced": [0.01, 0.5, 2.0, 0.2]})
    t4 = pd.DataFrame({"method": ["Grad-CAM", "Group-CAM"], "SP reproduced": [50.0, 60.0]})
    ins = {"Grad-CAM": 40, "Score-CAM": 44, "Group-CAM": 55, "RISE": 50}
    dele = {"Grad-CAM": 12, "Score-CAM": 11, "Group-CAM": 9, "RISE": 10}
    c = ch6.claims(_t1(ins, dele), t3, t4)
    assert all(c.values()) and len(c) == 6
    # the paper's claims are over every compared method, RISE included: a better RISE breaks them
    c = ch6.claims(_t1({**ins, "RISE": 60}, {**dele, "RISE": 5}), t3, t4)
    assert [k for k, v in c.items() if not v] == [k for k in c if "AUC" in k]
    slow = t3.assign(passes=[1, 16, 8000, 34], **{"time_s reproduced": [0.01, 0.5, 2.0, 1.5]})
    worse = pd.DataFrame({"method": ["Grad-CAM", "Group-CAM"], "SP reproduced": [70.0, 60.0]})
    c = ch6.claims(_t1(ins, dele), slow, worse)
    assert [k for k, v in c.items() if not v] == [k for k in c if "AUC" not in k]


#: Group-CAM §5's claim, and a Table 3 / Table 1 that let ch6.claims run
FT_KEY = "fine-tuning on Group-CAM-masked images improves top-1 over plain fine-tuning (§5)"
T3 = pd.DataFrame({"method": ["Grad-CAM", "Group-CAM"], "passes": [1, 34], "time_s reproduced": [0.01, 0.2]})


def _t1_small():
    return _t1({"Grad-CAM": 40, "Group-CAM": 55})


@pytest.mark.parametrize("gc, gc_hw, plain, plain_hw, expected", [
    (60.0, 2.0, 50.0, 2.0, True), (40.0, 2.0, 50.0, 2.0, False), (50.0, 4.5, 50.6, 4.4, "within noise")])
def test_finetune_claim_compares_the_two_top1_intervals(gc, gc_hw, plain, plain_hw, expected):
    """§5: Group-CAM-masked fine-tuning beats plain fine-tuning in top-1 (76.74 vs 76.15 in the paper), judged by
    Table 7's 95 % intervals: ahead when they do not overlap, within noise when they do."""
    t7 = pd.DataFrame({"model": ["base (before fine-tuning)", ch6.FINETUNED["plain"], ch6.FINETUNED["groupcam"]],
                       "top1 reproduced": [40.0, plain, gc], "top1 ±": [2.0, plain_hw, gc_hw]})
    assert ch6.claims(_t1_small(), T3, None, t7)[FT_KEY] == expected
    assert FT_KEY not in ch6.claims(_t1_small(), T3)


def test_finetune_claim_pairs_the_test_images():
    """Where Table 7 keeps each test image's hit, the claim pairs the two models image by image: 12 images won
    and none lost is a lead, although 60 vs 48 ± 14 on 100 images would overlap as two intervals."""
    from xaikit.experiments.study import keep_per_image
    plain = torch.zeros(100)
    plain[:48] = 100
    gc = plain.clone()
    gc[48:60] = 100
    t7 = pd.DataFrame({"model": [ch6.FINETUNED["plain"], ch6.FINETUNED["groupcam"]],
                       "top1 reproduced": [48.0, 60.0], "top1 ±": [14.0, 14.0]})
    frame = pd.concat([pd.DataFrame({"model": m, "image": range(100), "metric": "top1", "value": h.numpy()})
                       for m, h in ((ch6.FINETUNED["plain"], plain), (ch6.FINETUNED["groupcam"], gc))])
    assert ch6.claims(_t1_small(), T3, None, t7)[FT_KEY] == "within noise"
    paired = keep_per_image(t7.copy(), frame, ["top1"], by=("model",), relabel=False)
    assert ch6.claims(_t1_small(), T3, None, paired)[FT_KEY] is True


def test_evaluate_per_image_hits_average_to_the_accuracy(small):
    from xaikit.training.small import evaluate
    ds = synthetic(n=10, num_classes=4, size=32, seed=5, split="test")
    h = evaluate(small, ds, batch_size=4, per_image=True)
    assert h.shape == (10,) and set(h.unique().tolist()) <= {0.0, 1.0}
    assert evaluate(small, ds, batch_size=4) == h.sum().item() / 10


def test_figure_maps_are_memoized_per_model_images_and_target(small):
    from xaikit import attributors

    data = load_batch(synthetic(n=2, num_classes=4, size=32, seed=3, split="test"))
    es = EvalSet("resnet18_cifar@synthetic", small, data, "synthetic")
    meths = {"gradcam": {}}
    t0, t1 = torch.tensor([0, 0]), torch.tensor([1, 1])
    a = ch6.maps_for(es, meths, data.images, t0)["Grad-CAM"]
    assert ch6.maps_for(es, meths, data.images, t0)["Grad-CAM"] is a  # same call: no recomputation
    b = ch6.maps_for(es, meths, data.images, t1)["Grad-CAM"]  # another target: recomputed, and right
    assert torch.allclose(b, attributors.create("gradcam", small)(small.xaikit.normalize(data.images), t1))
    other = xk.models.load("resnet18_cifar", weights="random", num_classes=4, input_size=32, width=8).eval()
    es2 = EvalSet("other", other, data, "synthetic")  # another model never sees the first one's maps
    c = ch6.maps_for(es2, meths, data.images, t0)["Grad-CAM"]
    assert torch.allclose(c, attributors.create("gradcam", other)(other.xaikit.normalize(data.images), t0))


def test_finetune_snapshots_record_every_epoch_and_do_not_change_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIKIT_CACHE", str(tmp_path / "cache"))
    study = _study(tmp_path, finetune_model="resnet18_cifar@synthetic", train_images=16, train_epochs=1,
                   finetune_epochs=2, finetune_images=16, finetune_test=8, finetune_batch_size=8)
    plain, base = ch6.finetune(study)
    snaps = []
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    with_snaps, base2 = ch6.finetune(study, snapshots=snaps)
    # collecting snapshots is read-only: same accuracies, same base model
    pd.testing.assert_series_equal(plain["top1 reproduced"], with_snaps["top1 reproduced"])
    assert all(torch.equal(v, base2.state_dict()[k]) for k, v in base_state.items())
    assert [e for e, _ in snaps] == [0, 1, 2]
    assert all(torch.equal(snaps[0][1][k], v) for k, v in base_state.items())  # epoch 0 = before training
    w = next(k for k in base_state if k.endswith("weight") and base_state[k].dim() == 4)
    assert not torch.equal(snaps[-1][1][w], base_state[w])  # the last one is the fine-tuned model
    assert list(plain["top1 published"].fillna(0)) == [0, 76.15, 76.74]  # Group-CAM §5's numbers
    fig = ch6.finetune_figure(study, base, snaps, n=2)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 2 * (1 + 3)  # 2 rows x (image + 3 epochs)
    assert images[1].get_title().startswith("epoch 0: p=")
    with pytest.raises(xk.errors.InputError, match="snapshots"):
        ch6.finetune_figure(study, base, [], n=2)
    # a rerun reads the snapshots, the final weights and the seconds from the cache: no fine-tuning again
    import xaikit.experiments.chapter6 as mod
    real = mod.finetune_run

    def no_groupcam_run(*a, **k):
        if k.get("transform") is not None:
            raise AssertionError("fine-tuned with Group-CAM again")
        return real(*a, **k)  # the plain run reads its own checkpoint

    monkeypatch.setattr(mod, "finetune_run", no_groupcam_run)
    again, _ = ch6.finetune(study, snapshots=(snaps2 := []))
    pd.testing.assert_series_equal(again["top1 reproduced"], with_snaps["top1 reproduced"])
    assert again["time_s"].iloc[-1] == with_snaps["time_s"].iloc[-1]  # the recorded training seconds
    # the plain run too: its epochs' recorded seconds, not the milliseconds of reading its checkpoint
    assert plain["time_s"].iloc[1] == with_snaps["time_s"].iloc[1] == again["time_s"].iloc[1] > 0.05
    assert [e for e, _ in snaps2] == [0, 1, 2] and all(torch.equal(snaps2[-1][1][k], v) for k, v in snaps[-1][1].items())


def test_composite_puts_the_centre_halves_side_by_side():
    a = torch.arange(8.0).expand(1, 3, 4, 8)           # columns 0..7
    b = 10 + torch.arange(8.0).expand(1, 3, 4, 8)
    c = ch6.composite(a, b)
    assert c.shape == (1, 3, 4, 8)
    assert c[0, 0, 0].tolist() == [2, 3, 4, 5, 12, 13, 14, 15]  # the centre half of each photo


@pytest.mark.parametrize("warm_up_s, calls", [(1e9, 3), (0.0, 2)])
def test_time_table_keeps_a_long_first_call_as_the_first_image(small, tmp_path, monkeypatch, warm_up_s, calls):
    """Table 3 times ``time_images`` images one at a time after a warm-up call; a warm-up longer than WARM_UP_S
    is the first image's time (2 images: 3 calls with a short warm-up, 2 with a long one)."""
    made = []

    def counting(*a, **k):
        cam = create(*a, **k)
        made.append(0)
        i = len(made) - 1

        def call(x, t):
            made[i] += 1
            return cam(x, t)
        return call

    create = ch6.attributors.create
    monkeypatch.setattr(ch6.attributors, "create", counting)
    monkeypatch.setattr(ch6, "WARM_UP_S", warm_up_s)
    data = load_batch(synthetic(n=2, num_classes=4, size=32, seed=2, split="test"))
    es = EvalSet("resnet18_cifar@synthetic", small, data, "synthetic")
    t3 = ch6.time_table(_study(tmp_path, time_images=2), es, ["gradcam", "groupcam"])
    assert made == [calls, calls]
    assert list(t3["n"]) == [2, 2] and (t3["time_s reproduced"] > 0).all()
