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
from ..errors import InputError


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


def resize_crop_item(item: dict, size: int, crop_pct: float = 0.875) -> dict:
    """The evaluation transform of the papers' code (torchvision ``Resize(round(size / crop_pct))`` +
    ``CenterCrop(size)``: 256 then 224 at ``crop_pct = 0.875``): the shorter side is resized (bilinear,
    antialiased), the centre ``size`` x ``size`` kept; boxes are scaled and shifted alike, clipped to the
    crop, and a box left with no area is dropped with its label. ``crop_pct >= 1`` squashes the whole image
    to ``size`` x ``size`` instead (:func:`resize_item`)."""
    import torch.nn.functional as F

    if crop_pct >= 1.0:
        return resize_item(item, size)
    img = item["image"]
    h, w = img.shape[-2:]
    short = int(round(size / crop_pct))
    # torchvision's rule: the long side is int(short * long / short), truncated
    nh, nw = (short, max(short, int(short * w / h))) if h <= w else (max(short, int(short * h / w)), short)
    out = dict(item)
    scaled = img if (nh, nw) == (h, w) else F.interpolate(img[None], size=(nh, nw), mode="bilinear",
                                                          align_corners=False, antialias=True)[0]
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    out["image"] = scaled[:, top:top + size, left:left + size].clamp(0, 1)
    b = torch.as_tensor(item.get("boxes", torch.zeros(0, 4)), dtype=torch.float32).reshape(-1, 4).clone()
    lab = torch.as_tensor(item.get("box_labels", torch.zeros(0)), dtype=torch.long).reshape(-1)
    if b.numel():
        b[:, [0, 2]] = (b[:, [0, 2]] * nw / w - left).clamp(0, size)
        b[:, [1, 3]] = (b[:, [1, 3]] * nh / h - top).clamp(0, size)
        keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        b, lab = b[keep], (lab[keep] if lab.numel() == keep.numel() else lab)
    out["boxes"], out["box_labels"] = b, lab
    return out


def _crop_boxes(boxes, box_labels, scale: tuple, left: int, top: int, size: int, flip_width: int | None = None):
    """Boxes (xyxy pixels of the original image) scaled by ``scale = (sx, sy)``, mirrored in an image
    ``flip_width`` px wide when given, shifted to a ``size`` crop at (``left``, ``top``) and clipped; those left
    with no area are dropped (their labels with them)."""
    b = torch.as_tensor(boxes if boxes is not None else torch.zeros(0, 4), dtype=torch.float32).reshape(-1, 4).clone()
    lab = torch.as_tensor(box_labels if box_labels is not None else torch.zeros(0), dtype=torch.long).reshape(-1)
    if b.numel():
        b[:, [0, 2]] *= scale[0]
        b[:, [1, 3]] *= scale[1]
        if flip_width is not None:
            b[:, [0, 2]] = flip_width - b[:, [2, 0]]
        b[:, [0, 2]] = (b[:, [0, 2]] - left).clamp(0, size)
        b[:, [1, 3]] = (b[:, [1, 3]] - top).clamp(0, size)
        keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        b, lab = b[keep], (lab[keep] if lab.numel() == keep.numel() else lab)
    return b, lab


def _pil_resized(arr, size: int, crop_pct: float):
    """The PIL image of an HxWx3 (or HxW) uint8 array, resized as :func:`preprocess_array` does, with its
    original (w, h)."""
    import numpy as np
    import torchvision.transforms.functional as TF
    from PIL import Image

    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, -1)
    img = Image.fromarray(np.ascontiguousarray(arr[..., :3]).astype("uint8"))
    wh = img.size
    target = [size, size] if crop_pct >= 1.0 else int(round(size / crop_pct))
    return TF.resize(img, target, interpolation=TF.InterpolationMode.BILINEAR, antialias=True), wh


def preprocess_array(arr, size: int, crop_pct: float = 0.875, boxes=None, box_labels=None):
    """An HxWx3 uint8 image as the papers' code prepares it, with torchvision on a PIL image: ``Resize``
    of the shorter side to ``round(size / crop_pct)`` (bilinear, PIL's antialiasing) then ``CenterCrop(size)``
    (``crop_pct >= 1``: the whole image resized to ``size`` x ``size``). Returns ``(image (3, size, size) in
    [0, 1], boxes, box_labels)`` with the boxes (xyxy pixels of ``arr``) scaled and shifted alike, clipped to
    the crop, and those left with no area dropped."""
    import torchvision.transforms.functional as TF

    img, (w, h) = _pil_resized(arr, size, crop_pct)
    nw, nh = img.size
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    if crop_pct < 1.0:
        img = TF.center_crop(img, [size, size])
    b, lab = _crop_boxes(boxes, box_labels, (nw / w, nh / h), left, top, size)
    return TF.to_tensor(img), b, lab


#: the views of :func:`ten_crop_array`, in torchvision's ``TenCrop`` order ("m": mirrored)
TEN_CROP_VIEWS = ("tl", "tr", "bl", "br", "c", "m-tl", "m-tr", "m-bl", "m-br", "m-c")


def ten_crop_array(arr, size: int, crop_pct: float = 0.875, boxes=None, box_labels=None) -> list:
    """The ten views of torchvision's ``TenCrop(size)`` after the ``Resize`` of :func:`preprocess_array`
    (shorter side to ``round(size / crop_pct)``, 256 for 224): the four corner crops and the centre crop, then
    the same five of the horizontally mirrored image (the multi-crop test of AlexNet / VGG / ResNet, each view
    kept apart here). Returns ten ``(image, boxes, box_labels)`` as :func:`preprocess_array`, named by
    :data:`TEN_CROP_VIEWS`, the boxes cropped (and mirrored) with their view."""
    import torchvision.transforms.functional as TF

    if crop_pct >= 1.0:
        raise InputError(f"ten-crop views need a resize larger than the crop: crop_pct={crop_pct} must be < 1 "
                         "(0.875: the shorter side to 256 for 224-px crops)")
    img, (w, h) = _pil_resized(arr, size, crop_pct)
    nw, nh = img.size
    corners = [(0, 0), (nw - size, 0), (0, nh - size), (nw - size, nh - size),
               (int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0)))]
    out = []
    for mirrored, im in ((None, img), (nw, TF.hflip(img))):
        for left, top in corners:
            b, lab = _crop_boxes(boxes, box_labels, (nw / w, nh / h), left, top, size, flip_width=mirrored)
            out.append((TF.to_tensor(TF.crop(im, top, left, size, size)), b, lab))
    return out
