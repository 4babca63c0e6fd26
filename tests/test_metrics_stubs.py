"""Stub classifiers with closed-form outputs for the metric tests (helpers only, no tests here)."""
import torch
import torch.nn as nn

from xaikit.models.zoo import ModelInfo


class MeanLinear(nn.Module):
    """logit_c = k_c * mean(x) + b_c over all input values: probabilities known in closed form."""

    def __init__(self, k=(2.0, 0.0), b=(0.0, 0.0), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)):
        super().__init__()
        self.k = torch.tensor(k)
        self.b = torch.tensor(b)
        self.xaikit = ModelInfo(name="mean_linear", num_classes=len(k), mean=mean, std=std)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x.mean((1, 2, 3))[:, None] * self.k + self.b


def tiny_cnn(num_classes=5, seed=0):
    """A small random conv net (deterministic given the seed) with model.xaikit attached."""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, num_classes)).eval()
    with torch.no_grad():
        m[-1].weight.mul_(4)
    m.xaikit = ModelInfo(name="tiny", num_classes=num_classes, mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.3))
    return m
