"""The full profile is the papers' protocol: exact weights, the papers' preprocessing, the thesis' models
(issue 20). Checked without any download: every architecture is built with random weights."""
import pytest
import torch

import xaikit as xk
from xaikit.data.base import TEN_CROP_VIEWS, preprocess_array, resize_crop_item, ten_crop_array
from xaikit.experiments.specs import ModelSpec
from xaikit.profiles import load_profile

#: the papers' choices: the architecture each full-profile spec must build and the weights it must name
PAPERS = {
    "torchvision:resnet50@IMAGENET1K_V1": ("ResNet", 25.557032, "thesis ch. 2, 3 (pytorch model zoo, torchvision 0.8)"),
    "torchvision:vgg16_bn@IMAGENET1K_V1": ("VGG", 138.365992, "thesis ch. 2: VGG16 with batch normalization"),
    "torchvision:resnet18@IMAGENET1K_V1": ("ResNet", 11.689512, "thesis ch. 3"),
    "torchvision:convnext_small@IMAGENET1K_V1": ("ConvNeXt", 50.223688, "thesis ch. 3"),
    "torchvision:convnext_base@IMAGENET1K_V1": ("ConvNeXt", 88.591464, "thesis ch. 3"),
    "torchvision:vgg19@IMAGENET1K_V1": ("VGG", 143.667240, "Group-CAM §4: torchvision VGG19"),
    "timm:vit_base_patch16_224@augreg_in21k_ft_in1k": ("VisionTransformer", 86.567656, "thesis ch. 2: ViT-B from timm"),
    "timm:deit_base_patch16_224@fb_in1k": ("VisionTransformer", 86.567656, "thesis ch. 2, ViT-ReciproCAM"),
    "timm:deit_small_patch16_224@fb_in1k": ("VisionTransformer", 22.050664, "ViT-ReciproCAM"),
    "timm:deit_tiny_patch16_224@fb_in1k": ("VisionTransformer", 5.717416, "ViT-ReciproCAM"),
}


def _full_specs():
    _, full = load_profile("full")
    out = set()
    for sec in full.values():
        for k, v in sec.items():
            for s in (v if isinstance(v, list) else [v]):
                if isinstance(s, str) and "@" in s and k.endswith(("models", "model")):
                    out.add(s)
    return sorted(out)


def test_every_full_model_names_exact_weights():
    specs = _full_specs()
    assert specs, "no model spec found in profiles/full.yaml"
    for s in specs:
        spec = ModelSpec.parse(s)
        assert spec.weights not in ("imagenet",), f"{s}: a moving default; name the weights"
        assert s in PAPERS, f"{s} is not one of the papers' choices in this test's table"


@pytest.mark.parametrize("spec", sorted(PAPERS))
def test_full_model_specs_build_the_papers_architectures(spec):
    s = ModelSpec.parse(spec)
    with torch.device("meta"):
        m = xk.models.load(s.name, weights="random")
    arch, params_m, _ = PAPERS[spec]
    assert type(m).__name__ == arch
    assert sum(p.numel() for p in m.parameters()) / 1e6 == pytest.approx(params_m, abs=1e-6)
    # the tag exists for that architecture in the library that serves it
    if s.library == "torchvision":
        assert xk.models.zoo.torchvision_weights(s.arch, s.weights).name == s.weights
    else:
        assert xk.models.zoo.timm_pretrained_name(s.arch, s.weights) == f"{s.arch}.{s.weights}"


def test_a_300x500_image_is_center_cropped_not_squashed():
    img = torch.zeros(3, 300, 500)
    img[:, :, 200:300] = 1.0  # a bright vertical band in the middle of the wide image
    box = torch.tensor([[0.0, 0.0, 100.0, 300.0], [200.0, 50.0, 300.0, 250.0]])  # left strip, centre box
    out = resize_crop_item({"image": img, "boxes": box, "box_labels": torch.tensor([1, 2])}, 224, 0.875)
    assert out["image"].shape == (3, 224, 224)
    # 300x500 -> 256x426 (shorter side 256, torchvision truncates the long side) -> the centre 224x224
    col = out["image"][0].mean(0)
    assert col[:5].max() < 0.05 and col[-5:].max() < 0.05          # the sides of the crop are dark ...
    band = (col > 0.5).nonzero().flatten()
    assert band.min() > 50 and band.max() < 175                     # ... the band stays narrow and central
    assert out["box_labels"].tolist() == [2]                        # the left strip falls outside the crop
    # the centre box scaled by 426/500 (x) and 256/300 (y), shifted by the crop's offset (101, 16)
    assert out["boxes"][0].tolist() == pytest.approx([200 * 426 / 500 - 101, 50 * 256 / 300 - 16,
                                                      300 * 426 / 500 - 101, 250 * 256 / 300 - 16], abs=1e-4)
    # the readers' PIL pipeline (torchvision Resize(256) + CenterCrop(224), as the official codes) agrees
    arr = (img.permute(1, 2, 0).numpy() * 255).astype("uint8")
    t, b, lab = preprocess_array(arr, 224, 0.875, box, torch.tensor([1, 2]))
    assert t.shape == (3, 224, 224) and lab.tolist() == [2] and torch.allclose(b, out["boxes"], atol=1e-4)
    assert (t[0].mean(0) - col).abs().max() < 0.05


def test_ten_crop_views_are_torchvisions_with_their_boxes():
    import torchvision.transforms.functional as TF
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    arr = (torch.rand(300, 500, 3, generator=g) * 255).to(torch.uint8).numpy()
    views = ten_crop_array(arr, 224, 0.875)
    # the images: torchvision's TenCrop(224) of Resize(256), in its order
    ref = TF.ten_crop(TF.resize(Image.fromarray(arr), 256, antialias=True), 224)
    assert len(views) == len(TEN_CROP_VIEWS) == 10
    for (t, _, _), r in zip(views, ref):
        assert torch.equal(t, TF.to_tensor(r))
    assert torch.equal(views[4][0], preprocess_array(arr, 224, 0.875)[0])  # the centre view is the usual crop
    # the boxes, by hand, on a 256x256 image (the resize keeps it): crops at x, y in {0, 32} and the centre (16, 16)
    sq = arr[:256, :256]
    box, lab = torch.tensor([[10.0, 20.0, 50.0, 60.0]]), torch.tensor([7])
    got = {v: b.tolist() for v, (_, b, _) in zip(TEN_CROP_VIEWS, ten_crop_array(sq, 224, 0.875, box, lab))}
    assert got["tl"] == [[10, 20, 50, 60]] and got["tr"] == [[0, 20, 18, 60]] and got["br"] == [[0, 0, 18, 28]]
    assert got["c"] == [[0, 4, 34, 44]]
    # mirrored: x -> 256 - x, so the box spans 206..246 before the crop
    assert got["m-tl"] == [[206, 20, 224, 60]] and got["m-tr"] == [[174, 20, 214, 60]] and got["m-c"] == [[190, 4, 224, 44]]
    # a box that no view of a corner keeps is dropped with its label
    far = ten_crop_array(sq, 224, 0.875, torch.tensor([[230.0, 230.0, 250.0, 250.0]]), torch.tensor([3]))
    assert far[0][1].shape == (0, 4) and far[0][2].numel() == 0 and far[3][2].tolist() == [3]
    with pytest.raises(xk.errors.InputError, match="crop_pct"):
        ten_crop_array(arr, 224, 1.0)


def test_bundled_photos_as_ten_crop_views():
    centre = xk.data.samples(labeled_only=True, size=64)
    views = xk.data.samples(labeled_only=True, size=64, views="ten_crop")
    assert len(views) == 10 * len(centre)
    items = [views[i] for i in range(len(views))]
    assert [it["name"] for it in items[:10]] == [f"{centre.names[0]}/{v}" for v in TEN_CROP_VIEWS]
    assert [it["label"] for it in items] == [c["label"] for c in (centre[i] for i in range(len(centre))) for _ in range(10)]
    assert torch.equal(items[4]["image"], centre[0]["image"])  # view "c" is the centre crop
    assert torch.equal(views[-1]["image"], items[-1]["image"]) and views[-1]["name"].endswith("/m-c")
    with pytest.raises(IndexError):
        views[len(views)]
    with pytest.raises(xk.errors.DataError, match="ten_crop"):
        xk.data.samples(views="five")


def test_full_profile_protocol_choices():
    _, full = load_profile("full")
    assert 10.0 in full["04_interpretable_gradients"]["lambda_sweep"]           # Table 4.3 goes up to λ = 10
    assert full["05_vit_reciprocam"]["imagenet_root"]                           # chapter 5 reads ImageNet
    assert ModelSpec.parse(full["06_group_cam"]["finetune_model"]).arch == "resnet50"  # §5: ResNet-50 on ImageNet
    assert len(full["03_ca_stream"]["models"]) == 4                             # ResNet-18/50, ConvNeXt-S/B
