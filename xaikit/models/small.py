"""xaikit's small models for synthetic / CIFAR-size data, registered in the zoo.

``xk.models.load("resnet18_cifar", weights="random"|<checkpoint>, num_classes=C, width=16)`` etc.
All CNNs use ``nn.ReLU`` *modules* (one per use, ``inplace=False``) so that interpretable-gradient
training can swap them, and end with global average pooling + one linear layer so that CAM is exact
(``logit_c = sum_k w_k^c GAP(A^k) + b_c``, thesis eq. 1.3).  Stages (``info.stages``) are the module
names whose outputs feed CA-Stream: ``S0`` the stem, then one per resolution.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ConfigError

from .zoo import register


# ------------------------------------------------------------------------------------- ResNet-18
class BasicBlock(nn.Module):
    """ResNet basic block; ``relu1``/``relu2`` are separate modules (no module reused)."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + idt)


class ResNetCifar(nn.Module):
    """CIFAR-style ResNet (He et al. 2016): 3x3 stem, no max-pool, 4 stages of ``blocks`` basic blocks
    with widths ``width * (1, 2, 4, 8)``, GAP, linear ``fc``."""

    def __init__(self, num_classes: int = 10, width: int = 16, blocks=(2, 2, 2, 2)):
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width]
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU()
        layers, cin = [], width
        for i, (cout, n) in enumerate(zip(w, blocks)):
            stride = 1 if i == 0 else 2
            seq = []
            for j in range(n):
                seq.append(BasicBlock(cin, cout, stride if j == 0 else 1))
                cin = cout
            layers.append(nn.Sequential(*seq))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(cin, num_classes)
        self.num_classes = num_classes
        self.num_features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: stable training from scratch
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.forward_features(x))))


def _info(input_size, class_names, **kw):
    d = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=int(input_size), crop_pct=1.0)
    if class_names is not None:
        d["class_names"] = list(class_names)
    d.update(kw)
    return d


@register("resnet18_cifar")
def resnet18_cifar(num_classes: int = 10, width: int = 16, input_size: int = 32, class_names=None):
    """CIFAR ResNet-18 (``width=64`` is the standard size; the default 16 trains on a CPU in minutes)."""
    m = ResNetCifar(num_classes, width)
    return m, _info(input_size, class_names, num_classes=num_classes, default_layer="layer4",
                    feature_layer="layer4", classifier="fc",
                    stages=["act1", "layer1", "layer2", "layer3", "layer4"])


# ---------------------------------------------------------------------------------- MobileNet-V2
class InvertedResidual(nn.Module):
    """MobileNet-V2 block (Sandler et al. 2018): 1x1 expand, 3x3 depthwise, 1x1 linear project."""

    def __init__(self, cin, cout, stride, expand, act=nn.ReLU, bias: bool = False, always_expand: bool = False):
        super().__init__()
        hid = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand != 1 or always_expand:
            layers += [nn.Conv2d(cin, hid, 1, bias=bias), nn.BatchNorm2d(hid), act()]
        layers += [nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=bias), nn.BatchNorm2d(hid), act(),
                   nn.Conv2d(hid, cout, 1, bias=bias), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2Cifar(nn.Module):
    """MobileNet-V2 for 32 px inputs: stride-1 stem and first stages (as in CIFAR ports), width
    multiplier ``width_mult``; ``conv_head`` (1x1 conv, BN, ReLU) then GAP and linear ``classifier``."""

    # t (expansion), c (channels), n (blocks), s (stride).  Stride-1 stem; row strides 1,2,2,1,1,2,1 so a
    # 32 px input ends at 4x4 (like the ImageNet model's 7x7 at 224 px) with most work at 16 and 8 px
    CFG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 1), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    #: weiaicunzai/pytorch-cifar100 models/mobilenetv2.py (the recipe of the thesis' chapter 4): strides
    #: 1,2,2,2,1,1,1 after a 1x1 stem with padding 1 (32 px -> 34 -> 17 -> 9 -> 5), every block with its 1x1
    #: expansion conv (also at t = 1), convolutions with biases, ReLU6, a 1280-channel head
    CFG_PYTORCH_CIFAR100 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                            (6, 160, 3, 1), (6, 320, 1, 1))

    def __init__(self, num_classes=10, width_mult=0.5, head=640, act="relu", layout="xaikit"):
        super().__init__()
        if layout not in ("xaikit", "pytorch_cifar100"):
            raise ConfigError(f"layout={layout!r}: use 'xaikit' or 'pytorch_cifar100'")
        ref = layout == "pytorch_cifar100"
        if ref:
            act, head = "relu6", 1280
            self.CFG = self.CFG_PYTORCH_CIFAR100
        A = {"relu": nn.ReLU, "relu6": nn.ReLU6}[act]
        ch = lambda c: max(8, int(round(c * width_mult / 8)) * 8)  # noqa: E731
        cin = ch(32)
        stem = nn.Conv2d(3, cin, 1, 1, 1) if ref else nn.Conv2d(3, cin, 3, 1, 1, bias=False)
        self.stem = nn.Sequential(stem, nn.BatchNorm2d(cin), A())
        blocks = []
        for t, c, n, s in self.CFG:
            cout = ch(c)
            for j in range(n):
                blocks.append(InvertedResidual(cin, cout, s if j == 0 else 1, t, A, bias=ref, always_expand=ref))
                cin = cout
        self.features = nn.Sequential(*blocks)
        hd = ch(head) if ref else max(ch(head), head // 2)
        self.conv_head = nn.Sequential(nn.Conv2d(cin, hd, 1, bias=ref), nn.BatchNorm2d(hd), A())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(hd, num_classes)
        self.num_classes, self.num_features = num_classes, hd
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x):
        x = self.conv_head(self.features(self.stem(x)))
        return self.classifier(self.flatten(self.avgpool(x)))


@register("mobilenetv2_cifar")
def mobilenetv2_cifar(num_classes: int = 10, width_mult: float = 0.5, act: str = "relu", input_size: int = 32,
                      class_names=None, layout: str = "xaikit"):
    """CIFAR MobileNet-V2 (``width_mult=1`` is the standard size).  ``act="relu"`` (default, plain
    ``nn.ReLU`` so activation swapping works) or ``"relu6"`` as in the original.  ``layout="pytorch_cifar100"``:
    the architecture of weiaicunzai/pytorch-cifar100 (the thesis' chapter 4 recipe; ReLU6, 1280-channel
    head, its strides and 1x1 stem, 2.37 M parameters for 100 classes); the default ``"xaikit"`` layout ends
    at 4x4 at 32 px with a 640-channel head."""
    m = MobileNetV2Cifar(num_classes, width_mult, act=act, layout=layout)
    ends = [sum(c[2] for c in m.CFG[: j + 1]) - 1 for j in range(len(m.CFG))]  # last block of each CFG row
    # one stage per resolution (32, 32, 16, 8, 4 px at 32 px input in the xaikit layout): the stem, the last
    # block before each stride-2 row (xaikit: rows 1, 2, 5; pytorch_cifar100: rows 1, 2, 3), and the head
    stages = ["stem", *[f"features.{ends[j - 1]}" for j in range(1, len(m.CFG)) if m.CFG[j][3] == 2], "conv_head"]
    return m, _info(input_size, class_names, num_classes=num_classes, default_layer="conv_head",
                    feature_layer="conv_head", classifier="classifier", stages=stages)


# --------------------------------------------------------------------------------- tiny DeiT/ViT
@register("deit_tiny_synth")
def deit_tiny_synth(num_classes: int = 10, img_size: int = 32, patch_size: int = 4, embed_dim: int = 96,
                    depth: int = 4, num_heads: int = 3, mlp_ratio: float = 2.0, input_size: int | None = None,
                    class_names=None):
    """A tiny DeiT (timm ``VisionTransformer``, class token, pre-norm blocks) for 32-64 px images.

    Attention is computed explicitly (``fused_attn=False``) so attention maps can be hooked at
    ``blocks.i.attn.attn_drop`` (raw attention, rollout, Chefer et al.)."""
    from timm.models.vision_transformer import VisionTransformer

    img_size = int(input_size or img_size)
    if img_size % patch_size:
        raise ConfigError(f"img_size={img_size} is not a multiple of patch_size={patch_size}")
    m = VisionTransformer(img_size=img_size, patch_size=patch_size, num_classes=num_classes, embed_dim=embed_dim,
                          depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, class_token=True,
                          global_pool="token", drop_rate=0.0)
    for b in m.blocks:
        b.attn.fused_attn = False
    last = depth - 1
    g = img_size // patch_size
    return m, _info(img_size, class_names, num_classes=num_classes, default_layer=f"blocks.{last}.norm1",
                    feature_layer=f"blocks.{last}", classifier="head",
                    stages=[f"blocks.{i}" for i in range(depth)], is_vit=True,
                    num_prefix_tokens=int(m.num_prefix_tokens), grid_size=(g, g))
