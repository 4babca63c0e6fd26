"""TIBAV (Chefer, Gur & Wolf, CVPR 2021) against a test-only reference of the authors' LRP rules.

The reference is written from the behaviour of hila-chefer/Transformer-Explainability:
``baselines/ViT/ViT_LRP.py`` (``VisionTransformer.relprop``, ``Block.relprop``, ``Attention.relprop``,
``Mlp.relprop``, ``compute_rollout_attention``) and ``modules/layers_ours.py`` (``safe_divide``,
``RelPropSimple.relprop``, ``Add.relprop``, ``Clone.relprop``, ``Linear.relprop`` with alpha = 1,
``IndexSelect.relprop``; LayerNorm, GELU, Softmax and Dropout pass relevance unchanged), called as
``baselines/ViT/ViT_explanation_generator.py`` ``LRP.generate_LRP(method="transformer_attribution")``.
Unlike xaikit's closed forms, it propagates relevance the way that code does: each layer re-runs its
forward on detached inputs and takes ``torch.autograd.grad`` (``gradprop``), one image at a time, on an
explicit forward of the timm model (nothing of xaikit's hooks).
"""
import copy
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch
import torch.nn.functional as F

import xaikit as xk
from xaikit.errors import ConfigError

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- the reference (test only)
def safe_divide(a, b):
    """layers_ours.safe_divide."""
    den = b.clamp(min=1e-9) + b.clamp(max=1e-9)
    den = den + den.eq(0).type(den.type()) * 1e-9
    return a / den * b.ne(0).type(b.type())


def gradprop_simple(fn, inputs, R):
    """RelPropSimple.relprop: Z = fn(X); S = R / Z; C = dZ/dX^T S; R_i = X_i * C_i."""
    X = [t.detach().clone().requires_grad_(True) for t in inputs]
    Z = fn(*X)
    S = safe_divide(R, Z)
    C = torch.autograd.grad(Z, X, S)
    return [x.detach() * c for x, c in zip(X, C)]


def relprop_linear(layer, X, R):
    """layers_ours.Linear.relprop with alpha = 1 (beta = 0): the activator relevances only."""
    pw, nw = layer.weight.detach().clamp(min=0), layer.weight.detach().clamp(max=0)
    x1 = X.detach().clamp(min=0).requires_grad_(True)
    x2 = X.detach().clamp(max=0).requires_grad_(True)
    Z1, Z2 = F.linear(x1, pw), F.linear(x2, nw)
    S = safe_divide(R, Z1 + Z2)
    C1 = x1 * torch.autograd.grad(Z1, x1, S)[0]
    C2 = x2 * torch.autograd.grad(Z2, x2, S)[0]
    return (C1 + C2).detach()


def relprop_add(a, b, R):
    """layers_ours.Add.relprop: z-rule shares rescaled by |sum| proportions (sums over the whole tensor)."""
    ra, rb = gradprop_simple(lambda u, v: u + v, [a, b], R)
    a_sum, b_sum = ra.sum(), rb.sum()
    a_fact = safe_divide(a_sum.abs(), a_sum.abs() + b_sum.abs()) * R.sum()
    b_fact = safe_divide(b_sum.abs(), a_sum.abs() + b_sum.abs()) * R.sum()
    return ra * safe_divide(a_fact, ra.sum()), rb * safe_divide(b_fact, rb.sum())


def relprop_clone(X, Rs):
    """layers_ours.Clone.relprop: Z = [X, X], S_i = R_i / X, C = sum of the gradients, R = X C."""
    Xl = X.detach().clone().requires_grad_(True)
    Z = [Xl * 1.0 for _ in Rs]
    S = [safe_divide(r, z.detach()) for r, z in zip(Rs, Z)]
    C = torch.autograd.grad(Z, Xl, S)[0]
    return (Xl.detach() * C)


def reference_tibav(model, x, target, start_layer=0):
    """The authors' transformer attribution of ONE image (1, 3, H, W) for class ``target``: (N-1,) row."""
    assert x.shape[0] == 1
    # forward, recording what each layer's relprop needs (the forward hooks of layers_ours)
    tok = model.norm_pre(model._pos_embed(model.patch_embed(x)))
    rec = []
    for blk in model.blocks:
        at = blk.attn
        x_in = tok
        n1 = blk.norm1(x_in)
        B, N, D = n1.shape
        qkv = at.qkv(n1)
        q, k, v = qkv.reshape(B, N, 3, at.num_heads, D // at.num_heads).permute(2, 0, 3, 1, 4)
        dots = torch.einsum("bhid,bhjd->bhij", q, k) * at.scale     # Attention.matmul1 * scale
        attn = dots.softmax(-1)
        attn.retain_grad()                                          # Attention.save_attn_gradients
        o = torch.einsum("bhij,bhjd->bhid", attn, v)                # Attention.matmul2
        o = o.transpose(1, 2).reshape(B, N, D)
        p = at.proj(o)
        x1 = x_in + p                                               # Block.add1
        n2 = blk.norm2(x1)
        h = blk.mlp.act(blk.mlp.fc1(n2))
        f2 = blk.mlp.fc2(h)
        tok = x1 + f2                                               # Block.add2
        rec.append(dict(x_in=x_in, n1=n1, q=q, k=k, v=v, attn=attn, o=o, p=p, x1=x1, n2=n2, h=h, f2=f2))
    normed = model.norm(tok)
    pooled = normed.index_select(1, torch.tensor([0])).squeeze(1)   # IndexSelect
    logits = model.head(pooled)
    logits[0, target].backward()                                    # one_hot * output, summed
    # VisionTransformer.relprop, from the one-hot vector
    R = F.one_hot(torch.tensor([target]), logits.shape[-1]).to(x.dtype)
    R = relprop_linear(model.head, pooled, R).unsqueeze(1)
    R = gradprop_simple(lambda t: t.index_select(1, torch.tensor([0])), [normed], R)[0]
    cams = [None] * len(model.blocks)
    for i in reversed(range(len(model.blocks))):
        blk, r = model.blocks[i], rec[i]
        H = blk.attn.num_heads
        (c1, c2) = relprop_add(r["x1"], r["f2"], R)                 # Block.relprop: add2
        c2 = relprop_linear(blk.mlp.fc2, r["h"], c2)                # Mlp.relprop
        c2 = relprop_linear(blk.mlp.fc1, r["n2"], c2)
        R = relprop_clone(r["x1"], [c1, c2])                        # clone2 (norm2: identity)
        (c1, c2) = relprop_add(r["x_in"], r["p"], R)                # add1
        cam = relprop_linear(blk.attn.proj, r["o"], c2)             # Attention.relprop
        Bn, N, D = cam.shape
        cam = cam.reshape(Bn, N, H, D // H).permute(0, 2, 1, 3)     # 'b n (h d) -> b h n d'
        cam1, cam_v = gradprop_simple(lambda a, v: torch.einsum("bhij,bhjd->bhid", a, v),
                                      [r["attn"], r["v"]], cam)
        cam1, cam_v = cam1 / 2, cam_v / 2
        cams[i] = (r["attn"].grad[0] * cam1[0]).clamp(min=0).mean(0)   # transformer_attribution
        cam_q, cam_k = gradprop_simple(lambda a, b: torch.einsum("bhid,bhjd->bhij", a, b), [r["q"], r["k"]], cam1)
        cam_q, cam_k = cam_q / 2, cam_k / 2
        cam_qkv = torch.stack([cam_q, cam_k, cam_v]).permute(1, 3, 0, 2, 4).reshape(Bn, N, 3 * D)
        c2 = relprop_linear(blk.attn.qkv, r["n1"], cam_qkv)
        R = relprop_clone(r["x_in"], [c1, c2])                      # clone1 (norm1: identity)
    # compute_rollout_attention of ViT_LRP.py: + I, no row normalization
    eye = torch.eye(cams[0].shape[-1], dtype=x.dtype)
    joint = cams[start_layer] + eye
    for i in range(start_layer + 1, len(cams)):
        joint = (cams[i] + eye) @ joint
    return joint[0, 1:], logits.detach()


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def deit():
    torch.manual_seed(0)
    return xk.models.load("deit_tiny_synth", weights="random", num_classes=4, input_size=32)


@pytest.fixture(scope="module")
def deit64(deit):
    return copy.deepcopy(deit).double()


def images(n=2, seed=3, dtype=torch.float32):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)).to(dtype)


# -------------------------------------------------------------------------------------------- tests
def test_reference_forward_is_the_model(deit64):
    x = images(1, dtype=torch.float64)
    _, logits = reference_tibav(deit64, x, 0)
    with torch.no_grad():
        assert torch.allclose(logits, deit64(x), atol=1e-10)


@pytest.mark.parametrize("start", [0, 2])
def test_tibav_equals_the_reference_lrp(deit64, start):
    x = images(2, dtype=torch.float64)
    targets = torch.tensor([1, 3])
    got = xk.attributors.create("tibav", deit64, start_block=start).explain(x, targets, normalize=False).maps
    for i in range(2):
        ref, _ = reference_tibav(deit64, x[i:i + 1], int(targets[i]), start_layer=start)
        ref = ref.reshape(got.shape[-2:]).float()  # explain returns float32 maps
        scale = float(ref.abs().max())
        assert scale > 0
        assert torch.allclose(got[i], ref, rtol=1e-5, atol=1e-5 * scale), (i, (got[i] - ref).abs().max())


def test_tibav_float32_normalized_maps_agree(deit, deit64):
    """In float32 the relevance divisions amplify rounding (the 1e-9 guards of safe_divide meet values of
    1e-7): the min-max normalized maps agree with the float64 reference to a few 1e-4."""
    x = images(2, seed=5)
    e = xk.attributors.create("tibav", deit).explain(x, None)
    for i in range(2):
        ref, _ = reference_tibav(deit64, x[i:i + 1].double(), int(e.target[i]))
        ref = ref.reshape(e.maps.shape[-2:]).float()
        ref = (ref - ref.min()) / (ref.max() - ref.min())
        assert torch.allclose(e.maps[i], ref, atol=2e-3), (e.maps[i] - ref).abs().max()


def test_relevance_is_conserved_and_class_specific(deit64):
    x = images(1, seed=7, dtype=torch.float64)
    a = xk.attributors.create("tibav", deit64)
    e0, e1 = a.explain(x, 0, normalize=False), a.explain(x, 2, normalize=False)
    # the residual rule conserves relevance: the one-hot's unit reaches every block's input
    assert torch.allclose(e0.extras["relevance"], torch.ones_like(e0.extras["relevance"]), atol=1e-6)
    assert not torch.allclose(e0.maps, e1.maps)


def test_tibav_is_not_the_generic_attention_rule(deit):
    x = images(2, seed=9)
    t = torch.tensor([0, 1])
    a = xk.attributors.create("tibav", deit).explain(x, t).maps
    b = xk.attributors.create("chefer", deit).explain(x, t).maps
    assert not torch.allclose(a, b, atol=1e-3)
    assert xk.attributors.method_class("transformer_attribution") is xk.attributors.method_class("tibav")
    assert xk.attributors.method_class("chefer").name == "chefer"


def test_model_is_not_modified(deit):
    before = {k: v.clone() for k, v in deit.state_dict().items()}
    hooks = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in deit.modules()]
    flags = [b.attn.fused_attn for b in deit.blocks]
    xk.attributors.create("tibav", deit).explain(images(1), 0)
    assert all(torch.equal(v, deit.state_dict()[k]) for k, v in before.items())
    assert hooks == [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in deit.modules()]
    assert flags == [b.attn.fused_attn for b in deit.blocks]


def test_unsupported_transformers_are_refused(deit):
    with pytest.raises(ConfigError, match="start_block=5 is out of range"):
        xk.attributors.create("tibav", deit, start_block=5)
    torch.manual_seed(0)
    avg = xk.models.load("vit_tiny_patch16_224", weights="random", num_classes=3, img_size=32, depth=2)
    avg.global_pool = "avg"
    with pytest.raises(ConfigError, match="tibav.*global_pool"):
        xk.attributors.create("tibav", avg)
    ls = xk.models.load("vit_tiny_patch16_224", weights="random", num_classes=3, img_size=32, depth=2,
                        init_values=1e-5)
    with pytest.raises(ConfigError, match="LayerScale"):
        xk.attributors.create("tibav", ls)
