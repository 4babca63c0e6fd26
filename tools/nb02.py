"""Spec of notebooks/02_opti_cam.ipynb (run: .venv/bin/python tools/nb02.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nbbuild import build, parameters_cell

from xaikit.experiments import chapter2 as ch2

CELLS = [
("md", """
# Chapter 2 — Opti-CAM: optimizing saliency maps for interpretability

Regenerates thesis Tables 2.1–2.8 and Figures 2.2–2.3, each next to the published numbers.
Which data and networks are used depends on the **profile** (set by `python -m xaikit.run --profile …`):

| profile | classification tables | localization / bounding-box tables | transformers |
|---|---|---|---|
| `ci` (the defaults below) | EfficientNet-Lite0 (real ImageNet weights, bundled) on 2 bundled photos; ResNet-18 trained on synthetic data | synthetic images with exact boxes | tiny DeiT trained on synthetic data |
| `default` | same networks on 4 photos at 224 px, 100 Opti-CAM steps (the thesis' budget); insertion/deletion with 56 steps (the thesis uses 224: set `insertion_steps=224` for the exact protocol) | same, 16 images | same |
| `full` | ImageNet validation, ResNet-50 and VGG16 | ImageNet boxes | ViT-B/16, DeiT-B/16 |

At `ci`/`default` the *paper model* column says which published column our model stands beside: the
numbers are not expected to match, the **ranking of the methods** is what the claims check.
"""),
("params", parameters_cell(ch2.Params)),
("code", """
import xaikit as xk
from xaikit.experiments import chapter2 as ch2

cfg = ch2.Params.from_namespace(globals())  # typed and checked: a mistyped value is an error here
study = xk.experiments.Study("02_opti_cam", cfg)
rep = xk.reports.Reporter("02_opti_cam", cfg)
cnn = [xk.experiments.resolve_eval_set(s, cfg) for s in cnn_models]
vit = [xk.experiments.resolve_eval_set(s, cfg) for s in vit_models]
loc = [xk.experiments.resolve_eval_set(s, cfg) for s in loc_models]
loc_vit = [xk.experiments.resolve_eval_set(s, cfg) for s in loc_vit_models]
{es.key: f"{len(es.data)} {es.dataset} images" for es in cnn + vit + loc + loc_vit}
"""),
("md", """
## Table 2.1 — classification metrics with CNNs
AD (↓), AG (↑), AI (↑) in percent on the masked image `x ⊙ S` (thesis eq. 1.10, 1.11, 2.8); T = seconds per
batch of 8 images on this machine. Target = ground-truth class (predicted class for unlabelled photos).
"""),
("code", """
t21 = ch2.classification_table(study, cnn, cnn_methods, "thesis:2.1")
rep.table(t21, "2.1", caption="Classification metrics, CNNs (thesis Table 2.1)")
"""),
("md", "## Table 2.2 — classification metrics with transformers"),
("code", """
t22 = ch2.classification_table(study, vit, vit_methods, "thesis:2.2")
rep.table(t22, "2.2", caption="Classification metrics, transformers (thesis Table 2.2)")
"""),
("md", """
## Table 2.3 — AOPC, Max-Sensitivity, ADCC
AOPC: patch 14, 10 regions; MS: radius 0.2 (Quantus' settings, thesis §2.7); ADCC re-explains the masked image.
Max-Sensitivity explains every image `ms_samples` more times: the profile sets how many images and methods
(`more_images`, `more_methods`) this table affords.
"""),
("code", """
t23 = ch2.more_metrics_table(study, cnn, more_methods, n=more_images)
rep.table(t23, "2.3", caption="AOPC / Max-Sensitivity / ADCC (thesis Table 2.3)")
"""),
("md", "## Table 2.4 — insertion (blurred start) and deletion (black) AUC, percent"),
("code", """
t24 = ch2.insertion_deletion_table(study, cnn + vit, {"cnn": cnn_methods, "vit": vit_methods})
rep.table(t24, "2.4", caption="Insertion / deletion (thesis Table 2.4)")
"""),
("md", """
## Table 2.5 — the bounding-box study
Classification metrics when the ground-truth box B itself is the map, its complement I∖B, and each map S
restricted to the box (B∩S) or to its complement (S∖B). Synthetic images carry exact boxes.
"""),
("code", """
t25 = ch2.box_study_table(study, loc[0], cnn_methods)
rep.table(t25, "2.5", caption="Bounding-box study (thesis Table 2.5)")
"""),
("md", "## Tables 2.6 and 2.7 — localization metrics (CNNs, transformers)"),
("code", """
t26 = ch2.localization_table(study, loc, cnn_methods, "thesis:2.6")
rep.table(t26, "2.6", caption="Localization metrics, CNNs (thesis Table 2.6)")
"""),
("code", """
t27 = ch2.localization_table(study, loc_vit, vit_methods, "thesis:2.7")
rep.table(t27, "2.7", caption="Localization metrics, transformers (thesis Table 2.7)")
"""),
("md", "## Table 2.8 — ablation: objective (Mask, Diff) × normalization (range, max, sigmoid)"),
("code", """
t28 = ch2.ablation(study, cnn[0], [m for m in cnn_methods if m != "opticam"])
rep.table(t28, "2.8", caption="Opti-CAM ablation (thesis Table 2.8)")
"""),
("md", "## Figure 2.2 — saliency maps of every method"),
("code", """
rep.figure(ch2.saliency_figure(study, cnn[0], cnn_methods, figure_images), "2.2",
           caption="Saliency maps of every method (thesis Figure 2.2)")
"""),
("md", "## Figure 2.3 — where Opti-CAM loses insertion/deletion to Score-CAM"),
("code", """
rep.figure(ch2.failure_figure(study, cnn[0], n=figure_images), "2.3",
           caption="Insertion/deletion failure cases of Opti-CAM (thesis Figure 2.3)")
"""),
("md", """
## Claims
The chapter's qualitative claims, checked on the tables above (nbval compares this cell's output).
"""),
("claims", """
claims = rep.claims(ch2.claims(t21, t26, t28))
"""),
]

if __name__ == "__main__":
    build(Path(__file__).resolve().parents[1] / "notebooks" / "02_opti_cam.ipynb", CELLS)
