"""Spec of notebooks/06_group_cam.ipynb (run: .venv/bin/python tools/nb06.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nbbuild import build, parameters_cell

from xaikit.experiments import chapter6 as ch6

CELLS = [
("md", """
# Group-CAM: group score-weighted visual explanations (Zhang et al. 2021)

Regenerates the paper's Tables 1–4, Figures 2–5 and the fine-tuning experiment of §5 (Figures 7–8), each
table next to the published numbers. Group-CAM splits the K activation maps into G groups, sums each group's
Grad-CAM-weighted maps, de-noises them below the θ-th percentile, masks the input over a blurred copy and
weights each group by the gain in class confidence (eqs. 1–7). Data and networks depend on the **profile**:

| profile | Tables 1–3, Figures 2–5 | Table 4 (pointing game) | §5 fine-tuning |
|---|---|---|---|
| `ci` (the defaults below) | ResNet-18 (CIFAR-style) trained on 32 px synthetic data, 6 images | same model, synthetic images with exact boxes | 1 epoch on 128 synthetic images |
| `default` | EfficientNet-Lite0 (real ImageNet weights, bundled) on the bundled photos + the synthetic ResNet-18 (64 images of the harder scenes; Table 2 and Figure 5 on it: `sweep_model`) | 128 synthetic images with exact boxes | a few epochs, small CNN, synthetic data |
| `full` | VGG19 on ImageNet validation (paper: 10k / 5k images) | ResNet-50 (paper: COCO val2017) | ResNet-50 on ImageNet (paper: 20 epochs) |

At `ci`/`default` the *paper model* column says which published column our model stands beside: values are not
expected to match; the **ranking of the methods** is what the claims check. Every table runs the conventions of
the authors' code by default (`protocol="authors"`, see docs/CONVENTIONS.md; each caption names them): insertion
starts from a Gaussian blur (51, σ 50) of the normalized image, deletion sets pixels to zero in normalized space
(the dataset-mean colour), 1792 px per step at 224 px, the target is the predicted class; RISE runs as Group-CAM's
copy (p1 = 0.1). `protocol="paper"` runs the paper's text instead. Over-all = insertion − deletion.
"""),
("params", parameters_cell(ch6.Params)),
("code", """
import xaikit as xk
from xaikit.experiments import chapter6 as ch6

cfg = ch6.Params.from_namespace(globals())  # typed and checked: a mistyped value is an error here
study = xk.experiments.Study("06_group_cam", cfg)
rep = xk.reports.Reporter("06_group_cam", cfg)
io = [xk.experiments.resolve_eval_set(s, cfg) for s in io_models]
pointing = xk.experiments.resolve_eval_set(pointing_model, cfg.replace(synthetic_images=pointing_images,
                                                                       images=pointing_images))
timing = xk.experiments.resolve_eval_set(time_model, cfg)
sweep = next((es for es in io if es.key == (sweep_model or io_models[0])), None) or \
    xk.experiments.resolve_eval_set(sweep_model, cfg)
{es.key: f"{len(es.data)} {es.dataset} images" for es in io + [pointing, timing, sweep]}
"""),
("md", r"""
## The methods in one page
**Grad-CAM** weights each of the K feature maps $A^k$ by its average gradient, $w^c_k = \frac{1}{Z}\sum_{i,j}
\partial\mathcal{F}_c/\partial A^k_{ij}$ (eq. 1), and sums: cheap (one backward pass) but noisy, because gradients
are local. **Score-CAM** instead *tests* each map: it masks the image with the normalized, upsampled map and keeps
the score, $w^c_k = \mathrm{softmax}_k\big(\mathcal{F}_c(I_0\odot n(\mathrm{up}(A^k)))\big)$ — faithful, but one
forward pass per channel (512 on VGG19). **RISE** needs no feature maps at all: it draws N random smooth binary
masks $M_n$ and averages them weighted by the score of the masked image,
$S = \frac{1}{N\,\mathbb{E}[M]}\sum_n \mathcal{F}_c(I_0\odot M_n)\,M_n$ — thousands of forward passes.

**Group-CAM** (Algorithm 1) sits in between: it tests *groups* of channels, G forward passes instead of K.
Split the K channels into G groups of $g = K/G$ and build one Grad-CAM map per group (eq. 2), de-noise it below its
θ-th percentile (eq. 3), and min-max normalize it (eq. 4):
$$ M_\ell = \mathrm{ReLU}\Big(\sum_{k=\ell g}^{(\ell+1)g-1} w^c_k A^k\Big), \qquad
\phi(m_{ij},\theta) = \begin{cases} m_{ij} & m_{ij} > p(M_\ell,\theta)\\ 0 & \text{otherwise}\end{cases}, \qquad
M'_\ell = \frac{M_\ell-\min M_\ell}{\max M_\ell-\min M_\ell}. $$
Each mask then blends the image with a blurred copy $\tilde I_0$ (eq. 5), and the group's weight is the gain in
class confidence over the blurred image (eq. 6); the map is their weighted sum (eq. 7):
$$ I'_\ell = I_0\odot M'_\ell + \tilde I_0\odot(1-M'_\ell), \qquad \alpha^c_\ell = \mathcal{F}_c(I'_\ell) - \mathcal{F}_c(\tilde I_0),
\qquad L^c_{\text{Group-CAM}} = \mathrm{ReLU}\Big(\sum_\ell \alpha^c_\ell M'_\ell\Big). $$
Blurring instead of blacking out keeps the masked images close to natural images, so the gains measure
*information* rather than the shock of a black hole in the picture.

## The metrics
**Insertion** starts from a blurred image and puts back the most salient pixels first; **deletion** removes them
first (here: set to the dataset-mean colour, as the authors' code does). With $p_c(t)$ the class probability after a fraction $t$ of the pixels,
$$ \mathrm{Ins} = \int_0^1 p^{\text{ins}}_c(t)\,dt\ (\uparrow), \qquad \mathrm{Del} = \int_0^1 p^{\text{del}}_c(t)\,dt\ (\downarrow),
\qquad \text{over-all} = \mathrm{Ins} - \mathrm{Del}\ (\uparrow). $$
**Pointing game** (Table 4): a hit when the map's maximum $\mathbf{p}^\star$ lies within 15 px of a box of the target
class; accuracy $= \#\text{hits} / (\#\text{hits} + \#\text{misses})$ per category, then averaged over categories.
"""),
("md", """
## Open the box: Group-CAM's groups and their gains
One image, Group-CAM with G = 8 groups. `extras["masks"]` holds the normalized group masks $M'_\\ell$ (at the
layer's resolution) and `extras["gains"]` the confidence gains $\\alpha_\\ell$. Look at how the groups with the
largest gain highlight different parts of the object, and how the final map is their gain-weighted sum.
"""),
("code", """
import matplotlib.pyplot as plt
es = io[0]
x = es.model.xaikit.normalize(es.data.images[:1])
e = xk.attributors.create("groupcam", es.model, groups=8).explain(x)  # target None: the predicted class
masks, gains = e.extras["masks"][0], e.extras["gains"][0]
order = gains.argsort(descending=True)
fig, ax = plt.subplots(1, 6, figsize=(13, 2.4))
ax[0].imshow(es.data.images[0].permute(1, 2, 0)); ax[0].set_title("image")
for a, l in zip(ax[1:4], order[:3].tolist()):
    a.imshow(masks[l], cmap="jet"); a.set_title(f"group {l}: α = {gains[l]:+.3f}")
ax[4].bar(range(len(gains)), gains.numpy()); ax[4].set_title("gains α_l")
ax[5].imshow(e.maps[0], cmap="jet"); ax[5].set_title("Group-CAM map")
for a in [*ax[:4], ax[5]]: a.axis("off")
plt.tight_layout()
"""),
("md", """
## Table 1 — insertion (↑), deletion (↓) and over-all (↑) AUC, percent
Target = the class predicted on the clean image (the authors' code; the ground-truth class with `protocol="paper"`).
"""),
("code", """
t1 = ch6.insertion_deletion_table(study, io, methods)
rep.table(t1, "1", caption="Insertion / deletion / over-all AUC (Group-CAM Table 1)")
"""),
("md", """
**What to look for.** On VGG19 the paper reports Group-CAM with the best insertion (64.91) and over-all (53.62),
Score-CAM a close second (64.75 / 53.28), and XRAI the best deletion (10.90 against Group-CAM's 11.29). The margins
are small — a fraction of a point. In our table look at the over-all column: Group-CAM and Score-CAM should lead the
gradient methods, with RISE close. The real network (EfficientNet-Lite0, `default`) sees only a few bundled photos,
the synthetic ResNet-18 few small images (32 px at `ci`, 48 px at `default`), and RISE runs with only `rise_masks`
masks, so a single image can swap neighbouring ranks.
"""),
("md", "## Table 2 — number of groups G (θ = 70)"),
("code", """
t2 = ch6.groups_table(study, sweep, groups)
rep.table(t2, "2", caption="Group-CAM with G groups, θ = 70 (Group-CAM Table 2)")
"""),
("md", """
**What to look for.** The paper finds over-all rising steadily with G: 50.51 at G = 1, 53.65 at G = 8, 54.17 at
G = 32 and 54.56 at G = 256 — mostly through insertion, deletion barely moves. More groups means finer tests of the
channels, at the price of more forward passes; G = 32 is the trade-off. Check whether our row for G = 1 is the
weakest. Our small model has few channels in its last layer, so large G quickly means one channel per group
(G above the channel count is left out). The sweep runs on `sweep_model` (at `default`: the synthetic ResNet-18, so
that each row averages many images, not four photos); each mean has its 95 % bootstrap interval (`±`) beside it:
two rows whose intervals overlap are not ranked by this table.
"""),
("md", "## Table 3 — running time per image (seconds, this machine; the paper: one RTX 2080Ti)"),
("code", """
t3 = ch6.time_table(study, timing, methods)
rep.table(t3, "3", caption="Running time per image, seconds (Group-CAM Table 3)", digits=4)
"""),
("md", """
**What to look for.** On a 2080Ti the paper measures Grad-CAM 0.03 s, Group-CAM 0.09 s, Score-CAM 2.46 s, RISE
38.23 s and XRAI 42.17 s per image. The order follows the number of forward passes: 1 backward, G + 1, K, N masks.
Our absolute times come from a CPU and a tiny model, but that ordering should survive; RISE looks cheaper here only
because `rise_masks` is far below the paper's 8000.
"""),
("md", """
## Table 4 — pointing game
A hit when the map's maximum lies within 15 px (scaled to the image size) of a box of the target class;
accuracy per category, then the mean over categories.
"""),
("code", """
t4_cat, t4 = ch6.pointing_table(study, pointing, methods)
rep.table(t4_cat.reset_index(), "4-categories", caption="Pointing game accuracy per category (%)")
rep.table(t4, "4", caption="Pointing game, mean accuracy over categories (Group-CAM Table 4)")
"""),
("md", """
**What to look for.** On COCO val2017 with ResNet-50 the paper reports Group-CAM 57.5 %, Grad-CAM++ 57.2, Grad-CAM
56.7, XRAI 55.1, RISE 54.3 and Score-CAM 51.0: close numbers, with Group-CAM marginally ahead. In the per-category
table look at which categories all methods miss — those are the hard shapes, not a method's fault. Our synthetic
boxes are exact and the objects alone, which makes the game much easier than COCO's cluttered scenes.
"""),
("md", "## Figure 5 — the de-noising threshold θ (G = 32)"),
("code", """
t5 = ch6.theta_table(study, sweep, thetas)
rep.table(t5, "5", caption="Group-CAM insertion / deletion / over-all against θ (data of Figure 5)")
rep.figure(ch6.theta_figure(t5), "5", caption="Ablation of the threshold θ (Group-CAM Figure 5)")
"""),
("md", """
**What to look for.** The paper reports over-all stable for small θ, then dropping quickly beyond θ = 70 (a swing of
over 1.1 points), hence the default 70. De-noising removes the weak tail of each group map; too much of it and the
masks become small islands that hide useful context. Look at the over-all curve across our `thetas`: flat first,
then falling at the largest θ.
"""),
("md", """
## Figure 2 — visual comparison
As in the paper (§4.2): gradient-based methods (Guided Backpropagation, Integrated Gradients, SmoothGrad), the
region-based RISE, and the activation-based Grad-CAM, Grad-CAM++, Score-CAM and Group-CAM. Each map explains the
class Table 1 explains (`protocol="authors"`: the predicted class, as Group-CAM's code does), so these are the
very maps Table 1 scored.
"""),
("code", """
rep.figure(ch6.saliency_figure(study, io[0], methods, figure_images), "2",
           caption="Saliency maps of every method (Group-CAM Figure 2)")
"""),
("md", """
**What to look for.** The paper's point: Group-CAM's maps carry less random noise than the region-based (RISE)
and activation-based ones, and are smoother than the gradient-based ones, which are pixel-sharp but speckled.
Look for the grain of the three gradient columns against the blobs of the CAMs, and for RISE's noise (few masks
here). On the bundled photos the maps are readable; on 48-px synthetic images every CAM is coarse.
"""),
("md", """
## Figure 3 — class discrimination: maps for two classes of the same image
The paper explains one image holding a bull mastiff and a tiger cat, once per class. For photos we build such
images: the centre halves of two bundled photos side by side, each class being what the model predicts for that
photo alone (the two top classes of one photo are often synonyms, such as tabby and tiger cat).
"""),
("code", """
rep.figure(ch6.class_figure(study, io[0], ["gradcam", "groupcam"], figure_images), "3",
           caption="Class-discriminative maps (Group-CAM Figure 3)")
"""),
("md", """
**What to look for.** A class-discriminative method highlights different regions when asked about different
classes of the same image. Look whether the two rows of each method differ; Group-CAM inherits this from its
Grad-CAM group weights (eq. 1) and its class-specific gains (eq. 6).
"""),
("md", "## Figure 4 — insertion and deletion curves"),
("code", """
rep.figure(ch6.curves_figure(study, io[0], methods, figure_images), "4", caption="Insertion / deletion curves (Group-CAM Figure 4)")
"""),
("md", """
**What to look for.** A good map makes the insertion curve shoot up early and the deletion curve collapse early;
the AUCs of Table 1 are the areas under these curves. Look at the first few steps, where methods differ most.
With `insertion_steps` steps the curves are coarse staircases.
"""),
("md", """
## §5, Figures 7–8 — fine-tuning with Group-CAM
Each training image is replaced by `M ⊙ I + (1 − M) ⊙ blur(I)`, M = Group-CAM map (G = 16, no de-noising) of the
ground-truth class binarized at its mean; compared with fine-tuning on the plain images, same seed and schedule.
Figure 8 shows the Group-CAM maps of the model being fine-tuned, before (epoch 0) and after each epoch.
"""),
("code", """
snapshots = []  # (epoch, weights) of the Group-CAM-fine-tuned model, for Figure 8
t7, base = ch6.finetune(study, snapshots=snapshots)
rep.table(t7, "7", caption="Top-1 accuracy after fine-tuning with / without Group-CAM (Group-CAM §5, Figure 7)")
"""),
("md", """
**What to look for.** The paper fine-tunes ResNet-50 for 20 epochs and reports top-1 76.74 % with Group-CAM-masked
images against 76.15 % without, a gain of about 0.6 points — the maps act as a data augmentation that keeps the
object and blurs the rest. Our run is one epoch on 128 synthetic images, so a difference of either sign is within
noise; the claims do not test this table.
"""),
("code", """
rep.figure(ch6.finetune_figure(study, base, snapshots, figure_images), "8",
           caption="Group-CAM maps during fine-tuning with Group-CAM-masked images (Group-CAM Figure 8)")
"""),
("md", """
**What to look for.** The paper shows maps becoming more focused on the object as fine-tuning proceeds. Compare the
epoch-0 column with the last: with a single epoch here the change may be slight.
"""),
("md", """
## Exercises
1. **More groups.** Set `groups=[1, 4, 16, 64]`. Over-all should rise with G (paper Table 2) while the time of
   Table 3 grows with the G + 1 forward passes. Where does it saturate for our model, and why (how many channels
   does its last layer have)?
2. **No de-noising.** Set `thetas=[0, 50, 70, 90, 99]`. At θ = 99 each group keeps only its top 1 % of pixels:
   expect insertion to drop, because masks hide the context the network needs.
3. **A fair RISE.** Set `rise_masks=4000` (or `None`, the protocol's 8000). RISE's maps become smoother and its
   AUCs should improve, while Table 3 shows why the paper calls it slow.
4. **Authors' code vs text.** Switch `protocol="paper"`: Group-CAM then normalizes at the layer's resolution (eq. 4
   as written) instead of after upsampling; add `insertion_steps=None` and the curves follow the text's 1 % steps
   instead of the code's 28. Which numbers of Table 1 move?
5. **Finer curves.** Set `insertion_steps=None` (the protocol's) and compare Figure 4 with the coarse default.
"""),
("md", """
## Claims
The paper's qualitative claims, checked on the tables above (nbval compares this cell's output). A ranking claim compares the claimed leader with each
other row on the same images, image by image: *True* when the 95 % bootstrap interval of the mean per-image
difference lies wholly on the leader's side of zero, *False* when it lies wholly on the other side, *within noise*
when it holds zero (this scale can neither confirm nor refute it). Paired differences are what the shared images
allow: two methods whose own intervals (the `±` columns) overlap can still differ consistently on every image.
The fine-tuning claim (§5: +0.59 points top-1 on ImageNet) pairs the two fine-tuned models on the same test
images, image by image (hit or miss); a gain of half a point needs thousands of test images to show, so at this
scale expect *within noise*.
"""),
("claims", """
claims = rep.claims(ch6.claims(t1, t3, t4, t7))
"""),
]

if __name__ == "__main__":
    build(Path(__file__).resolve().parents[1] / "notebooks" / "06_group_cam.ipynb", CELLS)
