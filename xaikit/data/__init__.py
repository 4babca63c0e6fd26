"""Datasets: synthetic (generated, with exact boxes), bundled real photos, real datasets by path."""
from .base import Batch, collate, load_batch, resize_item
from .samples import PHOTOS, Samples, load_photo, samples

__all__ = ["Batch", "collate", "load_batch", "resize_item", "PHOTOS", "Samples", "load_photo", "samples"]
