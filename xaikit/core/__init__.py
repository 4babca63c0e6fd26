"""The ground floor of xaikit: conventions every other layer shares, importing nothing of xaikit above
:mod:`xaikit.errors`. Devices (the device rule and its strict guard) live in :mod:`xaikit.core.devices`."""
from .devices import (HostTensor, back, host, is_host, model_device, on_model, plain, resolve_device,
                      set_strict, strict, to_device)

__all__ = ["HostTensor", "back", "host", "is_host", "model_device", "on_model", "plain", "resolve_device",
           "set_strict", "strict", "to_device"]
