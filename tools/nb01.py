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
| `ci` (the defaults below) | bundled EfficientNet-Lite0 on the labelled bundled photos | 64 px | 64 px | few iterations / masks; Score-CAM at an earlier, narrower layer |
| `default` | same | 128 px | 224 px | the methods' own defaults |
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
("md", """
## Table 1.1 — milestone ImageNet classifiers
`measured`: parameters (millions) and GFLOPs (multiply-adds, 224 px) counted by `FlopCounterMode` on the
architecture named in *architecture measured* (random weights). Accuracy (top-1/top-5 %) is reproduced where
data exists: the bundled EfficientNet-Lite0 on the labelled bundled photos; ImageNet at `full`.
"""),
("code", """
t11 = ch1.table_1_1(study)
rep.table(t11, "1.1", caption="Milestone classifiers: parameters, GFLOPs measured; accuracy (thesis Table 1.1)")
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
## Table 1.3 — the evaluation metrics xaikit implements
Every function of `xaikit.metrics` that scores saliency maps, with its family, inputs and reference from the code,
and the forward passes per image it measurably costs (explanations by Grad-CAM).
"""),
("code", """
t13 = ch1.metric_catalogue(study, cnn, x_cnn, photos.boxes)
rep.table(t13, "1.3", caption="Evaluation metrics implemented by xaikit, measured (thesis Table 1.3)")
"""),
("md", "## Figure 1.13 — CAM: feature maps A^k, class weights w_k^c, weighted sum, upsampled map"),
("code", """
rep.figure(ch1.cam_figure(study, cnn), "1.13",
           caption="CAM overview on a bundled photo (thesis Figure 1.13)")
"""),
("md", "## Figure 1.14 — Score-CAM: masked inputs, their scores and the resulting map"),
("code", """
rep.figure(ch1.scorecam_figure(study, cnn), "1.14",
           caption="Score-CAM process on a bundled photo (thesis Figure 1.14)")
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
