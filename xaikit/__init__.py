"""xaikit: every saliency method, metric and stream of the Opti-CAM / CA-Stream thesis and of the
ViT-ReciproCAM and Group-CAM papers, batched, tested against independent implementations, and
driven by one parameterized notebook per chapter.

    import xaikit as xk
    model = xk.models.load("tf_efficientnet_lite0", weights="bundled")
    cam = xk.attributors.create("gradcam", model)
    sal = cam(x)                               # (B, H, W) in [0, 1]
    xk.metrics.recognition(model, x, sal, target)
"""
from importlib import import_module

__version__ = "0.1.0"

_SUBMODULES = ("config", "errors", "core", "models", "data", "attributors", "metrics", "streams", "training",
               "experiments", "reports", "published")


def __getattr__(name):  # lazy sub-packages: `import xaikit as xk; xk.metrics...`
    if name in _SUBMODULES:
        mod = import_module(f".{name}", __name__)
        globals()[name] = mod
        return mod
    raise AttributeError(f"module 'xaikit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
