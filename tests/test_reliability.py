"""Regression tests of a fault-injection audit: files that would run code when read, a native abort in
channels-last training, corrupt caches, path traversal from list files and profile names, a runner that
deleted the last complete report on a failed rerun, and a dry run that passed what a real run refuses.
Each test fails without its fix; the whole file runs in seconds (tiny models, tmp_path, no kernel)."""
import json
import os
import pickle
import pickletools
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit import preflight as P
from xaikit import profiles as PR
from xaikit import run as xr
from xaikit.data import folders as F
from xaikit.errors import ConfigError, DataError, WeightsError
from xaikit.reports import provenance as prov
from xaikit.reports.index import write_index
from xaikit.training import small as T

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------ helpers
class _Planted:
    """A pickled object that runs ``touch <marker>`` when unpickled without restriction."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _plant_torch(path, marker, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "payload": _Planted(marker), **extra}, path)
    return path


def _globals(path) -> set:
    """Every global a torch.save file names (protocol 2: GLOBAL opcodes of data.pkl)."""
    z = zipfile.ZipFile(path)
    data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    return {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


#: what a tensors-and-plain-values torch.save file names: tensor rebuilding and state_dict's OrderedDict
_TENSOR_GLOBALS = ("torch._utils ", "torch ")


def _only_tensor_globals(path) -> bool:
    return all(g.startswith(_TENSOR_GLOBALS) or g == "collections OrderedDict" for g in _globals(path))


class _Items(torch.utils.data.Dataset):
    def __init__(self, n=8, size=8, classes=2, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 3, size, size, generator=g)
        self.y = torch.arange(n) % classes

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"image": self.x[i], "label": int(self.y[i]), "boxes": torch.zeros(0, 4),
                "box_labels": torch.zeros(0, dtype=torch.long), "name": f"item/{i}"}


#: a small-model configuration that trains in about a second
TINY = dict(num_classes=2, size=16, n_train=16, n_test=8, epochs=1, batch_size=8, arch_kwargs={"width": 16}, seed=0)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ------------------------------------------------------------ 1. no code execution from files
def test_model_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = _plant_torch(tmp_path / "evil.pt", marker)
    with pytest.raises(WeightsError, match=r"(?s)evil\.pt.*other than tensors.*(re-save|delete)"):
        xk.models.load("resnet18_cifar", weights=path, num_classes=2, width=8)
    assert not marker.exists()


def test_small_model_cache_that_would_run_code_is_retrained_not_run(cache, tmp_path):
    marker = tmp_path / "ran"
    path = T.checkpoint_path(T.config("resnet18_cifar", **TINY))
    _plant_torch(path, marker)
    with pytest.warns(RuntimeWarning, match=str(path.name)):
        m = T.train("resnet18_cifar", **TINY)
    assert not marker.exists()
    assert m.train_record["checkpoint"] == path.name
    # what the cache now holds: tensors and plain values only, the config as a JSON string
    ck = torch.load(path, weights_only=True)
    assert ck["format"] == T.CHECKPOINT_FORMAT and json.loads(ck["config_json"])["arch"] == "resnet18_cifar"
    assert _only_tensor_globals(path)


def _stream(seed=0):
    from xaikit.streams import CAStream

    torch.manual_seed(seed)
    m = xk.models.load("resnet18_cifar", weights="random", num_classes=2, width=16, input_size=16)
    return CAStream.wrap(m, start_stage=3, seed=0)


def test_stream_checkpoint_that_would_run_code_is_refused(tmp_path):
    from xaikit.training import stream as ts

    marker = tmp_path / "ran"
    _plant_torch(tmp_path / "ck" / ts.CHECKPOINT, marker, history=[], epoch=1)
    with pytest.raises(DataError, match=r"(?s)last\.pt.*delete it"):
        ts.train(_stream(), _Items(size=16), epochs=1, batch_size=8, checkpoint_dir=tmp_path / "ck")
    with pytest.raises(DataError, match=r"last\.pt"):
        ts.load_checkpoint(_stream(), tmp_path / "ck")
    assert not marker.exists()


def test_stream_checkpoint_holds_plain_values_and_resumes(tmp_path):
    from xaikit.training import stream as ts

    kw = dict(batch_size=8, lr=0.05, seed=0, checkpoint_dir=tmp_path / "ck")
    ts.train(_stream(), _Items(size=16), epochs=1, **kw)
    path = tmp_path / "ck" / ts.CHECKPOINT
    assert _only_tensor_globals(path) and torch.load(path, weights_only=True)["format"] == ts.CHECKPOINT_FORMAT
    hist = ts.train(_stream(seed=1), _Items(size=16), epochs=2, **kw)
    assert [h["epoch"] for h in hist] == [1, 2]


def _tiny_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 2))


def test_interpretable_checkpoint_is_plain_and_a_planted_one_is_refused(tmp_path):
    from xaikit.training.interpretable import train_interpretable

    kw = dict(lam=0.5, error="mse", lr=0.05, milestones=(1,), batch_size=4, warmup_epochs=0, seed=0)
    ck = tmp_path / "run.pt"
    train_interpretable(_tiny_cnn(), _Items(), None, epochs=1, checkpoint=ck, **kw)
    assert _only_tensor_globals(ck)  # MultiStepLR's milestone Counter is stored as a plain dict
    assert isinstance(torch.load(ck, weights_only=True)["scheduler"]["milestones"], dict)
    h = train_interpretable(_tiny_cnn(seed=3), _Items(), None, epochs=2, checkpoint=ck, **kw)
    assert [r["lr"] for r in h["epochs"]] == pytest.approx([0.05, 0.01])  # resumed after the milestone
    marker = tmp_path / "ran"
    _plant_torch(tmp_path / "evil.pt", marker)
    with pytest.raises(DataError, match=r"(?s)evil\.pt.*delete it"):
        train_interpretable(_tiny_cnn(), _Items(), None, epochs=1, checkpoint=tmp_path / "evil.pt", **kw)
    assert not marker.exists()


def _cifar_root(tmp_path, test_bytes):
    root = tmp_path / "cifar-100-python"
    root.mkdir(parents=True)
    (root / "test").write_bytes(test_bytes)
    with open(root / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [b"c%d" % i for i in range(100)],
                     b"coarse_label_names": [b"s%d" % i for i in range(20)]}, f)
    return root


def test_cifar_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    _cifar_root(tmp_path, pickle.dumps({b"data": _Planted(marker)}, protocol=4))
    with pytest.raises(DataError, match=r"(?s)refused to unpickle test.*(posix|os)\.system"):
        F.cifar100(tmp_path, "test")
    assert not marker.exists()


def test_cifar_pickles_in_the_real_format_still_load(tmp_path):
    from xaikit.data import miniature as M

    # Python 2 cPickle protocol 2 (numpy.core.multiarray._reconstruct, bytes keys): the miniature's writer
    rows = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    d = {"data": rows, "fine_labels": [3, 7], "coarse_labels": [0, 1], "filenames": ["a.png", "b.png"],
         "batch_label": "testing batch 1 of 1"}
    _cifar_root(tmp_path, M._py2_pickle(d))
    ds = F.cifar100(tmp_path, "test")
    assert len(ds) == 2 and [r["label"] for r in ds.records] == [3, 7] and ds.records[1]["name"] == "b.png"
    assert np.array_equal(ds.images[1].transpose(2, 0, 1).reshape(3072), rows[1])
    # and a numpy-2 Python 3 pickle (numpy._core.multiarray._reconstruct)
    _cifar_root(tmp_path / "py3", pickle.dumps({b"data": rows, b"fine_labels": [1, 2]}, protocol=4))
    assert len(F.cifar100(tmp_path / "py3", "test")) == 2


# ------------------------------------------------------ 2. channels-last native abort (subprocess)
def test_narrow_resnets_train_a_step_without_aborting():
    # torch 2.14.1 corrupts the heap (abort: "double free or corruption") in the channels-last CPU backward
    # of a 1x1 stride-2 convolution over < 16 channels: ResNet widths 3..7 crashed within two steps (4 of 4
    # runs of this script with channels-last forced; ~2 s without)
    script = textwrap.dedent("""
        import os, warnings
        import torch
        torch.set_num_threads(2)
        from xaikit.training import small
        for w in range(3, 8):
            small.train("resnet18_cifar", arch_kwargs={"width": w}, size=16, n_train=14, n_test=2, batch_size=7,
                        epochs=1, cache=False)
        print("all widths trained")
    """)
    env = dict(os.environ, OMP_NUM_THREADS="2", OMP_WAIT_POLICY="PASSIVE", XAIKIT_QUIET="1")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env,
                       cwd=str(ROOT))
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "all widths trained" in r.stdout


def test_channels_last_rule():
    load = xk.models.load
    for w in (3, 7, 8, 15):
        assert not T.channels_last_safe(load("resnet18_cifar", weights="random", width=w), "cpu")
        assert T.channels_last_safe(load("resnet18_cifar", weights="random", width=w), "cuda")
    assert T.channels_last_safe(load("resnet18_cifar", weights="random", width=16), "cpu")  # the default
    assert T.channels_last_safe(load("mobilenetv2_cifar", weights="random", width_mult=0.5), "cpu")


# --------------------------------------------------------------------------- 3. corrupt caches
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_small_model_cache_is_named_and_retrained(cache, damage):
    m = T.train("resnet18_cifar", **TINY)
    path = T.checkpoint_path(T.config("resnet18_cifar", **TINY))
    good = path.read_bytes()
    path.write_bytes({"truncated": good[: len(good) // 2], "garbage": b"\x00garbage" * 50, "empty": b""}[damage])
    with pytest.warns(RuntimeWarning, match=rf"(?s){path.name}.*trained again"):
        m2 = T.train("resnet18_cifar", **TINY)
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)  # deterministic retraining
    torch.load(path, weights_only=True)  # a whole file again


def test_corrupt_stream_checkpoint_says_delete_it(tmp_path):
    from xaikit.training import stream as ts

    (tmp_path / ts.CHECKPOINT).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"(?s)could not read CA-Stream checkpoint .*last\.pt.*delete it"):
        ts.load_checkpoint(_stream(), tmp_path)


# ----------------------------------------------------------------------------- 4. path traversal
def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(path)


def test_cub_images_txt_cannot_leave_the_dataset(tmp_path):
    root = tmp_path / "CUB_200_2011"
    _img(root / "images" / "001.A" / "a.jpg")
    _img(tmp_path / "outside.jpg")  # exists: without the check the reader opens it
    for f, text in (("image_class_labels.txt", "1 1\n2 1\n"), ("train_test_split.txt", "1 0\n2 0\n"),
                    ("bounding_boxes.txt", "1 0 0 4 4\n2 0 0 4 4\n"), ("classes.txt", "1 001.A\n")):
        (root / f).write_text(text)
    for bad in ("../../outside.jpg", str(tmp_path / "outside.jpg")):
        (root / "images.txt").write_text(f"1 001.A/a.jpg\n2 {bad}\n")
        with pytest.raises(DataError, match=r"images\.txt line 2 .*outside the dataset folder"):
            F.cub(root)


def test_voc_list_cannot_leave_the_dataset(tmp_path):
    root = tmp_path / "VOC2012"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    _img(tmp_path / "secret.jpg")
    (tmp_path / "secret.xml").write_text("<annotation><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                                         "<xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>")
    for bad in ("../../secret", str(tmp_path / "secret")):
        (root / "ImageSets" / "Main" / "val.txt").write_text(f"{bad}\n")
        with pytest.raises(DataError, match=r"ImageSets/Main/val\.txt line 1 .*outside the dataset folder"):
            F.voc(root, "val")


def test_mit67_list_cannot_leave_the_dataset(tmp_path):
    root = tmp_path / "mit67"
    _img(root / "Images" / "bakery" / "b.jpg")
    _img(tmp_path / "secret.jpg")
    (root / "TrainImages.txt").write_text("bakery/b.jpg\n")
    (root / "TestImages.txt").write_text("bakery/b.jpg\nbakery/../../../secret.jpg\n")
    with pytest.raises(DataError, match=r"TestImages\.txt line 2 .*outside the dataset folder"):
        F.mit67(root, "test")
    assert len(F.mit67(root, "train")) == 1


def test_profile_name_cannot_leave_the_reports_root(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIKIT_REPORTS", str(tmp_path / "reports"))
    for bad in ("x/../../y", "..", "../y", "/tmp/y"):
        with pytest.raises(ConfigError, match="no '..'"):
            PR.load_profile(bad)
        with pytest.raises(ConfigError):
            prov.profile_root(bad, tmp_path / "reports")
        with pytest.raises(ConfigError):
            xk.reports.Reporter("01_x", {"profile": bad})
    assert xr.main(["--profile", "x/../../y", "--dry-run"]) == 2
    assert not (tmp_path / "y").exists() and not any(tmp_path.glob("**/_y"))
    assert prov.profile_root("rehearsal", tmp_path) == tmp_path / "_rehearsal"


# ------------------------------------------------------------------------------------ 5. runner
def _fake_notebook(folder, name="01_nb"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("profile = 'ci'\nfail = False\nvalue = 1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("rep = ...")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return folder / f"{name}.ipynb"


def _fake_execute(how):
    """papermill.execute_notebook stand-in, in-process: the notebook's Reporter writes a table, then the
    run passes, fails in cell 2, or is interrupted (``how(parameters)``)."""
    import pandas as pd
    import papermill as pm

    def execute(src, out, parameters=None, **kw):
        rep = xk.reports.Reporter(Path(src).stem, dict(parameters))
        rep.table(pd.DataFrame({"value": [parameters["value"]]}), "1.1", caption="value")
        nbformat.write(nbformat.read(src, as_version=4), out)
        outcome = how(parameters)
        if outcome == "fail":
            raise pm.PapermillExecutionError(1, 2, "x", "ZeroDivisionError", "division by zero", [])
        if outcome == "interrupt":
            raise KeyboardInterrupt

    return execute


def _profile(tmp_path, **params):
    p = tmp_path / "prof.yaml"
    p.write_text("01_nb: " + json.dumps(params) + "\n")
    return str(p)


def _value(folder) -> str:
    return (folder / "tables" / "table_1_1.csv").read_text()


def test_failed_rerun_keeps_the_complete_report_and_lists_both(tmp_path, monkeypatch):
    import papermill as pm

    nbs = tmp_path / "nbs"
    _fake_notebook(nbs)
    reports = tmp_path / "reports"
    monkeypatch.setattr(pm, "execute_notebook", _fake_execute(lambda p: "fail" if p.get("fail") else "pass"))
    logs = []
    assert xr.run(_profile(tmp_path, value=11), notebooks=nbs, reports=reports, log=logs.append) == 0
    root = reports / "_prof"
    done = root / "01_nb"
    assert "11" in _value(done) and prov.read_json(done / "provenance.json")["run"]["status"] == "passed"
    # a failing rerun: the complete report stays whole, the partial output is kept apart and stamped
    assert xr.run(_profile(tmp_path, value=22, fail=True), notebooks=nbs, reports=reports, log=logs.append) == 1
    assert "11" in _value(done) and prov.read_json(done / "provenance.json")["run"]["status"] == "passed"
    failed = root / "01_nb.failed"
    run = prov.read_json(failed / "provenance.json")["run"]
    assert run["status"] == "failed" and run["partial"] is True and run["complete_report"] == "01_nb"
    assert "22" in _value(failed) and (failed / "01_nb.ipynb").exists()
    md = (root / "index.md").read_text()
    assert "| [01_nb](#01_nb) | passed |" in md and "| [01_nb.failed](#01_nb.failed) | failed |" in md
    assert "the last complete report is 01_nb" in md and "run interactively" not in md
    assert not list(root.glob(".*"))  # no temporary folder left
    # an interrupted rerun likewise
    monkeypatch.setattr(pm, "execute_notebook", _fake_execute(lambda p: "interrupt"))
    assert xr.run(_profile(tmp_path, value=33), notebooks=nbs, reports=reports, log=logs.append) == 130
    assert "11" in _value(done)
    assert prov.read_json(root / "01_nb.failed" / "provenance.json")["run"]["status"] == "interrupted"
    # a passing rerun replaces the report and drops the stale partial output
    monkeypatch.setattr(pm, "execute_notebook", _fake_execute(lambda p: "pass"))
    assert xr.run(_profile(tmp_path, value=44), notebooks=nbs, reports=reports, log=logs.append) == 0
    assert "44" in _value(done) and not (root / "01_nb.failed").exists()
    assert "01_nb.failed" not in (root / "index.md").read_text()


def test_first_run_failing_is_listed_failed_in_its_own_folder(tmp_path, monkeypatch):
    import papermill as pm

    nbs = tmp_path / "nbs"
    _fake_notebook(nbs)
    monkeypatch.setattr(pm, "execute_notebook", _fake_execute(lambda p: "fail"))
    assert xr.run(_profile(tmp_path, value=5), notebooks=nbs, reports=tmp_path / "r", log=lambda s: None) == 1
    rec = prov.read_json(tmp_path / "r" / "_prof" / "01_nb" / "provenance.json")
    assert rec["run"]["status"] == "failed" and rec["run"]["partial"] is True
    assert "| [01_nb](#01_nb) | failed |" in (tmp_path / "r" / "_prof" / "index.md").read_text()


def test_killed_runner_leaves_no_unknown_entry_and_the_next_run_cleans_up(tmp_path):
    nbs = tmp_path / "nbs"
    _fake_notebook(nbs)
    reports = tmp_path / "reports"
    root = reports / "_prof"
    done = root / "01_nb"
    # a complete report from an earlier run
    prov.write_json(done / "provenance.json", {"notebook": "01_nb", "profile": "prof",
                                               "run": {"status": "passed", "wall_s": 1.0}})
    # a runner killed (SIGKILL, no cleanup) while its notebook was writing artefacts
    script = textwrap.dedent(f"""
        import os, signal
        import pandas as pd
        import papermill as pm
        import xaikit as xk
        from xaikit import run as xr

        def execute(src, out, parameters=None, **kw):
            rep = xk.reports.Reporter("01_nb", dict(parameters))
            rep.table(pd.DataFrame({{"v": [1]}}), "1.1")
            os.kill(os.getpid(), signal.SIGKILL)

        pm.execute_notebook = execute
        xr.run({_profile(tmp_path, value=1)!r}, notebooks={str(nbs)!r}, reports={str(reports)!r})
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert r.returncode != 0
    write_index(root)
    md = (root / "index.md").read_text()
    assert "run interactively" not in md and "| [01_nb](#01_nb) | passed |" in md
    assert prov.read_json(done / "provenance.json")["run"]["status"] == "passed"
    assert list(root.glob(".01_nb.running-*"))  # the dead runner's hidden folder, not listed
    # the next run removes it; a swap cut between its renames is undone
    old = root / ".01_nb.old-999999999-deadbeef"
    os.rename(done, old)
    xr._clean_stale(done)
    assert not list(root.glob(".01_nb.*")) and prov.read_json(done / "provenance.json")["run"]["status"] == "passed"


# ---------------------------------------------------------------------------- 6. preflight
@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(old)


def _touch(p):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")


def test_accuracy_models_need_their_table_1_1_weights(empty_caches):
    archs = PR.declared_parameters(ROOT / "notebooks" / "01_background.ipynb")["table11_archs"]
    prof = {"01_background": {"accuracy_models": ["resnet50", "alexnet"], "device": "cpu"}}
    rep = P.check(prof, cuda_available=False, declared={"01_background": {"table11_archs": archs}})
    lines = [p.line() for p in rep.problems]
    assert len(lines) == 3, lines  # resnet50: IMAGENET1K_V1 and _V2 (two published rows); alexnet: V1
    assert all(l.startswith("PROBLEM 01_background.accuracy_models = ") and "Fix:" in l for l in lines)
    assert any("torchvision:resnet50@IMAGENET1K_V2" in l and "resnet50-11ad3fa6.pth" in l for l in lines)
    assert any("torchvision:alexnet@IMAGENET1K_V1" in l for l in lines)
    for f in ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth", "alexnet-owt-7be5be79.pth"):
        _touch(empty_caches / f)
    assert P.check(prof, cuda_available=False, declared={"01_background": {"table11_archs": archs}}).ok
    bad = P.check({"01_background": {"accuracy_models": ["lenet"]}}, cuda_available=False)
    assert "not a row of Table 1.1" in bad.problems[0].line()


def test_specs_with_weight_tags_need_that_file(empty_caches):
    prof = {"02_x": {"cnn_models": ["torchvision:resnet50@IMAGENET1K_V1", "resnet18_cifar@synthetic"],
                     "vit_models": ["timm:deit_tiny_patch16_224@fb_in1k"], "time_model": "torchvision:vgg16@NOPE"}}
    rep = P.check(prof, cuda_available=False)
    lines = {p.key: p.line() for p in rep.problems}
    assert set(lines) == {"cnn_models", "vit_models", "time_model"}, lines
    assert "resnet50-0676ba61.pth" in lines["cnn_models"] and "weights='IMAGENET1K_V1'" in lines["cnn_models"]
    assert "deit_tiny_patch16_224.fb_in1k" in lines["vit_models"] and "Fix:" in lines["vit_models"]
    assert "unknown model or weights" in lines["time_model"] and "IMAGENET1K_V1" in lines["time_model"]
    _touch(empty_caches / "resnet50-0676ba61.pth")
    assert "cnn_models" not in {p.key for p in P.check(prof, cuda_available=False).problems}
    # random weights (the rehearsal): no weight file is read, none is checked
    assert P.check({"02_x": {**prof["02_x"], "random_weights": True}}, cuda_available=False).ok


def test_profile_values_of_the_wrong_type_are_problems(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("profile = 'ci'\nn_rows = 3\nlr = 0.1\nlayer = None\nmethods = ['a']\n"
                                     "options = {}\nflag = False\nname = 'x'")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbs.mkdir()
    nbformat.write(nb, str(nbs / "01_x.ipynb"))
    good = {"01_x": {"n_rows": 4, "lr": 1, "layer": ["anything"], "methods": ["b"], "options": {"a": 1},
                     "flag": True, "name": "y"}}
    assert PR.check_profile("p", good, [nbs / "01_x.ipynb"]) == []
    bad = {"01_x": {"n_rows": "three", "lr": "fast", "methods": "a", "options": [1], "flag": 1, "name": 3}}
    lines = PR.check_profile("p", bad, [nbs / "01_x.ipynb"])
    assert len(lines) == 6, lines
    assert "01_x.n_rows = 'three' is a str, but 01_x.ipynb declares n_rows = 3: expected int" in lines[0]
    assert any("01_x.flag = 1" in l and "expected bool" in l for l in lines)
    assert any("01_x.methods = 'a'" in l and "expected list" in l for l in lines)
    prof = tmp_path / "p.yaml"
    prof.write_text("01_x: {n_rows: three}\n")
    assert xr.main(["--profile", str(prof), "--notebooks-dir", str(nbs), "--dry-run"]) == 1
    assert "01_x.n_rows = 'three' is a str" in capsys.readouterr().out


def test_full_dry_run_lists_missing_weights_and_rehearsal_passes(empty_caches, capsys):
    assert xr.main(["--profile", "full", "--dry-run"]) == 1
    out = capsys.readouterr().out
    problems = [l for l in out.splitlines() if l.startswith("PROBLEM")]
    assert all("Fix:" in l for l in problems)
    assert any(l.startswith("PROBLEM 01_background.accuracy_models = 'resnet50'") for l in problems)
    assert any(l.startswith("PROBLEM 02_opti_cam.cnn_models = 'torchvision:resnet50@IMAGENET1K_V1'") for l in problems)
    assert any(l.startswith("PROBLEM 05_vit_reciprocam.models = 'timm:deit_base_patch16_224@fb_in1k'") for l in problems)
    assert xr.main(["--profile", "rehearsal", "--dry-run"]) == 0, capsys.readouterr().out


def test_fault_audit_finds_no_silent_wrong_result_and_no_raw_exception():
    """benchmarks/faults.py replays every case of the reliability audit (issue 21: 92 bad inputs and faults)
    and exits non-zero on any silent wrong result, code execution, data loss, hang, native abort, or more
    than 5 raw exceptions."""
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "faults.py")], cwd=root, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "| raw exception | 0 |" in r.stdout and "| silent wrong result | 0 |" in r.stdout
