"""Spec of notebooks/01_background.ipynb (run: .venv/bin/python tools/nb01.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nbbuild import build, parameters_cell

from xaikit.experiments import chapter1 as ch1

CELLS = [
("md", """
# Chapter 1 — Background: classifiers, saliency methods, evaluation metrics

Regenerates thesis Table 1.1 (parameters and GFLOPs **measured** on the architectures, beside the
published numbers), Tables 1.2/1.3 as **xaikit's own catalogue** of the methods and metrics it implements
(introspected from the library and measured by running each one), and Figures 1.13 (CAM) and 1.14
(Score-CAM) drawn from real runs of the bundled EfficientNet-Lite0 on a bundled photo.

| profile | Table 1.1 accuracy | catalogue run at | figures at | expensive methods |
|---|---|---|---|---|
| `ci` (the defaults below) | bundled EfficientNet-Lite0 on the ten-crop views of the labelled bundled photos | 64 px | 64 px | few iterations / masks; Score-CAM at an earlier, narrower layer |
| `default` | same | 128 px | 224 px | the methods' own defaults, but Extremal Perturbation 100 of its 800 iterations and RISE 1000 of its 4000 masks (38 s and 15 s per image at their defaults here: the cost column shows the families' ratios either way) |
| `full` | + ImageNet validation for every Table 1.1 network (`imagenet_root`, local weights) | 224 px | 224 px | defaults |

Parameters and GFLOPs do not depend on the profile: they are counted at 224 px on the architectures built on
PyTorch's `meta` device (no weights, no compute); GFLOPs = multiply-adds, as the thesis counts them.
"""),
("params", parameters_cell(ch1.Params)),
("code", """
import torch
import xaikit as xk
from xaikit.experiments import chapter1 as ch1

cfg = ch1.Params.from_namespace(globals())  # typed and checked: a mistyped value is an error here
study = xk.experiments.Study("01_background", cfg)
rep = xk.reports.Reporter("01_background", cfg)
cnn = xk.models.load(cnn_model, weights="bundled", device=cfg.torch_device)
vit = xk.models.load(vit_model, weights="random", device=cfg.torch_device)  # the transformer-specific methods only need a ViT
photos = xk.experiments.photo_data(1, size=catalogue_size)
x_cnn = cnn.xaikit.normalize(photos.images)
x_vit = torch.rand(1, 3, vit.xaikit.input_size, vit.xaikit.input_size, generator=torch.Generator().manual_seed(seed))
"""),
("md", r"""
## The methods in one page
Every method gives, for an image $\mathbf{x}$ and a class $c$ with logit $y_c = f(\mathbf{x})_c$, a map $S^c$ of the
image's size. Later chapters repeat what they need; this is the common vocabulary.

**The CAM family** (thesis §1.3.2). Take the $K$ feature maps $A^k$ of a layer $\ell$ and combine them (eq. 1.3):
$$ S^c = h\Big(\sum_k w^c_k A^k\Big), \qquad \text{then upsample to the image and min-max normalize.} $$
The methods differ in the weights $w^c_k$:
$$ \text{CAM: } w^c_k = W_{c,k}\ (\text{the linear layer after GAP}),\ h=\mathrm{id}; \qquad
\text{Grad-CAM (1.4): } w^c_k = \mathrm{GAP}\Big(\frac{\partial y_c}{\partial A^k}\Big),\ h=\mathrm{ReLU}; $$
$$ \text{Score-CAM (1.6–1.7): } w^c_k = f\big(\mathbf{x}\odot n(\mathrm{up}(A^k))\big)_c - f(\mathbf{x}_b)_c,\quad
n(A)=\frac{A-\min A}{\max A-\min A}; $$
$$ \text{XGrad-/Axiom-CAM (1.8): } w^c_k = \mathrm{GAP}\Big(\frac{A^k}{\mathrm{GAP}(A^k)}\frac{\partial y_c}{\partial A^k}\Big); \qquad
\text{Ablation-CAM (1.9): } w^c_k = \frac{y_c - y^k_c}{y_c}. $$
Grad-CAM++ (1.5) weighs only the positive gradients, with second- and third-order terms; Layer-CAM uses a weight
per position, $\mathrm{ReLU}(\partial y_c/\partial A^k_{ij})$. Intuition: each channel is a detector, and the weights
say how much this detector matters for this class — measured by a gradient (Grad-CAM: one backward pass) or by
showing the network what the channel sees (Score-CAM: one forward pass per channel).

**Gradient methods** work at the pixels, with no layer:
$$ \text{Saliency: } S = \Big|\frac{\partial y_c}{\partial \mathbf{x}}\Big|, \qquad
\text{SmoothGrad: } S = \frac{1}{n}\sum_{j=1}^n \frac{\partial y_c}{\partial \mathbf{x}}\Big|_{\mathbf{x}+\varepsilon_j},\ \varepsilon_j\sim\mathcal{N}(0,\sigma^2), $$
$$ \text{Integrated Gradients: } S = (\mathbf{x}-\mathbf{x}')\odot\int_0^1 \frac{\partial y_c}{\partial \mathbf{x}}\Big|_{\mathbf{x}'+\alpha(\mathbf{x}-\mathbf{x}')}\,d\alpha , $$
reduced over the colour channels (max of $|\cdot|$ by default). **Guided backpropagation** changes the ReLU's backward
rule to pass only positive gradient where the input was positive: sharp, but not the gradient of any function.
The plain gradient is noisy (chapter 4 regularizes it); SmoothGrad averages the noise out, Integrated Gradients
accumulates the gradient along a path from a baseline $\mathbf{x}'$ (black) so that the attributions sum to
$y_c(\mathbf{x}) - y_c(\mathbf{x}')$.

**Perturbation methods** only query the network. RISE (Petsiuk et al.) averages $N$ random binary masks $M_i$
(cells kept with probability $p$) weighted by the score they leave:
$$ S^c = \frac{1}{N\,p}\sum_{i=1}^N f(\mathbf{x}\odot M_i)_c\, M_i . $$
Score-CAM is the same idea with the network's own feature maps as masks; Extremal Perturbation and Opti-CAM
(chapter 2) *optimize* a mask instead of sampling it. The transformer-specific methods (raw attention, rollout,
Chefer's relevance, TIBAV, ViT-ReciproCAM) appear in chapters 2 and 5.
"""),
("md", r"""
## The metrics in one page
With $p^c_i$ the probability of class $c$ for image $i$ and $o^c_i$ that of the masked image $\mathbf{x}_i\odot S_i$
(eq. 1.10, 1.11; AG is chapter 2's eq. 2.8):
$$ \mathrm{AD} = \frac{1}{N}\sum_i \frac{[p^c_i-o^c_i]_+}{p^c_i}\cdot 100\ (\downarrow), \qquad
\mathrm{AI} = \frac{1}{N}\sum_i \mathbb{1}_{p^c_i<o^c_i}\cdot 100\ (\uparrow), \qquad
\mathrm{AG} = \frac{1}{N}\sum_i \frac{[o^c_i-p^c_i]_+}{1-p^c_i}\cdot 100\ (\uparrow). $$
**ADCC** (eq. 1.12–1.14, ↑) is the harmonic mean of Coherency (correlation between the map and the map of the
masked image), $1-$Complexity ($\|S\|_1$ per pixel) and $1-$AD:
$$ \mathrm{ADCC} = 3\Big(\frac{1}{\mathrm{Coherency}} + \frac{1}{1-\mathrm{Complexity}} + \frac{1}{1-\mathrm{AD}}\Big)^{-1}. $$
**Insertion / deletion** (Algorithms 1–2): insert the pixels into a blurred copy (insertion, ↑) or set them to
black (deletion, ↓) in decreasing order of saliency, $n$ pixels a step, and take the area under $p^c$:
$\mathrm{AUC} = \int_0^1 p^c(t)\,dt$. **AOPC** and Group-CAM's **overall** (insertion − deletion) are variants.
**Localization** (eq. 1.15–1.22) binarizes the map, takes the box $B_p$ of its largest component and compares it with
the ground-truth boxes $\mathcal{B}$: $\mathrm{LE} = 1-\max_{B}\mathrm{IoU}(B,B_p)$, OM the same counting a wrong class as
an error, the pointing game $\mathrm{SP}=\mathbb{1}[\arg\max S \in \cup\mathcal{B}]$, and energy pointing game the
fraction of the map's mass inside the boxes. AD/AI/AG ask "does the map keep what the network needs?",
insertion/deletion "are the most salient pixels the most important ones?", localization "is the map on the
object?" — three different questions, and a method can win one and lose another.
"""),
("md", r"""
## Open the box: Grad-CAM by hand
Eq. 1.3–1.4 in a few lines: a forward hook (`LayerCapture`) on Grad-CAM's layer keeps $A^k$, autograd gives
$\partial y_c/\partial A^k$ for the predicted class, their spatial mean is $w^c_k$, and the ReLU of the weighted sum,
min-max normalized, is the map. We compare it with the library's `xk.attributors.create("gradcam", cnn)` at the
layer's resolution (no upsampling).
"""),
("code", """
from xaikit.models.hooks import LayerCapture
gc = xk.attributors.create("gradcam", cnn)                      # the library's Grad-CAM at its default layer
with LayerCapture(gc.layer, grad=True) as cap, torch.enable_grad():
    logits = cnn(xk.core.on_model(cnn, x_cnn))                  # the batch moved to where the model lives
    c = logits.argmax(1)                                        # the predicted class
    G = cap.gradients(logits.gather(1, c[:, None]))             # ∂y_c/∂A^k, (B, K, h, w)
    A = cap.activations.detach()                                # A^k
w = G.mean(dim=(2, 3))                                          # w_k^c = GAP(∂y_c/∂A^k)   (eq. 1.4)
S = torch.relu((w[:, :, None, None] * A).sum(1))                # h(Σ_k w_k^c A^k)        (eq. 1.3)
S = (S - S.amin((1, 2), keepdim=True)) / (S.amax((1, 2), keepdim=True) - S.amin((1, 2), keepdim=True)).clamp_min(1e-12)
ref = gc.explain(x_cnn).maps                                    # the library, same layer and class
print(f"layer {gc.layer_name!r}: K={A.shape[1]} maps of {tuple(A.shape[2:])}, class {int(c[0])} "
      f"({cnn.xaikit.short_name(int(c[0]), 20)}); max |by hand - library| = {(S.cpu() - ref.cpu()).abs().max().item():.2e}")
"""),
("md", """
**What to look for.** The difference should be at float round-off (1e-6 or below): Grad-CAM *is* these few lines.
Note how small the map is — 2×2 cells of the last layer at 64 px (`catalogue_size`) — which is why CAM maps must be
upsampled and look blurry, and why the choice of layer matters. In this profile Score-CAM runs at `blocks.6`, an
earlier layer with 320 channels instead of 1280, i.e. four times fewer forward passes.
"""),
("md", """
## Table 1.1 — milestone ImageNet classifiers
`measured`: parameters (millions) and GFLOPs (multiply-adds, 224 px) counted by `FlopCounterMode` on the
architecture named in *architecture measured* (random weights). Accuracy (top-1/top-5 %) is reproduced where
data exists: ImageNet at `full`; at every profile, the bundled EfficientNet-Lite0 on the seven labelled bundled
photos, each seen through torchvision's `TenCrop` (`accuracy_views`): resized to 256 px, the four 224-px corner
crops and the centre crop, and the same five of the mirror image, each view scored as an image (70 in all).
"""),
("code", """
t11 = ch1.table_1_1(study)
rep.table(t11, "1.1", caption="Milestone classifiers: parameters, GFLOPs measured; accuracy (thesis Table 1.1)")
"""),
("md", """
**What to look for.** The thesis' Table 1.1 gives, e.g., AlexNet 61.1 M parameters / 0.71 GFLOPs, VGG-16 138.4 M /
15.47, ResNet50 25.6 M / 4.09, EfficientNet-B0 5.3 M / 0.38, ViT-Base 86.6 M / 17.56 and ConvNeXt-Base 88.6 M /
15.36. The measured columns count the same architectures, so they should agree to within a percent (parameters)
and a few percent (GFLOPs: counting conventions differ on what an "operation" is); the claims check both.
Accuracy is the part we cannot reproduce at `ci`/`default`: the published top-1 (51.52 → 84.06 over ten years) is on
50 000 ImageNet images, ours on 70 views of seven photos with one bundled network. The seven are exactly the shipped
photos whose object Lite0 names, so their centre crops alone would give a top-5 of 100 % by construction (and the
usual ten-crop *average* of the predictions as well); scored view by view, a corner that cuts away the tower's roof
or the officer's face is often named otherwise, which is what the ~70 % top-1 says — a property of these views, not
an estimate of Lite0's ImageNet accuracy (about 75 % top-1 published for the float model).
The lesson of the table: accuracy rose while parameters did not (EfficientNet-B0 beats VGG-16 with 26× fewer).
"""),
("md", """
## Table 1.2 — the saliency methods xaikit implements
Every name of `xk.attributors.available()`, with its family and reference read from the code, and what one
run on the bundled model (transformer-specific methods: a tiny ViT) measured: forward passes through the model
per image, whether anything was back-propagated through the model's output, seconds per image, and whether the
map came back with the input's size and in [0, 1]. `options` lists what this profile changed from the defaults.
"""),
("code", """
t12 = ch1.method_catalogue(study, cnn, vit, x_cnn, x_vit)
rep.table(t12, "1.2", caption="Saliency methods implemented by xaikit, measured (thesis Table 1.2)")
"""),
("md", """
**What to look for.** The cost column tells the families apart: gradient-based CAMs (Grad-CAM, Grad-CAM++, XGrad-CAM,
Layer-CAM) need one forward and one backward pass per image; Score-CAM needs one forward pass per channel of its
layer (hundreds), RISE one per mask (`n_masks`), and the optimization methods (Opti-CAM, Extremal) one forward and
backward per iteration. CAM and Score-CAM need no gradient at all. Every row should run and give a map in [0, 1]
(a claim). Times are for one `catalogue_size` image on this machine with the options of `catalogue_options` (the
`options` column: fewer iterations and masks make a method proportionally cheaper), so only their ratios mean
something; the thesis' own Table 1.2 is a list of references, not measurements.
"""),
("md", """
## Table 1.3 — the evaluation metrics xaikit implements
Every function of `xaikit.metrics` that scores saliency maps, with its family, inputs and reference from the code,
and the forward passes per image it measurably costs (explanations by Grad-CAM).
"""),
("code", """
t13 = ch1.metric_catalogue(study, cnn, x_cnn, photos.boxes)
rep.table(t13, "1.3", caption="Evaluation metrics implemented by xaikit, measured (thesis Table 1.3)")
"""),
("md", """
**What to look for.** The thesis' Table 1.3 groups the metrics as interpretable object recognition (AD, AI,
Coherency, Complexity, ADCC), causal analysis (insertion, deletion) and interpretable object localization (OM, LE,
F1, box accuracy, pointing games, saliency metric). Check that each family has its functions here and compare their
costs: AD/AI/AG need one extra forward pass per image (the masked image), ADCC one more explanation, insertion and
deletion one pass per step (`metric_options` sets 16 steps here, the thesis uses 224), Max-Sensitivity several
explanations; localization needs none, only boxes. That is why chapter 2's tables run insertion/deletion on fewer
images than AD/AI.
"""),
("md", "## Figure 1.13 — CAM: feature maps A^k, class weights w_k^c, weighted sum, upsampled map"),
("code", """
rep.figure(ch1.cam_figure(study, cnn), "1.13",
           caption="CAM overview on a bundled photo (thesis Figure 1.13)")
"""),
("md", """
**What to look for.** The thesis' Figure 1.13 is a diagram; ours is computed. The few feature maps shown each light
a different part of the photo, their weights $w^c_k$ (the linear layer's row for the class) differ in size and sign,
and only the weighted sum is class-specific. At `figure_size` = 64 px the layer is a tiny grid, so the upsampled map
is a smooth blob: raise `figure_size` to 224 to see the resolution the thesis works at.
"""),
("md", "## Figure 1.14 — Score-CAM: masked inputs, their scores and the resulting map"),
("code", """
rep.figure(ch1.scorecam_figure(study, cnn), "1.14",
           caption="Score-CAM process on a bundled photo (thesis Figure 1.14)")
"""),
("md", """
**What to look for.** As in the thesis' Figure 1.14 (after Wang et al.), each normalized, upsampled feature map is
used as a mask on the image; the class score of each masked image, passed through a softmax, is its weight. Look
for masks that keep the object getting the large weights, and for the final map being a weighted sum of those masks.
`scorecam_layer` picks an earlier, wider layer so that the masks are less blocky at this small size.
"""),
("md", r"""
## Exercises
1. **Grad-CAM's layer.** In the worked example, pass `layer="blocks.4"` to `xk.attributors.create` (the hook
   follows `gc.layer`). Is the map still equal to the hand-made one? Its grid grows from 2×2 to 4×4 with 112
   channels: is the map more or less class-specific?
2. **Resolution.** Set `catalogue_size=224` and `figure_size=224` (the `default`/`full` sizes). Which methods' seconds
   per image in Table 1.2 grow most, and why do the perturbation methods grow more than Grad-CAM?
3. **The cost of Score-CAM.** Remove `"scorecam"` from `catalogue_options` (its default is the model's last layer,
   1280 channels instead of 320). How many forward passes per image does Table 1.2 now report, and how does that
   relate to $K$?
4. **Insertion's step count.** Set the `insertion` and `deletion` entries of `metric_options` to `{"steps": 224}`
   (the thesis' protocol). How does the forward-pass count of Table 1.3 change? Estimate the cost of one
   insertion/deletion row of Table 2.4 on the 50 000 ImageNet validation images.
5. **How many channels matter?** Set `figure_channels=8` for Figure 1.13. Are the extra channels' weights $w^c_k$
   much smaller than the first four? In the worked example, sort `w[0]` and find how many channels carry half of
   $\sum_k |w^c_k|$.
"""),
("md", """
## Claims
Checked on the tables above (nbval compares this cell's output).
"""),
("claims", """
claims = rep.claims(ch1.claims(t11, t12, t13))
"""),
]

if __name__ == "__main__":
    build(Path(__file__).resolve().parents[1] / "notebooks" / "01_background.ipynb", CELLS)
