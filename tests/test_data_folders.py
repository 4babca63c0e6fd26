"""Real-dataset loaders on tiny fixture trees built in tmp_path; missing/malformed layouts give one DataError."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from xaikit.data import folders as F
from xaikit.data import collate
from xaikit.errors import ConfigError, DataError


def _img(path, w=40, h=30, value=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:] = value
    Image.fromarray(arr).save(path)
    return arr


def _voc_xml(path, w, h, objects):
    objs = "".join(
        f"<object><name>{n}</name><difficult>{int(d)}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b, d in objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objs}</annotation>")


# ----------------------------------------------------------------------------------- ImageNet
def test_imagenet_class_folders_with_xml_boxes(tmp_path):
    _img(tmp_path / "val" / "n01440764" / "ILSVRC2012_val_00000293.JPEG", 40, 20)   # tench = class 0
    _img(tmp_path / "val" / "n02123597" / "ILSVRC2012_val_00000001.JPEG", 40, 20)   # Siamese cat = 284
    _voc_xml(tmp_path / "bbox" / "val" / "ILSVRC2012_val_00000293.xml", 40, 20, [("n01440764", (4, 2, 23, 9), 0)])
    ds = F.imagenet_val(tmp_path, size=20, crop_pct=1.0)
    assert len(ds) == 2 and ds.num_classes == 1000
    items = {ds[i]["name"]: ds[i] for i in range(2)}
    a, b = items["ILSVRC2012_val_00000293.JPEG"], items["ILSVRC2012_val_00000001.JPEG"]
    assert a["label"] == 0 and b["label"] == 284 and "cat" in ds.class_names[284].lower()
    assert a["image"].shape == (3, 20, 20)
    # 0-based inclusive ILSVRC box (4,2)-(23,9) -> exclusive x1/y1 (24,10), scaled by (20/40, 20/20)
    assert torch.allclose(a["boxes"], torch.tensor([[2.0, 2.0, 12.0, 10.0]]))
    assert a["box_labels"].tolist() == [0] and b["boxes"].shape == (0, 4)


def test_imagenet_flat_folder_takes_labels_from_xml(tmp_path):
    _img(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG")
    _voc_xml(tmp_path / "bbox" / "val" / "ILSVRC2012_val_00000001.xml", 40, 30, [("n01443537", (0, 0, 9, 9), 0)])
    ds = F.imagenet_val(tmp_path, size=16, crop_pct=1.0)
    assert ds[0]["label"] == 1  # goldfish
    _img(tmp_path / "val" / "ILSVRC2012_val_00000002.JPEG")
    with pytest.raises(DataError, match="ILSVRC2012_val_00000002.xml"):
        F.imagenet_val(tmp_path)


def test_imagenet_train_class_folders_labels_and_round_robin_limit(tmp_path):
    for k in range(3):
        _img(tmp_path / "train" / "n01440764" / f"n01440764_{k}.JPEG", 40, 20, (10, 10, 10 + k))   # tench = 0
    _img(tmp_path / "train" / "n02123597" / "n02123597_7.JPEG", 30, 30)                          # Siamese cat = 284
    _img(tmp_path / "train" / "not_a_wnid" / "x.JPEG")                                            # ignored
    (tmp_path / "train" / "n01440764" / "notes.txt").write_text("not an image")
    ds = F.imagenet_train(tmp_path, size=16)
    assert len(ds) == 4 and ds.num_classes == 1000 and "cat" in ds.class_names[284].lower()
    assert [ds[i]["label"] for i in range(4)] == [0, 0, 0, 284]
    assert ds[0]["name"] == "n01440764/n01440764_0.JPEG" and ds[0]["image"].shape == (3, 16, 16)
    assert abs(ds[2]["image"][2].mean().item() - 12 / 255) < 1e-6     # the file's own pixels
    lim = F.imagenet_train(tmp_path / "train", size=16, limit=3)      # root may be train/ itself
    assert [r["name"] for r in lim.records] == ["n01440764/n01440764_0.JPEG", "n02123597/n02123597_7.JPEG",
                                                "n01440764/n01440764_1.JPEG"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="WordNet-id class folders"):
        F.imagenet_train(tmp_path / "empty")
    assert F.dataset("imagenet_train", tmp_path, size=8)[3]["label"] == 284


# ---------------------------------------------------------------------------------------- CUB
def _cub(root, bad_line=False):
    _img(root / "images" / "001.Black_footed_Albatross" / "a.jpg", 50, 40)
    _img(root / "images" / "002.Laysan_Albatross" / "b.jpg", 50, 40)
    (root / "images.txt").write_text("1 001.Black_footed_Albatross/a.jpg\n2 002.Laysan_Albatross/b.jpg\n")
    (root / "image_class_labels.txt").write_text("1 1\n2 2\n")
    (root / "train_test_split.txt").write_text("1 1\n2 0\n")
    (root / "bounding_boxes.txt").write_text("1 10.0 5.0 20.0 30.0\n" + ("2 1.0 2.0\n" if bad_line else "2 0.0 0.0 50.0 40.0\n"))
    (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")


def test_cub_splits_labels_and_boxes(tmp_path):
    _cub(tmp_path)
    tr, te, al = F.cub(tmp_path, "train", size=100, crop_pct=1.0), F.cub(tmp_path, "test", size=100, crop_pct=1.0), F.cub(tmp_path, "all", size=100, crop_pct=1.0)
    assert (len(tr), len(te), len(al)) == (1, 1, 2)
    it = tr[0]
    assert it["label"] == 0 and al[1]["label"] == 1 and tr.class_names[0] == "Black footed Albatross"
    # x, y, w, h = 10, 5, 20, 30 in a 50x40 image -> xyxy (10,5,30,35) scaled by (2, 2.5)
    assert torch.allclose(it["boxes"], torch.tensor([[20.0, 12.5, 60.0, 87.5]]))


def test_cub_malformed_line_names_file_and_line(tmp_path):
    _cub(tmp_path, bad_line=True)
    with pytest.raises(DataError, match=r"(?s)bounding_boxes.txt line 2.*data/README.md") as e:
        F.cub(tmp_path)
    assert "images.txt" in str(e.value)  # the expected layout is shown


# ---------------------------------------------------------------------------------------- VOC
def test_voc_multihot_labels_and_one_based_boxes(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    _img(root / "JPEGImages" / "2007_000027.jpg", 100, 50)
    _img(root / "JPEGImages" / "2007_000032.jpg", 100, 50)
    _voc_xml(root / "Annotations" / "2007_000027.xml", 100, 50,
             [("person", (1, 1, 50, 25), False), ("dog", (51, 26, 100, 50), True)])
    _voc_xml(root / "Annotations" / "2007_000032.xml", 100, 50, [("aeroplane", (11, 6, 20, 15), True)])
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "val.txt").write_text("2007_000027\n2007_000032\n")
    ds = F.voc(tmp_path, "val", size=50, crop_pct=1.0)  # root may be the folder holding VOCdevkit
    it = ds[0]
    assert it["label"].shape == (20,) and torch.nonzero(it["label"]).flatten().tolist() == [11, 14]
    assert it["box_labels"].tolist() == [14, 11]
    # 1-based inclusive (1,1)-(50,25) covers pixels 0..49 x 0..24 -> (0,0,50,25), x scaled by 0.5
    assert torch.allclose(it["boxes"][0], torch.tensor([0.0, 0.0, 25.0, 25.0]))
    b = collate([ds[0], ds[1]])
    assert b.labels.shape == (2, 20)
    easy = F.voc(root, "val", size=50, difficult=False, crop_pct=1.0)
    assert len(easy) == 1 and easy[0]["box_labels"].tolist() == [14]


def test_voc_missing_split_file_and_bad_xml(tmp_path):
    root = tmp_path / "VOC2012"
    _img(root / "JPEGImages" / "x.jpg")
    (root / "Annotations").mkdir(parents=True)
    with pytest.raises(DataError, match=r"missing ImageSets/Main/val.txt"):
        F.voc(root)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "val.txt").write_text("x\n")
    (root / "Annotations" / "x.xml").write_text("<annotation><object>")
    with pytest.raises(DataError, match="malformed XML x.xml"):
        F.voc(root)


# ----------------------------------------------------------------------------------- CIFAR-100
def _cifar(root, n=5, drop=None):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    d = {b"data": data, b"fine_labels": list(range(n)), b"coarse_labels": [0] * n,
         b"filenames": [f"img{i}.png".encode() for i in range(n)]}
    if drop:
        d.pop(drop)
    with open(root / "test", "wb") as f:
        pickle.dump(d, f)
    with open(root / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                     b"coarse_label_names": [f"s{i}".encode() for i in range(20)]}, f)
    return data


def test_cifar100_pickle_roundtrip(tmp_path):
    data = _cifar(tmp_path / "cifar-100-python")
    ds = F.cifar100(tmp_path, "test")
    assert len(ds) == 5 and ds.num_classes == 100 and ds.class_names[3] == "c3"
    it = ds[3]
    assert it["label"] == 3 and it["name"] == "img3.png"
    # channel-planar rows: R plane, then G, then B
    expect = torch.from_numpy(data[3].reshape(3, 32, 32).astype(np.float32) / 255)
    assert torch.allclose(it["image"], expect)
    assert F.cifar100(tmp_path, "test", coarse=True).num_classes == 20


def test_cifar100_malformed_pickle(tmp_path):
    _cifar(tmp_path, drop=b"fine_labels")
    with pytest.raises(DataError, match="no key 'fine_labels'"):
        F.cifar100(tmp_path)
    (tmp_path / "test").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="cannot unpickle test"):
        F.cifar100(tmp_path)


# --------------------------------------------------------------------------- class folders
def test_chest_xray_grey_images_become_rgb(tmp_path):
    for c in ("NORMAL", "PNEUMONIA"):
        p = tmp_path / "chest_xray" / "test" / c / f"{c.lower()}.jpeg"
        p.parent.mkdir(parents=True)
        Image.fromarray(np.full((30, 20), 128, np.uint8), mode="L").save(p)
    ds = F.chest_xray(tmp_path, "test", size=24)
    assert [ds[i]["label"] for i in range(2)] == [0, 1]
    assert ds[0]["image"].shape == (3, 24, 24)
    with pytest.raises(DataError, match="missing train"):
        F.chest_xray(tmp_path / "chest_xray", "train")


def test_kvasir_hash_split_is_a_partition(tmp_path):
    for c in F.KVASIR_CLASSES:
        for j in range(5):
            _img(tmp_path / c / f"{j}.jpg", 8, 8)
    al, tr, te = (F.kvasir(tmp_path, s, size=8) for s in ("all", "train", "test"))
    assert len(al) == 40 and len(tr) + len(te) == 40 and len(te) > 0
    assert not {r["name"] for r in tr.records} & {r["name"] for r in te.records}
    assert sorted({r["label"] for r in al.records}) == list(range(8))
    # a missing class folder is named
    import shutil

    shutil.rmtree(tmp_path / "polyps")
    with pytest.raises(DataError, match="missing class folder polyps"):
        F.kvasir(tmp_path)


def test_mit67_official_lists(tmp_path):
    _img(tmp_path / "Images" / "airport_inside" / "a1.jpg")
    _img(tmp_path / "Images" / "bakery" / "b1.jpg")
    (tmp_path / "TrainImages.txt").write_text("airport_inside/a1.jpg\n")
    (tmp_path / "TestImages.txt").write_text("bakery/b1.jpg\nairport_inside/a1.jpg\n")
    te = F.mit67(tmp_path, "test", size=16)
    assert [te[i]["label"] for i in range(2)] == [1, 0] and te.class_names == ["airport inside", "bakery"]
    (tmp_path / "TrainImages.txt").write_text("kitchen/k.jpg\n")
    with pytest.raises(DataError, match="TrainImages.txt line 1"):
        F.mit67(tmp_path, "train")


# ----------------------------------------------------------------------------- common errors
@pytest.mark.parametrize("name", sorted(F.LOADERS))
def test_missing_root_gives_one_clear_error(tmp_path, name):
    with pytest.raises(DataError) as e:
        F.dataset(name, tmp_path / "nope")
    msg = str(e.value)
    assert "does not exist" in msg and "data/README.md" in msg and "Expected layout" in msg and name in msg
    with pytest.raises(DataError):  # an empty folder is also refused with a DataError, never a torch/PIL error
        F.dataset(name, tmp_path)


def test_unreadable_image_is_a_data_error(tmp_path):
    p = tmp_path / "val" / "n01440764" / "x.JPEG"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"\xff\xd8 truncated")
    ds = F.imagenet_val(tmp_path)
    with pytest.raises(DataError, match="cannot read image"):
        ds[0]


def test_bad_split_and_unknown_dataset(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="split"):
        F.cub(tmp_path, split="validation")
    with pytest.raises(ConfigError, match="unknown dataset"):
        F.dataset("imagenet")
    monkeypatch.delenv("XAIKIT_DATA", raising=False)
    with pytest.raises(DataError, match="XAIKIT_DATA"):
        F.dataset("cub")
