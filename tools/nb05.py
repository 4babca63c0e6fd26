"""Spec of notebooks/05_vit_reciprocam.ipynb (run: .venv/bin/python tools/nb05.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nbbuild import build, parameters_cell

from xaikit.experiments import chapter5 as ch5

CELLS = [
("md", """
# ViT-ReciproCAM: gradient-free and attention-free saliency for vision transformers

Byun & Lee (2023). ViT-ReciproCAM masks the tokens of the last encoder block's input (the first LayerNorm
of the last block), one spatial position at a time (a single token, or a 3×3 Gaussian neighbourhood), keeps
the [CLS] token, runs only the last block and the head on all masked copies in one batch, and reads each
copy's class probability as the saliency of its centre token (paper eq. 2–4).
Regenerates Tables 1–4 and Figures 3–6, each table next to the published numbers.

| profile | models | images |
|---|---|---|
| `ci` (the defaults below) | one tiny DeiT trained on synthetic data (32 px, 8×8 tokens) | 8 synthetic images |
| `default` | three tiny DeiTs of different width/depth ("Base/Small/Tiny") trained on synthetic data | more synthetic images |
| `full` | timm `deit_base/small/tiny_patch16_224` | ImageNet validation (`imagenet_root`) |

At `ci`/`default` the *paper model* column names the DeiT our model stands beside: values are not expected to
match; the **ranking of the methods** is what the claims check. "Relevance" is the gradient-weighted attention
rule of Chefer et al. (2021b), xaikit's `chefer`.
"""),
("params", parameters_cell(ch5.Params)),
("code", """
import xaikit as xk
from xaikit.experiments import chapter5 as ch5

cfg = ch5.Params.from_namespace(globals())  # typed and checked: a mistyped value is an error here
study = xk.experiments.Study("05_vit_reciprocam", cfg)
rep = xk.reports.Reporter("05_vit_reciprocam", cfg)
sets = [xk.experiments.resolve_eval_set(s, cfg) for s in models]
timed = next((es for es in sets if es.key == time_model), None) or xk.experiments.resolve_eval_set(time_model, cfg)
{es.key: f"{len(es.data)} {es.dataset} images, paper model {ch5.paper_model(es.key)}" for es in sets}
"""),
("md", """
## Table 1 — ADCC and its parts
Drop (AD, ↓), Increase (AI, ↑), Coherency (↑), Complexity (↓) and their harmonic mean ADCC (↑), in percent
(paper eq. 1; the map is re-computed on the explanation map `x ⊙ S` for Coherency). Target = ground-truth class.
"""),
("code", """
t1 = ch5.adcc_table(study, sets)
rep.table(t1, "1", caption="ADCC: Relevance vs ViT-ReciproCAM (single token) vs ViT-ReciproCAM [3x3] (paper Table 1)")
"""),
("md", """
## Table 2 — execution time
Milliseconds per image (one image at a time, after a warm-up call), FPS, and time relative to ViT-ReciproCAM
(single token), and GFLOPs of one explanation (counted, machine-independent). The paper's numbers are DeiT-B on
an RTX 3090: compare the ratios, not the values. The speed claim below uses the FLOP count (wall time on a
shared CPU varies between runs).
"""),
("code", """
t2 = ch5.time_table(study, timed)
rep.table(t2, "2", caption="Execution time and FPS (paper Table 2)")
"""),
("md", "## Table 3 — ablation: the [CLS] token zeroed in the masked features"),
("code", """
t3 = ch5.cls_token_table(study, sets)
rep.table(t3, "3", caption="ADCC with and without the [CLS] token (paper Table 3)")
"""),
("md", "## Table 4 — ablation: feature position (first LayerNorm of the last block vs output of the previous block)"),
("code", """
t4 = ch5.tap_table(study, sets)
rep.table(t4, "4", caption="ADCC by feature-extraction position (paper Table 4)")
"""),
("md", "## Figures 3 and 4 — a single object; several instances of one class"),
("code", """
rep.figure(ch5.saliency_figure(study, sets[0], "single", figure_images), "3",
           caption="Single object: Attention-Rollout, Relevance, ViT-ReciproCAM, ViT-ReciproCAM [3x3] (paper Figure 3)")
"""),
("code", """
rep.figure(ch5.saliency_figure(study, sets[0], "instances", figure_images), "4",
           caption="Several instances of one class (paper Figure 4)")
"""),
("md", "## Figure 5 — several classes in one image: a map for each class"),
("code", """
rep.figure(ch5.classes_figure(study, sets[0], figure_images), "5",
           caption="Several classes in one image, each class explained (paper Figure 5)")
"""),
("md", "## Figure 6 — ViT-ReciproCAM with and without the [CLS] token"),
("code", """
rep.figure(ch5.cls_token_figure(study, sets[0], figure_images), "6",
           caption="ViT-ReciproCAM maps with and without the [CLS] token (paper Figure 6)")
"""),
("md", """
## Claims
The paper's qualitative claims, checked on the reproduced Tables 1 and 2 (nbval compares this cell's output).
"""),
("claims", """
claims = rep.claims(ch5.claims(t1, t2))
"""),
]

if __name__ == "__main__":
    build(Path(__file__).resolve().parents[1] / "notebooks" / "05_vit_reciprocam.ipynb", CELLS)
