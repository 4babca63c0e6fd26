"""Model zoo: ``load(name, weights=...)`` with metadata attached as ``model.xaikit``; the inference twin
(:mod:`.fast`) and the hooks that leave a model as they found it (:mod:`.hooks`)."""
from .zoo import (IMAGENET_MEAN, IMAGENET_STD, ModelInfo, Preprocess, get_layer, info, layer_name,
                  list_layers, load, register, to_channels_last)
from .fast import fold_batchnorm, inference_twin
from .hooks import LayerCapture, model_guard

from . import small  # noqa: F401 - xaikit's small models for synthetic data register themselves on import

__all__ = ["load", "info", "get_layer", "list_layers", "layer_name", "register", "ModelInfo",
           "Preprocess", "IMAGENET_MEAN", "IMAGENET_STD", "to_channels_last",
           "inference_twin", "fold_batchnorm", "LayerCapture", "model_guard"]
