"""Which conventions produced each published table: a :class:`Protocol` names, per table, the method presets,
metric presets and target rule of the code behind the published numbers (docs/CONVENTIONS.md).

Every chapter has a ``protocol`` parameter:

- ``"authors"`` (the default): each table runs what the authors' code ran — the thesis author's evaluation
  (ftorres11/CA_Stream, ftorres11/saliencysense) and method codes (hanwei0912/OptiCAM, jacobgil/pytorch-grad-cam)
  for the thesis chapters, wofmanaf/Group-CAM's for chapter 6, sybyun/vitcam's and aimagelab/ADCC's for
  chapter 5;
- ``"paper"``: the papers' text (xaikit's defaults, ``preset="paper"`` everywhere).

A table's caption names its protocol (:meth:`Protocol.caption`), so a number in ``reports/`` always says
which convention it follows. Options a chapter sets itself (step counts, chunk sizes) are applied on top;
an explicit ``insertion_steps`` replaces the preset's pixels per step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..errors import ConfigError
from ..metrics.causal import INSERTION_PRESETS
from .common import rows_for
from .study import label

PROTOCOLS = ("authors", "paper")
#: the image side at which the authors' pixel counts are defined
REFERENCE_SIDE = 224


@dataclass(frozen=True)
class Protocol:
    """The conventions of one table: ``methods`` ``{method: options}`` and ``metrics`` ``{metric: options}``
    (a ``preset`` and any single options), the ``target`` rule (``"label"`` or ``"pred"``), and the
    ``source`` they come from."""

    table: str
    name: str = "paper"
    source: str = "the papers' text (xaikit's defaults)"
    methods: Mapping[str, Mapping] = field(default_factory=dict)
    metrics: Mapping[str, Mapping] = field(default_factory=dict)
    target: str = "label"

    def method_options(self, method: str, **own) -> dict:
        """The protocol's options of ``method`` with the chapter's own options on top."""
        return {**dict(self.methods.get(method, {})), **{k: v for k, v in own.items() if v is not None}}

    def rows(self, names: Sequence[str], options: Mapping[str, Mapping] | None = None) -> dict:
        """``{row: (method, options)}`` of method names (a row ``opticam:diff`` names the method before its
        colon), each with the protocol's options and the chapter's ``options[method]`` on top."""
        base = rows_for(names, options)
        return {row: (m, self.method_options(m, **o)) for row, (m, o) in base.items()}

    def metric_options(self, metric: str, image_size: int | None = None, steps: int | None = None,
                       **own) -> dict:
        """The protocol's options of ``metric`` for images of side ``image_size``: a preset's pixels per step
        (defined at 224 px) is scaled to the same fraction of the image; ``steps`` (a chapter's explicit
        budget) replaces it; ``own`` options go on top."""
        o = dict(self.metrics.get(metric, {}))
        if metric in ("insertion", "deletion", "overall"):
            pps = _PIXELS_PER_STEP.get(o.get("preset"))
            if steps is not None:
                o.update(steps=int(steps), pixels_per_step=None)
            elif pps and image_size and int(image_size) != REFERENCE_SIDE:
                o["pixels_per_step"] = max(1, round(pps * int(image_size) ** 2 / REFERENCE_SIDE ** 2))
        return {**o, **own}

    def metric_table(self, metrics: Sequence[str], image_size: int | None = None, steps: int | None = None,
                     own: Mapping[str, Mapping] | None = None) -> dict:
        """``{metric: options}`` for :meth:`Study.evaluate`'s ``metric_options``."""
        return {m: self.metric_options(m, image_size, steps, **dict((own or {}).get(m, {}))) for m in metrics}

    def caption(self) -> str:
        """One line naming the conventions, for a table's caption."""
        if self.name == "paper":
            return "protocol: the papers' text (xaikit defaults)"
        parts = [f"{label(m)} {_opts(o)}" for m, o in self.methods.items() if o]
        parts += [f"{m} {_opts(o)}" for m, o in self.metrics.items() if o]
        target = "predicted class" if self.target == "pred" else "ground-truth class"
        return f"protocol: the authors' code ({self.source}): " + "; ".join(parts + [f"target = {target}"])


def _opts(o: Mapping) -> str:
    return ", ".join(f"{k}={v}" if k != "preset" else f"preset {v!r}" for k, v in o.items())


#: the pixels per step of each insertion/deletion preset, as the metric defines it (at 224 px)
_PIXELS_PER_STEP = {k: p.options.get("pixels_per_step") for k, p in INSERTION_PRESETS.items()}

# --------------------------------------------------------------------------------- the tables
_THESIS_SRC = ("ftorres11/CA_Stream, ftorres11/saliencysense, hanwei0912/OptiCAM, jacobgil/pytorch-grad-cam; "
               "docs/CONVENTIONS.md")
#: the methods of the thesis' chapter 2 tables as the author ran them
_THESIS_METHODS = {"opticam": {"preset": "official"}, "scorecam": {"preset": "gradcam_pkg"},
                   "ablationcam": {"ablation": "gradcam"}}
_CH3_METHODS = {"scorecam": {"preset": "author"}}
_IO_AUTHOR = {"insertion": {"preset": "author"}, "deletion": {"preset": "author"}}
_GROUPCAM_SRC = "wofmanaf/Group-CAM (cam/groupcam.py, cam/rise.py, cam/scorecam.py, ins_del_gc.py)"
_GROUPCAM_METHODS = {"groupcam": {"preset": "official"}, "rise": {"preset": "groupcam"},
                     "scorecam": {"preset": "scorecam"}}
_GROUPCAM_IO = {"insertion": {"preset": "groupcam"}, "deletion": {"preset": "groupcam"},
                "overall": {"preset": "groupcam"}}
_VITCAM_SRC = "sybyun/vitcam src/vit_recipro_cam.py and vit_recipro_cam_metric.py"

AUTHORS: dict[str, Protocol] = {}


def _add(tables: Sequence[str], **kw) -> None:
    for t in tables:
        AUTHORS[t] = Protocol(t, name="authors", **kw)


_add(["thesis:2.1", "thesis:2.2", "thesis:2.5", "thesis:2.8"], source=_THESIS_SRC, methods=_THESIS_METHODS)
_add(["thesis:2.3"], source=_THESIS_SRC + ", aimagelab/ADCC", methods=_THESIS_METHODS,
     metrics={"adcc": {"preset": "adcc"}})
_add(["thesis:2.4"], source=_THESIS_SRC, methods=_THESIS_METHODS, metrics=_IO_AUTHOR)
_add(["thesis:2.6", "thesis:2.7"], source=_THESIS_SRC + ", CASME's scorers", methods=_THESIS_METHODS,
     metrics={"localization": {"preset": "casme"}})
_add(["thesis:3.1", "thesis:3.2", "thesis:3.3", "thesis:3.4", "thesis:3.5", "thesis:3.6"],
     source="ftorres11/CA_Stream engine/attention.py and engine/evaluation.py", methods=_CH3_METHODS,
     metrics=_IO_AUTHOR)
_add(["groupcam:1", "groupcam:2"], source=_GROUPCAM_SRC, methods=_GROUPCAM_METHODS,
     metrics=_GROUPCAM_IO, target="pred")
_add(["groupcam:3", "groupcam:7"], source=_GROUPCAM_SRC, methods=_GROUPCAM_METHODS, target="pred")
# the pointing game (TorchRay's protocol) points at the ground-truth classes
_add(["groupcam:4"], source=_GROUPCAM_SRC, methods=_GROUPCAM_METHODS)
_add(["reciprocam:1", "reciprocam:3", "reciprocam:4"], source=_VITCAM_SRC + ", aimagelab/ADCC",
     methods={"vit_reciprocam": {"preset": "vitcam"}}, metrics={"adcc": {"preset": "vit_reciprocam"}})
_add(["reciprocam:2"], source=_VITCAM_SRC, methods={"vit_reciprocam": {"preset": "vitcam"}})


def protocol(table: str, which: str = "authors") -> Protocol:
    """The conventions of published table ``table`` (``"thesis:2.1"``): the authors' code's (``which=
    "authors"``; the text's where no author code differs) or the papers' text (``"paper"``)."""
    if which not in PROTOCOLS:
        raise ConfigError(f"protocol={which!r} is not one of {list(PROTOCOLS)}: 'authors' runs the code behind "
                          "the published numbers, 'paper' the papers' text")
    if which == "authors" and table in AUTHORS:
        return AUTHORS[table]
    return Protocol(table)

