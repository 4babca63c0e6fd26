"""The device rule and its strict guard (xaikit.core.devices).

CI has no GPU, so the guard stands in for one: in strict mode data from the readers is marked until it is
moved, and a marked tensor that reaches a model fails as a CPU tensor fed to a CUDA model would. The
chapter test at the end runs the five call sites that crashed on an H200 at commit b32ed04 (issue 17);
with the experiments code of that commit it fails with DeviceError.
"""
import pytest
import torch
import torch.nn.functional as F

import xaikit as xk
from xaikit.core import devices as D
from xaikit.core.targets import logits_of, predict, resolve_targets
from xaikit.data.base import load_batch
from xaikit.data.synthetic import synthetic
from xaikit.errors import ConfigError, DeviceError
from xaikit.experiments.common import EvalSet

from _tiny import tiny_gap


@pytest.fixture
def strict():
    D.set_strict(True)
    yield
    D.set_strict(None)


def _batch(n=4, size=16, classes=5):
    return load_batch(synthetic(n=n, num_classes=classes, size=size, seed=3))


# ------------------------------------------------------------------------------------ the guard
def test_reader_data_is_marked_until_moved(strict):
    b = _batch()
    assert D.is_host(b.images) and D.is_host(b.labels) and all(D.is_host(x) for x in b.boxes)
    x = b.images * 2 - 1                      # arithmetic, slicing, stacking and .cpu() keep the mark
    assert D.is_host(x) and D.is_host(x[:2]) and D.is_host(torch.stack([x[0], x[1]])) and D.is_host(x.cpu())
    assert D.is_host(x.to(torch.float64))     # a dtype change is not a move
    for moved in (x.to("cpu"), x.to(device="cpu"), x.to(torch.zeros(1)), D.to_device(x, "cpu"), b.to("cpu").images):
        assert type(moved) is torch.Tensor
    assert torch.equal(D.plain(x), x.to("cpu"))


def test_unmoved_data_entering_a_model_fails_as_on_a_gpu(strict):
    model = tiny_gap()
    x = _batch().images
    with pytest.raises(DeviceError, match="TinyGAP.forward.*without being moved"):
        model(x)
    with pytest.raises(DeviceError, match="conv2d.*model parameter"):
        F.conv2d(x, model.features[0].weight)  # a functional call that meets the weights
    assert model(x.to("cpu")).shape == (4, 5)  # once moved, everything runs
    assert torch.relu(x).shape == x.shape      # parameter-free work on the host is fine, as on a GPU machine


def test_outside_strict_mode_nothing_is_marked():
    D.set_strict(False)
    try:
        b = _batch()
        assert type(b.images) is torch.Tensor
        assert tiny_gap()(b.images).shape == (4, 5)
    finally:
        D.set_strict(None)


def test_formatting_a_marked_scalar_works_as_for_a_plain_one(strict):
    p = D.host(torch.tensor([0.125, 0.5]))
    assert f"{p[0]:.2f}" == "0.12" and f"{p[1]:.1%}" == "50.0%"


# ------------------------------------------------------------------------- entry points take any device
def test_library_entry_points_move_inputs_and_return_on_the_input_device(strict):
    model = tiny_gap()
    b = _batch()
    x = b.images  # marked host data, never moved by the caller
    t = torch.tensor([0, 1, 2, 3])
    for name in ("gradcam", "scorecam", "rise", "saliency", "opticam"):
        kw = {"n_masks": 16} if name == "rise" else {"max_iter": 2} if name == "opticam" else {}
        sal = xk.attributors.create(name, model, **kw)(x, t)
        assert sal.shape == (4, 16, 16) and sal.device == x.device
    sal = xk.attributors.create("gradcam", model)(x, t)
    assert set(xk.metrics.recognition(model, x, sal, t)) >= {"AD", "AG", "AI"}
    assert xk.metrics.insertion(model, x, sal, t, steps=4).shape == (4,)
    assert xk.metrics.deletion(model, x, sal, t, steps=4).shape == (4,)
    assert xk.metrics.aopc(model, x, sal, t, patch_size=4, regions=2).shape == (4,)
    cam = xk.attributors.create("gradcam", model)
    assert xk.metrics.adcc(model, cam, x, t)["ADCC"] >= 0
    assert xk.metrics.max_sensitivity(cam, x, None, n=2, model=model).shape == (4,)
    assert logits_of(model, x).shape == (4, 5) and predict(model, x).shape == (4,)
    labels = torch.tensor([1, -1, 2, -1])
    got = resolve_targets(model, x, labels, "label")
    pred = predict(model, x)
    assert got.tolist() == [1, int(pred[1]), 2, int(pred[3])]


def test_cuda_without_cuda_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available.*device='cpu'"):
        D.resolve_device("cuda")
    with pytest.raises(ConfigError, match="not a device"):
        D.resolve_device("gpu0")
    assert D.resolve_device("auto").type == "cpu" and D.resolve_device(None).type == "cpu"
    from xaikit import run as R

    with pytest.raises(ConfigError, match="CUDA is not available"):
        R.run("ci", ["01"], device="cuda", log=lambda *a: None)
    assert R.main(["--profile", "ci", "--notebooks", "01", "--device", "cuda"]) == 2


def test_runner_injects_the_device_override():
    from xaikit import run as R

    assert R.parameters_for("02_opti_cam", "ci", {}, ["profile", "device"], device="cuda")["device"] == "cuda"
    assert "device" not in R.parameters_for("02_opti_cam", "ci", {}, ["profile"], device="cuda")
    assert R.parameters_for("02_opti_cam", "full", {"02_opti_cam": {"device": "cuda"}}, ["device"],
                            device="cpu")["device"] == "cpu"  # the command line wins over the profile


# ------------------------------------------------------------------ the chapters that crashed on a GPU
@pytest.mark.slow
def test_chapters_move_their_data_to_the_model(strict, tmp_path):
    """The call sites that failed on CUDA at b32ed04 (02 maps_for, 03 complexity_table, 04 gradients,
    05 time_table, 06 groups/time tables), on tiny models in strict mode."""
    from xaikit.experiments import chapter2 as ch2
    from xaikit.experiments import chapter3 as ch3
    from xaikit.experiments import chapter4 as ch4
    from xaikit.experiments import chapter5 as ch5
    from xaikit.experiments import chapter6 as ch6

    torch.manual_seed(0)
    cnn = xk.models.load("resnet18_cifar", weights="random", num_classes=4, input_size=32, width=8)
    data = load_batch(synthetic(n=3, num_classes=4, size=32, seed=1))
    es = EvalSet("resnet18_cifar@test", cnn.eval(), data, "synthetic")
    kw = dict(device="cpu", batch_size=4, synthetic_size=32, synthetic_classes=4)
    s2 = xk.experiments.Study("02_test", ch2.Params.create(insertion_steps=4, **kw), root=tmp_path)
    imgs, maps, t = s2.maps(es, ch2.rows(s2.cfg, ["gradcam"]), 2)
    assert maps["gradcam"].shape == (2, 32, 32) and t.shape == (2,)
    g, gg = ch4.gradients(cnn, data.images, data.labels)
    assert g.shape == gg.shape == (3, 3, 32, 32)
    s6 = xk.experiments.Study("06_test", ch6.Params.create(time_images=1, **kw), root=tmp_path)
    assert len(ch6.time_table(s6, es, ["gradcam"])) == 1
    assert ch6.layer_channels(cnn, data.images) == 8 * 8  # ResNet-18 (CIFAR) of width 8: layer4 has 8 * 8 channels
    s3 = xk.experiments.Study("03_test", ch3.Params.create(**kw), root=tmp_path)
    t3 = ch3.complexity_table(s3, [], lite_spec="tf_efficientnet_lite0@bundled")
    assert len(t3) == 3 and t3["top1 reproduced"].notna().all()
    vit = xk.models.load("deit_tiny_synth", weights="random", num_classes=4, input_size=32)
    ves = EvalSet("deit_tiny_synth@test", vit.eval(), data, "synthetic")
    s5 = xk.experiments.Study("05_test", ch5.Params.create(time_images=1, time_repeats=1, **kw), root=tmp_path)
    assert len(ch5.time_table(s5, ves, ["ViT-ReciproCAM"])) == 1
