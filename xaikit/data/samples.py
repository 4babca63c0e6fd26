"""Real photographs shipped inside installed packages, as a dataset (no download).

scikit-image (astronaut, chelsea, coffee, rocket, motorcycle, camera, ...), scikit-learn (china, flower) and
matplotlib (grace_hopper). Each photo carries the ImageNet class it obviously shows where there is
one (``label=-1`` otherwise), checked against the bundled EfficientNet-Lite0: seven are labelled (every
shipped photo whose object is an ImageNet class that Lite0 names; the flower is no daisy, the astronaut no
single class, the other skimage images are textures, drawings or microscopy).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError

from .base import TEN_CROP_VIEWS, preprocess_array, ten_crop_array

#: photo -> (loader, ImageNet class index or -1, note)
PHOTOS = {
    "chelsea": ("skimage:chelsea", 285, "Egyptian cat"),
    "coffee": ("skimage:coffee", 967, "espresso"),
    "astronaut": ("skimage:astronaut", -1, "portrait of an astronaut (no single ImageNet class)"),
    "rocket": ("skimage:rocket", 657, "missile: a rocket on its launch pad (Lite0: missile 0.37, projectile 0.25)"),
    "motorcycle": ("skimage:motorcycle", 665, "moped (left view of skimage's stereo pair)"),
    "china": ("sklearn:china.jpg", 698, "palace: the Tower of Buddhist Incense, Summer Palace (Lite0: palace 0.35)"),
    "flower": ("sklearn:flower.jpg", -1, "flower"),
    "grace_hopper": ("matplotlib:grace_hopper.jpg", 652, "military uniform"),
    "camera": ("skimage:camera", 872, "tripod: the cameraman's (grayscale; Lite0: tripod 0.95)"),
    "retina": ("skimage:retina", -1, "retina fundus (out of ImageNet's domain)"),
    "immunohistochemistry": ("skimage:immunohistochemistry", -1, "microscopy (out of domain)"),
    "hubble": ("skimage:hubble_deep_field", -1, "deep-field astronomy (out of domain)"),
}


#: hand-annotated boxes of the labelled photos: photo -> [(x0, y0, x1, y1) in the photo's own pixels], drawn
#: by eye on a 50-px grid over the full-size photo (as ILSVRC's boxes: the whole object of the label, every
#: instance); the loader scales and crops them with the image.  Tested: the bundled EfficientNet-Lite0's
#: Grad-CAM maximum lies in the box on every photo but the rocket (for "missile" it looks at the launch towers).
PHOTO_BOXES = {
    "chelsea": [(20, 0, 440, 300)],                            # the cat's head fills the frame
    "coffee": [(165, 18, 355, 285)],                           # the cup of espresso (with its handle)
    "motorcycle": [(85, 105, 655, 440)],                       # the whole moped, wheels included
    "grace_hopper": [(5, 330, 512, 600), (165, 40, 370, 175)],  # the uniform's jacket and its cap
    "rocket": [(300, 122, 345, 410)],                          # the rocket, tip to base (not the towers)
    "china": [(70, 28, 360, 420)],                             # the tower, roof spire to terrace
    "camera": [(228, 195, 410, 512)],                          # the tripod, head to spread legs
}


def load_photo(name: str) -> np.ndarray:
    """The photograph ``name`` as an HxWx3 uint8 array."""
    if name not in PHOTOS:
        raise DataError(f"unknown bundled photo {name!r}; available: {sorted(PHOTOS)}")
    src = PHOTOS[name][0]
    pkg, key = src.split(":", 1)
    if pkg == "skimage":
        import skimage.data as d

        if key == "motorcycle":
            img = d.stereo_motorcycle()[0]
        else:
            img = getattr(d, key)()
    elif pkg == "sklearn":
        from sklearn.datasets import load_sample_image

        img = load_sample_image(key)
    else:
        import matplotlib.cbook as cbook
        from PIL import Image

        with cbook.get_sample_data(key) as f:
            img = np.asarray(Image.open(f).convert("RGB"))
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


class Samples(Dataset):
    """The bundled photos at ``size`` px, as the papers' code prepares ImageNet images: the shorter side resized
    to ``size / crop_pct`` (256 for 224), the centre ``size`` x ``size`` kept (``crop_pct=1``: the whole photo
    squashed to ``size`` x ``size``).

    ``labeled_only=True`` keeps only the photos with an ImageNet label.  Items follow
    :mod:`xaikit.data.base` (image in [0, 1]); labelled photos carry their hand-annotated boxes
    (:data:`PHOTO_BOXES`, labelled with the photo's class), scaled and cropped with the image.

    ``views="ten_crop"``: ten items per photo instead of one, torchvision's ``TenCrop`` of the same resize
    (:func:`~xaikit.data.base.ten_crop_array`: four corners, centre, and the five of the mirror image), named
    ``<photo>/<view>`` (``chelsea/tl`` ... ``chelsea/m-c``) — more, harder views of the few labelled photos
    where a table needs more than seven images (Table 1.1's accuracy).
    """

    VIEWS = ("centre", "ten_crop")

    def __init__(self, names=None, size: int = 224, crop_pct: float = 0.875, labeled_only: bool = False,
                 views: str = "centre"):
        if views not in self.VIEWS:
            raise DataError(f"views={views!r} is not known; use one of {list(self.VIEWS)}")
        names = list(PHOTOS) if names is None else list(names)
        if labeled_only:
            names = [n for n in names if PHOTOS[n][1] >= 0]
        for n in names:
            if n not in PHOTOS:
                raise DataError(f"unknown bundled photo {n!r}; available: {sorted(PHOTOS)}")
        self.names, self.size, self.crop_pct, self.views = names, int(size), float(crop_pct), views
        self._per = 1 if views == "centre" else len(TEN_CROP_VIEWS)
        self._last = (None, None)  # (photo, its ten views): items are read in order, each photo resized once

    def __len__(self):
        return len(self.names) * self._per

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} of {len(self)}")
        name = self.names[i % len(self) // self._per]
        boxes = PHOTO_BOXES.get(name, [])
        args = (self.size, self.crop_pct, boxes, [PHOTOS[name][1]] * len(boxes))
        if self.views == "centre":
            img, boxes, blabels = preprocess_array(load_photo(name), *args)
        else:
            v = i % len(self) % self._per
            if self._last[0] != name:
                self._last = (name, ten_crop_array(load_photo(name), *args))
            img, boxes, blabels = self._last[1][v]
            name = f"{name}/{TEN_CROP_VIEWS[v]}"
        return {"image": img, "label": PHOTOS[name.split("/")[0]][1], "boxes": boxes, "box_labels": blabels,
                "name": name}


def samples(names=None, size: int = 224, **kw) -> Samples:
    return Samples(names, size=size, **kw)
