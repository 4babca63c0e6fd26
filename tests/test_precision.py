"""Reduced forward precision (xaikit.models.fast, issue 24 "GPU fast path"), tested on the CPU with bf16.

* the setting: ``fast.precision()`` blocks (nested), ``XAIKIT_PRECISION``, ``python -m xaikit.run --precision``,
  invalid values; the default on the CPU is fp32, bit for bit what it was;
* the reduced-precision twin: autocast around the fp32 twin, float32 logits, gradients to the input, cached per
  (model state, precision, device), checked against the fp32 model and replaced by the fp32 twin when it
  disagrees (a model whose bf16 logits are garbage, one whose forward breaks under autocast); vision
  transformers get it too (ViT-ReciproCAM's masked passes run in it);
* fidelity on the bundled photos with EfficientNet-Lite0's real weights, bf16 against fp32: maps Pearson >= 0.999
  per image (Score-CAM, Group-CAM, RISE), metric values (the means over the images, in points of percent)
  within 0.5 (insertion / deletion AUC); AD / AG / AI, the box study and ADCC keep fp32 (AG misses the bar). Ablation-CAM, Opti-CAM and Extremal Perturbation miss
  the map bar under bf16 (measured: Pearson 0.9966, 0.95, 0.70) and keep fp32: tested here that they do; so
  does ViT-ReciproCAM (Pearson 0.01-0.92 on xaikit's DeiT trained on synthetic scenes; no real ViT weights
  are bundled, so that measurement is in its docstring, not here).

128 px keeps the file within seconds while the photos stay confidently classified (p = 0.88 and 0.999).
"""
import copy
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit import config
from xaikit import run as xr
from xaikit.errors import ConfigError
from xaikit.models import fast
from _tiny import random_bn
from xaikit.reports import provenance as prov

torch.set_num_threads(1)

PX = 128
LAYER = "blocks.5"  # 192 channels: Score-CAM's 2 x 192 masked passes per precision stay cheap


@pytest.fixture(autouse=True)
def _no_env_precision(monkeypatch):
    monkeypatch.delenv(config.PRECISION_ENV, raising=False)


# ------------------------------------------------------------------------------------------- tiny models
class ConvBN(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = random_bn(8, 1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


class Cancelling(ConvBN):
    """Logits = 300 * (fc(h) - fc2(h)) with fc2 a hair away from fc: exact in fp32, rounding noise in bf16."""

    def __init__(self):
        super().__init__(classes=10)
        self.fc2 = copy.deepcopy(self.fc)
        with torch.no_grad():
            self.fc2.weight.add_(1e-3 * torch.randn_like(self.fc2.weight))

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x))).mean((2, 3)) * 50
        return 300 * (self.fc(h) - self.fc2(h))


class BreaksUnderAutocast(ConvBN):
    """A forward that fails under autocast: it writes the (bf16) features into a float32 buffer by index."""

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x))).mean((2, 3))
        buf = torch.zeros(h.shape[0], 8, device=x.device)
        buf[:, torch.arange(8, device=x.device)] = h  # index_put: the dtypes must match
        return self.fc(buf)


def _x(n=2, px=16, seed=1):
    return torch.randn(n, 3, px, px, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------- the setting
def test_default_on_cpu_is_fp32_and_changes_nothing(monkeypatch):
    monkeypatch.setenv("XAIKIT_CPU_BF16", "0")  # a CPU without native bf16
    assert config.precision_setting() == "auto" and fast.resolve_precision("cpu") == "fp32"
    m = ConvBN().eval()
    x = _x()
    t = xk.models.inference_twin(m, x)
    assert not isinstance(t, fast.ReducedPrecision) and fast.describe(m) == "1 BatchNorm folded, channels-last"
    with fast.precision("fp32"):
        assert xk.models.inference_twin(m, x) is t  # "auto" on the CPU is the very same fp32 twin
    cam = xk.attributors.create("scorecam", m, layer="conv")
    auto = cam.explain(x)
    with fast.precision("fp32"):
        explicit = cam.explain(x)
    assert torch.equal(auto.maps, explicit.maps) and torch.equal(auto.extras["scores"], explicit.extras["scores"])
    assert prov.device_info("cpu")["precision"] == {"setting": "auto", "in_use": "fp32", "metrics": "fp32",
                                                          "training": "fp32"}


def test_auto_on_a_cpu_with_native_bf16(monkeypatch):
    """auto = bf16 for the perturbation methods on a CPU that runs it natively, for the metrics only after their
    own check (bf16 logits move Lite0's means by up to 0.8 points at 224 px); an explicit bf16 reaches the
    metrics unchecked."""
    from xaikit.metrics._common import runner
    monkeypatch.setenv("XAIKIT_CPU_BF16", "1")
    assert config.cpu_bf16() and fast.resolve_precision("cpu") == "bf16" and config.metric_setting() == "auto"
    assert prov.device_info("cpu")["precision"] == {
        "setting": "auto", "in_use": "bf16", "metrics": "bf16 where its check passed, else fp32", "training": "fp32"}
    m, x = ConvBN().eval(), _x()
    assert isinstance(xk.models.inference_twin(m, x), fast.ReducedPrecision)
    assert isinstance(runner(m, x, True), fast.CheckedReduced)
    cam = xk.attributors.create("scorecam", m, layer="conv")
    with fast.precision("bf16"):
        explicit = cam.explain(x)
        assert config.metric_setting() == "bf16" and isinstance(runner(m, x, True), fast.ReducedPrecision)
    assert torch.equal(cam.explain(x).maps, explicit.maps)  # auto is the very same bf16 path
    monkeypatch.setenv("XAIKIT_CPU_BF16", "0")
    assert fast.resolve_precision("cpu") == "fp32"
    monkeypatch.delenv("XAIKIT_CPU_BF16")
    flags = [ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")] if os.path.exists("/proc/cpuinfo") else []
    native = bool(flags) and bool({"avx512_bf16", "amx_bf16"} & set(flags[0].split(":", 1)[1].split()))
    assert config.cpu_bf16() is native  # the detection reads the CPU's flags


def test_context_env_and_invalid_values(monkeypatch):
    with fast.precision("bf16"):
        assert fast.resolve_precision("cpu") == "bf16" and config.precision_setting() == "bf16"
        with fast.precision("fp32"):  # blocks nest, the innermost wins
            assert fast.resolve_precision("cpu") == "fp32"
        assert fast.resolve_precision("cpu") == "bf16"
        assert prov.device_info("cpu")["precision"] == {"setting": "bf16", "in_use": "bf16", "metrics": "bf16",
                                                              "training": "fp32"}  # its own setting
    assert config.precision_setting() == "auto"
    monkeypatch.setenv(config.PRECISION_ENV, "BF16")
    assert fast.resolve_precision("cpu") == "bf16"
    with fast.precision("fp32"):  # a block wins over the environment
        assert fast.resolve_precision("cpu") == "fp32"
    monkeypatch.setenv(config.PRECISION_ENV, "bf17")
    with pytest.raises(ConfigError, match=r"XAIKIT_PRECISION.*'fp32', 'bf16', 'fp16', 'auto'"):
        xk.models.inference_twin(ConvBN().eval(), _x())
    assert "error" in prov.device_info("cpu")["precision"]  # provenance records the bad value, does not fail
    monkeypatch.delenv(config.PRECISION_ENV)
    with pytest.raises(ConfigError, match="'fp32', 'bf16', 'fp16', 'auto'"):
        with fast.precision("half-ish"):
            pass
    with pytest.raises(ConfigError, match="precision='fp64'"):
        xk.models.inference_twin(ConvBN().eval(), _x(), precision="fp64")


def test_runner_option_reaches_the_kernels(monkeypatch, tmp_path, capsys):
    from test_runner import NBS, PROFILE

    seen = []

    def fake(nb, params, out_dir, reports_root, timeout=None, env=None):
        seen.append(dict(env or {}))
        return xr.Result(nb.stem, "passed", 0.0, out_dir / f"{nb.stem}.ipynb", None, None, [])

    monkeypatch.setattr(xr, "run_notebook", fake)
    xr.run(str(PROFILE), ["01"], notebooks=NBS, reports=tmp_path, precision="bf16", log=lambda *a: None)
    assert seen == [{config.PRECISION_ENV: "bf16"}]  # run_notebook's kernel_env puts it in the kernel's environment
    assert config.PRECISION_ENV not in os.environ  # this process is left as it was
    with pytest.raises(ConfigError, match="'fp32', 'bf16', 'fp16', 'auto'"):
        xr.run(str(PROFILE), ["01"], notebooks=NBS, reports=tmp_path, precision="bf17", log=lambda *a: None)
    assert xr.main(["--profile", str(PROFILE), "--notebooks-dir", str(NBS), "--precision", "bf17", "--dry-run"]) == 2
    assert "--precision='bf17'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--bless"):
        xr.run(str(PROFILE), ["01"], notebooks=NBS, reports=tmp_path, precision="bf16", bless_claims=True)
    monkeypatch.setenv(config.PRECISION_ENV, "nope")  # an invalid inherited value fails before any kernel
    with pytest.raises(ConfigError, match="XAIKIT_PRECISION"):
        xr.run(str(PROFILE), ["01"], notebooks=NBS, reports=tmp_path, log=lambda *a: None)


# ---------------------------------------------------------------------------------- the reduced twin
def test_reduced_twin_wraps_the_fp32_twin_and_passes_gradients():
    m = ConvBN().eval()
    x = _x()
    with fast.precision("bf16"):
        t = xk.models.inference_twin(m, x)
        assert isinstance(t, fast.ReducedPrecision) and t.net is xk.models.inference_twin(m, x, precision="fp32")
        assert fast.describe(m) == "1 BatchNorm folded, channels-last, bf16 autocast"
        assert xk.models.inference_twin(m, x) is t  # cached
        assert xk.models.inference_twin(t, x) is t  # a twin is its own twin
        xg = x.clone().requires_grad_(True)
        y = t(xg)
        assert y.dtype == torch.float32
        (g,) = torch.autograd.grad(y[:, 0].sum(), xg)
        (g32,) = torch.autograd.grad(m(xg)[:, 0].sum(), xg)
        assert torch.nn.functional.cosine_similarity(g.flatten(), g32.flatten(), dim=0) > 0.99
        with fast.disabled():  # the model itself, in full precision
            assert xk.models.inference_twin(m, x) is m
    assert fast.describe(m) == "1 BatchNorm folded, channels-last"  # the fp32 entry is untouched
    with fast.precision("fp16"):  # cached per precision
        t16 = xk.models.inference_twin(m, x)
        assert isinstance(t16, fast.ReducedPrecision) and t16.dtype == torch.float16 and t16 is not t
    with torch.no_grad():
        m.fc.weight.add_(0.1)  # new weights: a new check, a new wrapper around the new fp32 twin
    with fast.precision("bf16"):
        t2 = xk.models.inference_twin(m, x)
        assert t2 is not t and t2.net is not t.net and torch.allclose(t2(x), m(x), atol=0.05)


@pytest.mark.parametrize("cls", [Cancelling, BreaksUnderAutocast])
def test_disagreeing_reduced_twin_falls_back_to_fp32(cls):
    m = cls().eval()
    x = _x()
    ref = m(x)
    with fast.precision("bf16"):
        t = xk.models.inference_twin(m, x)
        assert not isinstance(t, fast.ReducedPrecision)
        assert t is xk.models.inference_twin(m, x, precision="fp32")
        assert fast.describe(m).endswith(", fp32 (bf16 disagreed with the fp32 model on the first images)")
        assert (t(x) - ref).abs().max() <= 1e-3 * ref.abs().max() + 1e-4  # the fp32 twin's own check
        assert xk.models.inference_twin(m, x) is t  # the verdict is cached too
        maps = xk.attributors.create("scorecam", m, layer="conv")(x)
    with fast.precision("fp32"):
        assert torch.equal(maps, xk.attributors.create("scorecam", m, layer="conv")(x))


def test_cancelling_model_really_is_garbage_in_bf16():
    """The fallback above is earned: forced into bf16, its logits are not those of the model."""
    m = Cancelling().eval()
    x = _x()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = m(x).float()
    assert not fast._reduced_agrees(low, m(x))


def test_vision_transformer_gets_the_autocast_wrapper(monkeypatch):
    torch.manual_seed(0)
    vit = xk.models.load("vit_tiny_patch16_224", weights="random", num_classes=10, img_size=64, depth=3)
    with torch.no_grad():
        vit.head.weight.normal_(0, 0.5)  # logits that mean something (timm starts the head near zero)
    x = _x(2, 64)
    dtypes = []
    hook = vit.blocks[-1].mlp.fc2.register_forward_hook(lambda mod, a, out: dtypes.append(out.dtype))

    def ran(name, **kw):
        dtypes.clear()
        e = xk.attributors.create(name, vit, batch_size=64, **kw).explain(x, normalize=False)
        return e.maps, set(dtypes)

    try:
        with fast.precision("bf16"):
            t = xk.models.inference_twin(vit, x)
            assert isinstance(t, fast.ReducedPrecision) and t.net is vit
            assert fast.describe(vit) == "the model itself, bf16 autocast"
            # transformer Score-CAM: its masked copies in bf16 (the clean pass at the layer in fp32)
            assert torch.bfloat16 in ran("scorecam")[1]
            # ViT-ReciproCAM keeps fp32 (its docstring: bf16 swamps its scores) ...
            assert ran("vit_reciprocam")[1] == {torch.float32}
            # ... through the same path, which runs its masked copies under autocast when a method allows it
            monkeypatch.setattr(xk.attributors.method_class("vit_reciprocam"), "reduced_precision", True)
            low, seen = ran("vit_reciprocam")
            assert torch.bfloat16 in seen
        full, seen = ran("vit_reciprocam")
        assert seen == {torch.float32}
    finally:
        hook.remove()
    assert fast.describe(vit) == "no twin built yet"  # fp32: a transformer is its own twin
    assert low.dtype == torch.float32 and (low - full).abs().max() < fast.REDUCED_PROB_TOL


# ---------------------------------------------------------------------------------------- fidelity
def pearson(a, b):
    a = a.flatten(1).double()
    b = b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-30)


@pytest.fixture(scope="module")
def lite0():
    model = xk.models.load("tf_efficientnet_lite0", weights="bundled")
    b = xk.data.load_batch(xk.data.samples(["chelsea", "coffee"], size=PX)).to("cpu")
    return model, model.xaikit.normalize(b.images), b.labels


def both(fn):
    """fn() in fp32 and in bf16."""
    with fast.precision("fp32"):
        a = fn()
    with fast.precision("bf16"):
        b = fn()
    return a, b


REDUCED = {  # methods whose forward passes run in bf16 under bf16 (their options kept small for speed)
    "scorecam": dict(layer=LAYER),
    "groupcam": dict(),
    "rise": dict(n_masks=200),
}
KEPT_FP32 = {  # methods that miss the bar in bf16 and keep fp32 (their docstrings say so)
    "ablationcam": dict(layer=LAYER),
    "opticam": dict(max_iter=5),
    "extremal": dict(max_iter=3),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REDUCED))
def test_maps_in_bf16_keep_pearson_0999(lite0, name):
    model, x, y = lite0
    cam = xk.attributors.create(name, model, **REDUCED[name])
    a, b = both(lambda: cam(x, y))
    with fast.precision("bf16"):
        assert isinstance(cam.fast(x).net, fast.ReducedPrecision)  # bf16 really ran
    r = pearson(a, b)
    assert r.min() >= 0.999, f"{name}: Pearson per image {r.tolist()}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KEPT_FP32))
def test_methods_kept_at_fp32_ignore_reduced_precision(lite0, name):
    model, x, y = lite0
    cam = xk.attributors.create(name, model, **KEPT_FP32[name])
    assert cam.reduced_precision is False
    with fast.precision("bf16"):
        net = cam.fast(x)
        assert not isinstance(getattr(net, "net", net), fast.ReducedPrecision)
    a, b = both(lambda: cam.explain(x[:1], y[:1]).maps)
    assert torch.equal(a, b)


@pytest.fixture(scope="module")
def sal(lite0):
    model, x, y = lite0
    with fast.precision("fp32"):
        return xk.attributors.create("scorecam", model, layer=LAYER)(x, y)


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["insertion", "deletion"])
def test_causal_auc_in_bf16_within_half_a_point(lite0, sal, metric):
    model, x, y = lite0
    fn = getattr(xk.metrics, metric)
    a, b = both(lambda: fn(model, x, sal, y) * 100)
    assert abs(float(a.mean() - b.mean())) <= 0.5, f"{metric}: fp32 {a.tolist()} bf16 {b.tolist()}"


@pytest.mark.slow
def test_recognition_metrics_stay_fp32_under_bf16(lite0, sal):
    """AD / AG / AI, the bounding-box study and ADCC make one masked forward per image: they keep fp32 under
    bf16 (bit for bit), because AG's 1 / (1 - p) amplifies bf16's rounding past the 0.5-point bar (measured
    on an AMX CPU: chelsea at 128 px, p = 0.88, AG 34.81 in fp32 and 33.09 in bf16, recognition's docstring)."""
    model, x, y = lite0
    a, b = both(lambda: xk.metrics.recognition(model, x, sal, y, reduce=False))
    for k in ("AD", "AG", "AI", "o"):
        assert torch.equal(a[k], b[k]), f"{k}: fp32 {a[k].tolist()} bf16 {b[k].tolist()}"
    boxes = [torch.tensor([[10.0, 10.0, 100.0, 90.0]])] * 2
    a, b = both(lambda: xk.metrics.box_study(model, x, sal, boxes, y, reduce=False))
    assert all(torch.equal(a[k]["o"], b[k]["o"]) for k in a)
    cam = xk.attributors.create("gradcam", model, layer=LAYER)
    a, b = both(lambda: xk.metrics.adcc(model, cam, x, y, sal=sal, reduce=False))
    assert torch.equal(a["AD"], b["AD"]) and torch.equal(a["ADCC"], b["ADCC"])
    with fast.precision("bf16"):  # and bf16 does reach the insertion metric's forwards, so the bf16 above was real
        assert isinstance(xk.metrics._common.runner(model, x, True, "insertion"), fast.ReducedPrecision)


def _scaled(s):
    m = ConvBN(classes=10).eval()
    with torch.no_grad():
        m.fc.weight.mul_(s)
        m.fc.bias.mul_(s)
    return m


def test_metrics_use_bf16_under_auto_only_after_their_own_check(monkeypatch):
    # the clean-image probe of inference_twin passes both models; the metric's check on its own first 64 inputs
    # keeps bf16 for the sound one and sends the other (logits ~120 wide: bf16 moves them by ~0.3) to fp32
    from xaikit.metrics._common import runner
    monkeypatch.setenv("XAIKIT_CPU_BF16", "1")
    x = _x(64, 16, seed=2)
    for scale, trusted in ((1, True), (50, False)):
        m = _scaled(scale)
        full, red = fast.inference_twin(m, x, precision="fp32"), fast.inference_twin(m, x)
        assert isinstance(red, fast.ReducedPrecision)  # the probe alone would have used bf16
        run = runner(m, x, True, "insertion")
        with torch.no_grad():
            first = run(x[:40])
            assert run.verdict is None and torch.equal(first, full(x[:40]))  # checking: the fp32 outputs
            assert torch.equal(run(x[40:]), full(x[40:])) and run.verdict is trusted
            again = runner(m, x, True, "insertion")(x[:8])  # the verdict holds for later calls of the metric
            assert torch.equal(again, (red if trusted else full)(x[:8]))
            assert not torch.equal(red(x[:8]), full(x[:8]))  # (bf16 and fp32 do differ)
            assert runner(m, x, True, "deletion").verdict is None  # another metric checks for itself
        chk = fast.metric_checks(m)[("insertion", 16, 16, "bf16", "cpu")]
        assert chk["rows"] == 64 and chk["verdict"] is trusted and chk["mean_dlogit"] > 0
        with torch.no_grad():
            m.fc.bias.add_(0.0)  # new weights (version bump): checked again
        assert runner(m, x, True, "insertion").verdict is None
        assert fast.metric_checks(m)[("insertion", 16, 16, "bf16", "cpu")]["rows"] == 0
    monkeypatch.setenv("XAIKIT_CPU_BF16", "0")  # no native bf16: auto is the plain fp32 twin
    m = _scaled(1)
    assert runner(m, x, True, "insertion") is fast.inference_twin(m, x, precision="fp32")


def test_metric_values_under_auto_stay_within_the_bar_or_equal_fp32(monkeypatch):
    # whole metric calls: the sound model's insertion AUCs under auto move by far less than 0.5 points, the
    # refused one's equal fp32 exactly
    monkeypatch.setenv("XAIKIT_CPU_BF16", "1")
    x = _x(16, 16, seed=3)
    sal = torch.rand(16, 16, 16, generator=torch.Generator().manual_seed(0))
    for scale in (1, 50):
        m = _scaled(scale)
        with fast.precision("fp32"):
            ref = xk.metrics.insertion(m, x, sal, 0, steps=16, substrate="mean", space="normalized")
        auto = xk.metrics.insertion(m, x, sal, 0, steps=16, substrate="mean", space="normalized")
        checked = fast.metric_checks(m)[("insertion", 16, 16, "bf16", "cpu")]
        assert checked["rows"] >= 64
        if checked["verdict"]:
            assert (auto - ref).abs().mean() * 100 < 0.5 and not torch.equal(auto, ref)
        else:
            assert scale == 50 and torch.equal(auto, ref)


def test_metrics_take_the_prediction_from_fp32_clean_passes_under_checked_bf16(monkeypatch):
    # target None (the prediction): the class scored is the fp32 prediction even after the check trusted bf16,
    # so a near tie cannot flip the class (the clean pass runs on fast.exact(run))
    monkeypatch.setenv("XAIKIT_CPU_BF16", "1")
    m = _scaled(1)
    x = _x(64, 16, seed=2)
    sal = torch.rand(64, 16, 16, generator=torch.Generator().manual_seed(0))
    xk.metrics.insertion(m, x, sal, steps=16, substrate="mean", space="normalized")  # the check runs, passes
    assert fast.metric_checks(m)[("insertion", 16, 16, "bf16", "cpu")]["verdict"] is True
    full = fast.inference_twin(m, x, precision="fp32")
    calls = []
    # (the bf16 twin runs this very fp32 twin under autocast)
    h = full.register_forward_hook(lambda mod, a, out: calls.append((a[0].shape[0], torch.is_autocast_enabled("cpu"))))
    try:
        curves = xk.metrics.insertion_curves(m, x[:8], sal[:8], steps=16, substrate="mean", space="normalized")
    finally:
        h.remove()
    # the clean images in fp32; the 8 x 17 perturbed ones in bf16, in chunks of 64 (the CPU cap)
    assert calls == [(8, False), (64, True), (64, True), (8, True)]
    with fast.precision("fp32"):
        assert torch.equal(curves.target, m(x[:8]).argmax(1))


def test_metric_chunks_follow_the_precision_their_forwards_run_at(monkeypatch):
    """A metric sizes its CPU chunks for the precision its runner uses now: fp32 while the bf16 check runs or
    after it refused, bf16 once it passed (bf16 activations take half the bytes, twice the images)."""
    from xaikit.metrics._common import batch_size_for, runner
    monkeypatch.setenv("XAIKIT_CPU_BF16", "1")
    m, x = ConvBN().eval(), _x()
    x48 = torch.randn(2, 3, 48, 48)
    run = runner(m, x48, True, "insertion")
    assert isinstance(run, fast.CheckedReduced) and run.verdict is None
    assert fast.forward_precision(run) == "fp32" and batch_size_for(None, x48, run) == 32
    with torch.no_grad():
        run(torch.randn(64, 3, 48, 48))  # the check's rows: this tiny model passes it
    assert run.verdict is True and fast.forward_precision(run) == "bf16" and batch_size_for(None, x48, run) == 64
    assert fast.forward_precision(xk.models.inference_twin(m, x, precision="bf16")) == "bf16"
    assert fast.forward_precision(m) == "fp32" and batch_size_for(None, x48) == 32
    assert batch_size_for(5, x48, run) == 5  # an explicit size wins
