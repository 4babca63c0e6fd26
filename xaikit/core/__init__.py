"""The ground floor of xaikit: the conventions every other layer shares, importing nothing of xaikit above
:mod:`xaikit.errors` and :mod:`xaikit.config`.

- :mod:`.devices`: the device rule and its strict guard;
- :mod:`.conventions`: scores, masking spaces, substrates, blur, chunks, input checks;
- :mod:`.targets`: which class is explained (one rule), target checks, predictions.
"""
from .conventions import (PADDINGS, SCORES, SPACES, SUBSTRATES, Space, auto_batch, check_count, check_fraction,
                          check_images, check_maps, choice, chunks, class_score, gaussian_blur, one_of, substrate,
                          to_score)
from .devices import (HostTensor, back, host, is_host, model_device, on_model, plain, resolve_device,
                      runs_on_model, set_strict, strict, synchronize, to_device)
from .targets import TARGETS, check_target, logits_of, predict, resolve_target, resolve_targets

__all__ = ["PADDINGS", "SCORES", "SPACES", "SUBSTRATES", "Space", "auto_batch", "check_count", "check_fraction",
           "check_images", "check_maps", "choice", "chunks", "class_score", "gaussian_blur", "one_of", "substrate",
           "to_score", "HostTensor", "back", "host", "is_host", "model_device", "on_model", "plain",
           "resolve_device", "runs_on_model", "set_strict", "strict", "synchronize", "to_device", "TARGETS",
           "check_target", "logits_of", "predict", "resolve_target", "resolve_targets"]
