"""Inference twin of a model: BatchNorm folded into the convolution before it, weights channels-last.

The perturbation methods and metrics (Score-CAM, Group-CAM, RISE, Opti-CAM, Extremal Perturbation,
insertion/deletion, AOPC, AD/AG/AI, ...) spend nearly all their time in forward passes of perturbed
copies of the input.  They run them through :func:`inference_twin` of the model instead of the model
itself: an eval-mode copy where

* every ``Conv2d -> BatchNorm2d`` pair (consecutive children of one module, also timm's
  ``BatchNormAct2d``, whose activation is kept) is folded into one convolution,
  ``W' = W * g / sqrt(v + eps)``, ``b' = (b - mu) * g / sqrt(v + eps) + beta`` — exact in eval mode;
* 4-D weights are stored channels-last, which oneDNN (CPU) and cuDNN run faster.

EfficientNet-Lite0 at 224 px on a 2-core CPU: 1.8x faster per image in chunks of 8 (11.6 vs 20.6 ms),
2.6-2.9x in chunks of 16-64; ResNet-50 1.3-1.6x (``benchmarks/forward.md``).  Outputs equal the
model's up to float rounding (|Δ logit| ~ 1e-5).

Safety, since results must never be silently wrong:

* the twin is checked on the first real input against the model itself (logits within
  ``1e-3 * max|logit| + 1e-4``); if it disagrees (a convolution whose output a BatchNorm does not
  consume alone, a custom convolution, a hook that changes an output), a folding-free channels-last
  copy is tried, then the model itself is used;
* a model in training mode, a vision transformer (nothing to fold) or ``XAIKIT_FAST=0`` / the
  :func:`disabled` context give the model itself;
* the twin is rebuilt whenever a parameter or buffer of the model changes (in-place updates bump
  their version counters: optimizer steps, ``load_state_dict``, ``.to(device)``);
* no twin is built while one of xaikit's layer-capture hooks sits on the model (the model itself is
  used), and none is copied into a twin; other hooks are copied, and the check above covers them;
  pass counters (:func:`observe`, used by ``count_passes``) see the twin's passes as the model's.

Choosing: every method that runs perturbed copies of its input (Score-CAM, Ablation-CAM, Group-CAM, Opti-CAM,
RISE, Extremal Perturbation) takes ``twin: bool = True``; ``twin=False`` runs them on the model itself
(``xk.attributors.create("scorecam", model, twin=False)``).  :func:`disabled` switches the twin off for a
whole block of code at once (benchmarks comparing the two use it); ``XAIKIT_FAST=0`` for a whole process.
Either way the model itself runs, in full precision.

Layer hooks belong on the model, not on the twin: methods that capture or replace a layer's output
(Grad-CAM's activations, Ablation-CAM) do that pass on the model itself.

Reduced precision (the GPU fast path):

* the setting ``precision`` is ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"auto"`` (**default**: bf16 for the
  perturbation methods on a CUDA device that supports it and on a CPU that runs bf16 natively,
  AVX512-BF16 or AMX (:func:`xaikit.config.cpu_bf16`; ``XAIKIT_CPU_BF16=0`` / ``1`` overrides), where it
  runs them ~2x faster; fp32 elsewhere, where emulated bf16 would be slower.  The metrics' forwards run in
  bf16 under auto only once a check of their own passed (:class:`CheckedReduced`, :func:`metric_runner`: the
  fp32 and bf16 forwards of each metric's first 64 perturbed images agree in probability and logit on
  average): bf16 logits moved EfficientNet-Lite0's mean insertion AUC on the 7 bundled photos at 224 px by
  0.8 points, above the 0.5 bar, and that check sends it to fp32, while the small synthetic models pass
  (means within 0.08); an explicit bf16 / fp16 reaches the metrics unchecked).
  Set it for a block with the :func:`precision` context manager (blocks nest, the
  innermost wins), for a process with ``XAIKIT_PRECISION``, for a batch run with ``python -m xaikit.run
  --precision``; an invalid value is a ConfigError naming the valid ones;
* under bf16 / fp16, :func:`inference_twin` returns a :class:`ReducedPrecision` network: the fp32 twin
  above (or, for a vision transformer or wherever no twin applies, the model itself) run under
  ``torch.autocast(device_type, dtype)``, returning float32 logits; gradients with respect to the input
  flow through it, as through the twin;
* it is checked, like the twin, on the first images of the first real input against the model in fp32:
  every value finite, no softmax probability off by more than 0.05, the logits of each row correlated
  with the fp32 ones at >= 0.99 (scale-free, so it also catches a model whose probabilities are all near
  1/C), and the same top-1 class wherever the fp32 top-1 leads the second by more than 0.05.  bf16 keeps 8
  significant bits (unit roundoff 2^-9): on EfficientNet-Lite0 at 224 px the logits then move by up to
  0.1-0.5 and the probabilities by up to 0.019 on the 11 bundled photos (top-1 unchanged, even at a
  0.0006 lead), so 0.01 would reject a sound bf16 twin on half of them, while a broken one (overflow,
  cancellation, a forward that fails under autocast) is off by O(1).  When the check fails the fp32 twin
  is used; the outcome is cached per (model state, precision, device) and :func:`describe` says it;
* methods that cannot keep their results under bf16 ask for ``precision="fp32"`` themselves
  (``Attributor.reduced_precision = False``; their docstrings give the measurement): Ablation-CAM,
  Opti-CAM, Extremal Perturbation, ViT-ReciproCAM.  ``tests/test_precision.py`` holds the fidelity bar
  (maps Pearson >= 0.999 per image, metric values within 0.5 points) that decides it; Score-CAM,
  Group-CAM and RISE run in bf16, the metrics where their own check passes.
"""
from __future__ import annotations

import contextlib
import copy
import os
import weakref

import torch
import torch.nn as nn

from .. import config as _config
from ..core.targets import output_logits
from .hooks import LayerCapture

_TWINS: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()
#: model -> {observer hook: [handles on the model's twins]} (see :func:`observe`)
_OBSERVERS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_DISABLED = 0
_PROBING = False


def enabled() -> bool:
    """False under :func:`disabled` or with the environment variable ``XAIKIT_FAST=0``."""
    return _DISABLED == 0 and os.environ.get("XAIKIT_FAST", "1") not in ("0", "false", "no")


@contextlib.contextmanager
def disabled():
    """Within the block every xaikit forward pass runs on the model itself (for comparisons and
    benchmarks; to choose per method, pass ``twin=False`` to the method instead)."""
    global _DISABLED
    _DISABLED += 1
    try:
        yield
    finally:
        _DISABLED -= 1


@contextlib.contextmanager
def observe(model: nn.Module, hook):
    """Register the forward hook ``hook(module, inputs, output)`` on ``model`` *and* on its inference
    twins (the current one and any built inside the block), so that whoever counts or times the
    passes of a model sees those its twin runs for it.  The twin's check passes are not shown."""

    def observer(mod, args, out):
        if not _PROBING:
            return hook(mod, args, out)

    observer._xaikit_observer = True
    handles = [model.register_forward_hook(observer)]
    twins = _OBSERVERS.setdefault(model, {})
    twins[observer] = handles
    hit = _TWINS.get(model)
    if hit is not None and hit[1] is not None:
        handles.append(hit[1].register_forward_hook(observer))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        twins.pop(observer, None)


def _state_key(model: nn.Module) -> tuple:
    key = []
    for t in list(model.parameters()) + list(model.buffers()):
        try:
            key.append((id(t), t.data_ptr(), t._version, t.dtype, tuple(t.shape)))
        except RuntimeError:  # an inference-mode tensor has no version counter
            key.append((id(t), t.data_ptr(), -1, t.dtype, tuple(t.shape)))
    return tuple(key)


def _is_plain_conv(m: nn.Module) -> bool:
    # nn.Conv2d and timm's Conv2dSame (padding computed in forward, weights used as they are);
    # weight-standardized or otherwise re-parameterized convolutions are not folded
    return type(m) is nn.Conv2d or type(m).__name__ == "Conv2dSame"


def _bn_replacement(bn: nn.Module) -> nn.Module | None:
    if not (bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None):
        return None
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    if type(bn).__name__ == "BatchNormAct2d" and hasattr(bn, "act") and hasattr(bn, "drop"):
        return nn.Sequential(bn.drop, bn.act)
    return None


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold every ``Conv2d -> BatchNorm2d`` pair of consecutive children in place (eval-mode
    semantics); returns the number folded.  Check the result: the pairing assumes the children's
    order is the data flow (true of timm, torchvision and xaikit's models)."""
    n = 0
    for parent in list(model.modules()):
        kids = list(parent.named_children())
        for (_, conv), (bn_name, bn) in zip(kids, kids[1:]):
            if not (_is_plain_conv(conv) and isinstance(bn, nn.BatchNorm2d)):
                continue
            if bn.num_features != conv.out_channels or conv.weight.dim() != 4:
                continue
            rep = _bn_replacement(bn)
            if rep is None:
                continue
            scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
            b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
            conv.bias = nn.Parameter((b - bn.running_mean) * scale + shift, requires_grad=False)
            setattr(parent, bn_name, rep)
            n += 1
    return n


def _capture_hooks(model: nn.Module):
    """(hook dict, key) of every xaikit layer-capture hook on the model's modules."""
    for m in model.modules():
        for d in (m._forward_hooks, m._forward_pre_hooks):
            for k, h in list(d.items()):
                if isinstance(getattr(h, "__self__", None), LayerCapture):
                    yield d, k


def _strip_xaikit_hooks(model: nn.Module) -> None:
    """Remove layer captures and observers (re-attached by :func:`observe`) from a fresh copy."""
    for d, k in list(_capture_hooks(model)):
        del d[k]
    for m in model.modules():
        for d in (m._forward_hooks, m._forward_pre_hooks):
            for k in [k for k, h in d.items() if getattr(h, "_xaikit_observer", False)]:
                del d[k]


def _agrees(twin: nn.Module, model: nn.Module, probe: torch.Tensor) -> bool:
    global _PROBING
    _PROBING = True
    try:
        with torch.inference_mode():
            a, b = twin(probe), model(probe)
    except Exception:
        return False
    finally:
        _PROBING = False
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
        return False
    a, b = a.float(), b.float()
    tol = 1e-3 * float(b.abs().max()) + 1e-4
    return bool(torch.isfinite(a).all()) and float((a - b).abs().max()) <= tol


def _copy(model: nn.Module) -> nn.Module | None:
    """deepcopy, where tensors a module keeps as plain attributes (e.g. the last attention maps of a
    stream) that are not graph leaves, and cannot be deep-copied, are shared detached instead."""
    memo = {}

    def visit(v, depth=0):
        if isinstance(v, torch.Tensor):
            if not v.is_leaf:
                memo[id(v)] = v.detach()
        elif depth < 3 and isinstance(v, (list, tuple)):
            for e in v:
                visit(e, depth + 1)
        elif depth < 3 and isinstance(v, dict):
            for e in v.values():
                visit(e, depth + 1)

    for m in model.modules():
        for k, v in vars(m).items():
            if k not in ("_parameters", "_buffers", "_modules"):
                visit(v)
    try:
        return copy.deepcopy(model, memo)
    except Exception:  # noqa: BLE001 - a model that cannot be copied runs as it is
        return None


def _build(model: nn.Module, probe: torch.Tensor) -> tuple[nn.Module, str]:
    for fold in (True, False):
        twin = _copy(model)
        if twin is None:
            break
        _strip_xaikit_hooks(twin)
        twin.eval()
        for p in twin.parameters():
            p.requires_grad_(False)
        n = fold_batchnorm(twin) if fold else 0
        if fold and n == 0:
            continue  # nothing to fold: the channels-last copy below
        twin.to(memory_format=torch.channels_last)
        if _agrees(twin, model, probe):
            return twin, (f"{n} BatchNorm folded, " if n else "") + "channels-last"
    return model, "the model itself (its twin disagreed with it)"


def _fp32_twin(model: nn.Module, example: torch.Tensor | None) -> nn.Module:
    """The full-precision twin (or the model itself), built, checked and cached as the module docstring says."""
    inf = getattr(model, "xaikit", None)
    if getattr(inf, "is_vit", False) or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return model
    key = _state_key(model)
    hit = _TWINS.get(model)
    if hit is not None and hit[0] == key:
        return hit[1] if hit[1] is not None else model
    if example is None or next(_capture_hooks(model), None) is not None:
        return model  # never an unchecked twin, nor one checked against a model whose layer is hooked
    probe = example[:PROBE_ROWS].detach()
    twin, how = _build(model, probe)
    if twin is model:  # remembered as None: a value must not hold its weak key alive
        _TWINS[model] = (key, None)
        return model
    twin.xaikit_twin = how
    _TWINS[model] = (key, twin)
    for observer, handles in _OBSERVERS.get(model, {}).items():
        handles.append(twin.register_forward_hook(observer))
    return twin


def inference_twin(model: nn.Module, example: torch.Tensor | None = None, precision: str | None = None) -> nn.Module:
    """The fast forward-only twin of ``model`` (module docstring), or ``model`` itself where no twin
    applies.  ``example``: a batch of real inputs, used (its first two images) to check the twin
    when it is built.  Gradients with respect to the *input* flow through the twin as usual; its
    parameters are frozen.

    ``precision``: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"auto"``; None (default) = the current setting
    (:func:`precision` block, else ``XAIKIT_PRECISION``, else ``"auto"``: bf16 on a CUDA device that
    supports it or a CPU that runs it natively, fp32 elsewhere).  A reduced precision gives the fp32 twin run
    under ``torch.autocast`` (float32 logits out), checked on ``example`` against the model in fp32, or the
    fp32 twin where that check fails (section "Reduced precision")."""
    if not isinstance(model, nn.Module) or not enabled() or model.training or hasattr(model, "xaikit_twin"):
        return model  # (a twin is its own twin)
    device = _device_of(model, example)
    prec = resolve_precision(device, precision)
    base = _fp32_twin(model, example)
    if prec == "fp32":
        return base
    return _reduced(model, base, example, prec, device)


# ---------------------------------------------------------------------------- reduced precision
#: images of the first real input on which a twin is checked against the model
PROBE_ROWS = 2
#: the reduced-precision check (module docstring, "Reduced precision"): largest change of a softmax
#: probability, smallest Pearson correlation of a row of logits, top-1 margin above which the class must stay
REDUCED_PROB_TOL = 0.05
REDUCED_LOGIT_CORR = 0.99
REDUCED_TOP1_MARGIN = 0.05
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: model -> {(precision, device): (state key, wrapper or None, description)}
_REDUCED: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()

precision = _config.precision  # the context manager: ``with xaikit.models.fast.precision("bf16"): ...``
PRECISIONS = _config.PRECISIONS
PRECISION_ENV = _config.PRECISION_ENV


def _device_of(model: nn.Module, example: torch.Tensor | None = None) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return example.device if isinstance(example, torch.Tensor) else torch.device("cpu")


def _bf16_supported(device: torch.device) -> bool:
    if device.type == "cpu":
        return _config.cpu_bf16()
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    try:
        with torch.cuda.device(device):
            return bool(torch.cuda.is_bf16_supported())
    except Exception:  # noqa: BLE001 - an unknown device: no bf16
        return False


def resolve_precision(device=None, precision: str | None = None) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"``: what ``precision`` (None: the current setting,
    :func:`xaikit.config.precision_setting`) means on ``device`` (None: the CPU).  ``"auto"`` is bf16 on a
    CUDA device that supports it or a CPU that runs it natively (:func:`xaikit.config.cpu_bf16`) and fp32
    elsewhere; an invalid value is a ConfigError naming the valid ones."""
    setting = _config.precision_setting() if precision is None else _config.check_precision(precision)
    device = torch.device("cpu") if device is None else torch.device(device)
    return _config.resolve_precision(setting, device.type, _bf16_supported(device) if setting == "auto" else False)


class ReducedPrecision(nn.Module):
    """``net`` (an fp32 inference twin, or the model itself where no twin applies) run under
    ``torch.autocast(device_type, dtype)``; floating outputs come back as float32.  Gradients with respect
    to the input flow through it (autocast is differentiable).  Holds the model itself only weakly (the
    cache of twins must not keep a model alive)."""

    def __init__(self, net: nn.Module, device_type: str, precision: str, owner: nn.Module):
        super().__init__()
        if net is owner:
            self._ref = weakref.ref(net)
        else:
            self.twin = net
            self._ref = None
        self.device_type, self.precision = device_type, precision
        self.dtype = _DTYPES[precision]
        self.xaikit_twin = ""  # set by inference_twin once checked

    @property
    def net(self) -> nn.Module:
        """The full-precision network this one runs under autocast."""
        return self.twin if self._ref is None else self._ref()

    def autocast(self):
        """The ``torch.autocast`` context its forward passes run in (for code that runs parts of the
        network by hand, e.g. ViT-ReciproCAM's head)."""
        return torch.autocast(self.device_type, dtype=self.dtype)

    def forward(self, x):
        with self.autocast():
            out = self.net(x)
        return _as_float32(out)


def _as_float32(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (tuple, list)) and not hasattr(out, "_fields"):
        return type(out)(_as_float32(o) for o in out)
    if isinstance(out, dict) and type(out) is dict:
        return {k: _as_float32(v) for k, v in out.items()}
    return out


def autocast_of(net) -> contextlib.AbstractContextManager:
    """The autocast context of ``net`` when it is a :class:`ReducedPrecision` twin (also inside a thin
    wrapper with a ``.net``), else a context that changes nothing."""
    for _ in range(3):
        if isinstance(net, ReducedPrecision):
            return net.autocast()
        net = getattr(net, "net", None)
    return contextlib.nullcontext()


def full_precision(net) -> nn.Module:
    """The fp32 network inside a :class:`ReducedPrecision` twin (``net`` itself otherwise)."""
    return net.net if isinstance(net, ReducedPrecision) else net


def _comparable(fast_out, ref_out):
    """``(fast, ref)`` as float32 ``(B, C)`` logits when both are tensors of one 2-D shape with every value
    finite, else None (a reduced-precision output that cannot stand for the fp32 one)."""
    if not (isinstance(fast_out, torch.Tensor) and isinstance(ref_out, torch.Tensor)):
        return None
    if fast_out.shape != ref_out.shape or fast_out.dim() != 2:
        return None
    a, b = fast_out.detach().float(), ref_out.detach().float()
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        return None
    return a, b


def _reduced_agrees(fast_out, ref_out) -> bool:
    """The reduced-precision check on the probe rows (module docstring)."""
    pair = _comparable(fast_out, ref_out)
    if pair is None:
        return False
    a, b = pair
    pa, pb = a.softmax(1), b.softmax(1)
    if float((pa - pb).abs().max()) > REDUCED_PROB_TOL:
        return False
    if b.shape[1] >= 2:
        top = pb.topk(2, dim=1)
        sure = (top.values[:, 0] - top.values[:, 1]) > REDUCED_TOP1_MARGIN
        if bool((sure & (pa.argmax(1) != top.indices[:, 0])).any()):
            return False
        ac, bc = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        den = ac.norm(dim=1) * bc.norm(dim=1)
        corr = torch.where(den > 0, (ac * bc).sum(1) / den.clamp_min(1e-30), (ac - bc).abs().amax(1).eq(0).float())
        if float(corr.min()) < REDUCED_LOGIT_CORR:
            return False
    return True


def _reduced(model: nn.Module, base: nn.Module, example, prec: str, device: torch.device) -> nn.Module:
    key = _state_key(model)
    cache = _REDUCED.setdefault(model, {})
    slot = (prec, str(device))
    hit = cache.get(slot)
    if hit is not None and hit[0] == key and (hit[1] is None or hit[1].net is base):
        return hit[1] if hit[1] is not None else base
    if example is None or next(_capture_hooks(model), None) is not None:
        return base  # never an unchecked reduced twin (nor one checked against a hooked model)
    wrapper = ReducedPrecision(base, device.type, prec, model)
    probe = example[:PROBE_ROWS].detach()
    global _PROBING
    _PROBING = True
    try:
        with torch.inference_mode():
            ok = _reduced_agrees(output_logits(wrapper(probe)), output_logits(model(probe)))
    except Exception:  # noqa: BLE001 - a forward that breaks under autocast: full precision
        ok = False
    finally:
        _PROBING = False
    base_how = getattr(base, "xaikit_twin", None) or "the model itself"
    if not ok:
        cache[slot] = (key, None, f"{base_how}, fp32 ({prec} disagreed with the fp32 model on the first images)")
        return base
    wrapper.xaikit_twin = f"{base_how}, {prec} autocast"
    cache[slot] = (key, wrapper, wrapper.xaikit_twin)
    return wrapper


def describe(model: nn.Module, precision: str | None = None) -> str:
    """What :func:`inference_twin` currently gives for ``model`` (for provenance and benchmarks), at
    ``precision`` (None: the current setting) on the model's device: the fp32 twin's description (e.g.
    ``"49 BatchNorm folded, channels-last"``), followed under a reduced precision by ``", bf16 autocast"``,
    or by ``", fp32 (bf16 disagreed ...)"`` when the reduced twin failed its check."""
    prec = resolve_precision(_device_of(model), precision) if isinstance(model, nn.Module) else "fp32"
    if prec != "fp32":
        hit = _REDUCED.get(model, {}).get((prec, str(_device_of(model))))
        if hit is not None:
            return hit[2]
        return f"no {prec} twin built yet"
    hit = _TWINS.get(model)
    if hit is None:
        return "no twin built yet"
    return "the model itself (its twin disagreed with it)" if hit[1] is None else hit[1].xaikit_twin


# ------------------------------------------------------------------------- the metrics' checked bf16
#: rows (perturbed images) of a metric on which its reduced-precision forwards are compared with fp32 before
#: they are trusted, per (model state, metric, image size, precision, device)
METRIC_CHECK_ROWS = 64
#: the metric check: mean over the checked rows of the largest change of a softmax probability, and of a logit
METRIC_PROB_TOL = 0.003
METRIC_LOGIT_TOL = 0.05
#: model -> {(metric, H, W, precision, device): (state key, verdict True/False/None, rows, sum |dp|, sum |dl|)}
_METRIC_CHECKS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


class CheckedReduced(nn.Module):
    """A metric's forward passes under ``"auto"`` precision: the reduced-precision twin ``fast``, trusted only
    once it has matched the fp32 twin ``full`` on the metric's own first :data:`METRIC_CHECK_ROWS` perturbed
    images.  While the check runs, both are run and the fp32 outputs are returned (the checked rows are exact);
    then the verdict (mean over those rows of the largest |Δ probability| <= :data:`METRIC_PROB_TOL` and of the
    largest |Δ logit| <= :data:`METRIC_LOGIT_TOL`, every value finite) picks one of them for every later call of
    this metric on this model (state), image size, precision and device, across metric calls.

    Why per metric, on perturbed images: the probe of :func:`inference_twin` sees clean images, where a confident
    model's probabilities hardly move; the metrics score blurred, masked and half-deleted images.  Measured on
    Grad-CAM maps (64 images, 32 insertion/deletion steps): the synthetic ResNet-18 / MobileNet-V2 / DeiT
    change a probability by 0.0006-0.0019 on average (their mean AUCs by <= 0.08 points), EfficientNet-Lite0 on
    the 7 photos at 224 px by 0.0071 (its mean insertion AUC by up to 0.8 points with RISE maps): fp32."""

    def __init__(self, model: nn.Module, full: nn.Module, fast: nn.Module, slot: tuple):
        super().__init__()
        self.full, self.fast = full, fast
        self._model = weakref.ref(model)
        self.slot = slot
        self.xaikit_twin = getattr(fast, "xaikit_twin", "")

    def _state(self):
        model = self._model()
        if model is None:
            return None
        key = _state_key(model)
        cache = _METRIC_CHECKS.setdefault(model, {})
        hit = cache.get(self.slot)
        if hit is None or hit[0] != key:
            hit = (key, None, 0, 0.0, 0.0)
            cache[self.slot] = hit
        return cache, hit

    @property
    def verdict(self):
        """True: reduced precision in use; False: fp32 (it disagreed); None: still checking."""
        st = self._state()
        return None if st is None else st[1][1]

    def forward(self, x):
        st = self._state()
        if st is None:
            return self.full(x)
        cache, (key, ok, rows, sp, sl) = st
        if ok is True:
            return self.fast(x)
        ref = self.full(x)
        if ok is False:
            return ref
        global _PROBING
        _PROBING = True
        try:
            with torch.no_grad():
                pair = _comparable(output_logits(self.fast(x)), output_logits(ref))
        except Exception:  # noqa: BLE001 - a forward that breaks under autocast: fp32
            pair = None
        finally:
            _PROBING = False
        if pair is None:  # not comparable with fp32's, not finite, or broken under autocast: fp32 for good
            cache[self.slot] = (key, False, rows, sp, sl)
            return ref
        a, b = pair
        sp += float((a.softmax(1) - b.softmax(1)).abs().amax(1).sum())
        sl += float((a - b).abs().amax(1).sum())
        rows += a.shape[0]
        verdict = None
        if rows >= METRIC_CHECK_ROWS:
            verdict = sp / rows <= METRIC_PROB_TOL and sl / rows <= METRIC_LOGIT_TOL
        cache[self.slot] = (key, verdict, rows, sp, sl)
        return ref


def exact(net) -> nn.Module:
    """The fp32 twin inside a :class:`CheckedReduced` (``net`` itself otherwise): the metrics run their clean
    images through it, so a target taken from the prediction (``target_rule="pred"``) never flips on a near tie
    under a checked bf16 (such a flip changed an image's AUC by 17 points on the synthetic ResNet-18)."""
    return net.full if isinstance(net, CheckedReduced) else net


def metric_runner(model: nn.Module, example: torch.Tensor, metric: str, setting: str | None = None) -> nn.Module:
    """The twin a metric's forwards run on: under an explicit precision, :func:`inference_twin` at it; under
    ``"auto"`` where a reduced precision applies, a :class:`CheckedReduced` of the fp32 and reduced twins, which
    uses the reduced one for ``metric`` only after it matched fp32 on the metric's own first perturbed images."""
    setting = _config.metric_setting(setting)
    device = _device_of(model, example)
    prec = resolve_precision(device, setting)
    if prec == "fp32" or setting != "auto":
        return inference_twin(model, example, precision=setting)
    full = inference_twin(model, example, precision="fp32")
    fast = inference_twin(model, example, precision=prec)
    if not isinstance(fast, ReducedPrecision):  # the probe already refused it
        return full
    H, W = example.shape[-2:]
    return CheckedReduced(model, full, fast, (metric, int(H), int(W), prec, str(device)))


def forward_precision(net) -> str:
    """The precision the forwards of ``net`` run at now: a :class:`ReducedPrecision` twin's, a
    :class:`CheckedReduced` runner's reduced one once its check passed (fp32 while it checks or after it
    refused), else ``"fp32"``.  Sizes the CPU chunks (:func:`xaikit.core.conventions.auto_batch`)."""
    if isinstance(net, CheckedReduced):
        return net.slot[3] if net.verdict is True else "fp32"
    if isinstance(net, ReducedPrecision):
        return net.precision
    return "fp32"


def metric_checks(model: nn.Module) -> dict:
    """The metric checks of ``model`` so far (:class:`CheckedReduced`): ``{(metric, H, W, precision, device):
    {"verdict": True (reduced in use) / False (fp32) / None (checking), "rows": checked rows, "mean_dp": mean
    largest |Δ probability|, "mean_dlogit": mean largest |Δ logit|}}`` for the model's current weights."""
    key = _state_key(model)
    return {slot: {"verdict": v[1], "rows": v[2], "mean_dp": v[3] / max(v[2], 1), "mean_dlogit": v[4] / max(v[2], 1)}
            for slot, v in _METRIC_CHECKS.get(model, {}).items() if v[0] == key}
