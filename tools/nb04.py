"""Spec of notebooks/04_interpretable_gradients.ipynb (run: .venv/bin/python tools/nb04.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nbbuild import build, parameters_cell

from xaikit.experiments import chapter4 as ch4

CELLS = [
("md", """
# Chapter 4 — Interpretable gradients: training with a guided-gradient regularizer

Regenerates thesis Tables 4.1–4.3 and Figures 4.2–4.3. Training adds to the cross-entropy L_C the error
between the standard input gradient ∂L_C/∂x and the guided-backprop gradient (Algorithm 3,
L = L_C + λ·L_R, eq. 4.3–4.8); λ = 0 is standard training. CAM methods are then evaluated on the
trained networks with AD (↓), AG (↑), AI (↑), insertion (↑) and deletion (↓), in percent.

| profile | data | networks | training |
|---|---|---|---|
| `ci` (the defaults below) | synthetic 32 px, 10 classes, 64 training images | CIFAR ResNet-18 (width 8) | 1 epoch: a smoke test, accuracy near chance |
| `default` | synthetic 32 px, 10 classes, harder scenes (`synthetic_scene`), 128 explained test images; MAE and MSE at their own λ (`error_lambdas`) | CIFAR ResNet-18 (width 16), MobileNet-V2 (×0.5) | a few CPU minutes per model |
| `full` | CIFAR-100 (`cifar_root`) | CIFAR ResNet-18 / MobileNet-V2 at full width | thesis §4.3.1: SGD, lr 0.1 ÷5 at 60/120/160, 200 epochs, batch 128, GPU |

Trained models are cached by their full configuration (`xk.config.cache_dir()/interpretable`), so a rerun
only evaluates. At `ci`/`default` the *published* columns are the thesis' CIFAR-100 numbers for the same
network and regularizer: they are not expected to match; the claims check the *direction* of the effects.
"""),
("params", parameters_cell(ch4.Params)),
("code", """
import xaikit as xk
from xaikit.experiments import chapter4 as ch4

cfg = ch4.Params.from_namespace(globals())  # typed and checked: a mistyped value is an error here
study = xk.experiments.Study("04_interpretable_gradients", cfg)
rep = xk.reports.Reporter("04_interpretable_gradients", cfg)
zoo = ch4.Zoo(study)
arch0 = models[0]
{"train": len(zoo.data[0]), "test": len(zoo.data[1]), "evaluated images": images}
"""),
("md", r"""
## The method in one page
**The loss.** A classifier $f$ with parameters $\theta$ maps an image $\mathbf{x}_i$ to logits
$\mathbf{y}_i = f(\mathbf{x}_i;\theta)$. Standard training minimizes the classification loss (thesis eq. 4.1–4.2)
$$ L_C(X,\theta,T) = \frac{1}{n}\sum_{i=1}^n \mathrm{CE}\big(f(\mathbf{x}_i;\theta), t_i\big), \qquad
\mathrm{CE}(\mathbf{y}, t) = -\log\frac{e^{y_t}}{\sum_j e^{y_j}}. $$
Its gradient *with respect to the input*, $\delta\mathbf{x}_i = \partial L_C/\partial\mathbf{x}_i$, is the plain
"saliency" of the image, and it is noisy: every ReLU and every strided convolution lets through gradient that
says little about the object. **Guided backpropagation** (Springenberg et al.) changes only the backward rule of
the ReLU: where the standard rule passes $\delta_{\text{in}} = \delta_{\text{out}}\cdot\mathbb{1}[z>0]$, the guided
rule also drops negative incoming gradient, $\delta_{\text{in}} = \delta_{\text{out}}\cdot\mathbb{1}[z>0]\cdot
\mathbb{1}[\delta_{\text{out}}>0]$. The resulting $\delta_G\mathbf{x}_i = \partial_G L_C/\partial\mathbf{x}_i$ is
sharp and object-shaped, but it is not the true gradient of anything the network optimizes.

The chapter's idea is to make the *true* gradient look like the guided one during training, with the guided
gradient as a detached "teacher" (eq. 4.3–4.4):
$$ L_R(X,\theta,T) = \frac{1}{n}\sum_{i=1}^n E\big(\delta\mathbf{x}_i,\ \mathrm{sg}[\delta_G\mathbf{x}_i]\big), \qquad
L = L_C + \lambda\, L_R , $$
where $\mathrm{sg}$ stops the gradient and $\lambda\ge 0$ weighs the regularizer ($\lambda=0$ is standard
training). Since $L_R$ depends on $\partial L_C/\partial\mathbf{x}$, minimizing it over $\theta$ needs *double
backprop* (a backward pass kept in the graph, then differentiated again): Algorithm 3 costs **five** passes through
$f$ per step (guided forward+backward, forward, backward with `create_graph`, backward of $L$) instead of two. The
hope: if the input gradient is cleaner, so are the gradients at intermediate layers — exactly what Grad-CAM and its
relatives average — and the CAM maps improve with no change at inference, like SmoothGrad without its many passes.

**The error functions** $E(\delta,\delta')$ over the $p$ elements of a gradient image (eq. 4.5–4.8, compared in
Table 4.2; `errors` names them `mae`, `mse`, `cosine`, `hi`):
$$ E_{\mathrm{MAE}} = \frac{1}{p}\|\delta-\delta'\|_1 \ (4.5), \qquad E_{\mathrm{MSE}} = \frac{1}{p}\|\delta-\delta'\|_2^2 \ (4.6), $$
$$ E_{\cos} = -\frac{\langle\delta,\delta'\rangle}{\|\delta\|_2\,\|\delta'\|_2} \ (4.7), \qquad
E_{\mathrm{HI}} = -\sum_{i=1}^{p}\min\Big(\frac{|\delta_i|}{\|\delta\|_1}, \frac{|\delta'_i|}{\|\delta'\|_1}\Big) \ (4.8). $$
MAE and MSE ask the two gradients to be *equal*, magnitudes included — a strong demand, because the guided
gradient's scale has nothing to do with the loss. Cosine only asks them to *point the same way* ($E_{\cos}\in[-1,1]$,
$-1$ when aligned): it is scale-free, which is why it is the thesis' choice. Histogram intersection compares where
the gradient *mass* lies, ignoring signs ($E_{\mathrm{HI}}\in[-1,0]$). The thesis prints eq. 4.8 with the product
$\|\delta\|_1\|\delta'\|_1$ in one denominator, which is not scale-invariant; `hi` normalizes each histogram as
above and `hi_thesis` is the formula as printed.
"""),
("md", r"""
## Recap: the CAM methods and the metrics of the tables
Every CAM method weighs the $K$ feature maps $A^k$ of a layer with class weights, $S^c = \mathrm{ReLU}\big(\sum_k w^c_k A^k\big)$
(eq. 1.3); they differ in $w^c_k$ (eq. 1.4–1.9):
$$ \text{Grad-CAM: } w^c_k = \mathrm{GAP}\Big(\frac{\partial y_c}{\partial A^k}\Big), \qquad
\text{Axiom-CAM (XGrad-CAM): } w^c_k = \mathrm{GAP}\Big(\frac{A^k}{\mathrm{GAP}(A^k)}\frac{\partial y_c}{\partial A^k}\Big), $$
$$ \text{Score-CAM: } w^c_k = f\big(\mathbf{x}\odot n(\mathrm{up}(A^k))\big)_c - f(\mathbf{x}_b)_c, \qquad
\text{Ablation-CAM: } w^c_k = \frac{y_c - y^k_c}{y_c}, $$
and Grad-CAM++ (eq. 1.5) reweighs the positive gradients with second- and third-order terms. Grad-CAM, Grad-CAM++
and Axiom-CAM read gradients at the feature layer, so a cleaner gradient should change them directly; Score-CAM and
Ablation-CAM read only forward scores ($y^k_c$: the score with map $k$ zeroed), so they can only improve if the
training changed the feature maps themselves.

With $p^c_i$ the class probability of image $i$ and $o^c_i$ that of the masked image $\mathbf{x}_i\odot S_i$
(eq. 1.10, 1.11, 2.8):
$$ \mathrm{AD} = \frac{1}{N}\sum_i \frac{[p^c_i-o^c_i]_+}{p^c_i}\cdot 100\ (\downarrow), \qquad
\mathrm{AG} = \frac{1}{N}\sum_i \frac{[o^c_i-p^c_i]_+}{1-p^c_i}\cdot 100\ (\uparrow), \qquad
\mathrm{AI} = \frac{1}{N}\sum_i \mathbb{1}_{p^c_i<o^c_i}\cdot 100\ (\uparrow). $$
**Insertion** (↑) and **deletion** (↓) add the pixels to a blurred image, or remove them (to black in the text, to the mean colour in the author's code), in order of
saliency and report the area under the curve of $p^c$ (`insertion_steps` steps). AD/AG/AI ask "does the map keep
what the network needs?", insertion/deletion "are the *most* salient pixels the most important ones?".
"""),
("md", r"""
## Open the box: the two gradients on one batch
Before any table: the baseline network ($\lambda=0$; the same one Table 4.1 trains, so nothing is trained twice),
its plain gradient $\delta\mathbf{x}$ and guided gradient $\delta_G\mathbf{x}$ on the evaluated test images, every
error function of eq. 4.5–4.8 between them, and the regularized loss of Algorithm 3 at $\lambda=1$ computed by the
library's `regularized_loss` (its $L_R$ is the batch mean of $E_{\cos}$ printed just above it).
"""),
("code", """
from xaikit.core.devices import model_device
from xaikit.training.interpretable import gradient_error, regularized_loss
base = zoo.baseline(arch0)                                     # λ = 0: standard training
b = zoo.eval_set(base).data.to(model_device(base.model))       # the first `images` test images, in [0, 1]
g, gg = ch4.gradients(base.model, b.images, b.labels)          # δx = ∂L_C/∂x and the guided δ_G x
print("E(δx, δ_G x), batch mean:", {e: f"{gradient_error(g, gg, e).mean().item():.3g}"
                                    for e in ["mae", "mse", "cosine", "hi"]})
print("per-image cosine similarity:", [round(v, 2) for v in ch4.alignment(g, gg).tolist()])
x = base.model.xaikit.normalize(b.images)                      # the model's input normalization
loss, parts = regularized_loss(base.model, x, b.labels, lam=1.0, error="cosine", warn=False)
print(f"L = L_C + λ·L_R = {parts['L_C']:.3f} + 1 × ({parts['L_R']:.3f}) = {parts['L']:.3f}")
"""),
("md", r"""
**What to look for.** On a barely trained network the two gradients hardly agree: the per-image cosine
similarities scatter around zero, some of them negative, because the guided rule throws away every negative
gradient on its way back. The batch mean of $E_{\cos}$ printed first is exactly the $L_R$ of the last line (minus the
mean cosine). MAE and MSE are tiny numbers because input gradients are tiny — at a fixed λ they weigh almost nothing
in $L$, while $E_{\cos}$ and $E_{\mathrm{HI}}$ live on a fixed scale. A regularized network should push $E_{\cos}$
towards −1; the "trained networks" table below reports the mean cosine for every model trained here.
"""),
("md", """
## Table 4.1 — standard vs cosine-regularized training, every CAM method
`top1` is the test accuracy of the network (same for every method row), `top1 ±` its 95 % interval over the
`test_images`; `n` counts the evaluation images behind the saliency metrics and their `±`. λ is ours, `paper λ`
the thesis'. Axiom-CAM is XGrad-CAM.
"""),
("code", """
t41 = ch4.table_41(zoo, models, methods)
rep.table(t41, "4.1", caption="Standard vs cosine-regularized training (thesis Table 4.1)")
"""),
("md", r"""
**What to look for.** In the thesis (CIFAR-100, 200 epochs) the cosine regularizer costs ResNet-18 half a point of
accuracy (73.42 → 72.86, λ = 7.5·10⁻³) and *raises* MobileNet-V2's (59.43 → 62.36, λ = 10⁻³), and improves five of
six metrics for every CAM method: Grad-CAM AD 30.16 → 28.09 and AG 15.23 → 16.19 on ResNet-18, 44.64 → 40.89 on
MobileNet-V2; insertion rises slightly, while deletion gets slightly *worse* (17.47 → 17.57). Score-CAM improves
too (AD 26.49 → 24.82), which the thesis reads as better feature maps, not only better gradients. Axiom-CAM's rows
(almost) equal Grad-CAM's in the thesis and should equal them exactly in ours: our CAM layer is the last block,
followed by global average pooling and one linear layer, so $\partial y_c/\partial A^k$ is constant over space and
both weightings give the same normalized map. Look at the sign of the AD and AG changes between
the baseline and the cosine rows of each method. At `ci` the network is trained for one epoch on 64 synthetic
images (accuracy near chance, λ = 1 instead of 7.5·10⁻³) and 8 images are explained, so differences of a few points
are noise; `default` trains longer on more images and the signs become meaningful.
"""),
("md", "## Table 4.2 — choice of the error function E (Grad-CAM)"),
("code", """
t42 = ch4.table_42(zoo, arch0, errors, error_lambda, lambdas=error_lambdas)
rep.table(t42, "4.2", caption="Error function of the regularizer, Grad-CAM (thesis Table 4.2)")
"""),
("md", """
**What to look for.** The thesis (ResNet-18, Grad-CAM): every regularizer keeps accuracy within about half a point
(72.86–73.88 vs 73.42), most improve AD/AG/AI a little, and most make deletion worse (MAE 17.95, MSE 18.02 vs
17.47). Cosine gives the best AD (28.09), AG (16.19) and AI (31.53) while keeping deletion (17.57), hence the
choice; histogram intersection barely moves (AD 30.39). Our default `errors` are cosine and histogram at
`error_lambda`; compare each row with the baseline row, not with the published column — with one epoch of
training the regularizer has had little time to act.
"""),
("md", """
## Table 4.3 — the regularization coefficient λ (cosine, Grad-CAM)
Published cells are filled where our λ is one of the thesis' values.
"""),
("code", """
t43 = ch4.table_43(zoo, arch0, lambda_sweep)
rep.table(t43, "4.3", caption="Regularization coefficient, cosine, Grad-CAM (thesis Table 4.3)")
"""),
("md", """
**What to look for.** The thesis finds the method "not very sensitive" to λ: from 10⁻³ to 10, accuracy stays in
72.46–73.71 and Grad-CAM AD in 28.09–30.53 (baseline 30.16); 7.5·10⁻³ is best and becomes the default, λ = 1 gives
AD 28.44 / AG 16.02 / AI 31.31. Our `lambda_sweep` is [1.0] at `ci`, so the only published row beside ours is
λ = 1. Add more values to see whether AD moves monotonically with λ or, as in the thesis, wanders within two points.
"""),
("md", """
## The trained networks and the cost of a regularized step
Every network trained above: accuracy, final L_C and L_R, and how well its input gradient agrees with
its guided gradient on the evaluated test images (cosine similarity, the quantity eq. 4.7 optimizes).
Then the wall time of one training step: the thesis counts five passes instead of two.
"""),
("code", """
training = ch4.training_table(zoo)
rep.table(training, "4.x-training", caption="Trained networks: accuracy, losses, gradient alignment")
"""),
("md", """
**What to look for.** This table has no published counterpart: it checks the mechanism. The regularized models'
`cos(∇L, guided ∇L)` should be higher than the baseline's (a claim below): training pushed the standard gradient
towards the guided one. Their final L_R is negative (−1 would be perfect alignment for cosine), and their top-1
should stay close to the baseline's. MAE's and MSE's L_R are orders of magnitude smaller than cosine's (they show as
0.00): the `λ·L_R` column is the weight each regularizer had in the loss, which is why `error_lambdas` gives them
their own λ. At `ci` one epoch on 64 images leaves accuracy near chance (10 classes: ≈ 10 %), so only the
alignment column is informative.
"""),
("code", """
cost = ch4.cost_table(zoo, models, batch=cost_batch, repeats=cost_repeats)
rep.table(cost, "4.x-cost", caption="One regularized step vs one plain step (Algorithm 3)")
"""),
("md", """
**What to look for.** The thesis counts five passes through the network per regularized step instead of two, so
expect a ratio of roughly 2.5, and usually more: the backward pass with `create_graph` and its differentiation are
heavier than a plain backward. On a tiny network and a CPU, fixed overheads dominate and the ratio can be anywhere
between 2 and 5; raise `cost_batch` and `cost_repeats` for a steadier figure.
"""),
("md", "## Figure 4.2 — input gradients, standard vs regularized training"),
("code", """
rep.figure(ch4.gradient_figure(zoo, arch0, lambdas[arch0], figure_images), "4.2",
           caption="Input gradients: standard, guided, regularized (thesis Figure 4.2)")
"""),
("md", """
**What to look for.** The thesis: "slightly less noise with our method, while the object of interest is better
covered by gradient activations". Compare the two "standard" columns: the regularized one should look more like
its guided neighbour, and the title's cosine to the guided gradient should be higher. Our images are 32 px
synthetic shapes and the network has seen them for one epoch, so the gradients are blotchy at any λ; look at the
cosine in the titles rather than at the texture.
"""),
("md", "## Figure 4.3 — saliency maps, standard vs regularized training"),
("code", """
rep.figure(ch4.saliency_figure(zoo, arch0, lambdas[arch0], ["gradcam", "gradcampp", "scorecam"], figure_images),
           "4.3", caption="Saliency maps, standard vs regularized (thesis Figure 4.3)")
"""),
("md", """
**What to look for.** The thesis sees the largest differences for Grad-CAM, "which directly averages the gradient to
weigh feature maps", and smaller ones for Score-CAM, which only reads changes of the predicted probability. Look
whether our Grad-CAM/Grad-CAM++ columns change more between baseline and λ than Score-CAM's. At 32 px the CAM layer
is only a few cells wide, so every map is a handful of blocks (the thesis notes the same sparsity on CIFAR-100).
"""),
("md", """
## Exercises
1. **Train long enough to see it.** Set `epochs=20`, `train_images=2000` (or use the `default` profile). Do the
   regularized rows of Table 4.1 now beat the baseline on AD and AG, and does deletion get slightly worse, as in
   the thesis?
2. **The thesis' λ.** Set `lambdas={"resnet18_cifar": 0.0075}` and `lambda_sweep=[0.001, 0.0075, 0.1, 1.0, 10.0]`.
   Is our AD as insensitive to λ as Table 4.3 says? At which λ does the alignment column of the training table
   start to move?
3. **All four error functions.** Set `errors=["cosine", "hi", "hi_thesis", "mae", "mse"]`. In the worked example,
   MAE and MSE were orders of magnitude smaller than cosine: what `error_lambda` would they need to weigh as much?
   Does `hi_thesis` (eq. 4.8 as printed) behave differently from `hi`?
4. **A second architecture.** Add `"mobilenetv2_cifar"` to `models`. The thesis saw its accuracy *rise* with the
   regularizer; does the regularizer's effect on Grad-CAM differ between the two networks?
5. **Gradient vs score.** Using Table 4.1, compute for each method the change in AD between baseline and cosine.
   Are the gradient-based methods (Grad-CAM, Grad-CAM++, Axiom-CAM) affected more than Score-CAM and Ablation-CAM?
"""),
("md", """
## Claims
The chapter's robust claims, checked on the reproduced tables above (nbval compares this cell's output). A ranking claim compares the claimed leader with each
other row on the same images, image by image: *True* when the 95 % bootstrap interval of the mean per-image
difference lies wholly on the leader's side of zero, *False* when it lies wholly on the other side, *within noise*
when it holds zero (this scale can neither confirm nor refute it). Paired differences are what the shared images
allow: two methods whose own intervals (the `±` columns) overlap can still differ consistently on every image.
At `ci` the networks are trained for one epoch on 64 images, so these are a smoke test of the pipeline:
a `False` here says the effect is not visible at that scale, not that the code is wrong.
"""),
("claims", """
claims = rep.claims(ch4.claims(t41, training, accuracy_tolerance))
"""),
]

if __name__ == "__main__":
    build(Path(__file__).resolve().parents[1] / "notebooks" / "04_interpretable_gradients.ipynb", CELLS)
