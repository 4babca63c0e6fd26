"""CA-Stream: a cross-attention stream in parallel to a frozen CNN replacing GAP (thesis ch.3).

``CAStream.wrap(model)`` captures the backbone's stage outputs ``F_0..F_L`` with forward hooks,
runs the stream ``q_{l+1} = W_l CA_l(q_l, F_l)`` (eq. 3.7) from stage ``start_stage`` to the
features pooled by GAP, and substitutes ``q_{L+1}`` for the output of the backbone's own global
pooling module, so that the *same* classifier head (ConvNeXt's LayerNorm included) follows.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from typing import Sequence

import torch
import torch.nn as nn

from ..core.devices import runs_on_model
from ..models.zoo import info as model_info
from ..errors import ConfigError, InputError, LayerError
from .block import CABlock, ProjCABlock

_POOL_TYPES = (nn.AdaptiveAvgPool2d,)


def _is_pool(m: nn.Module) -> bool:
    if isinstance(m, _POOL_TYPES):
        return True
    return type(m).__name__ == "SelectAdaptivePool2d"


def _find_pool(model: nn.Module) -> str | None:
    """Name of the global pooling module feeding the classifier: the last adaptive avg pool."""
    names = [n for n, m in model.named_modules() if n and _is_pool(m)]
    # outermost only: timm's SelectAdaptivePool2d holds an inner AdaptiveAvgPool2d `.pool`
    names = [n for n in names if not any(n.startswith(o + ".") for o in names)]
    return names[-1] if names else None


class CAStream(nn.Module):
    """A frozen backbone + classifier whose GAP is replaced by a learned CA-Stream.

    Build it with :meth:`wrap`. ``forward(x, target=None)`` returns logits; ``x`` is a normalized
    batch as for the backbone. Trainable parameters are the stream's only (``stream_parameters``).

    Attributes: ``points`` (backbone module names whose outputs feed the stream; the last one is the
    input of the pooling module), ``dims`` (their channel widths), ``attentions`` (the attention
    maps of the last forward, one (B, h, w) per point, detached), ``xaikit`` (a copy of the
    backbone's metadata with layer names valid in this module, e.g. ``backbone.layer4``).
    """

    def __init__(self, backbone: nn.Module, points: Sequence[str], dims: Sequence[int], out_dim: int,
                 pool: str | None, classifier: str | None, last_from_pool: bool, variant: str = "ca",
                 class_specific: bool = False, num_classes: int | None = None, placement: str = ""):
        super().__init__()
        if variant not in ("ca", "proj_ca"):
            raise ConfigError(f"variant={variant!r} is not known; use 'ca' (eq. 3.3) or 'proj_ca' (eq. 3.8)")
        self.backbone = backbone
        self.points = list(points)
        self.dims = [int(d) for d in dims]
        self.out_dim = int(out_dim)
        self.pool_name = pool
        self.classifier_name = classifier
        self.last_from_pool = bool(last_from_pool)
        self.variant = variant
        self.class_specific = bool(class_specific)
        self.placement = placement
        block = CABlock if variant == "ca" else ProjCABlock
        outs = self.dims[1:] + [self.out_dim]
        self.blocks = nn.ModuleList([block(d, o) for d, o in zip(self.dims, outs)])
        n_q = int(num_classes) if class_specific else 1
        if class_specific and not num_classes:
            raise ConfigError("class_specific=True needs the number of classes (model.xaikit.num_classes)")
        self.query = nn.Parameter(torch.zeros(n_q, self.dims[0]))
        self.attentions: list[torch.Tensor] = []
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()

    # ------------------------------------------------------------------------------ building
    @classmethod
    def wrap(cls, model: nn.Module, start_stage: int = 0, variant: str = "ca", class_specific: bool = False,
             init: str = "paper", seed: int | None = 0, pool: str | None = None,
             stages: Sequence[str] | None = None) -> "CAStream":
        """Wrap a model: frozen backbone and classifier, trainable stream from ``start_stage`` on.

        ``start_stage``: index into the stream points ``S0..S_L`` (``model.xaikit.stages``; for
        ResNets the stem point is taken after the max-pool, as in the thesis; when the last stage is
        not what GAP pools, e.g. EfficientNet's ``conv_head``, that pooled input is the last point).
        Negative values count from the end: ``-1`` is the single-block ``S_L - S_L`` placement.
        ``variant``: ``"ca"`` (eq. 3.3) or ``"proj_ca"`` (eq. 3.8). ``class_specific``: one
        learnable initial query per class (label at training, baseline prediction at inference).
        ``init``: ``"paper"`` (q0 ~ N(1, 1), Xavier-uniform projections, zero biases, as the
        authors' code) or ``"gap"`` (q0 = 0, last projection the identity and the projection before
        it zero, so the wrapped model starts exactly equal to the GAP model).
        The backbone is frozen in place (``requires_grad=False``) and kept in eval mode.
        """
        inf = model_info(model)
        if inf.is_vit:
            raise ConfigError("CA-Stream is defined for convolutional networks (thesis ch.3); a ViT already "
                              "pools with its CLS token - use the raw_attention attributor instead")
        mods = dict(model.named_modules())
        stage_names = list(stages) if stages is not None else list(inf.stages)
        if not stage_names:
            raise ConfigError(f"model {inf.name!r} has no stage metadata (model.xaikit.stages is empty); "
                              "pass stages=[...] with the module names ending each stage")
        for s in stage_names:
            if s not in mods:
                raise LayerError(f"stage {s!r} is not a module of {inf.name!r}; valid names: see "
                                 "xaikit.models.list_layers(model)")
        # thesis / authors' code: the ResNet stem point is after the max-pool (Res-0, 56x56 at 224 px)
        stage_names = ["maxpool" if s == "act1" and isinstance(mods.get("maxpool"), nn.MaxPool2d) else s
                       for s in stage_names]
        pool = pool if pool is not None else _find_pool(model)
        if pool is not None and pool not in mods:
            raise LayerError(f"pool={pool!r} is not a module of {inf.name!r}")
        if pool is None and (inf.classifier is None or inf.feature_layer is None):
            raise ConfigError(f"cannot find the global pooling of {inf.name!r}: no adaptive average pool module "
                              "and no classifier/feature_layer metadata; pass pool='<module name>'")

        # probe once: channel widths, and whether the last stage output is what GAP pools
        size = max(16, min(int(inf.input_size or 64), 64))
        dev = next(iter(model.parameters())).device
        outs: dict[str, torch.Tensor] = {}
        hooks = [mods[s].register_forward_hook(lambda m, i, o, s=s: outs.__setitem__(s, o)) for s in stage_names]
        if pool is not None:
            hooks.append(mods[pool].register_forward_hook(
                lambda m, i, o: outs.__setitem__("__pool_in__", i[0])))
        else:
            hooks.append(mods[inf.feature_layer].register_forward_hook(
                lambda m, i, o: outs.__setitem__("__pool_in__", o)))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, size, size, device=dev))
        finally:
            for h in hooks:
                h.remove()
            model.train(was_training)
        for s in stage_names:
            if s not in outs or not isinstance(outs[s], torch.Tensor) or outs[s].dim() != 4:
                got = tuple(outs[s].shape) if isinstance(outs.get(s), torch.Tensor) else type(outs.get(s)).__name__
                raise ConfigError(f"stage {s!r} of {inf.name!r} does not output a (B, C, h, w) feature map "
                                  f"(got {got}); CA-Stream needs convolutional stages")
        pin = outs["__pool_in__"]
        last = stage_names[-1]
        last_same = outs[last] is pin or (outs[last].shape == pin.shape and torch.equal(outs[last], pin))
        all_points = stage_names[:-1] + ["__pool_in__"] if last_same else stage_names + ["__pool_in__"]
        all_dims = [int(outs[s].shape[1]) for s in all_points]
        n = len(all_points)
        if not -n <= int(start_stage) < n:
            raise ConfigError(f"start_stage={start_stage} is out of range: {inf.name!r} has stream points "
                              f"S0..S{n - 1}; use 0..{n - 1} (or -1 for the last only)")
        start = int(start_stage) % n
        points, dims = all_points[start:], all_dims[start:]
        out_dim = dims[-1]
        stream = cls(model, points, dims, out_dim, pool=pool, classifier=inf.classifier,
                     last_from_pool=pool is not None, variant=variant, class_specific=class_specific,
                     num_classes=inf.num_classes, placement=f"S{start}-S{n - 1}")
        stream.to(dev)
        stream.reset_parameters(init=init, seed=seed)
        stream.xaikit = _prefixed_info(inf, stream)
        return stream

    def reset_parameters(self, init: str = "paper", seed: int | None = 0) -> None:
        """Initialize the stream (see :meth:`wrap` for ``init``), deterministically given ``seed``."""
        if init not in ("paper", "gap"):
            raise ConfigError(f"init={init!r} is not known; use 'paper' or 'gap'")
        g = torch.Generator(device="cpu")
        g.manual_seed(int(seed) if seed is not None else torch.seed())
        with torch.no_grad():
            for blk in self.blocks:
                for lin in [m for m in blk.modules() if isinstance(m, nn.Linear)]:
                    bound = math.sqrt(6.0 / (lin.in_features + lin.out_features))  # xavier_uniform_
                    lin.weight.copy_(torch.rand(lin.weight.shape, generator=g) * 2 * bound - bound)
                    if lin.bias is not None:
                        lin.bias.zero_()
            if init == "paper":
                self.query.copy_(1.0 + torch.randn(self.query.shape, generator=g))
            else:
                self.query.zero_()
                last = self.blocks[-1]
                if last.proj.in_features != last.proj.out_features:
                    raise ConfigError("init='gap' needs the last projection to be square")
                last.proj.weight.copy_(torch.eye(last.proj.in_features))
                if isinstance(last, ProjCABlock):
                    last.key.weight.copy_(torch.eye(last.dim))
                    last.value.weight.copy_(torch.eye(last.dim))
                    last.value.bias.zero_()
                if len(self.blocks) > 1:  # q_L = 0: the last block pools uniformly (= GAP)
                    self.blocks[-2].proj.weight.zero_()

    # ------------------------------------------------------------------------------ running
    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm statistics never move
        return self

    def stream_parameters(self):
        """The trainable parameters (stream only; the backbone and classifier are frozen)."""
        return [p for n, p in self.named_parameters() if not n.startswith("backbone.")]

    def stream_state_dict(self) -> dict:
        """State of the stream alone (what a checkpoint needs; the backbone is loaded separately)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def load_stream_state_dict(self, state: dict) -> None:
        missing = [k for k in self.stream_state_dict() if k not in state]
        if missing:
            raise ConfigError(f"stream checkpoint lacks {missing[:4]}: it was saved for another placement, "
                              "variant or backbone")
        self.load_state_dict(state, strict=False)

    def _initial_query(self, b: int, target) -> torch.Tensor:
        if not self.class_specific:
            return self.query.expand(b, -1)
        return self.query[target]

    def _run_stream(self, feats: list[torch.Tensor], target) -> torch.Tensor:
        q = self._initial_query(feats[0].shape[0], target)
        atts = []
        for blk, f in zip(self.blocks, feats):
            q, a = blk(q, f)
            atts.append(a)
        self._atts = atts
        return q

    def forward(self, x: torch.Tensor, target=None) -> torch.Tensor:
        """Logits of the classifier on the stream's global representation ``q_{L+1}`` (eq. 3.7).

        ``target`` only matters for the class-specific variant: the class whose query starts the
        stream ((B,) long; training uses the label). None: the baseline (GAP) prediction.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"expected a normalized image batch (B, 3, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if not self.training and torch.is_grad_enabled() and not x.requires_grad:
            # frozen backbone: without this no activation would carry gradients for Grad-CAM & co
            x = x.detach().requires_grad_(True)
        if self.class_specific:
            target = self._resolve_target(x, target)
        mods = dict(self.backbone.named_modules())
        feats: dict[str, torch.Tensor] = {}
        hooks = self._capture(mods, feats)
        try:
            if self.last_from_pool:
                def pool_hook(m, inp, out):
                    q = self._run_stream([feats[s] for s in self.points[:-1]] + [inp[0]], target)
                    return q.reshape(out.shape)
                hooks.append(mods[self.pool_name].register_forward_hook(pool_hook))
            else:
                def clf_hook(m, inp):
                    q = self._run_stream([feats[s] for s in self.points], target)
                    return (q.reshape(inp[0].shape),) + tuple(inp[1:])
                hooks.append(mods[self.classifier_name].register_forward_pre_hook(clf_hook))
            out = self.backbone(x)
        finally:
            for h in hooks:
                h.remove()
        self.attentions = [a.detach() for a in self._atts]
        return out

    def _capture(self, mods: dict, feats: dict, pool_input: bool = False) -> list:
        """Hooks that store the backbone's outputs at the stream's points in ``feats`` (by point name): every
        point before the last, and the last one (``"__pool_in__"``) where no pooling module is replaced (the
        feature layer's output) or, with ``pool_input``, the pooling module's input."""
        hooks = [mods[s].register_forward_hook(lambda m, i, o, s=s: feats.__setitem__(s, o)) for s in self.points[:-1]]
        if not self.last_from_pool:
            hooks.append(mods[self.backbone.xaikit.feature_layer].register_forward_hook(
                lambda m, i, o: feats.__setitem__("__pool_in__", o)))
        elif pool_input:
            hooks.append(mods[self.pool_name].register_forward_hook(
                lambda m, i, o: feats.__setitem__("__pool_in__", i[0])))
        return hooks

    @torch.no_grad()
    def stream_inputs(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """What the stream reads of a normalized batch: the backbone's features at :attr:`points` (the last
        one the input of its pooling), and the backbone's own (GAP) logits, from one frozen forward."""
        feats: dict[str, torch.Tensor] = {}
        hooks = self._capture(dict(self.backbone.named_modules()), feats, pool_input=True)
        try:
            logits = self.backbone(x)
        finally:
            for h in hooks:
                h.remove()
        return [feats[s] for s in self.points], logits

    def logits_from(self, feats: Sequence[torch.Tensor], target=None, gap_logits: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """Logits of the stream run on :meth:`stream_inputs`' features, through the frozen classifier.
        ``target`` as for :meth:`forward`; where the class-specific stream falls back to the baseline
        prediction it reads it from ``gap_logits`` (:meth:`stream_inputs`' second value) instead of running the
        backbone. Equal to :meth:`forward` where the backbone's pooled vector goes straight to its classifier
        (flattened): a caller reusing features checks that on one batch (:func:`xaikit.training.stream.train`)."""
        if self.classifier_name is None:
            raise ConfigError("logits_from needs the backbone's classifier (model.xaikit.classifier)")
        if self.class_specific:
            target = self._resolve_target(None, target, gap_logits, batch=feats[0].shape[0])
        q = self._run_stream(list(feats), target)
        return dict(self.backbone.named_modules())[self.classifier_name](q.reshape(q.shape[0], -1))

    def _resolve_target(self, x, target, gap_logits: torch.Tensor | None = None, batch: int | None = None):
        """The class-specific stream's starting classes: ``target`` as (B,) long, or for none / multi-hot
        labels the baseline prediction (of ``gap_logits`` when given, else of a backbone pass over ``x``)."""
        b = x.shape[0] if x is not None else int(batch)
        if target is not None:
            t = torch.as_tensor(target, device=self.query.device)
            if t.dim() == 0:
                t = t.expand(b)
            if t.dim() == 1 and t.dtype in (torch.int64, torch.int32) and len(t) == b:
                return t.long()
            if not (t.dim() == 2 and t.shape == (b, self.query.shape[0])):
                raise InputError(f"target for the class-specific stream must be an int or a (B,) class index "
                                 f"tensor, got shape {tuple(t.shape)}")
            # multi-hot labels: fall back to the baseline prediction (one query is forwarded)
        if gap_logits is None:
            if x is None:
                raise ConfigError("the class-specific stream needs a target or the baseline logits (gap_logits)")
            gap_logits = self.baseline_logits(x)
        return gap_logits.argmax(1)

    @torch.no_grad()
    def baseline_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the unmodified backbone (GAP pooling)."""
        return self.backbone(x.detach())

    @runs_on_model("x", model="self")
    def attention(self, x: torch.Tensor, stage: int = -1, upsample: bool = False) -> torch.Tensor:
        """Class-agnostic raw attention ``a`` of a stream block, (B, h, w) (thesis Fig. 3.3/3.4).

        ``stage=-1`` is the attention that pools the last features (the one replacing GAP). Raw
        weights sum to 1 per image; ``upsample=True`` resizes to the input and rescales each map
        to [0, 1] for display, like the saliency maps of the attributors.
        """
        with torch.no_grad():
            was = self.training
            self.eval()
            try:
                self.forward(x)
            finally:
                self.train(was)
        a = self.attentions[stage]
        if upsample:
            a = nn.functional.interpolate(a[:, None], size=x.shape[-2:], mode="bilinear",
                                          align_corners=False)[:, 0]
            lo = a.flatten(1).min(1).values.view(-1, 1, 1)
            hi = a.flatten(1).max(1).values.view(-1, 1, 1)
            a = (a - lo) / (hi - lo).clamp_min(1e-12)
        return a

    def extra_repr(self) -> str:
        return (f"placement={self.placement}, variant={self.variant}, class_specific={self.class_specific}, "
                f"points={self.points}, dims={self.dims}")


def _prefixed_info(inf, stream: CAStream):
    def pre(n):
        return None if n is None else f"backbone.{n}"

    return dataclasses.replace(
        inf, name=f"{inf.name}+ca_stream", default_layer=pre(inf.default_layer),
        feature_layer=pre(inf.feature_layer), classifier=pre(inf.classifier),
        stages=[pre(s) for s in inf.stages], class_names=copy.copy(inf.class_names),
        source=f"{inf.source}+xaikit.streams")


# ---------------------------------------------------------------------------------- complexity
def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def gflops(model: nn.Module, input_size: int = 224, batch: int = 1) -> float:
    """GFLOPs of one forward pass (``torch.utils.flop_counter``; 2 FLOPs per multiply-add,
    the convention of Table 3.3: ResNet-50 = 8.27 GFLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    dev = next(iter(model.parameters())).device
    was = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as fc:  # (grad mode on: the module tracker needs grad_fns)
            model(torch.zeros(batch, 3, input_size, input_size, device=dev))
    finally:
        model.train(was)
    return fc.get_total_flops() / 1e9 / batch


def complexity(stream: CAStream, input_size: int = 224, flops: bool = True) -> dict:
    """Table 3.3 columns for a wrapped model: parameters (backbone, stream, total, stream % of
    backbone) and GFLOPs of the GAP model and of the CA model."""
    n_stream = sum(p.numel() for p in stream.stream_parameters())
    n_back = count_parameters(stream.backbone)
    out = {"params_backbone": n_back, "params_stream": n_stream, "params_total": n_back + n_stream,
           "param_pct": 100.0 * n_stream / n_back, "placement": stream.placement}
    if flops:
        out["gflops_gap"] = gflops(stream.backbone, input_size)
        out["gflops_ca"] = gflops(stream, input_size)
    return out
