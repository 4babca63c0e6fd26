"""Miniatures of the real datasets (xaikit.data.miniature): every layout loads through its real reader,
the annotation files (ILSVRC/VOC XML, CUB tables, CIFAR pickles, COCO JSON) round-trip to what the
builder meant to write, builds are deterministic and reused, and corrupt files give one DataError that
names the dataset, the file and the fix.  Expected values are computed here, from the build parameters
and by parsing the files with the standard library, never by the readers under test."""
import hashlib
import json
import pickle
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from xaikit import preflight as P
from xaikit.data import folders as F
from xaikit.data import miniature as M
from xaikit.errors import ConfigError, DataError

SIZE = 64      # reader output size: every image is resized, so boxes are scaled by SIZE / w, SIZE / h
C, K = 4, 2    # the defaults of build(): classes per dataset, images per class and split


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return M.build(tmp_path_factory.mktemp("mini"))


def _truth(path):
    return M.manifest(path)["truth"]


def _scaled(box, w, h, size=SIZE):
    return [box[0] * size / w, box[1] * size / h, box[2] * size / w, box[3] * size / h]


def _close(a, b):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32).reshape(-1, 4),
                          torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4), atol=1e-4)


def _tree(root) -> dict:
    """{relative path: sha256} of every file under ``root`` (hidden ones included)."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _stat(root) -> dict:
    return {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in sorted(Path(root).rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ every reader loads
def test_every_reader_has_a_miniature(mini):
    assert set(M.DATASETS) == set(F.LOADERS) and list(mini) == list(M.DATASETS)
    root = next(iter(mini.values())).parent
    assert all(p == root / n and (p / M.MARKER).is_file() for n, p in mini.items())
    assert not list(root.glob(".*.building-*"))          # no temporary folder left behind
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


#: dataset -> (reader kwargs, images, classes) expected from C classes x K images per class and split
EXPECTED = {
    "imagenet_val": ({}, C * K, 1000),
    "imagenet_train": ({}, C * K, 1000),
    "cub": ({"split": "test"}, C * K, C),
    "voc": ({"split": "val"}, C * K, 20),
    "cifar100": ({"split": "test"}, C * K, 100),
    "chest_xray": ({"split": "test"}, 2 * K, 2),
    "kvasir": ({"split": "all"}, 8 * K, 8),
    "mit67": ({"split": "test"}, C * K, C),
    "coco": ({}, C * K - 1, 80),   # C*K+1 images: one without annotations, one with a crowd one only
}


@pytest.mark.parametrize("name", M.DATASETS)
def test_dataset_loads_through_its_reader(mini, name, monkeypatch):
    kw, n, classes = EXPECTED[name]
    path = mini[name]
    assert P.check_dataset(name, path) is None
    size = 32 if name == "cifar100" else SIZE
    ds = F.dataset(name, path, size=size, **kw)
    assert len(ds) == n and ds.num_classes == classes
    multilabel = name in ("voc", "coco")
    for i in range(len(ds)):
        it = ds[i]
        assert it["image"].shape == (3, size, size) and 0 <= it["image"].min() and it["image"].max() <= 1
        if multilabel:
            lab = it["label"]
            assert lab.shape == (classes,) and set(lab.unique().tolist()) <= {0.0, 1.0} and lab.sum() >= 1
            assert set(it["box_labels"].tolist()) == set(torch.nonzero(lab).flatten().tolist())
        else:
            assert 0 <= int(it["label"]) < classes
        b = it["boxes"]
        assert ((b >= 0) & (b <= size)).all() and (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert len(b) == len(it["box_labels"]) and ((it["box_labels"] >= 0) & (it["box_labels"] < classes)).all()
        if name in ("imagenet_val", "cub", "voc", "coco"):
            assert len(b) >= 1
    # the $XAIKIT_DATA/<name> convention reaches the same folder
    monkeypatch.setenv("XAIKIT_DATA", str(path.parent))
    assert len(F.dataset(name, size=size, **kw)) == n


def test_other_splits_and_options(mini):
    assert [len(F.cub(mini["cub"], s)) for s in ("train", "test", "all")] == [C * K, C * K, 2 * C * K]
    assert [len(F.voc(mini["voc"], s)) for s in ("train", "val", "trainval")] == [C * K, C * K, 2 * C * K]
    assert len(F.cifar100(mini["cifar100"], "train")) == C * K
    assert F.cifar100(mini["cifar100"], coarse=True).num_classes == 20
    assert [len(F.chest_xray(mini["chest_xray"], s)) for s in ("train", "test", "val")] == [2 * K] * 3
    tr, te = F.kvasir(mini["kvasir"], "train"), F.kvasir(mini["kvasir"], "test")
    assert len(tr) + len(te) == 8 * K
    assert len(F.mit67(mini["mit67"], "train")) == C * K
    assert len(F.coco(mini["coco"], crowd=True)) == C * K       # the crowd-only image comes back
    assert len(F.imagenet_train(mini["imagenet_train"], limit=C)) == C
    # difficult=False drops the val image whose objects are all difficult (and maybe others)
    easy = F.voc(mini["voc"], "val", difficult=False)
    assert len(easy) < C * K


# ----------------------------------------------------------------------------------- round trips
def _xml(path):
    r = ET.parse(path).getroot()
    objs = [(o.findtext("name"), [int(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")],
             o.findtext("difficult")) for o in r.findall("object")]
    return r, objs


def test_ilsvrc_xml_roundtrip(mini):
    root = mini["imagenet_val"]
    wnids = F._imagenet_wnids()
    truth = {Path(t["file"]).stem: t for t in _truth(root)}
    assert len(truth) == C * K and {t["index"] for t in truth.values()} >= {285, 967}   # the bundled cat, espresso
    ds = F.imagenet_val(root, size=SIZE, crop_pct=1.0)
    for i in range(len(ds)):
        it = ds[i]
        stem = Path(it["name"]).stem
        img = root / "val" / wnids[it["label"]] / it["name"]          # the class folder gives the label
        r, objs = _xml(root / "bbox" / "val" / f"{stem}.xml")
        w, h = Image.open(img).size
        assert r.findtext("folder") == "val" and r.findtext("filename") == stem
        assert (int(r.findtext("size/width")), int(r.findtext("size/height"))) == (w, h)
        assert {n for n, _, _ in objs} == {img.parent.name}
        file_boxes = [[b[0], b[1], b[2] + 1, b[3] + 1] for _, b, _ in objs]     # 0-based inclusive
        assert file_boxes == truth[stem]["boxes"] and truth[stem]["label"] == img.parent.name
        assert _close(it["boxes"], [_scaled(b, w, h) for b in file_boxes])
        assert it["box_labels"].tolist() == [it["label"]] * len(objs)


def test_imagenet_flat_layout(tmp_path, mini):
    flat = M.build(tmp_path, "imagenet_val", imagenet_layout="flat")["imagenet_val"]
    assert not [d for d in (flat / "val").iterdir() if d.is_dir()] and P.check_dataset("imagenet_val", flat) is None
    ds = F.imagenet_val(flat, size=SIZE, crop_pct=1.0)
    wnids = F._imagenet_wnids()
    truth = {Path(t["file"]).name: t for t in _truth(flat)}
    assert len(ds) == C * K
    for i in range(len(ds)):
        it = ds[i]
        t = truth[it["name"]]
        assert wnids[it["label"]] == t["label"] and _close(it["boxes"], [_scaled(b, *t["size"]) for b in t["boxes"]])
    # same pictures as the class-folder layout: only the place of the files differs
    folders = {Path(t["file"]).name: t for t in _truth(mini["imagenet_val"])}
    assert {k: v["boxes"] for k, v in folders.items()} == {k: v["boxes"] for k, v in truth.items()}


def test_voc_xml_roundtrip(mini):
    root = mini["voc"] / "VOCdevkit" / "VOC2012"
    main = root / "ImageSets" / "Main"
    lists = {s: (main / f"{s}.txt").read_text().split() for s in ("train", "val", "trainval")}
    assert lists["trainval"] == sorted(lists["train"] + lists["val"]) and not set(lists["train"]) & set(lists["val"])
    truth = {t["stem"]: t for t in _truth(mini["voc"])}
    ds = F.voc(mini["voc"], "val", size=SIZE, crop_pct=1.0)
    assert [Path(r["name"]).stem for r in ds.records] == lists["val"]
    n_objects = n_multi = 0
    for i, stem in enumerate(lists["val"]):
        it = ds[i]
        r, objs = _xml(root / "Annotations" / f"{stem}.xml")
        w, h = Image.open(root / "JPEGImages" / f"{stem}.jpg").size
        assert r.findtext("filename") == f"{stem}.jpg"
        assert (int(r.findtext("size/width")), int(r.findtext("size/height"))) == (w, h)
        file_boxes = [[b[0] - 1, b[1] - 1, b[2], b[3]] for _, b, _ in objs]     # 1-based inclusive
        assert file_boxes == truth[stem]["boxes"]
        assert [d == "1" for _, _, d in objs] == truth[stem]["difficult"]
        assert _close(it["boxes"], [_scaled(b, w, h) for b in file_boxes])      # <part> boxes are not objects
        assert it["box_labels"].tolist() == [F.VOC_CLASSES.index(n) for n, _, _ in objs]
        assert torch.nonzero(it["label"]).flatten().tolist() == sorted({F.VOC_CLASSES.index(n) for n, _, _ in objs})
        n_objects += len(objs)
        n_multi += len({n for n, _, _ in objs}) > 1
    assert n_objects > len(lists["val"]) and n_multi >= 1      # several objects, of several classes, in some
    easy = sum(any(d == "0" for _, _, d in _xml(root / "Annotations" / f"{s}.xml")[1]) for s in lists["val"])
    assert len(F.voc(mini["voc"], "val", difficult=False)) == easy


def test_cub_txt_roundtrip(mini):
    root = mini["cub"] / "CUB_200_2011"

    def table(name):
        return {int(line.split()[0]): line.split()[1:] for line in (root / name).read_text().splitlines()}

    images, labels, split = table("images.txt"), table("image_class_labels.txt"), table("train_test_split.txt")
    boxes, classes = table("bounding_boxes.txt"), table("classes.txt")
    assert [v[0] for v in classes.values()] == ["001.Black_footed_Albatross", "002.Laysan_Albatross",
                                                "003.Sooty_Albatross", "004.Groove_billed_Ani"]
    truth = {t["id"]: t for t in _truth(mini["cub"])}
    ds = F.cub(mini["cub"], "all", size=SIZE, crop_pct=1.0)
    assert ds.class_names == ["Black footed Albatross", "Laysan Albatross", "Sooty Albatross", "Groove billed Ani"]
    assert len(ds) == len(images) == 2 * C * K
    for i, iid in enumerate(sorted(images)):
        it = ds[i]
        folder = classes[int(labels[iid][0])][0]
        assert images[iid][0].startswith(folder + "/") and it["label"] == int(labels[iid][0]) - 1
        x, y, bw, bh = (float(v) for v in boxes[iid])
        w, h = Image.open(root / "images" / images[iid][0]).size
        assert [x, y, x + bw, y + bh] == truth[iid]["boxes"][0]
        assert (split[iid][0] == "1") == (truth[iid]["split"] == "train")
        assert _close(it["boxes"], [_scaled([x, y, x + bw, y + bh], w, h)])
        assert it["box_labels"].tolist() == [it["label"]]


def test_cifar_pickle_roundtrip(mini):
    root = mini["cifar100"] / "cifar-100-python"
    raw = (root / "test").read_bytes()
    # written as Python 2's cPickle did: protocol 2, byte-string keys, numpy's old module path
    assert raw[:2] == b"\x80\x02" and b"cnumpy.core.multiarray\n_reconstruct\n" in raw and b"U\x04data" in raw
    with open(root / "test", "rb") as f:
        d = pickle.load(f, encoding="bytes")
    with open(root / "meta", "rb") as f:
        meta = pickle.load(f, encoding="bytes")
    assert list(d) == [b"filenames", b"batch_label", b"fine_labels", b"coarse_labels", b"data"]
    assert list(meta) == [b"fine_label_names", b"coarse_label_names"] and d[b"batch_label"] == b"testing batch 1 of 1"
    fine, coarse = meta[b"fine_label_names"], meta[b"coarse_label_names"]
    assert len(fine) == 100 and len(coarse) == 20 and fine == sorted(fine) and coarse == sorted(coarse)
    assert (fine[0], fine[99], coarse[0], coarse[19]) == (b"apple", b"worm", b"aquatic_mammals", b"vehicles_2")
    data = d[b"data"]
    assert data.dtype == np.uint8 and data.shape == (C * K, 3072)
    pairs = set(zip(d[b"fine_labels"], d[b"coarse_labels"]))
    assert len({f for f, _ in pairs}) == len(pairs) == C                      # one superclass per class
    assert (fine.index(b"motorcycle"), coarse.index(b"vehicles_1")) in pairs
    truth = _truth(mini["cifar100"])
    ds = F.cifar100(mini["cifar100"], "test")
    for i in range(len(ds)):
        it = ds[i]
        t = next(t for t in truth if t["split"] == "test" and t["index"] == i)
        assert it["label"] == d[b"fine_labels"][i] and fine[it["label"]].decode() == t["label"]
        assert it["name"] == d[b"filenames"][i].decode() == t["name"]
        assert torch.equal(it["image"], torch.from_numpy(data[i].reshape(3, 32, 32).astype(np.float32) / 255))


def test_coco_json_roundtrip(mini):
    root = mini["coco"]
    doc = json.loads((root / "annotations" / "instances_val2017.json").read_text())
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    ids = [c["id"] for c in cats]
    assert len(cats) == 80 and ids[0] == 1 and ids[-1] == 90 and 12 not in ids and ids[11] == 13
    assert {c["supercategory"] for c in cats} >= {"person", "vehicle", "animal", "kitchen", "indoor"}
    try:  # the names torchvision's COCO detectors carry, indexed by category id
        from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights as Wt

        tv = Wt.DEFAULT.meta["categories"]
        assert all(tv[c["id"]] == c["name"] for c in cats)
    except ImportError:
        pass
    cidx = {cid: i for i, cid in enumerate(ids)}
    images = {im["id"]: im for im in doc["images"]}
    plain, crowd = {}, {}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        (crowd if a["iscrowd"] else plain).setdefault(a["image_id"], []).append(([x, y, x + w, y + h],
                                                                               cidx[a["category_id"]]))
    truth = {t["id"]: t for t in _truth(root)}
    assert len(images) == C * K + 1 and len(images) - len(plain) == 2 and crowd
    ds = F.coco(root, size=SIZE, crop_pct=1.0)
    assert ds.class_names == [c["name"] for c in cats]
    assert [r["name"] for r in ds.records] == [images[i]["file_name"] for i in sorted(plain)]
    for i, iid in enumerate(sorted(plain)):
        it = ds[i]
        im = images[iid]
        assert Image.open(root / "val2017" / im["file_name"]).size == (im["width"], im["height"])
        bxs = [b for b, _ in plain[iid]]
        assert bxs == [b for b, cr in zip(truth[iid]["boxes"], truth[iid]["crowd"]) if not cr]
        assert _close(it["boxes"], [_scaled(b, im["width"], im["height"]) for b in bxs])
        assert it["box_labels"].tolist() == [c for _, c in plain[iid]]
        assert torch.nonzero(it["label"]).flatten().tolist() == sorted({c for _, c in plain[iid]})
    withcrowd = F.coco(root, size=SIZE, crowd=True, crop_pct=1.0)
    assert sum(len(r["boxes"]) for r in withcrowd.records) == len(doc["annotations"])


# ------------------------------------------------------------------------ determinism and reuse
def test_same_seed_same_bytes_and_reuse(tmp_path, mini):
    again = M.build(tmp_path / "a")
    assert _tree(again["voc"].parent) == _tree(next(iter(mini.values())).parent)    # byte-identical trees
    before = _stat(tmp_path / "a")
    assert M.build(tmp_path / "a") == again and _stat(tmp_path / "a") == before     # reused, nothing rewritten
    # other parameters rebuild that dataset only; another seed gives other files
    cub1 = M.build(tmp_path / "a", ["cub"], per_class=1)["cub"]
    assert len(F.cub(cub1, "all")) == C * 2 and M.manifest(cub1)["params"]["per_class"] == 1
    assert {p: s for p, s in _stat(tmp_path / "a").items() if "cub" not in p.parts} == \
        {p: s for p, s in before.items() if "cub" not in p.parts}
    other = M.build(tmp_path / "b", ["voc"], seed=1)["voc"]
    assert _tree(other) != _tree(again["voc"])
    ino = (again["voc"] / M.MARKER).stat().st_ino
    M.build(tmp_path / "a", "voc", force=True)
    assert (again["voc"] / M.MARKER).stat().st_ino != ino and _tree(again["voc"]) == _tree(mini["voc"])


def test_interrupted_build_leaves_nothing_half_built(tmp_path, monkeypatch):
    def broken(w, rng, p):
        w.text("CUB_200_2011/images.txt", "1 001.x/a.jpg\n")
        raise KeyboardInterrupt

    monkeypatch.setitem(M._BUILDERS, "cub", broken)
    with pytest.raises(KeyboardInterrupt):
        M.build(tmp_path, "cub")
    assert not (tmp_path / "cub").exists() and not list(tmp_path.iterdir())
    stale = tmp_path / ".cub.building-999999999-deadbeef"   # left by a process that died
    stale.mkdir()
    monkeypatch.undo()
    assert P.check_dataset("cub", tmp_path / "cub") == "folder does not exist"
    M.build(tmp_path, "cub")
    assert not stale.exists() and (tmp_path / "cub" / M.MARKER).is_file()


def test_never_touches_a_folder_that_is_not_a_miniature(tmp_path):
    real = tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "JPEGImages" / "2007_000027.jpg"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"precious")
    with pytest.raises(ConfigError, match="not an xaikit miniature"):
        M.build(tmp_path, "voc", force=True)
    assert real.read_bytes() == b"precious"
    with pytest.raises(ConfigError, match="unknown dataset"):
        M.build(tmp_path, ["imagenet"])
    with pytest.raises(DataError, match="not a complete xaikit miniature"):
        M.manifest(tmp_path / "voc")


def test_command_line(mini, capsys):
    root = next(iter(mini.values())).parent
    assert M.main([str(root), "--datasets", "cub", "coco"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"cub\t{mini['cub']}", f"coco\t{mini['coco']}"]


def test_preflight_coco(tmp_path, mini):
    assert P.ROOT_KEYS["coco_root"] == "coco" and P.check_dataset("coco", mini["coco"]) is None
    (tmp_path / "val2017").mkdir()
    assert P.check_dataset("coco", tmp_path) == "missing annotations/instances_val2017.json"


# --------------------------------------------------------------------------------- corrupt files
def _copy(mini, name, tmp_path) -> Path:
    return Path(shutil.copytree(mini[name], tmp_path / name))


def _message(excinfo, name, fname):
    msg = str(excinfo.value)
    assert excinfo.type is DataError and msg.startswith(f"{name}:") and fname in msg, msg
    assert "again" in msg or "data/README.md" in msg     # the fix: extract it again / where to get it
    return msg


@pytest.mark.parametrize("name", ["imagenet_val", "imagenet_train", "voc", "cub", "coco", "chest_xray", "mit67"])
def test_truncated_jpeg_is_named(mini, tmp_path, name):
    root = _copy(mini, name, tmp_path)
    ds = F.dataset(name, root, size=SIZE)      # images are decoded lazily, by ds[i]
    i = 1
    victim = Path(ds.records[i]["path"])
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as e:
        ds[i]
    assert "truncated" in _message(e, name, victim.name)
    ds[(i + 1) % len(ds)]                                  # the other images still load


def _garbage(path, keep=0):
    data = path.read_bytes()
    path.write_bytes(data[:keep] + b"\x00\xff garbage \x89<<")


def test_malformed_xml_is_named(mini, tmp_path):
    voc = _copy(mini, "voc", tmp_path)
    x = next((voc / "VOCdevkit" / "VOC2012" / "Annotations").glob("*.xml"))
    _garbage(x, keep=40)
    with pytest.raises(DataError) as e:
        F.voc(voc, "trainval")
    assert "malformed XML" in _message(e, "voc", x.name)
    x.write_text("<html><object/></html>")                 # well-formed, but not an annotation
    with pytest.raises(DataError, match="expected <annotation>"):
        F.voc(voc, "trainval")
    im = _copy(mini, "imagenet_val", tmp_path)
    x = next((im / "bbox" / "val").glob("*.xml"))
    _garbage(x)
    with pytest.raises(DataError) as e:
        F.imagenet_val(im)
    _message(e, "imagenet_val", x.name)


@pytest.mark.parametrize("keep", [0, 300])               # garbage, and a truncated pickle
def test_bad_pickle_is_named(mini, tmp_path, keep):
    root = _copy(mini, "cifar100", tmp_path)
    f = root / "cifar-100-python" / "test"
    f.write_bytes(f.read_bytes()[:keep] if keep else b"\x00\xff not a pickle")
    with pytest.raises(DataError) as e:
        F.cifar100(root)
    assert "cannot unpickle" in _message(e, "cifar100", "test")
    assert len(F.cifar100(root, "train")) == C * K       # the other file is fine


@pytest.mark.parametrize("content", [b"\x00\xff garbage", b'{"images": [{"id": 1, "file_na', b"[]",
                                     b'{"images": [], "annotations": [{"id": 7, "bbox": "x"}], "categories": []}'])
def test_bad_coco_json_is_named(mini, tmp_path, content):
    root = _copy(mini, "coco", tmp_path)
    (root / "annotations" / "instances_val2017.json").write_bytes(content)
    with pytest.raises(DataError) as e:
        F.coco(root)
    assert "malformed" in _message(e, "coco", "instances_val2017.json")


def test_listed_but_missing_images_are_named(mini, tmp_path):
    voc = _copy(mini, "voc", tmp_path)
    base = voc / "VOCdevkit" / "VOC2012"
    stem = (base / "ImageSets" / "Main" / "val.txt").read_text().split()[1]
    (base / "JPEGImages" / f"{stem}.jpg").unlink()
    with pytest.raises(DataError) as e:
        F.voc(voc, "val")
    assert "val.txt line 2" in _message(e, "voc", f"JPEGImages/{stem}.jpg")
    cub = _copy(mini, "cub", tmp_path)
    rel = (cub / "CUB_200_2011" / "images.txt").read_text().split()[1]
    (cub / "CUB_200_2011" / "images" / rel).unlink()
    with pytest.raises(DataError) as e:
        F.cub(cub, "all")
    assert "images.txt" in _message(e, "cub", rel)
    coco = _copy(mini, "coco", tmp_path)
    victim = next(t for t in _truth(coco) if t["boxes"] and not all(t["crowd"]))["file"]
    (coco / victim).unlink()
    with pytest.raises(DataError) as e:
        F.coco(coco)
    _message(e, "coco", victim)
    mit = _copy(mini, "mit67", tmp_path)
    line = (mit / "TestImages.txt").read_text().splitlines()[0]
    (mit / "Images" / line).unlink()
    with pytest.raises(DataError) as e:
        F.mit67(mit, "test")
    assert "TestImages.txt line 1" in _message(e, "mit67", line)


def test_binary_garbage_in_a_list_file_is_named(mini, tmp_path):
    cub = _copy(mini, "cub", tmp_path)
    _garbage(cub / "CUB_200_2011" / "bounding_boxes.txt", keep=10)
    with pytest.raises(DataError) as e:
        F.cub(cub)
    _message(e, "cub", "bounding_boxes.txt")
    voc = _copy(mini, "voc", tmp_path)
    (voc / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main" / "val.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError) as e:
        F.voc(voc)
    _message(e, "voc", "val.txt")
