"""The one structure every dataset of xaikit returns.

An item is a dict ``{"image", "label", "boxes", "box_labels", "name"}``:

- ``image``: float tensor (3, H, W) in [0, 1] *pixel* space (normalize with ``model.xaikit.normalize``);
- ``label``: int class index, or a float multi-hot tensor (C,) for multi-label datasets;
- ``boxes``: float tensor (K, 4), ``x0, y0, x1, y1`` in pixel coordinates of ``image``
  (x1/y1 exclusive), K may be 0;
- ``box_labels``: long tensor (K,), the class of each box;
- ``name``: a readable identifier (file name, photo name, ``synthetic/00012``).

:func:`collate` stacks items into a :class:`Batch`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.utils.data import Dataset

from ..core.devices import host, to_device


@dataclass
class Batch:
    images: torch.Tensor          # (B, 3, H, W) in [0, 1]
    labels: torch.Tensor          # (B,) long, or (B, C) multi-hot
    boxes: list                   # B tensors (K_i, 4), pixel xyxy
    box_labels: list              # B long tensors (K_i,)
    names: list                   # B strings

    def __len__(self):
        return self.images.shape[0]

    def to(self, device):
        """The batch on ``device`` (every tensor moved; names kept)."""
        return Batch(to_device(self.images, device), to_device(self.labels, device),
                     [to_device(b, device) for b in self.boxes], [to_device(b, device) for b in self.box_labels],
                     self.names)

    def __getitem__(self, idx):
        if isinstance(idx, int):
            idx = [idx]
        if isinstance(idx, slice):
            idx = list(range(len(self)))[idx]
        idx = list(idx)
        return Batch(self.images[idx], self.labels[idx], [self.boxes[i] for i in idx],
                     [self.box_labels[i] for i in idx], [self.names[i] for i in idx])


def collate(items: Sequence[dict]) -> Batch:
    """Stack dataset items (same image size) into a :class:`Batch` of CPU tensors (the device rule,
    :mod:`xaikit.core.devices`: data lives on the host until an experiment moves a batch; in strict mode
    the tensors are marked so that forgetting the move fails on a CPU-only machine too)."""
    imgs = torch.stack([it["image"] for it in items])
    labels = [it["label"] for it in items]
    if isinstance(labels[0], torch.Tensor) and labels[0].dim() > 0:
        lab = torch.stack(labels).float()
    else:
        lab = torch.tensor([int(l) for l in labels], dtype=torch.long)
    boxes = [torch.as_tensor(it.get("boxes", torch.zeros(0, 4)), dtype=torch.float32).reshape(-1, 4)
             for it in items]
    blabs = [torch.as_tensor(it.get("box_labels", torch.zeros(0)), dtype=torch.long).reshape(-1)
             for it in items]
    names = [str(it.get("name", i)) for i, it in enumerate(items)]
    return Batch(host(imgs.cpu()), host(lab), [host(b) for b in boxes], [host(b) for b in blabs], names)


def load_batch(dataset: Dataset, indices: Sequence[int] | None = None) -> Batch:
    """Items of a dataset (all of them when ``indices`` is None) as one :class:`Batch`."""
    if indices is None:
        indices = range(len(dataset))
    return collate([dataset[i] for i in indices])


def resize_item(item: dict, size: int) -> dict:
    """Resize an item's image to ``size``x``size`` (no crop) and scale its boxes alike."""
    import torch.nn.functional as F

    img = item["image"]
    h, w = img.shape[-2:]
    if (h, w) == (size, size):
        return item
    out = dict(item)
    out["image"] = F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False,
                                 antialias=True)[0].clamp(0, 1)
    b = torch.as_tensor(item.get("boxes", torch.zeros(0, 4)), dtype=torch.float32).reshape(-1, 4).clone()
    b[:, [0, 2]] *= size / w
    b[:, [1, 3]] *= size / h
    out["boxes"] = b
    return out
