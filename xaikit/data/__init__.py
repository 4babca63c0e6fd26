"""Datasets: synthetic (generated, with exact boxes), bundled real photos, real datasets by path."""
from .base import Batch, collate, load_batch, resize_item
from .folders import (FolderDataset, chest_xray, cifar100, coco, cub, dataset, imagenet_train, imagenet_val, kvasir,
                      mit67, voc)
from .samples import PHOTOS, Samples, load_photo, samples
from .synthetic import SyntheticDataset, synthetic, synthetic_splits
from .synthetic import class_names as synthetic_class_names

__all__ = ["Batch", "collate", "load_batch", "resize_item", "PHOTOS", "Samples", "load_photo", "samples",
           "SyntheticDataset", "synthetic", "synthetic_splits", "synthetic_class_names",
           "FolderDataset", "dataset", "imagenet_val", "imagenet_train", "cub", "voc", "cifar100", "coco", "chest_xray",
           "kvasir", "mit67"]
