"""Training a CA-Stream on a frozen model (thesis §3.3-3.4): frozen backbone, resume = uninterrupted,
the loss goes down, multi-label (BCE) and class-specific training run."""
import pytest
import torch
from torch.utils.data import Dataset

import xaikit as xk
from xaikit.errors import ConfigError
from xaikit.streams import CAStream
from xaikit.training import stream as ts


class Spots(Dataset):
    """Class = which half holds a bright square (GAP of translation-equivariant features cannot tell
    well, attention can); multi_label: one bit per half, either or both may hold a square."""

    def __init__(self, n=24, size=32, multi_label=False, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            img = 0.2 * torch.rand(3, size, size, generator=g)
            if multi_label:
                lab = torch.tensor([i % 2, (i // 2) % 2], dtype=torch.float32)
                if lab.sum() == 0:
                    lab[0] = 1.0
            else:
                lab = i % 2
            for half in (0, 1):
                on = lab[half] > 0 if multi_label else lab == half
                if on:
                    y = int(torch.randint(0, size - 8, (1,), generator=g))
                    x = int(torch.randint(0, size // 2 - 8, (1,), generator=g)) + half * size // 2
                    img[:, y:y + 8, x:x + 8] = 1.0
            self.items.append({"image": img, "label": lab, "boxes": torch.zeros(0, 4),
                               "box_labels": torch.zeros(0, dtype=torch.long), "name": f"spots/{i}"})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _model(num_classes=2):
    torch.manual_seed(0)
    return xk.models.load("resnet18", weights="random", num_classes=num_classes)


def _fresh_stream(m, **kw):
    return CAStream.wrap(m, start_stage=kw.pop("start_stage", 2), seed=0, **kw)


def test_backbone_frozen_and_loss_decreases():
    m = _model()
    before = {k: v.clone() for k, v in m.state_dict().items()}  # parameters AND BatchNorm buffers
    s = _fresh_stream(m)
    stream_before = s.stream_state_dict()
    hist = ts.train(s, Spots(), epochs=6, batch_size=8, lr=0.05, seed=0)
    assert [h["epoch"] for h in hist] == list(range(1, 7))
    assert hist[-1]["loss"] < hist[0]["loss"] - 0.02  # measured: 0.704 -> 0.662
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = [k for k, v in s.stream_state_dict().items() if not torch.equal(v, stream_before[k])]
    assert changed  # only the stream moved
    assert not s.training


def test_resume_equals_uninterrupted(tmp_path):
    m = _model()
    data = Spots(n=16)
    kw = dict(batch_size=8, lr=0.05, lr_step=2, seed=3)
    full = ts.train(_fresh_stream(m), data, epochs=4, checkpoint_dir=tmp_path / "a", **kw)
    ref = _fresh_stream(m)
    ts.load_checkpoint(ref, tmp_path / "a")

    first = ts.train(_fresh_stream(m), data, epochs=2, checkpoint_dir=tmp_path / "b", **kw)
    assert first == full[:2]
    resumed_stream = _fresh_stream(m)
    resumed = ts.train(resumed_stream, data, epochs=4, checkpoint_dir=tmp_path / "b", **kw)
    assert resumed == full
    assert [h["lr"] for h in resumed] == pytest.approx([0.05, 0.05, 0.005, 0.005])  # step decay survives the resume
    a, b = ref.stream_state_dict(), resumed_stream.stream_state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a checkpoint made with other hyper-parameters is refused, not silently mixed
    with pytest.raises(ConfigError):
        ts.train(_fresh_stream(m), data, epochs=5, checkpoint_dir=tmp_path / "b", **{**kw, "lr": 0.1})


def test_deterministic_given_seed():
    m = _model()
    data = Spots(n=16)
    h1 = ts.train(_fresh_stream(m), data, epochs=2, batch_size=8, seed=1)
    h2 = ts.train(_fresh_stream(m), data, epochs=2, batch_size=8, seed=1)
    assert h1 == h2


def test_multilabel_bce_and_evaluate():
    m = _model()
    data = Spots(n=16, multi_label=True)
    s = _fresh_stream(m)
    hist = ts.train(s, data, epochs=4, batch_size=8, lr=0.05, val_dataset=data)
    assert hist[-1]["loss"] < hist[0]["loss"]
    ev = ts.evaluate(s, data, batch_size=8)
    assert ev["n"] == 16 and 0 <= ev["acc"] <= 100
    assert ev["loss"] == pytest.approx(hist[-1]["val_loss"], rel=1e-5)
    # BCE by hand on the evaluation batch
    x = s.xaikit.normalize(torch.stack([it["image"] for it in data.items]))
    y = torch.stack([it["label"] for it in data.items])
    with torch.no_grad():
        p = torch.sigmoid(s(x))
    bce = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert ev["loss"] == pytest.approx(bce.item(), rel=1e-4)


def test_class_specific_trains_with_labels():
    m = _model()
    s = _fresh_stream(m, class_specific=True, start_stage=-1)
    q0 = s.query.detach().clone()
    ts.train(s, Spots(n=8), epochs=1, batch_size=8, lr=0.05)
    moved = (s.query.detach() - q0).abs().sum(1) > 0
    assert moved.all()  # both classes appear as labels, so both class queries were trained


def test_train_rejects_plain_model():
    with pytest.raises(ConfigError, match="CAStream.wrap"):
        ts.train(_model(), Spots(n=4), epochs=1)


def test_bf16_training_is_tagged_and_never_resumed_as_fp32(tmp_path, monkeypatch):
    # XAIKIT_TRAIN_PRECISION=bf16: autocast in the stream's forward; the checkpoint's key says so, and an fp32 run
    # refuses to continue it (a bf16-trained stream is another model, config.train_key)
    m = _model()
    data = Spots(n=16)
    monkeypatch.setenv("XAIKIT_TRAIN_PRECISION", "bf16")
    dtypes = set()
    s = _fresh_stream(m)
    h = s.register_forward_hook(lambda mod, a, out: dtypes.add(out.dtype))
    ts.train(s, data, epochs=1, batch_size=8, seed=0, checkpoint_dir=tmp_path)
    h.remove()
    assert dtypes == {torch.bfloat16}
    assert torch.load(tmp_path / ts.CHECKPOINT, weights_only=True)["config_key"].endswith("-bf16")
    monkeypatch.setenv("XAIKIT_TRAIN_PRECISION", "fp32")
    with pytest.raises(ConfigError, match="other hyper-parameters"):
        ts.train(_fresh_stream(m), data, epochs=2, batch_size=8, seed=0, checkpoint_dir=tmp_path)


@pytest.mark.parametrize("kw,multi_label", [({}, False), ({"start_stage": -1}, False),
                                            ({"class_specific": True}, False), ({"class_specific": True}, True),
                                            ({"variant": "proj_ca"}, True)])
def test_features_computed_once_train_the_same_stream(monkeypatch, kw, multi_label):
    # without augmentation the frozen backbone's features are computed once for all epochs: the trained
    # stream and its history must be those of reading every image through the backbone every epoch, bit for bit
    m = _model()
    ds = Spots(n=20, multi_label=multi_label)
    out = {}
    for budget in (1 << 30, 0):  # 0: no feature may be kept, the old path
        monkeypatch.setattr(ts, "STREAM_INPUTS_BYTES", budget)
        calls = []
        s = _fresh_stream(m, **kw)
        orig = s.stream_inputs
        monkeypatch.setattr(s, "stream_inputs", lambda x: calls.append(len(x)) or orig(x))
        h = ts.train(s, ds, epochs=3, batch_size=8, lr=0.1, seed=0)
        out[budget] = (s.stream_state_dict(), h, calls)
    (cached, h1, c1), (full, h0, c0) = out[1 << 30], out[0]
    assert c1 == [8, 8, 4] and c0 == [8]  # one pass over the 20 images; the old path gave up after a probe
    assert h1 == h0 and all(torch.equal(cached[k], full[k]) for k in full)


def test_features_are_not_reused_where_they_would_change_the_logits(monkeypatch):
    # a head that does more than classify the pooled vector makes logits_from differ from the forward:
    # train() then reads the images every epoch (same stream as with no budget at all), never the shortcut
    m = _model()
    ds = Spots(n=12)
    monkeypatch.setattr(ts, "STREAM_INPUTS_BYTES", 0)
    ref = _fresh_stream(m)
    h0 = ts.train(ref, ds, epochs=2, batch_size=4, lr=0.1, seed=0)
    monkeypatch.setattr(ts, "STREAM_INPUTS_BYTES", 1 << 30)
    s = _fresh_stream(m)
    orig = s.logits_from
    monkeypatch.setattr(s, "logits_from", lambda f, t=None, **kw: 2.0 * orig(f, t, **kw))  # not the forward's logits
    assert ts._stream_inputs(s, ds, 4, 0, torch.device("cpu"), m.xaikit.normalize) is None
    h1 = ts.train(s, ds, epochs=2, batch_size=4, lr=0.1, seed=0)
    assert h1 == h0 and all(torch.equal(v, ref.stream_state_dict()[k]) for k, v in s.stream_state_dict().items())
