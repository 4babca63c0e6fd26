"""Model specs, weight tags and the zoo metadata the full profile's architectures need (torchvision ResNet,
ConvNeXt, VGG and ViT carry no timm feature_info)."""
import pytest
import torch

import xaikit as xk
from xaikit.errors import ConfigError, WeightsError
from xaikit.experiments.specs import ModelSpec, load_model
from xaikit.models.zoo import looks_like_path, timm_pretrained_name, torchvision_weights


@pytest.mark.parametrize("text, lib, arch, size, weights, dataset", [
    ("torchvision:resnet50@IMAGENET1K_V1", "torchvision", "resnet50", None, "IMAGENET1K_V1", "imagenet"),
    ("timm:deit_base_patch16_224@fb_in1k", "timm", "deit_base_patch16_224", None, "fb_in1k", "imagenet"),
    ("deit_tiny_synth:small@synthetic", None, "deit_tiny_synth", "small", "synthetic", "synthetic"),
    ("tf_efficientnet_lite0@bundled", None, "tf_efficientnet_lite0", None, "bundled", "photos"),
    ("resnet18@random", None, "resnet18", None, "random", None),
])
def test_spec_grammar(text, lib, arch, size, weights, dataset):
    s = ModelSpec.parse(text)
    assert (s.library, s.arch, s.size, s.weights, s.dataset) == (lib, arch, size, weights, dataset)
    assert s.name == (f"{lib}:{arch}" if lib else arch)


@pytest.mark.parametrize("bad, match", [("resnet50", "must look like"), ("a:b:c@x", "use '"),
                                        ("deit_tiny_synth:small@fb_in1k", "synthetic-only"), ("@x", "use '")])
def test_bad_specs_say_how_to_write_them(bad, match):
    with pytest.raises(ConfigError, match=match):
        ModelSpec.parse(bad)


def test_weight_tags_are_exact_and_checked():
    assert torchvision_weights("resnet50", "IMAGENET1K_V1").name == "IMAGENET1K_V1"
    with pytest.raises(WeightsError, match=r"IMAGENET1K_V1', 'IMAGENET1K_V2"):
        torchvision_weights("resnet50", "V3")
    assert timm_pretrained_name("deit_base_patch16_224", "fb_in1k") == "deit_base_patch16_224.fb_in1k"
    with pytest.raises(WeightsError, match="fb_in1k"):
        timm_pretrained_name("deit_base_patch16_224", "no_such_tag")
    assert looks_like_path("ckpt/model.pt") and looks_like_path("m.pth") and not looks_like_path("IMAGENET1K_V1")


def test_rehearsal_weights_keep_the_architecture_and_say_so():
    from xaikit.experiments.common import ModelParams

    cfg = ModelParams.create(random_weights=True, image_size=32, device="cpu")
    m = load_model("timm:deit_tiny_patch16_224@fb_in1k", cfg)
    assert m.xaikit.weights == "random (rehearsal of fb_in1k)" and m.xaikit.input_size == 32
    assert m.xaikit.grid_size == (2, 2) and m(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)
    assert m.xaikit.class_names and len(m.xaikit.class_names) == 1000
    ref = xk.models.load("deit_tiny_patch16_224", weights="random")
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in ref.parameters()) - 192 * (197 - 5)


def test_torchvision_models_have_stages_and_layers():
    r = xk.models.load("torchvision:resnet18", weights="random")
    assert r.xaikit.stages == ["relu", "layer1", "layer2", "layer3", "layer4"] and r.xaikit.default_layer == "layer4.1"
    c = xk.models.load("torchvision:convnext_tiny", weights="random")
    assert c.xaikit.stages == ["features.1", "features.3", "features.5", "features.7"]
    v = xk.models.load("torchvision:vit_b_16", weights="random")
    assert v.xaikit.default_layer == "encoder.layers.encoder_layer_11.ln_1"
    xk.models.get_layer(v, v.xaikit.default_layer)  # the name exists
    g = xk.models.load("torchvision:vgg11_bn", weights="random")
    assert g.xaikit.stages == ["features.3", "features.7", "features.14", "features.21", "features.28"]


def test_miniature_roots_resolve_and_are_reused(tmp_path):
    from xaikit.data.miniature import is_miniature, resolve_root

    assert resolve_root("/data/imagenet") == "/data/imagenet" and not is_miniature("/data/imagenet")
    p = resolve_root("miniature:cub", root=tmp_path)
    assert xk.data.cub(p, split="test", size=32)[0]["image"].shape == (3, 32, 32)
    before = {f: f.stat().st_mtime_ns for f in tmp_path.rglob("*") if f.is_file()}
    assert resolve_root("miniature:cub", root=tmp_path) == p
    assert before == {f: f.stat().st_mtime_ns for f in tmp_path.rglob("*") if f.is_file()}
    with pytest.raises(ConfigError, match="unknown miniature option"):
        resolve_root("miniature:cub?size=3", root=tmp_path)
