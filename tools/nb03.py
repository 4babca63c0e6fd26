"""Spec of notebooks/03_ca_stream.ipynb (run: .venv/bin/python tools/nb03.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nbbuild import build, parameters_cell

from xaikit.experiments import chapter3 as ch3

CELLS = [
("md", """
# Chapter 3 — CA-Stream: attention-based pooling for interpretable image recognition

Regenerates thesis Tables 3.1–3.6 (= CA-Stream paper Tables 1–6) and Figures 3.3–3.4, next to the published
numbers. Every backbone is frozen and evaluated twice: with its global average pooling (**GAP**) and with a
trained cross-attention stream replacing it (**CA**). The **profile** decides the data and networks:

| profile | Tables 3.1, 3.3–3.6 | Table 3.2 (VOC, CUB) | Lite0 |
|---|---|---|---|
| `ci` (the defaults below) | ResNet-18 (CIFAR-style) trained on synthetic 32-px images, streams trained 2 epochs | synthetic multi-label (`classes_per_image=2`) and fine-grained stand-ins | complexity at 224 px; untrained vs GAP-initialized stream on the bundled photos |
| `default` | + MobileNet-V2, more images and epochs, 48 px harder scenes (`synthetic_scene`: photo backgrounds, distractors, occlusion), 32 explained images per model | same, larger | same |
| `full` | ResNet-18/50 on ImageNet (thesis protocol, 90 epochs, CUDA) | Pascal VOC 2012, CUB-200-2011 | — |

At `ci`/`default` the *paper model* column names the published column ours stands beside: the numbers are
not expected to match; the claims check GAP-vs-CA **directions**. The bundled EfficientNet-Lite0 has no
training set here, so its stream is shown untrained (paper init) and GAP-initialized (equal to GAP).
"""),
("params", parameters_cell(ch3.Params)),
("code", """
import xaikit as xk
from xaikit.experiments import chapter3 as ch3

cfg = ch3.Params.from_namespace(globals())  # typed and checked: a mistyped value is an error here
study = xk.experiments.Study("03_ca_stream", cfg)
rep = xk.reports.Reporter("03_ca_stream", cfg)
"""),
("md", r"""
## The idea in one page
A CNN ends with **global average pooling**: the $w h$ local features $\boldsymbol\phi^i_L$ (rows of $F_L$) are
averaged with equal weights, $\mathrm{GAP}(F_L) = \frac{1}{wh}\sum_i \boldsymbol\phi^i_L$. Every location counts the
same — the network has no place to say *where* it looks. CA-Stream replaces that average by **cross-attention**
between a learned query $\mathbf{q}_\ell$ (a CLS-like token) and the features (thesis eq. 3.1–3.3):
$$ \mathbf{a} = h_\ell(F_\ell\,\mathbf{q}_\ell) = \mathrm{softmax}\Big(\frac{F_\ell\,\mathbf{q}_\ell}{\sqrt{d_\ell}}\Big), \qquad
\mathrm{CA}_\ell(\mathbf{q}_\ell, F_\ell) = F_\ell^\top \mathbf{a} = \sum_i a_i\,\boldsymbol\phi^i_\ell . $$
The attention $\mathbf{a}$ has exactly the form of a CAM map, $h(\sum_k \alpha_k \mathbf{f}^k)$ (eq. 3.2, compare
eq. 1.3): a weighted sum of feature maps with the query as weights. Pooling with it is like *masking* the features
with a saliency map before classifying. The stream runs in parallel with the frozen backbone and updates its query
after each stage $\ell$ (eq. 3.7):
$$ \mathbf{q}_{\ell+1} = W_\ell \cdot \mathrm{CA}_\ell(\mathbf{q}_\ell, F_\ell), $$
where $W_\ell$ projects to the next stage's width; the last query replaces $\mathrm{GAP}(F_L)$ before the frozen
classifier. The variant of Table 3.4 adds key/value projections, $\mathrm{CA}_\ell = (F_\ell W^V_\ell)^\top
h_\ell(F_\ell W^K_\ell\mathbf{q}_\ell)$ (eq. 3.8).

The saliency methods (Grad-CAM, Score-CAM, …) and the metrics AD/AG/AI and insertion/deletion are those of
Chapter 2 (eq. 1.10, 1.11, 2.8):
$\mathrm{AD} = \frac1N\sum_i \frac{[p_i-o_i]_+}{p_i}$, $\mathrm{AG} = \frac1N\sum_i\frac{[o_i-p_i]_+}{1-p_i}$,
$\mathrm{AI} = \frac1N\sum_i \mathbb{1}_{p_i<o_i}$, with $p_i$, $o_i$ the class probability of the image and of
the masked image $\mathbf{x}_i\odot S_i$; insertion/deletion are areas under the probability curve as salient pixels
are added to a blurred image or removed.
"""),
("md", """
## Open the box: GAP is cross-attention with a blind query
One cross-attention step (eq. 3.3) on a random feature tensor, written out in four lines of torch. With the
query $\\mathbf{q} = \\mathbf{0}$ every location gets the same attention $1/(wh)$, and CA *is* GAP; a query that
matches some locations' features concentrates the attention there. Training the stream learns such a query —
which is why its attention map doubles as an explanation.
"""),
("code", """
import torch
torch.manual_seed(0)
F = torch.rand(7 * 7, 64)                    # w*h = 49 locations, d = 64 channels (rows = phi^i)
def ca(q, F):                                # eq. 3.3: F^T softmax(F q / sqrt(d))
    a = torch.softmax(F @ q / F.shape[1] ** 0.5, dim=0)
    return F.T @ a, a
pooled, a = ca(torch.zeros(64), F)
print("q = 0  -> attention uniform:", torch.allclose(a, torch.full((49,), 1 / 49)),
      "| CA == GAP:", torch.allclose(pooled, F.mean(0)))
pooled, a = ca(10 * F[3], F)                 # a query that 'looks for' location 3's features
print("q = 10·phi^3 -> attention on location 3:", round(a[3].item(), 2), "(uniform would be 0.02)")
"""),
("md", """
## Table 3.1 — GAP vs CA: AD (↓), AG (↑), AI (↑), insertion (↑), deletion (↓), percent
Masked image `x ⊙ S` (thesis eq. 1.10, 1.11, 2.8); target = ground-truth class; the CA rows explain the
frozen backbone's last features as seen through the stream.
"""),
("code", """
t31 = ch3.gap_vs_ca_table(study, models, methods)
rep.table(t31, "3.1", caption="GAP vs CA-Stream interpretability (thesis Table 3.1)")
"""),
("md", """
**What to look for.** With ResNet-18 on ImageNet the thesis finds CA improving most metrics for every method,
e.g. Grad-CAM AG 12.73 → 17.22 and AI 41.21 → 44.95, Score-CAM AD 13.64 → 11.53 and insertion 62.56 → 65.33, while
deletion barely moves (10.66 → 10.68 for Grad-CAM). Read our table pairwise: for each method, is the CA row better
than the GAP row on AD, AG and AI? Those directions are what the claims test. Our stream is trained for
`stream_epochs` epochs on a few hundred synthetic images, so individual pairs can flip.
"""),
("md", "## Table 3.2 — the VOC (multi-label) and CUB (fine-grained) settings: recognition, then interpretability"),
("code", """
t32r = ch3.recognition_table(study, variant_model)
rep.table(t32r, "3.2a", caption="mAP (VOC stand-in) / top-1 (CUB stand-in), GAP vs CA (thesis Table 3.2)")
"""),
("md", """
**What to look for.** The thesis' point is that the stream costs little or no recognition: compare the GAP and CA
columns and expect them to be close. Our VOC and CUB stand-ins are synthetic (multi-label and fine-grained shapes),
so the absolute scores say nothing about the real datasets.
"""),
("code", """
t32 = ch3.setting_table(study, variant_model, variant_methods, ["voc2012", "cub200"])
rep.table(t32, "3.2b", caption="GAP vs CA interpretability on the VOC / CUB stand-ins (thesis Table 3.2)")
"""),
("md", """
**What to look for.** As in Table 3.1, look at the direction of each GAP → CA pair per setting. Multi-label images
are the hardest case for a single class-agnostic query, so expect smaller or mixed differences there.
"""),
("md", "## Table 3.3 — complexity: GFLOPs, parameters (M), stream share of the backbone (%), top-1"),
("code", """
t33 = ch3.complexity_table(study, models, lite_model)
rep.table(t33, "3.3", caption="CA-Stream complexity and accuracy (thesis Table 3.3)")
"""),
("md", """
**What to look for.** For ResNet-50 the thesis reports 8.268 → 8.288 GFLOPs (+0.2 %) and 25.56 → 32.53 M parameters
(the stream is 27 % of the backbone, mostly the projections $W_\\ell$ of the wide last stages), with top-1 74.55 →
74.70. Check that our GFLOPs barely change while the parameter share is substantial — these are exact counts, not
noisy estimates, so they should follow the same pattern at any scale.
"""),
("md", "## Table 3.4 — block design: CA (eq. 3.3) vs PROJ→CA (eq. 3.8)"),
("code", """
t34 = ch3.block_table(study, variant_model)
rep.table(t34, "3.4", caption="Cross-attention block design (thesis Table 3.4)")
"""),
("md", """
**What to look for.** The thesis finds the plain CA block (eq. 3.3) slightly more accurate than PROJ→CA (eq. 3.8)
with far fewer parameters: 74.70 % with 6.96 M against 74.41 % with 18.13 M on ResNet-50. Look at the parameter
column first (exact) and then whether accuracy differs by more than noise on our small test set.
"""),
("md", "## Table 3.5 — where the stream starts: placements S_l – S_L"),
("code", """
t35 = ch3.placement_table(study, variant_model, variant_methods, placements)
rep.table(t35, "3.5", caption="CA-Stream placement (thesis Table 3.5)")
"""),
("md", """
**What to look for.** Starting the stream earlier gives the query more stages to refine itself but adds cost.
Compare the metrics across placements $S_\\ell$ and against the published rows beside them.
With our 2-epoch training, later placements (fewer parameters to learn) may train better than early ones.
"""),
("md", "## Table 3.6 — class-agnostic vs class-specific initial query"),
("code", """
t36 = ch3.class_specific_table(study, variant_model, variant_methods)
rep.table(t36, "3.6", caption="Class-agnostic vs class-specific CA-Stream (thesis Table 3.6)")
"""),
("md", """
**What to look for.** One query per class (class-specific) against one shared query: the thesis finds the same
accuracy (74.68 % vs 74.70 % on ResNet-50), so the simpler class-agnostic stream is kept. Check whether our two rows
are close in accuracy and how the interpretability metrics compare.
"""),
("md", "## Figure 3.3 — saliency maps of the GAP and the CA model, and the stream's raw attention"),
("code", """
rep.figure(ch3.maps_figure(study, models[0], ["gradcam", "scorecam"], figure_images), "3.3",
           caption="GAP vs CA-Stream saliency maps and raw attention (thesis Figure 3.3)")
"""),
("md", """
**What to look for.** The thesis puts GAP and CA maps side by side, and shows the raw attention map
$\\mathbf{a}$ as a usable explanation, with no extra method. Look whether the attention column
concentrates on the synthetic object rather than the background.
"""),
("md", "## Figure 3.4 — raw attention on classes the model never saw"),
("code", """
rep.figure(ch3.unseen_figure(study, models[0], figure_images), "3.4",
           caption="Raw attention of the CA-Stream on unseen classes (thesis Figure 3.4)")
"""),
("md", """
**What to look for.** The query is class-agnostic, so it may still attend to objects of classes never seen in
training. Look whether the attention still finds the object on these images.
"""),
("md", """
## Exercises
1. **Train longer.** Raise `stream_epochs` from 2 to 10. The CA-vs-GAP differences of Table 3.1 should become more
   consistent as the stream's query actually learns where the object is.
2. **Where to start.** Set `placements=[3, 4]` and compare Table 3.5 with the default: how many parameters does a
   late stream save (Table 3.3's logic), and what does it cost in AG?
3. **More methods.** Set `variant_methods=["gradcam", "scorecam"]`: does the class-specific query (Table 3.6) help
   a perturbation method more than a gradient method?
4. **Worked example.** Replace `10 * F[3]` by `F[3]` and then by `100 * F[3]`: the factor acts as an inverse
   temperature. What happens to the attention, and why does the $\\sqrt{d}$ in eq. 3.1 matter?
"""),
("md", """
## Claims
The chapter's qualitative claims, checked on the reproduced tables above (nbval compares this cell's output). A ranking claim compares the claimed leader with each
other row on the same images, image by image: *True* when the 95 % bootstrap interval of the mean per-image
difference lies wholly on the leader's side of zero, *False* when it lies wholly on the other side, *within noise*
when it holds zero (this scale can neither confirm nor refute it). Paired differences are what the shared images
allow: two methods whose own intervals (the `±` columns) overlap can still differ consistently on every image.
"""),
("claims", """
claims = rep.claims(ch3.claims(t31, t33, t36))
"""),
]

if __name__ == "__main__":
    build(Path(__file__).resolve().parents[1] / "notebooks" / "03_ca_stream.ipynb", CELLS)
