"""Transformer attributors on a tiny random timm ViT: attention capture checked against an explicit
re-implementation of the ViT forward pass, rollout/Chefer derivations, ViT-ReciproCAM on a stub."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch
import torch.nn as nn

import xaikit as xk
from xaikit.attributors.transformer import capture_attention, reciprocam_masks, rollout_matrix
from xaikit.errors import ConfigError, InputError

torch.set_num_threads(1)


def tiny_vit(seed=0, **kw):
    torch.manual_seed(seed)
    return xk.models.load("vit_tiny_patch16_224", weights="random", num_classes=10, img_size=64,
                          depth=3, **kw)


@pytest.fixture(scope="module")
def vit():
    return tiny_vit()


def xs(n=2, seed=1):
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def manual_forward(model, x):
    """Explicit ViT forward (independent of timm's Attention.forward): logits and attentions."""
    tok = model.norm_pre(model._pos_embed(model.patch_embed(x)))
    attns = []
    for blk in model.blocks:
        y = blk.norm1(tok)
        at = blk.attn
        B, N, C = y.shape
        qkv = at.qkv(y).reshape(B, N, 3, at.num_heads, C // at.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        A = (q @ k.transpose(-2, -1) / (C // at.num_heads) ** 0.5).softmax(-1)
        A.retain_grad()
        attns.append(A)
        tok = tok + blk.ls1(at.proj((A @ v).transpose(1, 2).reshape(B, N, C)))
        tok = tok + blk.ls2(blk.mlp(blk.norm2(tok)))
    return model.forward_head(model.norm(tok)), attns


def test_captured_attention_matches_explicit_forward(vit):
    x = xs()
    flags = [b.attn.fused_attn for b in vit.blocks]
    with torch.no_grad(), capture_attention(vit) as store:
        logits = vit(x)
    assert [b.attn.fused_attn for b in vit.blocks] == flags  # restored
    ref_logits, ref = manual_forward(vit, x)
    assert torch.allclose(logits, ref_logits, atol=1e-5)
    for a, r in zip(store, ref):
        assert a.shape == (2, 3, 17, 17)
        assert torch.allclose(a, r, atol=1e-6)


def test_raw_attention_rows_sum_to_one_and_map(vit):
    x = xs()
    ra = xk.attributors.create("raw_attention", vit)
    attns = ra.attentions(x)
    assert len(attns) == 3
    for a in attns:
        assert torch.allclose(a.sum(-1), torch.ones(a.shape[:-1]), atol=1e-5)  # before dropping CLS
    raw = ra.explain(x, normalize=False).maps
    expected = attns[-1].mean(1)[:, 0, 1:].reshape(2, 4, 4)
    assert torch.allclose(raw, expected, atol=1e-6)
    assert ra(x).shape == (2, 64, 64)


def test_rollout_identity_and_hand_computed():
    eye = torch.eye(5).expand(2, 4, 5, 5)
    assert torch.allclose(rollout_matrix([eye, eye, eye]), torch.eye(5).expand(2, 5, 5))
    g = torch.Generator().manual_seed(0)
    attns = [torch.rand(1, 2, 3, 3, generator=g).softmax(-1) for _ in range(2)]
    hat = [0.5 * a.mean(1)[0] + 0.5 * torch.eye(3) for a in attns]
    hat = [h / h.sum(-1, keepdim=True) for h in hat]
    assert torch.allclose(rollout_matrix(attns)[0], hat[1] @ hat[0], atol=1e-6)


def test_rollout_with_uniform_attention_is_uniform():
    model = tiny_vit()
    for b in model.blocks:  # q = k = 0 -> every attention row is uniform 1/N
        nn.init.zeros_(b.attn.qkv.weight)
        nn.init.zeros_(b.attn.qkv.bias)
    x = xs()
    ro = xk.attributors.create("rollout", model)
    raw = ro.explain(x, normalize=False).maps
    # A_hat = I/2 + U/2 with U = 11^T/N idempotent -> A_hat^L = 2^-L I + (1 - 2^-L) U
    assert torch.allclose(raw, torch.full((2, 4, 4), (1 - 0.5 ** 3) / 17), atol=1e-6)
    ra = xk.attributors.create("raw_attention", model).explain(x, normalize=False).maps
    assert torch.allclose(ra, torch.full((2, 4, 4), 1 / 17), atol=1e-6)
    assert float(raw.max() - raw.min()) < 1e-6


def test_rollout_matches_manual_rollout(vit):
    x = xs()
    _, attns = manual_forward(vit, x)
    joint = torch.eye(17).expand(2, 17, 17)
    for a in attns:
        h = 0.5 * a.detach().mean(1) + 0.5 * torch.eye(17)
        joint = (h / h.sum(-1, keepdim=True)) @ joint
    raw = xk.attributors.create("rollout", vit).explain(x, normalize=False).maps
    assert torch.allclose(raw, joint[:, 0, 1:].reshape(2, 4, 4), atol=1e-6)


def test_chefer_matches_explicit_gradients(vit):
    x = xs()
    t = torch.tensor([2, 7])
    logits, attns = manual_forward(vit, x)
    logits.gather(1, t[:, None]).sum().backward()
    R = torch.eye(17).expand(2, 17, 17)
    for a in attns:
        R = R + (a.grad * a.detach()).clamp(min=0).mean(1) @ R
    ch = xk.attributors.create("chefer", vit)
    raw = ch.explain(x, t, normalize=False).maps
    assert torch.allclose(raw, R[:, 0, 1:].reshape(2, 4, 4), atol=1e-5)
    # class-specific: another target gives another map (rollout would not change)
    other = ch.explain(x, torch.tensor([5, 1]), normalize=False).maps
    assert not torch.allclose(raw, other)


def test_reciprocam_masks():
    single = reciprocam_masks(3, 3, "single")
    assert torch.equal(single.view(9, 9), torch.eye(9))
    gauss = reciprocam_masks(3, 3, "gaussian")
    assert torch.allclose(gauss[4], torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0)
    assert torch.allclose(gauss[0], torch.tensor([[4, 2, 0], [2, 1, 0], [0, 0, 0]]) / 16.0)  # clipped at border


@pytest.mark.parametrize("kernel", ["single", "gaussian"])
@pytest.mark.parametrize("tap", ["norm1", "block"])
def test_vit_reciprocam_stub_single_informative_token(kernel, tap):
    model = tiny_vit()
    last = model.blocks[-1]
    for lin in (last.attn.proj, last.mlp.fc2):  # the last block adds nothing: H(F . M) = F . M
        nn.init.zeros_(lin.weight)
        nn.init.zeros_(lin.bias)
    model.norm = nn.Identity()
    k = 6  # patch token (1, 2) of the 4 x 4 grid
    x = xs(1)
    cam = xk.attributors.create("vit_reciprocam", model, kernel=kernel, tap=tap)
    _, F = cam.features(x)
    w = F[0, 1 + k].detach()
    w = 8 * w / w.pow(2).sum()  # logit = 8 x (mask weight of token k): no softmax saturation

    def head(y, pre_logits=False):  # score depends only on token k's content
        s = (y[:, 1 + k] * w).sum(-1)
        return torch.stack([s, torch.zeros_like(s)], 1)

    model.forward_head = head
    raw = cam.explain(x, 0, normalize=False).maps[0].flatten()
    assert int(raw.argmax()) == k
    others = torch.cat([raw[:k], raw[k + 1:]])
    assert float(raw[k]) > float(others.max())
    if kernel == "single":
        assert torch.allclose(others, torch.full_like(others, 0.5))  # softmax([0, 0]) = 1/2
    else:  # 3 x 3 neighbours see token k with weight 1/8 or 1/16, the rest not at all
        near = {1, 2, 3, 5, 7, 9, 10, 11}
        far = [i for i in range(16) if i != k and i not in near]
        assert torch.allclose(raw[far], torch.full((len(far),), 0.5))
        assert bool((raw[sorted(near)] > 0.5).all())


def test_vit_reciprocam_matches_loop_over_masks(vit):
    x = xs(1)
    cam = xk.attributors.create("vit_reciprocam", vit, cls_token=False, batch_size=5)
    raw = cam.explain(x, 3, normalize=False).maps[0].flatten()
    _, F = cam.features(x)
    masks = reciprocam_masks(4, 4, "gaussian").view(16, 16)
    blk = vit.blocks[-1]
    for n in (0, 5, 15):
        m = torch.cat([torch.zeros(1), masks[n]])
        y = F * m[None, :, None]
        y = y + blk.attn(y)
        y = y + blk.mlp(blk.norm2(y))
        p = vit.forward_head(vit.norm(y)).softmax(1)[0, 3]
        assert float(raw[n]) == pytest.approx(float(p.detach()), abs=1e-5)


def test_batch_of_three_equals_single_calls(vit):
    x = xs(3)
    for name in ("raw_attention", "rollout", "chefer", "vit_reciprocam"):
        att = xk.attributors.create(name, vit, batch_size=7)
        full = att(x)
        singles = torch.cat([att(x[i:i + 1]) for i in range(3)])
        assert torch.allclose(full, singles, atol=1e-5), name
        assert full.shape == (3, 64, 64)


def test_bad_inputs(vit):
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    for name in ("raw_attention", "rollout", "chefer", "vit_reciprocam"):
        with pytest.raises(ConfigError):
            xk.attributors.create(name, cnn)
        with pytest.raises(InputError):
            xk.attributors.create(name, vit)(torch.randn(1, 3, 32, 32))
    with pytest.raises(ConfigError):
        xk.attributors.create("vit_reciprocam", vit, tap="mlp")
    with pytest.raises(ConfigError):
        xk.attributors.create("vit_reciprocam", vit, kernel="box")
    with pytest.raises(ConfigError):
        xk.attributors.create("rollout", vit, head_fusion="median")(xs(1))


@pytest.mark.parametrize("tap,block,residual,cls_token", [
    ("norm1", -1, "masked", True), ("norm1", -1, "input", False), ("norm1", -2, "input", True),
    ("block", -1, "masked", True), ("block", -2, "masked", False)])
def test_vit_reciprocam_cls_readout_equals_every_token(vit, monkeypatch, tap, block, residual, cls_token):
    """The last block computed for the [CLS] token alone (and, split at its LayerNorm, one qkv projection per
    image scaled by each mask) gives the scores of the whole network run on every token."""
    import xaikit.attributors.transformer as T

    x = xs(2)
    opts = dict(tap=tap, block=block, residual=residual, cls_token=cls_token, score="logit", batch_size=7)
    fast = xk.attributors.create("vit_reciprocam", vit, **opts).explain(x, [3, 1], normalize=False).maps
    assert T._cls_readout(vit)
    monkeypatch.setattr(T, "_cls_readout", lambda model: False)
    full = xk.attributors.create("vit_reciprocam", vit, **opts).explain(x, [3, 1], normalize=False).maps
    assert torch.allclose(fast, full, rtol=0, atol=1e-5 * float(full.abs().max()))
    assert float((fast - fast.mean()).abs().max()) > 1e-3  # the scores do vary over the tokens


def test_cls_readout_refuses_a_replaced_head(vit):
    import copy

    import xaikit.attributors.transformer as T

    other = copy.deepcopy(vit)
    other.forward_head = lambda y, pre_logits=False: y.mean(1)
    assert T._cls_readout(vit) and not T._cls_readout(other)
    other = copy.deepcopy(vit)
    other.global_pool = "avg"
    assert not T._cls_readout(other)


@pytest.mark.parametrize("kw", [{"qkv_bias": False}, {"qk_norm": True}])
def test_vit_reciprocam_factored_attention_or_not(monkeypatch, kw):
    """Without a qkv bias the factored [CLS] attention still applies; with query/key LayerNorms (not linear in
    the mask) it must not, and both give the every-token scores."""
    import xaikit.attributors.transformer as T

    model = tiny_vit(seed=3, **kw)
    assert T._plain_qkv(model.blocks[-1].attn) == ("qk_norm" not in kw)
    x = xs(2, seed=4)
    fast = xk.attributors.create("vit_reciprocam", model, score="logit").explain(x, [0, 7], normalize=False).maps
    monkeypatch.setattr(T, "_cls_readout", lambda m: False)
    full = xk.attributors.create("vit_reciprocam", model, score="logit").explain(x, [0, 7], normalize=False).maps
    assert torch.allclose(fast, full, rtol=0, atol=1e-5 * float(full.abs().max()))
    assert float((full - full.mean()).abs().max()) > 1e-3
