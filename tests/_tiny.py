"""Tiny models shared by tests: the GAP + linear CNN of the attributor tests (16 px inputs, 5 classes), and
a BatchNorm with random statistics for the inference-twin tests.

conv(3->hidden) -> ReLU -> conv(hidden->k, stride 2) -> ReLU (``features.3``, the feature layer)
-> global average pooling -> linear ``fc``: CAM decomposes its logits exactly.
"""
import torch
import torch.nn as nn

import xaikit as xk


class TinyGAP(nn.Module):
    def __init__(self, hidden=8, k=6, c=5):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, hidden, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(hidden, k, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(k, c)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def tiny_gap(seed=0, **kw) -> TinyGAP:
    """A seeded TinyGAP in eval mode with the zoo metadata attributors read."""
    torch.manual_seed(seed)
    m = TinyGAP(**kw).eval()
    m.xaikit = xk.models.zoo.ModelInfo(name="tiny", num_classes=m.fc.out_features, default_layer="features.3",
                                       feature_layer="features.3", classifier="fc", input_size=16)
    return m


def random_bn(c, seed) -> nn.BatchNorm2d:
    """A BatchNorm2d over ``c`` channels with seeded random running statistics and affine parameters (so
    that folding it into a convolution is a real test)."""
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(c)
    bn.running_mean.copy_(torch.randn(c, generator=g))
    bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    bn.weight.data.copy_(torch.randn(c, generator=g))
    bn.bias.data.copy_(torch.randn(c, generator=g))
    return bn
