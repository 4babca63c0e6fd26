"""Harder synthetic scenes: photo backgrounds, distractors, occlusion, colour jitter (xaikit.data.synthetic).

The defaults must keep drawing the images of before (hashes computed with the generator as it was
before these options existed); every option must change the images as documented; boxes stay the
tight boxes of the visible pixels; distractors never get a box or a label.
"""
import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xaikit.data.samples import PHOTOS, load_photo
from xaikit.data.synthetic import (OCCLUSION_COVER, PHOTO_BACKGROUNDS, PHOTO_SIDE, _PALETTE, background_photo,
                                   class_spec, home_background, synthetic)
from xaikit.errors import ConfigError

HARD = dict(background="photos", background_jitter=0.2, distractors=(1, 3), occlusion=0.5, colour_jitter=0.15,
            scale=(0.3, 0.8), rotate=45.0)

# sha256 (first 20 hex digits) of 4 items each: images quantized to uint8 (round(x * 255)), int32 boxes,
# masks; computed with xaikit/data/synthetic.py before background/distractors/occlusion/colour_jitter
# existed (and its dataset key, which seeds the random stream)
DEFAULT_HASHES = [
    (dict(num_classes=10, size=32, seed=0), "11131d9c1a47de0e9b74", 2974919645),
    (dict(num_classes=16, size=64, seed=1, instances=(1, 3)), "2e1300083b2c78ceb515", 3350059274),
    (dict(num_classes=8, size=96, seed=2, classes_per_image=(2, 3), instances=(1, 2)), "8cfdac3c50d0ac2e6a1c",
     1195916948),
    (dict(num_classes=32, size=48, seed=5, fine_grained=True, context=0.8), "d8c1bfa64893bdc715c0", 3074807161),
    (dict(num_classes=10, size=128, seed=7, scale=(0.3, 0.8), rotate=45.0, split="test"), "d570bcda13ba7b8f71b9",
     3587336765),
]


def _digest(ds, n=4):
    h = hashlib.sha256()
    for i in range(n):
        it = ds.render(i, masks=True)
        h.update(np.round(it["image"].numpy() * 255).astype(np.uint8).tobytes())
        h.update(it["boxes"].numpy().astype(np.int32).tobytes())
        h.update(it["masks"].numpy().tobytes())
    return h.hexdigest()[:20]


@pytest.mark.parametrize("opts,digest,key", DEFAULT_HASHES)
def test_defaults_draw_the_images_of_before(opts, digest, key):
    ds = synthetic(4, **opts)
    assert ds._key == key
    assert _digest(ds) == digest
    # the new options at their default values are the defaults
    same = synthetic(4, background="textures", background_jitter=0.0, distractors=0, occlusion=0.0,
                     colour_jitter=0.0, **opts)
    assert same._key == key and _digest(same) == digest


@pytest.mark.parametrize("opt", [dict(background="photos"), dict(background_jitter=0.1), dict(distractors=1),
                                 dict(distractors=(0, 2)), dict(occlusion=0.3), dict(colour_jitter=0.15)])
def test_every_option_enters_the_stream_and_changes_the_images(opt):
    base = synthetic(6, 10, 48, seed=0)
    ds = synthetic(6, 10, 48, seed=0, **opt)
    assert ds._key != base._key
    assert all(not torch.equal(ds[i]["image"], base[i]["image"]) for i in range(6))
    assert set(ds._hard_options()) == set(opt) and set(opt) <= set(ds.options())
    # two values of one option never share images either
    k, v = next(iter(opt.items()))
    if k in ("background_jitter", "occlusion", "colour_jitter"):
        other = synthetic(6, 10, 48, seed=0, **{k: v / 2})
        assert other._key != ds._key and not torch.equal(other[0]["image"], ds[0]["image"])


def test_photo_backgrounds_are_crops_of_the_bundled_photos():
    assert set(PHOTO_BACKGROUNDS) <= set(PHOTOS)
    S = 64
    ds = synthetic(30, 10, S, seed=3, background="photos")
    names, flips, sides = set(), set(), set()
    for i in range(len(ds)):
        sc = ds.scene(i)
        p = sc["photo"]
        assert p["name"] == PHOTO_BACKGROUNDS[sc["background"]]
        names.add(p["name"])
        flips.add(p["flip"])
        sides.add(p["side"])
        src = torch.from_numpy(np.array(background_photo(p["name"]))).permute(2, 0, 1)[None]
        crop = src[..., p["y"]:p["y"] + p["side"], p["x"]:p["x"] + p["side"]]
        want = F.interpolate(crop, size=(S, S), mode="bilinear", align_corners=False)[0]
        if p["flip"]:
            want = want.flip(-1)
        got = ds.render(i, objects=False)["image"]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert len(names) >= 6 and flips == {False, True} and len(sides) > 10
    # the cached copy is the bundled photo itself, resized to PHOTO_SIDE on its shorter side
    for name in ("chelsea", "coffee"):
        cached = background_photo(name)
        assert cached is background_photo(name)  # loaded once
        raw = torch.from_numpy(load_photo(name)).permute(2, 0, 1)[None].float() / 255
        assert min(cached.shape[:2]) == PHOTO_SIDE
        ref = F.interpolate(raw, size=cached.shape[:2], mode="bilinear", antialias=True, align_corners=False)[0]
        assert float((ref.permute(1, 2, 0) - torch.from_numpy(np.array(cached))).abs().mean()) < 0.02


def test_background_jitter_scales_the_background():
    S = 48
    for bg in ("photos", "textures"):
        ds = synthetic(8, 10, S, seed=1, background=bg, background_jitter=0.3)
        gains = []
        for i in range(len(ds)):
            sc = ds.scene(i)
            gain, off = sc["bg_jitter"]
            gains.append(gain)
            if bg == "photos":
                p = sc["photo"]
                src = torch.from_numpy(np.array(background_photo(p["name"]))).permute(2, 0, 1)[None]
                crop = src[..., p["y"]:p["y"] + p["side"], p["x"]:p["x"] + p["side"]]
                plain = F.interpolate(crop, size=(S, S), mode="bilinear", align_corners=False)[0]
                plain = plain.flip(-1) if p["flip"] else plain
                want = (plain * torch.from_numpy(gain)[:, None, None] + float(off)).clamp(0, 1)
                torch.testing.assert_close(ds.render(i, objects=False)["image"], want, atol=1e-5, rtol=0)
        gains = np.array(gains)
        assert ((gains >= 0.7) & (gains <= 1.3)).all() and gains.std() > 0.05


def _check_scene(ds, i):
    """Boxes are the tight boxes of the masks; what differs from the background-only image is exactly
    objects, distractors and occluders; masks, distractors and occluders never overlap."""
    it = ds.render(i, masks=True)
    bg = ds.render(i, objects=False)["image"]
    masks, dm, om = it["masks"], it["distractor_masks"], it["occluder_masks"]
    K = len(it["boxes"])
    assert masks.shape[0] == om.shape[0] == K == len(it["box_labels"]) == len(it["occluded"]) >= 1
    for m, box in zip(masks, it["boxes"]):
        assert m.any()
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert torch.equal(box, torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32))
    layers = torch.cat([masks, dm, om])
    assert int(layers.sum()) == int(layers.any(0).sum())  # nothing overlaps
    changed = (it["image"] != bg).any(0)
    assert not (changed & ~layers.any(0)).any()  # nothing drawn elsewhere
    assert changed[masks.any(0)].float().mean() > 0.97
    if dm.shape[0]:
        assert changed[dm.any(0)].float().mean() > 0.97
    return it


@pytest.mark.parametrize("opts", [HARD, dict(HARD, background="textures"),
                                  dict(HARD, occlusion=1.0, classes_per_image=(1, 3), instances=(1, 2)),
                                  dict(HARD, occlusion=1.0, fine_grained=True)])
def test_boxes_are_tight_around_visible_pixels(opts):
    C = 32 if opts.get("fine_grained") else 10
    ds = synthetic(16, C, 96, seed=2, **opts)
    for i in range(len(ds)):
        _check_scene(ds, i)


def test_occlusion_hides_part_of_each_object_and_boxes_follow():
    ds = synthetic(40, 10, 64, seed=4, occlusion=1.0, distractors=(0, 1), scale=(0.5, 0.9))
    fractions, shrunk, kinds = [], 0, set()
    for i in range(len(ds)):
        it = _check_scene(ds, i)
        whole = ds.render(i, masks=True, occluders=False)
        sc = ds.scene(i)
        for k, (vis, full, occ) in enumerate(zip(it["masks"], whole["masks"], it["occluder_masks"])):
            # the visible mask is the unoccluded mask minus what the occluder covers
            assert torch.equal(vis, full & ~occ)
            hidden = 1 - vis.sum() / full.sum()
            assert float(hidden) == pytest.approx(float(it["occluded"][k]), abs=1e-6)
            assert hidden <= OCCLUSION_COVER[1] + 1e-6
            fractions.append(float(hidden))
            kinds.add(sc["objects"][k]["occluder"]["kind"])
            ys, xs = torch.nonzero(full, as_tuple=True)
            shrunk += int(not torch.equal(it["boxes"][k], torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                                                                        dtype=torch.float32)))
        # outside the occluders the image is the unoccluded one
        outside = ~it["occluder_masks"].any(0)
        assert torch.equal(it["image"][:, outside], whole["image"][:, outside])
    fractions = np.array(fractions)
    assert kinds == {"patch", "shape"}
    assert (fractions >= OCCLUSION_COVER[0] - 1e-6).mean() > 0.8  # almost every object really is covered
    assert fractions.mean() > 0.1 and shrunk > 3                    # by a good part; some boxes shrink
    # occlusion=p occludes a fraction p of the objects
    half = synthetic(300, 10, 32, seed=0, occlusion=0.5)
    hit = np.mean([ob["occluder"] is not None for i in range(300) for ob in half.scene(i)["objects"]])
    assert abs(hit - 0.5) < 0.1


def test_distractors_get_no_box_and_no_label():
    C = 10
    ds = synthetic(40, C, 64, seed=5, distractors=(1, 3), classes_per_image=(1, 2))
    specs = {(class_spec(c)["shape"], class_spec(c)["colour"], class_spec(c)["texture"]) for c in range(C)}
    counts = set()
    for i in range(len(ds)):
        sc = ds.scene(i)
        it = _check_scene(ds, i)
        nd = len(sc["distractors"])
        counts.add(nd)
        assert it["distractor_masks"].shape[0] == nd
        assert len(it["boxes"]) == len(sc["objects"])  # one box per object, none per distractor
        assert sorted(it["box_labels"].tolist()) == sorted(ob["cls"] for ob in sc["objects"])
        assert set(torch.nonzero(it["label"]).flatten().tolist()) == set(sc["classes"])
        for d in sc["distractors"]:
            assert (d["shape"], d["colour"], d["texture"]) not in specs
    assert counts == {1, 2, 3}
    # a single-class dataset with distractors keeps its int labels
    one = synthetic(5, C, 64, seed=0, distractors=2)
    assert [one[i]["label"] for i in range(5)] == [0, 1, 2, 3, 4]
    assert all(len(one[i]["boxes"]) == 1 for i in range(5))


def test_colour_jitter_spreads_object_colours():
    def spread(cj):
        ds = synthetic(60, 10, 48, seed=6, colour_jitter=cj)  # classes 0-9 are solid: pixels = the colour
        dev = []
        for i in range(len(ds)):
            it = ds.render(i, masks=True)
            pix = it["image"][:, it["masks"][0]]
            assert (pix.std(1) < 1e-6).all()
            dev.append(pix[:, 0].numpy() - _PALETTE[class_spec(it["label"])["colour"]])
        return np.abs(np.array(dev)).mean()
    plain, jittered = spread(0.0), spread(0.15)
    assert plain < 0.04 and jittered > 1.5 * plain


def test_scale_and_rotate_still_vary_the_objects():
    small = synthetic(30, 10, 64, seed=0, scale=(0.2, 0.3), background="photos")
    big = synthetic(30, 10, 64, seed=0, scale=(0.8, 0.9), background="photos")
    area = lambda ds: np.mean([float((b[2] - b[0]) * (b[3] - b[1])) for i in range(30) for b in ds[i]["boxes"]])
    assert area(small) * 4 < area(big)


def test_same_seed_same_scenes_different_seed_different():
    a = synthetic(12, 10, 64, seed=3, **HARD)
    b = synthetic(12, 10, 64, seed=3, **HARD)
    for i in [5, 0, 11, 5]:
        ia, ib = a.render(i, masks=True), b.render(i, masks=True)
        for k in ("image", "boxes", "box_labels", "masks", "distractor_masks", "occluder_masks", "occluded"):
            assert torch.equal(ia[k], ib[k]), k
        assert ia["label"] == ib["label"]
    xa, ya = a.tensors(bar=False)
    xb, yb = b.tensors(bar=False)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = synthetic(12, 10, 64, seed=4, **HARD)
    t = synthetic(12, 10, 64, seed=3, split="test", **HARD)
    assert all(not torch.equal(a[i]["image"], c[i]["image"]) and not torch.equal(a[i]["image"], t[i]["image"])
               for i in range(12))


def test_context_ties_classes_to_home_photos():
    n = 600
    ds = synthetic(n, 10, 32, seed=0, background="photos", context=0.9)
    agree = np.mean([ds.scene(i)["background"] == home_background(i % 10, "photos") for i in range(n)])
    assert abs(agree - 0.9) < 0.05
    assert home_background(12, "photos") == 12 % len(PHOTO_BACKGROUNDS) and home_background(12) == 0


def test_bad_hard_options_raise_config_errors():
    with pytest.raises(ConfigError, match="background"):
        synthetic(4, background="clouds")
    with pytest.raises(ConfigError, match="occlusion"):
        synthetic(4, occlusion=1.5)
    with pytest.raises(ConfigError, match="colour_jitter"):
        synthetic(4, colour_jitter=-0.1)
    with pytest.raises(ConfigError, match="background_jitter"):
        synthetic(4, background_jitter=2)
    with pytest.raises(ConfigError, match="distractors"):
        synthetic(4, distractors=(2, 1))
    with pytest.raises(ConfigError, match="do not fit"):
        synthetic(4, 10, 32, distractors=30)
