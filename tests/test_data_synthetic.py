"""Synthetic data: determinism, exact boxes, multi-class labels, the context knob, sizes, class coverage."""
import numpy as np
import pytest
import torch

import xaikit as xk
from xaikit.data import collate
from xaikit.data.synthetic import BACKGROUNDS, MAX_CLASSES, class_names, class_spec, home_background, synthetic
from xaikit.errors import ConfigError


def test_same_seed_same_tensors_and_random_access():
    a = synthetic(20, 5, 32, seed=3, classes_per_image=2, instances=(1, 2))
    b = synthetic(20, 5, 32, seed=3, classes_per_image=2, instances=(1, 2))
    # random access in a different order gives identical items
    for i in [7, 0, 19, 7]:
        ia, ib = a[i], b[i]
        assert torch.equal(ia["image"], ib["image"])
        assert torch.equal(ia["label"], ib["label"])
        assert torch.equal(ia["boxes"], ib["boxes"]) and torch.equal(ia["box_labels"], ib["box_labels"])
    other = synthetic(20, 5, 32, seed=4, classes_per_image=2, instances=(1, 2))
    assert not torch.equal(a[0]["image"], other[0]["image"])
    test = synthetic(20, 5, 32, seed=3, split="test", classes_per_image=2, instances=(1, 2))
    assert not torch.equal(a[0]["image"], test[0]["image"])


def test_item_structure_and_collate():
    ds = synthetic(6, 4, 48, seed=0)
    it = ds[2]
    assert set(it) == {"image", "label", "boxes", "box_labels", "name"}
    assert it["image"].shape == (3, 48, 48) and it["image"].dtype == torch.float32
    assert 0.0 <= float(it["image"].min()) and float(it["image"].max()) <= 1.0
    assert isinstance(it["label"], int) and it["boxes"].shape == (1, 4) and it["box_labels"].tolist() == [it["label"]]
    b = collate([ds[i] for i in range(6)])
    assert b.images.shape == (6, 3, 48, 48) and b.labels.dtype == torch.long
    with pytest.raises(IndexError):
        ds[6]


@pytest.mark.parametrize("opts", [dict(), dict(instances=3), dict(classes_per_image=3, instances=(1, 2)),
                                  dict(fine_grained=True)])
def test_boxes_exactly_enclose_drawn_pixels(opts):
    ds = synthetic(12, 16, 64, seed=1, **opts)
    for i in range(len(ds)):
        it = ds.render(i, masks=True)
        bg = ds.render(i, objects=False)["image"]
        masks = it["masks"]
        assert masks.shape[0] == it["boxes"].shape[0] >= 1
        # the pixels that differ from the background-only rendering are exactly the union of object masks
        changed = (it["image"] != bg).any(0)
        union = masks.any(0)
        assert torch.equal(changed & ~union, torch.zeros_like(changed))  # nothing drawn outside the objects
        assert changed.sum() >= 0.97 * union.sum()                       # object pixels really drawn
        assert int(masks.sum()) == int(union.sum())                        # objects never overlap
        for m, box in zip(masks, it["boxes"]):
            ys, xs = torch.nonzero(m, as_tuple=True)
            tight = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
            assert torch.equal(box, tight)
            # and the changed pixels of this object reach every side of its box
            sub = changed[int(box[1]):int(box[3]), int(box[0]):int(box[2])] & m[int(box[1]):int(box[3]), int(box[0]):int(box[2])]
            assert sub.any(0)[[0, -1]].all() and sub.any(1)[[0, -1]].all()


def test_multiclass_labels_match_boxes():
    C = 8
    ds = synthetic(40, C, 64, seed=2, classes_per_image=(2, 3), instances=(1, 2))
    n_classes = set()
    for i in range(len(ds)):
        it = ds[i]
        assert it["label"].shape == (C,)
        present = set(torch.nonzero(it["label"]).flatten().tolist())
        assert present == set(it["box_labels"].tolist())
        assert 2 <= len(present) <= 3
        n_classes.add(len(present))
        assert set(ds.scene(i)["classes"]) == present
    assert n_classes == {2, 3}


@pytest.mark.parametrize("context", [0.0, 0.5, 0.9, 1.0])
def test_context_sets_background_class_agreement(context):
    n = 2000
    ds = synthetic(n, 10, 32, seed=0, context=context)
    scenes = [ds.scene(i) for i in range(n)]
    agree = np.mean([sc["background"] == home_background(sc["classes"][0]) for sc in scenes])
    assert abs(agree - context) < 0.04, (agree, context)  # 4 binomial std at n=2000


def test_no_context_is_independent_and_background_drawn_is_the_scene_one():
    n = 2000
    ds = synthetic(n, 10, 32, seed=0)
    agree = np.mean([ds.scene(i)["background"] == home_background(i % 10) for i in range(n)])
    assert abs(agree - 1 / len(BACKGROUNDS)) < 0.035
    # the rendered background really depends on the type: uniform 'noise' vs 'checker' have different statistics
    rough = {}
    for i in range(300):
        sc = ds.scene(i)
        img = ds.render(i, objects=False)["image"]
        rough.setdefault(sc["background"], []).append(float((img[:, 1:] - img[:, :-1]).abs().mean()))
    assert np.mean(rough[BACKGROUNDS.index("gradient")]) < np.mean(rough[BACKGROUNDS.index("noise")])


@pytest.mark.parametrize("size", [32, 64, 128, 224])
def test_sizes(size):
    ds = synthetic(3, 10, size, seed=0, instances=2)
    it = ds[1]
    assert it["image"].shape == (3, size, size)
    assert (it["boxes"][:, 2:] <= size).all() and (it["boxes"][:, :2] >= 0).all()


def test_labels_cover_all_classes_and_classes_are_distinct():
    for C, fg in [(4, False), (10, False), (100, False), (32, True)]:
        ds = synthetic(3 * C, C, 32, seed=5, fine_grained=fg)
        labels = [ds[i]["label"] for i in range(len(ds))]
        assert sorted(set(labels)) == list(range(C))
        specs = {tuple(sorted(class_spec(c, fg).items())) for c in range(C)}
        assert len(specs) == C
        assert len(set(class_names(C, fg))) == C
    assert MAX_CLASSES == 100


def test_fine_grained_classes_differ_only_by_the_spot():
    a, b = class_spec(0, True), class_spec(5, True)
    assert (a["shape"], a["colour"], a["texture"]) == (b["shape"], b["colour"], b["texture"])
    assert (a["spot"], a["spot_colour"]) != (b["spot"], b["spot_colour"])


def test_bad_options_raise_config_errors():
    with pytest.raises(ConfigError, match="num_classes"):
        synthetic(10, 101)
    with pytest.raises(ConfigError, match="size"):
        synthetic(10, 5, size=8)
    with pytest.raises(ConfigError, match="context"):
        synthetic(10, 5, context=1.5)
    with pytest.raises(ConfigError, match="do not fit"):
        synthetic(10, 10, size=32, instances=10, classes_per_image=5)
    with pytest.raises(ConfigError, match="classes_per_image"):
        synthetic(10, 3, classes_per_image=4)


def test_public_entry_points():
    ds = xk.data.synthetic(n=5, num_classes=3, size=32, seed=0)
    tr, te = xk.data.synthetic_splits(n_train=5, n_test=4, num_classes=3, size=32)
    assert len(ds) == 5 and len(tr) == 5 and len(te) == 4 and te.split == "test"
    assert ds.class_names == xk.data.synthetic_class_names(3)
    x, y = ds.tensors()
    assert x.shape == (5, 3, 32, 32) and y.tolist() == [0, 1, 2, 0, 1]

