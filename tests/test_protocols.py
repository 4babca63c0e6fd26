"""Per-table protocols (xaikit.experiments.protocols): which method and metric presets, and which target,
produced each published table; ``protocol="paper"`` runs the text's defaults instead."""
import pytest
import torch

import xaikit as xk
import xaikit.published as P
from xaikit import metrics as M
from xaikit.errors import ConfigError
from xaikit.experiments.protocols import AUTHORS, REFERENCE_SIDE, protocol
from xaikit.metrics.causal import DELETION_PRESETS, INSERTION_PRESETS, OVERALL_PRESETS
from xaikit.metrics.localization import LOCALIZATION_PRESETS
from xaikit.metrics.recognition import ADCC_PRESETS

from _tiny import tiny_gap


def test_every_authors_protocol_belongs_to_a_published_table():
    assert set(AUTHORS) <= set(P.ids()), sorted(set(AUTHORS) - set(P.ids()))
    # the thesis chapters 2-3, Group-CAM and ViT-ReciproCAM tables all name their code
    for t in ("thesis:2.1", "thesis:2.4", "thesis:3.1", "groupcam:1", "groupcam:4", "reciprocam:1"):
        assert AUTHORS[t].name == "authors" and AUTHORS[t].source


def test_paper_protocol_is_the_defaults_everywhere():
    for t in list(AUTHORS) + ["thesis:1.1"]:
        p = protocol(t, "paper")
        assert p.methods == {} and p.metrics == {} and p.target == "label"
        assert p.rows(["gradcam", "opticam:diff"], {"opticam": {"max_iter": 3}}) == {
            "gradcam": ("gradcam", {}), "opticam:diff": ("opticam", {"max_iter": 3})}
        assert "papers' text" in p.caption()
    # a table without author code differing from the text runs the text under both names
    assert protocol("thesis:1.1", "authors") == protocol("thesis:1.1", "paper")


def test_unknown_protocol_names_the_choices():
    with pytest.raises(ConfigError, match="'authors'.*'paper'"):
        protocol("thesis:2.1", "official")


def test_chapter_options_go_on_top_of_the_protocol_and_none_keeps_the_preset():
    p = protocol("thesis:2.1")
    rows = p.rows(["opticam", "scorecam", "gradcam"], {"opticam": {"max_iter": 5, "lr": None}})
    assert rows["opticam"] == ("opticam", {"preset": "official", "max_iter": 5})
    assert rows["scorecam"] == ("scorecam", {"preset": "gradcam_pkg"})
    assert rows["gradcam"] == ("gradcam", {})
    assert p.method_options("opticam", preset="paper") == {"preset": "paper"}


def test_pixels_per_step_is_the_same_fraction_of_a_smaller_image():
    p = protocol("thesis:3.1")
    assert p.metric_options("insertion", REFERENCE_SIDE) == {"preset": "author"}  # the preset's own 1792 px
    pps = INSERTION_PRESETS["author"].options["pixels_per_step"]
    assert pps == 1792
    # 32 px images: 1792 * 32² / 224² = 36.57 -> 37 px per step, 28 steps (29 curve points) as at 224 px
    o = p.metric_options("deletion", 32)
    assert o == {"preset": "author", "pixels_per_step": 37}
    assert len(M.step_counts(32 * 32, 0, o["pixels_per_step"])) == len(M.step_counts(224 * 224, 0, pps)) == 29  # 28 steps, 29 points
    # an explicit budget replaces the preset's pixels per step; own options go on top
    assert p.metric_options("insertion", 32, steps=8, batch_size=4) == {
        "preset": "author", "steps": 8, "pixels_per_step": None, "batch_size": 4}
    # metrics without a pixel budget are not touched
    assert protocol("thesis:2.3").metric_options("adcc", 32) == {"preset": "adcc"}


def test_captions_name_the_presets_and_the_target():
    c = protocol("groupcam:1").caption()
    assert c.startswith("protocol: the authors' code (wofmanaf/Group-CAM")
    assert "preset 'official'" in c and "insertion preset 'groupcam'" in c and "predicted class" in c
    assert "ground-truth class" in protocol("groupcam:4").caption()
    assert protocol("reciprocam:1").caption().count("vit_reciprocam") == 1


def _registry(kind: str, name: str):
    return {"insertion": INSERTION_PRESETS, "deletion": DELETION_PRESETS, "overall": OVERALL_PRESETS,
            "adcc": ADCC_PRESETS, "localization": LOCALIZATION_PRESETS}[name] if kind == "metric" else None


def test_every_named_preset_exists_and_the_methods_accept_their_options():
    cnn = tiny_gap()
    vit = xk.models.load("deit_tiny_synth", weights="random", num_classes=3, input_size=16, embed_dim=16,
                         depth=2, num_heads=2).eval()
    for t, p in AUTHORS.items():
        for m, o in p.methods.items():
            model = vit if m.startswith("vit_") else cnn
            a = xk.attributors.create(m, model, **o)  # an unknown preset or option is a ConfigError here
            if "preset" in o:
                assert a.preset == o["preset"], (t, m)
        for metric, o in p.metrics.items():
            assert o["preset"] in _registry("metric", metric), (t, metric, o)


def test_the_authors_insertion_runs_on_small_images():
    torch.manual_seed(0)
    model, x = tiny_gap(), torch.rand(2, 3, 16, 16)
    sal = torch.rand(2, 16, 16)
    for t in ("thesis:2.4", "thesis:3.1", "groupcam:1"):
        opts = protocol(t).metric_table(["insertion", "deletion"], image_size=16)
        for metric, o in opts.items():
            v = getattr(M, metric)(model, x, sal, torch.tensor([0, 1]), **o)
            assert v.shape == (2,) and bool(((v >= 0) & (v <= 1)).all()), (t, metric)
