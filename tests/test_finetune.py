"""Fine-tuning on another label space (thesis Table 3.2's VOC / CUB baselines) and the batched
RandomResizedCrop + flip it trains with."""
import torch

import xaikit as xk
from xaikit.data.base import load_batch
from xaikit.data.synthetic import synthetic
from xaikit.training.augment import _crop_boxes, color_jitter, random_resized_crop_flip
from xaikit.training.finetune import FinetuneConfig, finetune, replace_head


def test_crop_boxes_follow_torchvision_rules():
    g = torch.Generator().manual_seed(0)
    b = _crop_boxes(500, 40, 60, (0.08, 1.0), (3 / 4, 4 / 3), g)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= 60).all() and (b[:, 3] <= 40).all()
    area = w * h / (40 * 60)
    assert area.min() >= 0.08 - 0.02 and area.max() <= 1.0
    r = w / h
    assert r.min() >= 3 / 4 - 0.1 and r.max() <= 4 / 3 + 0.1  # rounding to whole pixels
    # scale (1, 1) and ratio 1 on a square image: the whole image, so the crop is the identity (or its flip)
    x = torch.rand(40, 3, 16, 16)
    out = random_resized_crop_flip(x, torch.Generator().manual_seed(1), scale=(1, 1), ratio=(1, 1))
    same = (out - x).abs().flatten(1).amax(1) < 1e-5
    flipped = (out - x.flip(-1)).abs().flatten(1).amax(1) < 1e-5
    assert bool((same | flipped).all()) and bool(same.any()) and bool(flipped.any())


def test_augmentation_is_seeded_and_stays_in_range():
    x = torch.rand(4, 3, 24, 24)
    a = random_resized_crop_flip(x, torch.Generator().manual_seed(3), size=16)
    b = random_resized_crop_flip(x, torch.Generator().manual_seed(3), size=16)
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    j = color_jitter(x, torch.Generator().manual_seed(0))
    assert j.shape == x.shape and j.min() >= 0 and j.max() <= 1 and not torch.equal(j, x)


def test_replace_head_and_finetune_resume(tmp_path):
    torch.manual_seed(0)
    m = xk.models.load("resnet18_cifar", weights="random", num_classes=10, input_size=32, width=8)
    replace_head(m, 4, seed=1)
    assert m.xaikit.num_classes == 4 and m(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    ds = synthetic(n=16, num_classes=4, size=32, seed=0)
    cfg = dict(epochs=1, batch_size=8, lr=0.05, lr_step=1, seed=0)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    h1 = finetune(m, ds, config=FinetuneConfig(**cfg), checkpoint_dir=tmp_path)
    assert len(h1) == 1 and any(not torch.equal(before[k], v) for k, v in m.state_dict().items())
    # a second epoch resumes from the checkpoint and equals an uninterrupted two-epoch run
    h2 = finetune(m, ds, config=FinetuneConfig(**dict(cfg, epochs=2)), checkpoint_dir=tmp_path)
    torch.manual_seed(0)
    ref = xk.models.load("resnet18_cifar", weights="random", num_classes=10, input_size=32, width=8)
    replace_head(ref, 4, seed=1)
    hr = finetune(ref, ds, config=FinetuneConfig(**dict(cfg, epochs=2)))
    assert [round(e["loss"], 5) for e in h2] == [round(e["loss"], 5) for e in hr]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(m.state_dict().values(), ref.state_dict().values()))


def test_multilabel_finetuning_uses_bce():
    torch.manual_seed(0)
    m = xk.models.load("resnet18_cifar", weights="random", num_classes=10, input_size=32, width=8)
    ds = synthetic(n=8, num_classes=5, size=32, seed=0, classes_per_image=2)
    assert load_batch(ds).labels.dim() == 2
    h = finetune(m, ds, num_classes=5, epochs=1, batch_size=4, augment=False)
    assert m.xaikit.num_classes == 5 and h[0]["loss"] > 0
