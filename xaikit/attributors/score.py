"""Gradient-free CAM weights from many forward passes: Score-CAM and Ablation-CAM.

Both are batched over images x channels: the (image, channel) pairs are flattened and evaluated in
chunks of ``batch_size`` forward passes under :func:`torch.inference_mode` (no per-image Python loop
for Score-CAM; one loop over chunks).  The combination itself is :func:`.cam.combine`.

Reproducing the grad-cam package (``pytorch_grad_cam``): Score-CAM with ``score="logit"``,
``mask_space="input"``, ``align_corners=True``, ``minmax_eps=1e-8`` (all defaults except the eps,
whose effect is ~1e-8); Ablation-CAM with ``ablation="zero"`` on a layer whose activations have
minimum 0 (post-ReLU), or ``ablation="gradcam"`` elsewhere (grad-cam then writes ``min(A) - 1e7``).
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import chunks, class_score, register
from .cam import CAMFamily, channel_minmax, mask_input, upsample


@register("scorecam", "score_cam")
class ScoreCAM(CAMFamily):
    """Score-CAM (Wang et al. 2020, thesis eq. 1.6-1.7): ``w = softmax_k(f(x * n(up(A^k)))_c)``.

    The baseline term ``f(x_b)_c`` of eq. 1.6 is constant over k, so the softmax ignores it.
    ``score``: ``"logit"`` (thesis notation; grad-cam) or ``"softmax"`` (original paper code);
    ``channel_softmax=False`` uses the raw scores as weights.  Masks: bilinear upsampling
    (``align_corners`` as grad-cam's ``UpsamplingBilinear2d``), per-channel min-max (a constant map
    gives the all-zero mask, thesis ``n(0) := 0``; ``minmax_eps>0`` adds it to the denominator instead).
    """

    needs_grads = False
    defaults = {"relu": True, "score": "logit", "mask_space": "input", "align_corners": True,
                "channel_softmax": True, "minmax_eps": 0.0}

    def __init__(self, model, layer=None, batch_size: int | None = None, **options):
        super().__init__(model, layer=layer, batch_size=batch_size, **options)

    def channel_scores(self, A, x, target) -> torch.Tensor:
        """(B, K) class scores of the images masked by each normalized, upsampled channel.

        A constant channel gives the all-zero mask whatever the image, so all of them share one
        forward pass (exact; after ReLU often 40-50% of the channels of a deep layer are constant).
        """
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
                zero = mask_input(x[:1], torch.zeros_like(x[:1, :1]), self.info, self.mask_space)
                lz = f(zero).expand(B * K, -1)
                out[:] = class_score(lz, tgt, self.score).float()
            for sl in chunks(live.numel(), self.batch_size):
                rows = live[sl]
                m = upsample(flat[rows], x.shape[-2:], align_corners=self.align_corners)
                m = channel_minmax(m, self.minmax_eps)
                logits = f(mask_input(x[bidx[rows]], m, self.info, self.mask_space))
                out[rows] = class_score(logits, tgt[rows], self.score).float()
        self.n_forward = int(live.numel()) + int(live.numel() < B * K)
        return out.view(B, K)

    def weights(self, A, G, x, logits, target):
        s = self.channel_scores(A, x, target)
        self.last_scores = s
        return s.softmax(1) if self.channel_softmax else s


@register("ablationcam", "ablation_cam")
class AblationCAM(CAMFamily):
    """Ablation-CAM (Desai & Ramaswamy 2020, thesis eq. 1.9): ``w_k = (y_c - y_c^k) / y_c`` where
    ``y_c^k`` is the score with channel k of the layer's output ablated.

    The network before the layer runs once per chunk of ``batch_size`` (default 256) ablated
    channels of one image: a forward hook returns, in place of the
    layer's output, a batch of ablated copies (the rest of the network broadcasts the single-image
    skip connections; when that fails the image is repeated instead).
    ``ablation``: ``"zero"`` (paper) or ``"gradcam"`` (grad-cam's ``min(A) - 1e7`` when min(A) != 0).
    ``score``: ``"logit"`` (paper, grad-cam) or ``"softmax"``.
    """

    needs_grads = False
    defaults = {"relu": True, "score": "logit", "ablation": "zero"}

    def __init__(self, model, layer=None, batch_size: int = 256, **options):
        super().__init__(model, layer=layer, batch_size=batch_size, **options)
        if self.ablation not in ("zero", "gradcam"):
            raise ConfigError(f"ablationcam: ablation={self.ablation!r}, use 'zero' or 'gradcam'")

    def _ablated(self, raw_b, ks):
        """Copies of one image's raw layer output (1, ...) with channel ks[i] ablated in copy i."""
        n = len(ks)
        out = raw_b.expand(n, *raw_b.shape[1:]).clone()
        cdim = 1 if out.dim() == 4 else out.dim() - 1  # conv maps (B,C,h,w) or tokens (B,N,C)
        value = 0.0
        if self.ablation == "gradcam":
            mn = raw_b.min()
            value = 0.0 if mn == 0 else float(mn) - 1e7
        idx = torch.arange(n, device=out.device)
        if cdim == 1:
            out[idx, ks] = value
        else:
            out[idx, :, ks] = value
        return out

    def weights(self, A, G, x, logits, target):
        raw = self._raw  # the raw (un-reshaped) layer output of the clean pass
        y = class_score(logits, target, self.score).float()
        B, K = A.shape[:2]
        ablated = torch.empty(B, K, device=x.device)
        ks_all = torch.arange(K, device=x.device)
        with torch.inference_mode():
            for b in range(B):
                for sl in chunks(K, self.batch_size):
                    ks = ks_all[sl]
                    rep = self._ablated(raw[b:b + 1], ks)
                    with self.capture(replace=lambda out, rep=rep: rep):
                        try:
                            lg = self.model(x[b:b + 1])
                            if lg.shape[0] != len(ks):
                                raise RuntimeError("batch did not broadcast")
                        except RuntimeError:
                            lg = self.model(x[b:b + 1].expand(len(ks), *x.shape[1:]))
                    ablated[b, sl] = class_score(lg, target[b].expand(len(ks)), self.score).float()
        self.last_scores = ablated
        return (y[:, None] - ablated) / y[:, None]
