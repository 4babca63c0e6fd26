"""Errors raised by xaikit.

Every error names the problem and the fix, so a user never has to read a traceback from deep
inside torch.  All derive from :class:`XaikitError` (itself a ``ValueError`` so that generic
``except ValueError`` code keeps working).
"""


class XaikitError(ValueError):
    """Base class of every error xaikit raises on purpose."""


class LayerError(XaikitError, KeyError):
    """A layer name that does not exist in the model."""

    def __str__(self):  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class InputError(XaikitError):
    """An image batch, a target or a saliency map of the wrong shape, dtype or range."""


class DataError(XaikitError, FileNotFoundError):
    """A dataset path that is missing or laid out differently from what the loader expects."""


class WeightsError(XaikitError, FileNotFoundError):
    """Model weights that are not available (offline, missing checkpoint, shape mismatch)."""


class ConfigError(XaikitError):
    """A parameter or profile value that xaikit cannot use."""


class DeviceError(XaikitError):
    """Tensors on different devices (found by the strict-device guard, see xaikit.core.devices)."""
