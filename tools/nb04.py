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
| `default` | synthetic 32 px, 10 classes | CIFAR ResNet-18 (width 16), MobileNet-V2 (×0.5) | a few CPU minutes per model |
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
("md", """
## Table 4.1 — standard vs cosine-regularized training, every CAM method
`top1` is the test accuracy of the network (same for every method row); λ is ours, `paper λ` the thesis'.
Axiom-CAM is XGrad-CAM.
"""),
("code", """
t41 = ch4.table_41(zoo, models, methods)
rep.table(t41, "4.1", caption="Standard vs cosine-regularized training (thesis Table 4.1)")
"""),
("md", "## Table 4.2 — choice of the error function E (Grad-CAM)"),
("code", """
t42 = ch4.table_42(zoo, arch0, errors, error_lambda)
rep.table(t42, "4.2", caption="Error function of the regularizer, Grad-CAM (thesis Table 4.2)")
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
## The trained networks and the cost of a regularized step
Every network trained above: accuracy, final L_C and L_R, and how well its input gradient agrees with
its guided gradient on the evaluated test images (cosine similarity, the quantity eq. 4.7 optimizes).
Then the wall time of one training step: the thesis counts five passes instead of two.
"""),
("code", """
training = ch4.training_table(zoo)
rep.table(training, "4.x-training", caption="Trained networks: accuracy, losses, gradient alignment")
"""),
("code", """
cost = ch4.cost_table(zoo, models, batch=cost_batch, repeats=cost_repeats)
rep.table(cost, "4.x-cost", caption="One regularized step vs one plain step (Algorithm 3)")
"""),
("md", "## Figure 4.2 — input gradients, standard vs regularized training"),
("code", """
rep.figure(ch4.gradient_figure(zoo, arch0, lambdas[arch0], figure_images), "4.2",
           caption="Input gradients: standard, guided, regularized (thesis Figure 4.2)")
"""),
("md", "## Figure 4.3 — saliency maps, standard vs regularized training"),
("code", """
rep.figure(ch4.saliency_figure(zoo, arch0, lambdas[arch0], ["gradcam", "gradcampp", "scorecam"], figure_images),
           "4.3", caption="Saliency maps, standard vs regularized (thesis Figure 4.3)")
"""),
("md", """
## Claims
The chapter's robust claims, checked on the reproduced tables above (nbval compares this cell's output).
At `ci` the networks are trained for one epoch on 64 images, so these are a smoke test of the pipeline:
a `False` here says the effect is not visible at that scale, not that the code is wrong.
"""),
("claims", """
claims = rep.claims(ch4.claims(t41, training, accuracy_tolerance))
"""),
]

if __name__ == "__main__":
    build(Path(__file__).resolve().parents[1] / "notebooks" / "04_interpretable_gradients.ipynb", CELLS)
