"""Preflight (issue 9): dataset layouts on tmp fixture trees, cached weights without network, CUDA,
the rough time estimate by hand, and `python -m xaikit.run --dry-run` exiting non-zero with one
line per problem."""
import os

import nbformat
import pytest
import torch

from xaikit import preflight as P
from xaikit import run as xr


def _touch(p, text="x"):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_dataset_layouts_good_and_bad(tmp_path):
    im = tmp_path / "imnet"
    _touch(im / "val" / "n01440764" / "a.JPEG")
    assert P.check_dataset("imagenet_val", im) is None
    assert P.check_dataset("imagenet_val", im / "val") is None        # the val folder itself
    _touch(tmp_path / "tr" / "train" / "n01440764" / "a.JPEG")
    assert P.check_dataset("imagenet_train", tmp_path / "tr") is None
    assert "WordNet-id" in P.check_dataset("imagenet_train", im)       # val tree is not a train tree
    flat = tmp_path / "flat" / "val"
    _touch(flat / "ILSVRC2012_val_00000001.JPEG")
    assert "bbox" in P.check_dataset("imagenet_val", tmp_path / "flat")
    _touch(tmp_path / "flat" / "bbox" / "val" / "ILSVRC2012_val_00000001.xml")
    assert P.check_dataset("imagenet_val", tmp_path / "flat") is None
    cub = tmp_path / "c" / "CUB_200_2011"
    for f in ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt", "classes.txt"):
        _touch(cub / f)
    assert P.check_dataset("cub", tmp_path / "c") == "missing images"
    (cub / "images").mkdir()
    assert P.check_dataset("cub", tmp_path / "c") is None and P.check_dataset("cub", cub) is None
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    _touch(voc / "ImageSets" / "Main" / "train.txt")
    assert P.check_dataset("voc", tmp_path) == "missing ImageSets/Main/val.txt"
    _touch(voc / "ImageSets" / "Main" / "val.txt")
    assert P.check_dataset("voc", tmp_path) is None
    cif = tmp_path / "cifar-100-python"
    _touch(cif / "train"), _touch(cif / "meta")
    assert P.check_dataset("cifar100", tmp_path) == "missing test"
    assert P.check_dataset("mit67", tmp_path / "nope") == "folder does not exist"
    assert P.check_dataset("cub", "") == "folder does not exist"


def test_weights_cache_is_read_never_downloaded(tmp_path, monkeypatch):
    import torchvision

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        found, where = P.weights_cached("torchvision:alexnet")
        url = torchvision.models.get_model_weights("alexnet").DEFAULT.url
        assert not found and where == str(tmp_path / "hub" / "checkpoints" / os.path.basename(url))
        _touch(tmp_path / "hub" / "checkpoints" / os.path.basename(url))
        assert P.weights_cached("torchvision:alexnet") == (True, where)
    finally:
        torch.hub.set_dir(old)
    assert P.weights_cached("torchvision:no_such_net")[0] is False
    assert P._specs({"a": ["resnet50@imagenet", "x@bundled"], "b": "timm:vit_t@imagenet", "c": 3}) == \
        ["resnet50", "timm:vit_t"]


def test_estimate_by_hand():
    sec = {"images": 10, "methods": ["gradcam", "scorecam"], "models": ["a@imagenet", "b@imagenet"],
           "insertion_steps": 5}
    per_image = P.SECONDS_PER_IMAGE["gradcam"] + P.SECONDS_PER_IMAGE["scorecam"] + 2 * 5 * P.FORWARD_SECONDS * 2
    assert P.estimate(sec) == pytest.approx(10 * per_image * 2)
    assert P.estimate({"epochs": 2, "train_images": 100}) == pytest.approx(2 * 100 * 3 * P.FORWARD_SECONDS)


def test_check_reports_one_line_per_problem(tmp_path):
    good = tmp_path / "cifar"
    for f in ("train", "test", "meta"):
        _touch(good / f)
    prof = {"_defaults": {"device": "cuda"},
            "04_x": {"cifar_root": str(good), "images": 4, "methods": ["gradcam"]},
            "03_y": {"voc_root": str(tmp_path / "missing"), "other_root": str(tmp_path / "gone"), "cub_root": ""},
            "05_z": {}}
    rep = P.check(prof, cuda_available=False)
    lines = [p.line() for p in rep.problems]
    assert not rep.ok and len(lines) == 4, lines
    assert any(l.startswith("PROBLEM 03_y.voc_root = ") and "data/README.md, section `voc`" in l for l in lines)
    assert any(l.startswith("PROBLEM 03_y.other_root") for l in lines)
    assert sum(".device = 'cuda': CUDA is not available" in l for l in lines) == 2   # from _defaults, per section
    assert "cifar_root" not in " ".join(lines) and "cub_root" not in " ".join(lines)  # good / unused
    assert set(rep.estimate_s) == {"04_x", "03_y"} and rep.estimate_s["04_x"] == pytest.approx(4 * 0.003)
    assert P.check({"04_x": {"cifar_root": str(good), "device": "cuda"}}, cuda_available=True).ok


def _notebook(folder, name, params):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / f"{name}.ipynb"))


def test_dry_run_exits_nonzero_naming_key_path_and_fix(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    _notebook(nbs, "04_x", {"profile": "ci", "cifar_root": "", "device": "cpu"})
    prof = tmp_path / "fake.yaml"
    prof.write_text(f"04_x: {{cifar_root: {tmp_path / 'nowhere'}, device: cpu}}\n")
    assert xr.main(["--profile", str(prof), "--notebooks-dir", str(nbs), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert f"PROBLEM 04_x.cifar_root = '{tmp_path / 'nowhere'}': cifar100: folder does not exist. " \
           "Fix: download and arrange it as in data/README.md, section `cifar100`" in out
    assert "estimate 04_x" in out and "dry run: 1 problem(s)" in out
    for f in ("train", "test", "meta"):
        _touch(tmp_path / "nowhere" / f)
    assert xr.main(["--profile", str(prof), "--notebooks-dir", str(nbs), "--dry-run"]) == 0
    assert "dry run: profile OK" in capsys.readouterr().out
