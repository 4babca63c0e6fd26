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
| `default` | EfficientNet-Lite0 (real ImageNet weights, bundled) on the bundled photos + the synthetic ResNet-18 | synthetic images with exact boxes | a few epochs, small CNN, synthetic data |
| `full` | VGG19 on ImageNet validation (paper: 10k / 5k images) | ResNet-50 (paper: COCO val2017) | ResNet-50 on ImageNet (paper: 20 epochs) |

At `ci`/`default` the *paper model* column says which published column our model stands beside: values are not
expected to match; the **ranking of the methods** is what the claims check. Insertion starts from a blurred image,
deletion replaces pixels by black (the protocol of the official code, from RISE); over-all = insertion − deletion.
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
{es.key: f"{len(es.data)} {es.dataset} images" for es in io + [pointing, timing]}
"""),
("md", """
## Table 1 — insertion (↑), deletion (↓) and over-all (↑) AUC, percent
Target = ground-truth class (predicted class for unlabelled photos).
"""),
("code", """
t1 = ch6.insertion_deletion_table(study, io, methods)
rep.table(t1, "1", caption="Insertion / deletion / over-all AUC (Group-CAM Table 1)")
"""),
("md", "## Table 2 — number of groups G (θ = 70)"),
("code", """
t2 = ch6.groups_table(study, io[0], groups)
rep.table(t2, "2", caption="Group-CAM with G groups, θ = 70 (Group-CAM Table 2)")
"""),
("md", "## Table 3 — running time per image (seconds, this machine; the paper: one RTX 2080Ti)"),
("code", """
t3 = ch6.time_table(study, timing, methods)
rep.table(t3, "3", caption="Running time per image, seconds (Group-CAM Table 3)", digits=4)
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
("md", "## Figure 5 — the de-noising threshold θ (G = 32)"),
("code", """
t5 = ch6.theta_table(study, io[0], thetas)
rep.table(t5, "5", caption="Group-CAM insertion / deletion / over-all against θ (data of Figure 5)")
rep.figure(ch6.theta_figure(t5), "5", caption="Ablation of the threshold θ (Group-CAM Figure 5)")
"""),
("md", "## Figure 2 — visual comparison"),
("code", """
rep.figure(ch6.saliency_figure(study, io[0], methods, figure_images), "2",
           caption="Saliency maps of every method (Group-CAM Figure 2)")
"""),
("md", "## Figure 3 — class discrimination: maps for two classes of the same image"),
("code", """
rep.figure(ch6.class_figure(study, io[0], ["gradcam", "groupcam"], figure_images), "3",
           caption="Class-discriminative maps (Group-CAM Figure 3)")
"""),
("md", "## Figure 4 — insertion and deletion curves"),
("code", """
rep.figure(ch6.curves_figure(study, io[0], methods, figure_images), "4", caption="Insertion / deletion curves (Group-CAM Figure 4)")
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
("code", """
rep.figure(ch6.finetune_figure(study, base, snapshots, figure_images), "8",
           caption="Group-CAM maps during fine-tuning with Group-CAM-masked images (Group-CAM Figure 8)")
"""),
("md", """
## Claims
The paper's qualitative claims, checked on the tables above (nbval compares this cell's output).
"""),
("claims", """
claims = rep.claims(ch6.claims(t1, t3, t4))
"""),
]

if __name__ == "__main__":
    build(Path(__file__).resolve().parents[1] / "notebooks" / "06_group_cam.ipynb", CELLS)
