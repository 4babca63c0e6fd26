"""The experiments floor: typed parameters, the one compare(), content-keyed studies, stratified subsets."""
import pandas as pd
import pytest
import torch

import xaikit as xk
from xaikit.data.base import load_batch
from xaikit.data.subsets import stratified_indices
from xaikit.data.synthetic import synthetic
from xaikit.errors import ConfigError
from xaikit.experiments import chapter2 as ch2
from xaikit.experiments import chapter6 as ch6
from xaikit.experiments.params import parameters_cell
from xaikit.experiments.study import EvalSet, Study, compare, paper_model


# ---------------------------------------------------------------------------------------------- params
def test_params_are_typed_checked_and_complete():
    cfg = ch2.Params.create(device="cpu", images=3, chunk=None)
    assert cfg.images == 3 and cfg.torch_device.type == "cpu"
    with pytest.raises(ConfigError, match="images='three' must be int"):
        ch2.Params.create(images="three")
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['imags'\]"):
        ch2.Params.create(imags=3)
    with pytest.raises(AttributeError):
        cfg.imags  # a typo is an error, never a silent None
    with pytest.raises(ConfigError, match="thetas"):
        ch6.Params.create(thetas="70")
    assert ch6.Params.create(thetas=[0, 70]).thetas == [0, 70]  # ints are floats
    assert ch2.Params.create(chunk=64).chunk == 64 and ch2.Params.create(chunk=None).chunk is None


def test_parameters_cell_is_the_dataclass_and_parses():
    cell = parameters_cell(ch2.Params)
    ns: dict = {}
    exec(cell, ns)  # plain values only
    assert ch2.Params.from_namespace(ns, resolve=False) == ch2.Params()
    assert cell.splitlines()[0].startswith("profile = 'ci'  # ")


# --------------------------------------------------------------------------------------------- compare
def test_compare_joins_on_named_keys_and_orders_columns():
    wide = pd.DataFrame({"model": ["ours", "ours"], "paper model": ["resnet50", "resnet50"],
                         "method": ["opticam", "gradcam"], "AD": [1.0, 2.0], "AG": [3.0, 4.0]})
    t = compare(wide, "thesis:2.1", {"paper model": "model", "method": "method"}, ["AD", "AG"],
                order={"method": ["gradcam", "opticam"]})
    assert list(t.columns) == ["model", "paper model", "method", "AD published", "AD reproduced",
                               "AG published", "AG reproduced"]
    assert list(t.method) == ["Grad-CAM", "Opti-CAM"]  # ordered, then the paper's spelling
    assert t.iloc[1]["AG published"] == xk.published.table("thesis:2.1").query(
        "method == 'opticam' and model == 'resnet50' and metric == 'AG'").value.iloc[0]
    assert t.iloc[0]["AD reproduced"] == 2.0
    # our column names map to the paper's metrics; a missing key column is an error that names it
    t24 = compare(wide.assign(I=1.0), "thesis:2.4", {"paper model": "model", "method": "method"}, ["I"],
                  metric_names={"I": "insertion"})
    assert t24["I published"].notna().all()
    with pytest.raises(ConfigError, match="no column"):
        compare(wide, "thesis:2.1", {"paper model": "pool"}, ["AD"])


def test_paper_model_of_specs():
    assert paper_model("torchvision:vgg16_bn@IMAGENET1K_V1") == "vgg16"
    assert paper_model("timm:deit_base_patch16_224@fb_in1k") == "deit_base_patch16_224"
    assert paper_model("resnet18_cifar@synthetic", {"resnet18_cifar": "vgg16"}) == "vgg16"


# ----------------------------------------------------------------------------------------------- study
def _tiny(tmp_path, chapter, notebook: str, batch_size: int):
    """A random 4-class ResNet-18 (width 8), 4 synthetic 32-px images, a Study of ``chapter``'s Params
    with ``batch_size`` and the EvalSet of the two."""
    torch.manual_seed(0)
    model = xk.models.load("resnet18_cifar", weights="random", num_classes=4, input_size=32, width=8).eval()
    data = load_batch(synthetic(n=4, num_classes=4, size=32, seed=1))
    study = Study(notebook, chapter.Params.create(device="cpu", batch_size=batch_size), root=tmp_path)
    return model, data, study, EvalSet("resnet18_cifar@synthetic", model, data, "synthetic")


def test_study_results_are_keyed_by_content(tmp_path):
    model, data, study, es = _tiny(tmp_path, ch2, "02_test", 2)
    a = study.evaluate(es, {"gradcam": {}}, ["recognition"])
    assert set(a.image) == set(f"{i:06d}:{n}" for i, n in enumerate(data.names))
    b = study.evaluate(es, {"gradcam": {}}, ["recognition"])  # read back: identical values, nothing recomputed
    pd.testing.assert_frame_equal(a[a.metric != "T"].reset_index(drop=True), b[b.metric != "T"].reset_index(drop=True))
    # other weights: another fingerprint, never the cached numbers
    torch.manual_seed(1)
    other = xk.models.load("resnet18_cifar", weights="random", num_classes=4, input_size=32, width=8).eval()
    es2 = EvalSet("resnet18_cifar@synthetic", other, data, "synthetic")
    assert es2.fingerprint != es.fingerprint
    # a figure reads the tables' maps (same map cache) and returns host tensors
    files = sorted(study.map_cache(es).dir.glob("*.pt"))
    imgs, maps, t = study.maps(es, {"gradcam": {}}, 2)
    assert imgs.shape[0] == 2 and maps["gradcam"].shape == (2, 32, 32) and t.shape == (2,)
    one = study.maps(es, {"gradcam": {}}, 1)  # part of a batch of the table's (batch_size 2): read, cut to 1
    assert one[0].shape[0] == 1 and torch.equal(one[1]["gradcam"], maps["gradcam"][:1])
    assert sorted(study.map_cache(es).dir.glob("*.pt")) == files  # nothing recomputed, nothing new cached


def test_a_head_reads_the_maps_of_the_set_it_was_cut_from(tmp_path):
    # Table 2.3 runs on the first n images of Table 2.1's set: the maps of those batches are read, not
    # recomputed (a head has its own results, keyed by its own fingerprint, but its parent's map cache)
    model, data, study, es = _tiny(tmp_path, ch2, "02_test", 2)
    full = study.evaluate(es, {"gradcam": {}}, ["recognition"])
    files = sorted(study.map_cache(es).dir.glob("*.pt"))
    head = es.head(2)
    assert head.fingerprint != es.fingerprint and head.maps_fingerprint == es.fingerprint
    part = study.evaluate(head, {"gradcam": {}}, ["recognition", "insertion"])
    assert sorted(study.map_cache(head).dir.glob("*.pt")) == files  # the first batch's maps: read
    keep = full[full.metric != "T"].set_index(["image", "metric"]).value
    got = part[part.metric.isin(keep.index.get_level_values("metric"))].set_index(["image", "metric"]).value
    assert got.index.get_level_values("image").nunique() == 2 and got.equals(keep.loc[got.index])
    study.evaluate(es.head(1), {"gradcam": {}}, ["recognition"])  # a batch the set never had: computed, added
    assert len(list(study.map_cache(es).dir.glob("*.pt"))) == len(files) + 1


def test_a_figures_extra_method_is_computed_for_its_images_alone(tmp_path):
    # the table's method is read from its padded batch; a method no table computed (Integrated Gradients
    # beside Grad-CAM in a figure) runs on the n images shown, not on their whole batch (n = 1 of batches of 4)
    model, data, study, es = _tiny(tmp_path, ch2, "02_test", 4)
    study.evaluate(es, {"gradcam": {}}, ["recognition"])
    seen = []
    ig = xk.attributors.create("ig", model)
    orig = type(ig)._attribute

    def spy(self, x, t):
        seen.append(x.shape[0])
        return orig(self, x, t)

    type(ig)._attribute = spy
    try:
        imgs, maps, t = study.maps(es, {"gradcam": {}, "ig": {}}, 1)
    finally:
        type(ig)._attribute = orig
    assert seen == [1]  # IG ran once, on the one image shown; Grad-CAM came from the table's cache
    assert maps["gradcam"].shape == maps["ig"].shape == (1, 32, 32) and imgs.shape[0] == 1
    fresh = ig(model.xaikit.normalize(data.images[:1]), t)
    assert torch.equal(maps["ig"], xk.experiments.store.MapCache.stored(fresh))
    again = study.maps(es, {"gradcam": {}, "ig": {}}, 1)  # both read back now
    assert seen == [1] and torch.equal(again[1]["ig"], maps["ig"])


def test_cached_maps_are_keyed_by_the_classes_explained(tmp_path):
    # a table explaining the predicted class (Group-CAM's protocol) and a figure explaining the ground truth
    # on the same images: the figure must get ground-truth maps, not the table's (it did before the fix)
    model, data, study, es = _tiny(tmp_path, ch6, "06_test", 4)
    _, pred_maps, pred = study.maps(es, {"gradcam": {}}, target="pred")
    _, label_maps, lab = study.maps(es, {"gradcam": {}}, target="label")
    differ = pred != lab
    assert differ.any() and (~differ).any(), "the random model must get some images right and some wrong"
    fresh = xk.attributors.create("gradcam", model)(model.xaikit.normalize(data.images), lab)
    stored = xk.experiments.store.MapCache.stored
    assert torch.equal(label_maps["gradcam"], stored(fresh))  # every image: the ground-truth class's map
    assert not torch.equal(label_maps["gradcam"][differ], pred_maps["gradcam"][differ])


# ------------------------------------------------------------------------------------------- subsets
def test_stratified_subset_covers_classes_and_is_seeded():
    labels = [c for c in range(1000) for _ in range(50)]  # a 50 000-image, 1000-class validation set
    idx = stratified_indices(labels, 2000, seed=0)
    assert len(idx) == 2000 and len(set(idx)) == 2000
    counts = pd.Series([labels[i] for i in idx]).value_counts()
    assert len(counts) == 1000 and set(counts) == {2}  # every class, twice
    assert idx == stratified_indices(labels, 2000, seed=0) and idx != stratified_indices(labels, 2000, seed=1)
    few = stratified_indices(labels, 300, seed=0)
    assert len({labels[i] for i in few}) == 300  # as many classes as the subset allows
    assert stratified_indices(labels[:10], 50) == list(range(10))
