"""The errors a user meets first: each names the problem and the fix, and none is a deep torch traceback.

One place that walks the public API with the mistakes people really make (issue: bad-input suite).
"""
import pytest
import torch

import xaikit as xk
from xaikit.errors import ConfigError, DataError, InputError, LayerError, XaikitError


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return xk.models.load("resnet18", weights="random", num_classes=5)


def test_wrong_layer_name(small):
    with pytest.raises(LayerError, match="layer4") as e:
        xk.attributors.create("gradcam", small, layer="layer5")(torch.randn(1, 3, 32, 32))
    assert "list_layers" in str(e.value)


@pytest.mark.parametrize("x,fix", [
    (torch.randn(3, 32, 32), "batch"),                      # forgot the batch dimension
    (torch.randn(1, 1, 32, 32), "3 channels"),              # grayscale
    (torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8), "normalize"),  # raw uint8 image
    (torch.full((1, 3, 32, 32), float("nan")), "NaN"),
])
def test_bad_image_batches(small, x, fix):
    with pytest.raises(InputError, match=fix):
        xk.attributors.create("gradcam", small)(x)


def test_vit_wrong_image_size():
    vit = xk.models.load("deit_tiny_patch16_224", weights="random", num_classes=3)
    with pytest.raises(InputError, match="224"):
        xk.attributors.create("raw_attention", vit)(torch.randn(1, 3, 160, 160))


@pytest.mark.parametrize("target", [5, -1, torch.tensor([0, 9])])
def test_class_index_out_of_range(small, target):
    with pytest.raises(InputError, match="num_classes=5"):
        xk.attributors.create("gradcam", small)(torch.randn(2, 3, 32, 32), target)


def test_unknown_method_lists_available(small):
    with pytest.raises(ConfigError, match="gradcam"):
        xk.attributors.create("gradcma", small)


def test_constant_and_nan_saliency_maps(small):
    x = torch.randn(2, 3, 32, 32)
    const = torch.full((2, 32, 32), 0.5)
    r = xk.metrics.recognition(small, x, const, torch.tensor([0, 1]))
    assert all(torch.isfinite(torch.tensor(v)) for v in r.values())
    ins = xk.metrics.insertion(small, x, const, torch.tensor([0, 1]), steps=4)
    assert torch.isfinite(ins).all()
    with pytest.raises(InputError, match="NaN"):
        xk.metrics.recognition(small, x, torch.full((2, 32, 32), float("nan")), 0)
    with pytest.raises(InputError):
        xk.metrics.recognition(small, x, torch.rand(2, 16, 16) * 3, 0)  # wrong size and range


def test_missing_dataset_path_names_layout_and_readme(tmp_path):
    with pytest.raises(DataError) as e:
        xk.data.folders.imagenet_val(tmp_path / "nowhere")
    msg = str(e.value)
    assert "nowhere" in msg and "data/README.md" in msg


def test_corrupt_dataset_file(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    (root / "test").write_bytes(b"not a pickle")
    (root / "meta").write_bytes(b"not a pickle")
    with pytest.raises(DataError):
        xk.data.folders.cifar100(root)


def test_model_without_stages_for_ca_stream():
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2))
    with pytest.raises(XaikitError, match="stage"):
        xk.streams.CAStream.wrap(plain)


def test_full_profile_without_dataset_path_says_where_to_set_it():
    from xaikit.experiments import chapter2 as ch2

    cfg = ch2.Params.create(profile="full", imagenet_root="")
    with pytest.raises(ConfigError, match="imagenet_root"):
        xk.experiments.resolve_eval_set("torchvision:resnet50@IMAGENET1K_V1", cfg)


def test_cuda_requested_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        xk.core.resolve_device("cuda")


def test_float_pixel_values_are_refused(small):
    x = torch.rand(1, 3, 32, 32) * 255  # 0..255 floats were explained and scored as if normalized
    with pytest.raises(InputError, match=r"0\.\.255.*normalize\(x / 255\)"):
        xk.attributors.create("gradcam", small)(x)
    with pytest.raises(InputError, match="0..255"):
        xk.metrics.recognition(small, x, torch.rand(1, 32, 32), 0)
    xk.attributors.create("gradcam", small)(torch.rand(1, 3, 32, 32) * 2.5)  # normalized ranges pass


@pytest.mark.parametrize("kw,match", [
    (dict(num_classes=0), "num_classes=0"),        # silently built the default (10- or 1000-class) head
    (dict(num_classes=-3), "num_classes=-3"),      # negative dimension deep in torch
    (dict(num_classes=2.5), "num_classes=2.5"),
])
def test_models_load_checks_num_classes(kw, match):
    for name in ("resnet18_cifar", "torchvision:resnet18"):
        with pytest.raises(ConfigError, match=match):
            xk.models.load(name, weights="random", **kw)


def test_models_load_checks_name_and_device():
    with pytest.raises(ConfigError, match="model name"):
        xk.models.load(None, weights="random")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            xk.models.load("resnet18_cifar", weights="random", width=8, device="cuda")
