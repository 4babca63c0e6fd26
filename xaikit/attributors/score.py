"""Gradient-free CAM weights from many forward passes: Score-CAM and Ablation-CAM.

Both are batched over images x channels: the (image, channel) pairs are flattened and evaluated in
chunks of ``batch_size`` forward passes under :func:`torch.inference_mode` (no per-image Python loop
for Score-CAM; one loop over chunks).  The combination itself is :func:`.cam.combine`.

Reproducing the grad-cam package (``pytorch_grad_cam``): Score-CAM with ``preset="gradcam_pkg"`` (the paper's
defaults with grad-cam's ``minmax_eps=1e-8``); the original authors' code with ``preset="scorecam"``, the
thesis author's with ``preset="author"`` (:data:`SCORECAM_PRESETS`); Ablation-CAM with ``ablation="zero"``
on a layer whose activations have minimum 0 (post-ReLU), or ``ablation="gradcam"`` elsewhere (grad-cam then
writes ``min(A) - 1e7``).
"""
from __future__ import annotations

import sys
from typing import Callable

import torch
import torch.nn as nn

from ..core.conventions import (Preset, Space, choice, chunks, class_score, one_of, paper, presets_doc,
                                resolve_preset)
from ..models.fast import full_precision
from ..models.hooks import LayerCapture
from ..models.zoo import layer_name as find_layer_name
from .base import _LogitsOf, check_bool, check_number, register
from .cam import CAMFamily, channel_minmax, upsample


#: Score-CAM's presets: the paper's text (thesis eq. 1.6-1.7, xaikit's defaults) and each code that differs
SCORECAM_PRESETS = {
    "paper": Preset("thesis eq. 1.6-1.7 (Wang et al. 2020, eq. 7-8): logit scores, softmax over channels, "
                    "masks in the normalized space; the grad-cam package up to its 1e-8"),
    "gradcam_pkg": Preset("jacobgil/pytorch-grad-cam pytorch_grad_cam/score_cam.py ScoreCAM.get_cam_weights "
                          "(+ base_cam.py BaseCAM.get_cam_image)", {"minmax_eps": 1e-8},
                          "Logit scores (ClassifierOutputTarget), softmax over channels, UpsamplingBilinear2d "
                          "(align_corners=True), masks multiply the normalized tensor."),
    "scorecam": Preset("haofanwang/Score-CAM cam/scorecam.py ScoreCAM.forward (copied unchanged in "
                       "wofmanaf/Group-CAM cam/scorecam.py)",
                       {"score": "softmax", "channel_softmax": False, "align_corners": False,
                        "skip_constant": True, "upsample_first": True},
                       "Weights are the softmax probabilities of the masked images, not normalized over channels; a "
                       "constant channel is skipped; the upsampled maps are combined, ReLU'd and min-max normalized "
                       "at the input size."),
    "author": Preset("ftorres11/CA_Stream engine/attention.py scorecam_weights + cam_processing (the thesis "
                     "author's)", {"score": "softmax", "channel_softmax": False, "mask_space": "pixel",
                                   "minmax_eps": sys.float_info.epsilon},
                     "Probabilities without softmax over channels, masks multiply the de-normalized [0, 1] "
                     "image (then re-normalized), UpsamplingBilinear2d, min-max with + machine epsilon; combined "
                     "at the layer's resolution."),
}


@register("scorecam", "score_cam")
class ScoreCAM(CAMFamily):
    """Score-CAM (Wang et al., CVPR-W 2020; thesis eq. 1.6-1.7): ``w = softmax_k(f(x * n(up(A^k)))_c)``.

    The baseline term ``f(x_b)_c`` of eq. 1.6 is constant over k, so the softmax ignores it.  Masks:
    bilinear upsampling of each channel, per-channel min-max (a constant map gives the all-zero mask,
    thesis ``n(0) := 0``).  A constant channel gives the all-zero mask whatever the image, so all of them
    share one forward pass (after ReLU often 40-50 % of the channels of a deep layer are constant).

    Args:
        preset: ``"paper"`` (default: the options' defaults below), ``"gradcam_pkg"``, ``"scorecam"`` or
            ``"author"`` (section Presets); an option passed explicitly wins over the preset.
        score: the class score of each masked image: ``"logit"`` (default; thesis notation and grad-cam's
            ``ScoreCAM``) or ``"softmax"`` (the original paper's code), or ``"log_softmax"``.
        mask_space: where the mask multiplies: ``"normalized"`` (default; the model's input tensor, masked
            pixels become the dataset mean, as the paper's code and grad-cam; alias ``"input"``) or
            ``"pixel"`` (the [0, 1] image, masked pixels black).
        align_corners: bilinear upsampling of the masks with ``align_corners=True`` (default; grad-cam's
            ``UpsamplingBilinear2d``) or False (``cv2.resize``'s half-pixel centres).
        channel_softmax: weights = softmax over channels of the scores (default True, eq. 1.7); False uses
            the raw scores.
        minmax_eps: added to each mask's ``max - min`` in the min-max normalization, >= 0; default 0 (the
            thesis); grad-cam uses 1e-8.
        skip_constant: a constant channel gets weight 0 (the original code's ``continue``) instead of the
            score of the all-zero mask (default False: the thesis' ``n(0) := 0``).
        upsample_first: combine the channels upsampled to the input size (bilinear, ``align_corners``), then
            ReLU and min-max normalize there, as the original code (default False: combine, ReLU and
            normalize at the layer's resolution, then upsample, as grad-cam). ``explain`` maps are then at the
            input size.
        relu: ``h`` = ReLU on the weighted sum; default True.
        twin: run the masked copies on the model's inference twin (default True; :mod:`xaikit.models.fast`), at
            the forward precision setting (under bf16 maps keep Pearson >= 0.999 to the fp32 ones,
            ``tests/test_precision.py``); False: on the model itself, in fp32.
        batch_size: masked images per forward chunk; None: from the image size and precision (on CPU 8 at
            224 px in bf16).
        reshape: tokens -> (B, C, h, w) for transformer layers.

    ``explain(...).extras``: ``"scores"`` (B, K) the class score of each masked image, ``"weights"`` (B, K),
    ``"n_forward"`` the number of forward passes of masked images (one per live channel and image, plus
    one shared by the constant channels).

{presets}"""

    needs_grads = False

    def __init__(self, model: nn.Module, layer=None, *, preset: str = "paper", score: str = paper("logit"),
                 mask_space: str = paper("normalized"), align_corners: bool = paper(True),
                 channel_softmax: bool = paper(True), minmax_eps: float = paper(0.0),
                 skip_constant: bool = paper(False), upsample_first: bool = paper(False), relu: bool = True,
                 twin: bool = True, batch_size: int | None = None, reshape: Callable | None = None):
        preset, o = resolve_preset("scorecam", SCORECAM_PRESETS, preset, dict(
            score=score, mask_space=mask_space, align_corners=align_corners, channel_softmax=channel_softmax,
            minmax_eps=minmax_eps, skip_constant=skip_constant, upsample_first=upsample_first))
        super().__init__(model, layer, relu=relu, score=o["score"], batch_size=batch_size, reshape=reshape)
        space = choice("space", o["mask_space"], "mask_space")
        self._space = Space(space, self.info)
        self._set_options(preset=preset, mask_space=space,
                          align_corners=check_bool("align_corners", o["align_corners"]),
                          channel_softmax=check_bool("channel_softmax", o["channel_softmax"]),
                          minmax_eps=check_number("minmax_eps", o["minmax_eps"], 0),
                          skip_constant=check_bool("skip_constant", o["skip_constant"]),
                          upsample_first=check_bool("upsample_first", o["upsample_first"]),
                          twin=check_bool("twin", twin))

    def channel_scores(self, A, x, target, extras: dict | None = None) -> torch.Tensor:
        """(B, K) class scores of the images masked by each normalized, upsampled channel (``x`` prepared,
        on the model's device); ``extras`` receives ``n_forward``."""
        B, K = A.shape[:2]
        flat = A.reshape(B * K, 1, *A.shape[-2:])
        rng = flat.flatten(1).amax(1) - flat.flatten(1).amin(1)
        live = torch.nonzero(rng > 0).squeeze(1)
        tgt = target.repeat_interleave(K)
        bidx = torch.arange(B, device=x.device).repeat_interleave(K)
        out = torch.empty(B * K, device=x.device, dtype=torch.float32)
        f = self.fast(x)
        with torch.inference_mode():
            if live.numel() < B * K:  # the zero mask: one forward for every constant channel
                zero = self._space.mask(x[:1], torch.zeros_like(x[:1, :1]))
                lz = f(zero).expand(B * K, -1)
                out[:] = class_score(lz, tgt, self.score).float()
            for sl in chunks(live.numel(), self.batch_size):
                rows = live[sl]
                m = upsample(flat[rows], x.shape[-2:], align_corners=self.align_corners)
                m = channel_minmax(m, self.minmax_eps)
                logits = f(self._space.mask(x[bidx[rows]], m))
                out[rows] = class_score(logits, tgt[rows], self.score).float()
        if extras is not None:
            extras["n_forward"] = int(live.numel()) + int(live.numel() < B * K)
        return out.view(B, K).clone()

    def weights(self, A, G, x, logits, target, extras=None):
        s = self.channel_scores(A, x, target, extras)
        if extras is not None:
            extras["scores"] = s
        w = s.softmax(1) if self.channel_softmax else s
        if self.skip_constant:
            flat = A.flatten(2)
            w = torch.where(flat.amax(-1) > flat.amin(-1), w, torch.zeros_like(w))
        return w


ScoreCAM.__doc__ = ScoreCAM.__doc__.replace("{presets}", presets_doc(SCORECAM_PRESETS))


@register("ablationcam", "ablation_cam")
class AblationCAM(CAMFamily):
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020; thesis eq. 1.9): ``w_k = (y_c - y_c^k) / y_c``.

    ``y_c^k`` is the score with channel k of the layer's output ablated.  The network before the layer
    runs once per chunk of ``batch_size`` ablated channels of one image: a forward hook returns, in place of
    the layer's output, a batch of ablated copies (the rest of the network broadcasts the single-image skip
    connections; when that fails the image is repeated instead).

    Args:
        ablation: the value written into the ablated channel: ``"zero"`` (default, the paper) or
            ``"gradcam"`` (grad-cam's ``AblationCAM``: 0 when min(A) = 0, else ``min(A) - 1e7``).
        score: the class score: ``"logit"`` (default; the paper, grad-cam), ``"softmax"`` or ``"log_softmax"``.
        relu: ``h`` = ReLU on the weighted sum; default True.
        twin: run the ablated passes on the model's inference twin when its output at the layer equals the
            model's (checked on the first image; a layer whose BatchNorm the twin folds away is run on the
            model); default True. False: on the model itself. Always in fp32, whatever the forward precision
            setting (:mod:`xaikit.models.fast`): its weights are small differences of scores, which bf16's
            rounding swamps (maps Pearson 0.9966 to the fp32 maps on EfficientNet-Lite0, below the 0.999 bar
            of ``tests/test_precision.py``).
        batch_size: ablated channels per forward chunk; default 256.
        reshape: tokens -> (B, C, h, w) for transformer layers.

    ``explain(...).extras``: ``"scores"`` (B, K) the ablated scores y_c^k, ``"weights"`` (B, K).
    """

    needs_grads = False
    reduced_precision = False  # bf16 swamps the score differences (docstring, ``twin``)

    def __init__(self, model: nn.Module, layer=None, *, ablation: str = "zero", score: str = "logit",
                 relu: bool = True, twin: bool = True, batch_size: int | None = 256,
                 reshape: Callable | None = None):
        super().__init__(model, layer, relu=relu, score=score, batch_size=batch_size, reshape=reshape)
        self._set_options(ablation=one_of("ablation", ablation, ("zero", "gradcam")), twin=check_bool("twin", twin))

    def _value(self, raw_b):
        """What an ablated channel of one image's raw layer output (1, ...) is set to: 0, or with
        ``ablation="gradcam"`` 0 when its minimum is 0 and ``min - 1e7`` otherwise (computed in float64 as
        grad-cam's Python float, then rounded to the output's dtype; a tensor on the device, no host sync)."""
        if self.ablation != "gradcam":
            return 0.0
        mn = raw_b.min()
        return torch.where(mn == 0, torch.zeros_like(mn, dtype=torch.float64), mn.double() - 1e7).to(raw_b.dtype)

    def _ablated(self, raw_b, ks, value=None):
        """Copies of one image's raw layer output (1, ...) with channel ks[i] ablated in copy i (set to
        ``value``, default :meth:`_value`)."""
        n = len(ks)
        out = raw_b.expand(n, *raw_b.shape[1:]).clone()
        cdim = 1 if out.dim() == 4 else out.dim() - 1  # conv maps (B,C,h,w) or tokens (B,N,C)
        value = self._value(raw_b) if value is None else value
        idx = torch.arange(n, device=out.device)
        if cdim == 1:
            out[idx, ks] = value
        else:
            out[idx, :, ks] = value
        return out

    def _network(self, x, raw) -> tuple[nn.Module, nn.Module]:
        """(network, its module at the layer) for the ablated passes: the inference twin where its output at
        the layer equals the model's on the first image, else the model itself."""
        if not self.twin:
            return self.model, self.layer
        net = self.fast(x)
        if net is self.model:
            return self.model, self.layer
        try:
            name = self.layer_name or find_layer_name(self.model, self.layer)
        except KeyError:
            return self.model, self.layer
        inner = net.net if isinstance(net, _LogitsOf) else net  # the twin inside its logits wrapper
        # under a reduced precision the fp32 twin inside the autocast wrapper: its layer output is checked in
        # fp32 (the wrapper itself passed its own check on the logits), the ablated passes run in the wrapper
        inner = full_precision(inner)
        lay = dict(inner.named_modules()).get(name)
        if lay is None:
            return self.model, self.layer
        with LayerCapture(lay) as cap, torch.inference_mode():
            inner(x[:1])
        got, want = cap.raw, raw[:1].detach()
        if got is None or got.shape != want.shape:
            return self.model, self.layer
        tol = 1e-3 * float(want.abs().max()) + 1e-4
        ok = bool(torch.isfinite(got).all()) and float((got.float() - want.float()).abs().max()) <= tol
        return (net, lay) if ok else (self.model, self.layer)

    def weights(self, A, G, x, logits, target, extras=None):
        with self.capture() as cap, torch.inference_mode():  # the raw (un-reshaped) layer output
            self.model(x)
        return self._weights(A, G, x, logits, target, {} if extras is None else extras, cap.raw.clone())

    def _weights(self, A, G, x, logits, target, extras, raw):
        y = class_score(logits, target, self.score).float()
        B, K = A.shape[:2]
        ablated = torch.empty(B, K, device=x.device)
        ks_all = torch.arange(K, device=x.device)
        net, lay = self._network(x, raw)
        with torch.inference_mode():
            for b in range(B):  # nothing in these loops waits for the device
                value = self._value(raw[b:b + 1])
                for sl in chunks(K, self.batch_size):
                    ks = ks_all[sl]
                    rep = self._ablated(raw[b:b + 1], ks, value)
                    with LayerCapture(lay, replace=lambda out, rep=rep: rep):
                        try:
                            lg = net(x[b:b + 1])
                            if lg.shape[0] != len(ks):
                                raise RuntimeError("batch did not broadcast")
                        except RuntimeError:
                            lg = net(x[b:b + 1].expand(len(ks), *x.shape[1:]))
                    ablated[b, sl] = class_score(lg, target[b].expand(len(ks)), self.score).float()
        ablated = ablated.clone()
        extras["scores"] = ablated
        return (y[:, None] - ablated) / y[:, None]
