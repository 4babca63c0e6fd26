"""Model zoo: bundled real weights, metadata, layer lookup and the errors users hit first."""
import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit.errors import LayerError, WeightsError


@pytest.fixture(scope="module")
def lite0():
    return xk.models.load("tf_efficientnet_lite0", weights="bundled")


@pytest.fixture(scope="module")
def photos():
    # the whole photos (crop_pct=1: the check DESIGN.md documents); moved: on the model's device
    return xk.data.load_batch(xk.data.samples(["chelsea", "coffee"], size=224, crop_pct=1.0)).to("cpu")


def test_bundled_weights_classify_real_photos(lite0, photos):
    with torch.no_grad():
        p = lite0(lite0.xaikit.normalize(photos.images)).softmax(-1)
    cat, espresso = p[0].argmax().item(), p[1].argmax().item()
    assert cat in range(281, 286), lite0.xaikit.class_name(cat)  # tabby/tiger/Persian/Siamese/Egyptian cat
    assert cat == 285 and p[0, 285] > 0.7     # Egyptian cat, as documented in DESIGN.md
    assert espresso == 967 and p[1, 967] > 0.8
    assert lite0.xaikit.class_name(967) == "espresso"


def test_metadata_of_bundled_model(lite0):
    inf = lite0.xaikit
    assert (inf.mean, inf.std, inf.input_size) == ((0.5,) * 3, (0.5,) * 3, 224)
    # the post-activation map (BatchNorm + ReLU6), not the bare conv_head: see models/zoo.py
    assert inf.default_layer == "bn2" and inf.feature_layer == "bn2" and inf.classifier == "classifier"
    assert inf.stages == ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"]
    for name in [inf.default_layer, inf.feature_layer, inf.classifier, *inf.stages]:
        assert isinstance(xk.models.get_layer(lite0, name), nn.Module)
    assert not lite0.training
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(inf.denormalize(inf.normalize(x)), x, atol=1e-6)


@pytest.mark.parametrize("name,layer", [
    ("resnet50", "layer4.2"),                # the last bottleneck's output (official Opti-CAM code: layer4[-1])
    ("torchvision:vgg16", "features.29"),    # torchvision VGG16: last conv of block 5, after its ReLU
    ("torchvision:vgg16_bn", "features.42"), # the official code's "target layer 42"
    ("vgg16", "features.29"),                # timm's VGG16 has the same features
    ("torchvision:resnet50", "layer4.2"),
])
def test_default_layers_cnn(name, layer):
    m = xk.models.load(name, weights="random")
    assert m.xaikit.default_layer == layer
    # post-activation: CAM methods combine non-negative maps
    cam = xk.attributors.create("gradcam", m)
    A = cam.features(torch.randn(1, 3, 64, 64), None)[0]
    assert float(A.min()) >= 0 and cam(torch.randn(1, 3, 64, 64)).shape == (1, 64, 64)


def test_vit_metadata_and_token_reshape():
    m = xk.models.load("deit_tiny_patch16_224", weights="random")
    inf = m.xaikit
    assert inf.is_vit and inf.default_layer == f"blocks.{len(m.blocks) - 1}.norm1"
    assert inf.grid_size == (14, 14) and inf.num_prefix_tokens == 1
    tokens = torch.arange(2 * 197 * 3, dtype=torch.float).view(2, 197, 3)
    grid = inf.reshape(tokens)
    assert grid.shape == (2, 3, 14, 14)
    # patch token 1 + 14*r + c sits at grid position (r, c), channel by channel
    assert torch.equal(grid[1, 2, 3, 5], tokens[1, 1 + 14 * 3 + 5, 2])


def test_wrong_layer_name_lists_close_names(lite0):
    with pytest.raises(LayerError) as e:
        xk.models.get_layer(lite0, "conv_haed")
    msg = str(e.value)
    assert "conv_haed" in msg and "conv_head" in msg and "list_layers" in msg


def test_unknown_model_and_bad_weights(tmp_path):
    with pytest.raises(WeightsError, match="unknown model"):
        xk.models.load("resnet5O", weights="random")
    with pytest.raises(WeightsError, match="only for 'tf_efficientnet_lite0'"):
        xk.models.load("resnet18", weights="bundled")
    with pytest.raises(WeightsError, match="neither"):
        xk.models.load("resnet18", weights=str(tmp_path / "missing.pt"))


def test_imagenet_weights_offline_say_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as e:
        xk.models.load("resnet18", weights="imagenet")
    assert "never downloads" in str(e.value) and "weights='random'" in str(e.value)
    with pytest.raises(WeightsError, match="torch/hub/checkpoints"):
        xk.models.load("torchvision:vgg16", weights="imagenet")


def test_checkpoint_roundtrip_and_mismatch(tmp_path):
    m = xk.models.load("resnet18", weights="random", num_classes=7)
    path = tmp_path / "r18.pt"
    torch.save({"model": m.state_dict()}, path)
    m2 = xk.models.load("resnet18", weights=path, num_classes=7)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))
    assert m2.xaikit.num_classes == 7 and m2.xaikit.weights.startswith("checkpoint:")
    with pytest.raises(WeightsError, match="does not fit"):
        xk.models.load("resnet18", weights=path, num_classes=10)
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="could not read"):
        xk.models.load("resnet18", weights=bad)


def test_samples_dataset():
    ds = xk.data.samples(size=96)
    assert len(ds) >= 10
    item = ds[0]
    assert item["image"].shape == (3, 96, 96) and 0 <= item["image"].min() and item["image"].max() <= 1
    labelled = xk.data.samples(labeled_only=True)
    assert {n for n in labelled.names} >= {"chelsea", "coffee"}
    with pytest.raises(xk.errors.DataError, match="available"):
        xk.data.samples(["no_such_photo"])


def test_load_stores_conv_models_channels_last_with_unchanged_outputs():
    import xaikit as xk

    cl = xk.models.load("resnet18_cifar", weights="random", channels_last=True)
    torch.manual_seed(0)
    plain = xk.models.load("resnet18_cifar", weights="random", channels_last=False)
    plain.load_state_dict(cl.state_dict())
    w = cl.conv1.weight if hasattr(cl, "conv1") else next(p for p in cl.parameters() if p.dim() == 4)
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    assert all(p.is_contiguous() for p in plain.parameters())
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(cl(x), plain(x), atol=1e-4)
    # the weights fingerprint (cache keys) does not depend on the memory layout
    from xaikit.experiments.study import fingerprint
    assert fingerprint(cl) == fingerprint(plain)


def test_auto_batch_is_a_pixel_budget():
    from xaikit.core import auto_batch

    assert auto_batch((224, 224)) == 2            # fp32: 2**17 / 224**2 = 2.6 -> power of two below
    assert auto_batch((128, 128)) == 8
    assert auto_batch((32, 32)) == 64             # 128, capped at 64 on CPU
    assert auto_batch((224, 224), precision="bf16") == 8   # bf16 activations take half the bytes: 2**19
    assert auto_batch((48, 48), precision="bf16") == 64    # 227 -> 128, capped
    assert auto_batch((224, 224), "cuda:0") == 64
    assert auto_batch((224, 224), "cuda:0", precision="bf16") == 64
    assert auto_batch((32, 32), "cuda:0") == 256
    assert auto_batch((4096, 4096)) == 1


def test_labelled_photos_carry_hand_annotated_boxes_grad_cam_points_into_all_but_one(lite0):
    from xaikit.data.samples import PHOTO_BOXES, PHOTOS

    names = [n for n, v in PHOTOS.items() if v[1] >= 0]
    assert sorted(PHOTO_BOXES) == sorted(names)  # every labelled photo, and only those
    b = xk.data.load_batch(xk.data.samples(names, size=224))
    for boxes, labels, n in zip(b.boxes, b.box_labels, names):
        assert len(boxes) == len(PHOTO_BOXES[n]) and (labels == PHOTOS[n][1]).all()
        assert ((boxes >= 0) & (boxes <= 224)).all() and ((boxes[:, 2:] - boxes[:, :2]) > 10).all()
    # the coffee box after resize (shorter side 400 -> 256) and centre crop (x offset 80, y offset 16)
    assert torch.allclose(b.boxes[1], torch.tensor([[165 * 0.64 - 80, 0.0, 355 * 0.64 - 80, 285 * 0.64 - 16]]),
                          atol=0.01)
    sal = xk.attributors.create("gradcam", lite0)(lite0.xaikit.normalize(b.images), b.labels)
    hits = xk.metrics.pointing_game(sal, b.boxes, b.labels, box_labels=b.box_labels, tolerance=0, reduce=False)
    # every box holds Grad-CAM's maximum except the rocket's: for "missile" Lite0 looks at the launch towers,
    # outside the rocket's box -- what a pointing game on real photos is there to show
    assert dict(zip(names, hits.tolist())) == {n: 0.0 if n == "rocket" else 100.0 for n in names}
