"""The published tables (xaikit/published): structure, agreement with the paper texts, agreement
between the two independent transcriptions of CA-Stream (thesis ch.3 vs the CVPRW paper), with
torchvision's weight metadata, and the qualitative claims the notebooks will print."""
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from xaikit import published as pub
from xaikit.errors import XaikitError

PAPERS = Path(__file__).resolve().parents[1].parent / "shared" / "papers"
needs_papers = pytest.mark.skipif(not PAPERS.is_dir(), reason=f"paper texts not found at {PAPERS}")

METHODS = {"cam", "gradcam", "gradcampp", "xgradcam", "hirescam", "layercam", "scorecam", "ablationcam",
           "groupcam", "opticam", "fakecam", "rise", "extremal", "saliency", "guided_backprop", "smoothgrad",
           "integrated_gradients", "raw_attention", "rollout", "chefer", "tibav", "vit_reciprocam",
           # not xaikit attributors: no method / the box itself as a map (thesis 2.5) / XRAI (Group-CAM)
           "none", "box", "box_complement", "xrai"}
INDEX = pub.tables()


def approx(a, b, tol=1e-9):
    return abs(float(a) - float(b)) <= tol


# ------------------------------------------------------------------------------------------ structure
def test_index_lists_every_csv_once():
    files = sorted(p.name for p in Path(pub.__file__).parent.glob("*_*.csv"))
    assert sorted(INDEX["file"]) == files
    assert INDEX["id"].is_unique and len(INDEX) == 33  # 32 tables + Group-CAM §5 (Figure 7)
    assert set(INDEX.columns) >= {"id", "file", "source", "caption", "higher_is_better", "notes"}
    assert (INDEX[["id", "file", "source", "caption", "higher_is_better"]] != "").all().all()


@pytest.mark.parametrize("tid", list(INDEX["id"]))
def test_table_is_tidy(tid):
    df = pub.table(tid)
    assert list(df.columns[-2:]) == ["metric", "value"] and "dataset" in df.columns
    assert not df.isna().any().any()
    assert not (df.astype(str) == "").any().any()
    assert df["value"].dtype == float
    keys = pub.factors(tid) + ["metric"]
    assert not df.duplicated(subset=keys).any()
    if "method" in df:
        assert set(df["method"]) <= METHODS, set(df["method"]) - METHODS
        assert "method_label" in df
    # the index's direction mapping names exactly the table's metrics
    mapping = INDEX.set_index("id").loc[tid, "higher_is_better"]
    assert [m.split(":")[0] for m in mapping.split(";")] == list(dict.fromkeys(df["metric"]))
    for m in df["metric"].unique():
        assert pub.direction(tid, m) in (1, -1)


def test_api_errors_and_helpers():
    with pytest.raises(XaikitError, match="thesis:2.1"):
        pub.table("thesis:9.9")
    with pytest.raises(XaikitError, match="AD"):
        pub.direction("thesis:2.1", "FPS")
    assert pub.direction("thesis:2.1", "AD") == -1 and pub.direction("thesis:2.1", "AG") == 1
    assert pub.direction("reciprocam:1", "ADCC") == 1
    assert pub.table("thesis_2_1").equals(pub.table("thesis:2.1"))
    df = pub.table("thesis:2.1")
    df.loc[:, "value"] = -1.0  # a copy: the cached table is untouched
    assert pub.table("thesis:2.1")["value"].min() >= 0
    w = pub.wide("thesis:2.1", index="method", columns=["model", "metric"])
    assert w.shape == (9, 8) and w.loc["opticam", ("vgg16", "AG")] == 71.2
    with pytest.raises(XaikitError, match="merge"):
        pub.wide("thesis:2.1", index=["method"], columns=["metric"])
    with pytest.raises(XaikitError, match="no column"):
        pub.wide("thesis:2.1", index=["nope"])


# ------------------------------------------------------------------------------------------ by eye
@pytest.mark.parametrize("tid,where,metric,value", [
    ("thesis:1.1", dict(model="resnet50", variant="updated_recipe"), "top1", 80.86),
    ("thesis:2.1", dict(method="opticam", model="vgg16"), "AD", 1.3),
    ("thesis:2.1", dict(method="opticam", model="vgg16"), "AG", 71.2),
    ("thesis:2.1", dict(method="scorecam", model="resnet50"), "T", 15.22),
    ("thesis:2.2", dict(method="gradcampp", model="vit_base_patch16_224"), "AD", 86.3),
    ("thesis:2.2", dict(method="opticam", model="deit_base_patch16_224"), "AG", 26.0),
    ("thesis:2.3", dict(method="layercam", model="vgg16"), "ADCC", 51.7),
    ("thesis:2.4", dict(method="tibav", model="deit_base_patch16_224"), "insertion", 63.7),
    ("thesis:2.5", dict(method="opticam", mask="S_minus_B"), "AI", 47.1),
    ("thesis:2.7", dict(method="opticam", model="deit_base_patch16_224"), "SM", 0.84),
    ("thesis:2.8", dict(method="opticam", objective="diff", normalization="sigmoid"), "AI", 45.3),
    ("thesis:3.1", dict(method="scorecam", model="convnext_base", pool="ca"), "deletion", 60.53),
    ("thesis:3.2", dict(method="none", pool="gap", dataset="voc2012"), "mAP", 78.32),
    ("thesis:3.3", dict(model="resnet50", pool="ca"), "param_pct", 27.27),
    ("thesis:3.5", dict(method="scorecam", placement="S3-S4"), "AD", 7.74),
    ("thesis:4.1", dict(method="xgradcam", model="mobilenetv2_100", regularizer="none"), "deletion", 15.27),
    ("thesis:4.3", dict(regularizer="cosine", **{"lambda": 0.1}), "insertion", 59.66),
    ("castream:3", dict(method="scorecam", pool="ca", dataset="cub200"), "deletion", 2.14),
    ("castream:4", dict(block="proj_ca"), "params_M", 18.13),
    ("reciprocam:1", dict(method="vit_reciprocam", kernel="3x3", model="deit_small_patch16_224"), "ADCC", 70.34),
    ("reciprocam:1", dict(method="tibav", model="deit_base_patch16_224"), "complexity", 13.17),
    ("reciprocam:2", dict(method="tibav"), "time_ms", 132.2),
    ("reciprocam:3", dict(kernel="single", variant="wo_cls_token", model="deit_small_patch16_224"), "ADCC_diff", -10.55),
    ("groupcam:1", dict(method="groupcam"), "overall", 53.62),
    ("groupcam:1", dict(method="xrai"), "deletion", 10.90),
    ("groupcam:2", dict(groups=256), "overall", 54.56),
    ("groupcam:3", dict(method="scorecam"), "time_s", 2.46),
    ("groupcam:4", dict(method="groupcam"), "SP", 57.5),
])
def test_values_checked_by_eye(tid, where, metric, value):
    df = pub.table(tid)
    sel = df[df["metric"] == metric]
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1 and sel["value"].iloc[0] == value


def test_missing_cells_are_omitted():
    t24 = pub.table("thesis:2.4")
    assert t24[(t24.method == "ablationcam") & t24.model.str.startswith("vit")].empty
    assert set(t24[t24.method == "tibav"].model) == {"vit_base_patch16_224", "deit_base_patch16_224"}
    t25 = pub.table("thesis:2.5")
    assert set(t25[t25.method == "box"]["mask"]) == {"S"}


# ------------------------------------------------------------------------------------------ vs the text
def _lines(name):
    return (PAPERS / name).read_text(encoding="utf8").splitlines()


_PAGE_HEADER = re.compile(r"^\d [A-Z].* – \d\.\d")
_NUM = re.compile(r"-?\d+(?:\.\d+)?M?")


def _thesis_block(num):
    """The lines of thesis table `num` (between the preceding prose/caption and its own caption)."""
    lines = _lines("thesis-torres-2024.txt")
    c = next(i for i, l in enumerate(lines) if l.startswith(f"Table {num}:"))
    i = c - 1
    while i > 0 and not (len(lines[i]) > 200 or lines[i].startswith("Table ")):
        i -= 1
    return [l for l in lines[i + 1:c] if l.strip() and not _PAGE_HEADER.match(l)]


def _numbers(lines):
    return [float(t.rstrip("M")) for l in lines for t in re.split(r"[\t ]+", l) if _NUM.fullmatch(t)]


@needs_papers
@pytest.mark.parametrize("num,extra", [
    ("1.1", [2012, 2015, 2016, 2019, 2020, 2021, 2022]), ("2.1", []), ("2.2", []), ("2.3", []), ("2.4", []),
    ("2.5", []), ("2.6", []), ("2.7", []), ("2.8", []), ("3.1", []), ("3.2", [2012]),  # "PASCAL VOC 2012" in the header
    ("3.3", []), ("3.4", []),
    ("3.5", [64, 256, 512, 1024, 2048]), ("3.6", []), ("4.1", []), ("4.2", []), ("4.3", [1, 10])])
def test_thesis_numbers_are_exactly_the_printed_ones(num, extra):
    """Multiset equality: every number printed in the table is in the CSV once, and nothing else."""
    printed = Counter(round(x, 4) for x in _numbers(_thesis_block(num)))
    stored = Counter(round(x, 4) for x in list(pub.table(f"thesis:{num}")["value"]) + extra)
    assert printed == stored, (printed - stored, stored - printed)


@needs_papers
@pytest.mark.parametrize("num", ["2.1", "2.2", "2.3", "2.4", "2.6", "2.7"])
def test_thesis_rows_match_cell_by_cell(num):
    """Each printed row, read left to right, equals the CSV's (model, metric) cells of that method."""
    block = _thesis_block(num)
    h = next(i for i, l in enumerate(block) if l.startswith("METHOD"))
    rows = [l.split("\t") for l in block[h + 2:]]
    w = pub.wide(f"thesis:{num}", index="method", columns=["model", "metric"])
    t = pub.table(f"thesis:{num}")
    assert len(rows) == len(w)
    for cells, method in zip(rows, w.index):
        label = t[t.method == method]["method_label"].iloc[0]
        assert label.split(" [sic")[0] == cells[0]
        printed = [float(x) for x in cells[1:] if _NUM.fullmatch(x)]
        assert printed == list(w.loc[method].dropna())


@needs_papers
@pytest.mark.parametrize("name,tids", [
    ("vit-reciprocam-2023.txt", ["reciprocam:1", "reciprocam:2", "reciprocam:3", "reciprocam:4"]),
    ("group-cam-2021.txt", ["groupcam:1", "groupcam:2", "groupcam:3", "groupcam:4"]),
    ("ca-stream-cvprw2024-with-appendix.txt", [f"castream:{i}" for i in range(1, 7)])])
def test_paper_values_are_printed_in_the_paper(name, tids):
    tokens = Counter(round(float(t), 4) for t in re.findall(r"(?<![\w.])-?\d+\.\d+|(?<![\w.])\d+(?![\w.])",
                                                              "\n".join(_lines(name))))
    for tid in tids:
        for v in pub.table(tid)["value"]:
            assert tokens[round(v, 4)] > 0, (tid, v)


# ------------------------------------------------------------------------------------------ cross-checks
def _same(a, b, on):
    m = a.merge(b, on=on, how="outer", suffixes=("_a", "_b"), indicator=True)
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"]
    assert (m["value_a"] == m["value_b"]).all(), m[m["value_a"] != m["value_b"]]


def test_castream_paper_agrees_with_thesis_chapter_3():
    k = ["method", "model", "pool", "dataset", "metric"]
    t31, t33 = pub.table("thesis:3.1"), pub.table("thesis:3.3")
    c1, c2 = pub.table("castream:1"), pub.table("castream:2")
    _same(c1[c1.method != "none"][k + ["value"]], t31[t31.model.isin(["resnet50", "convnext_base"])][k + ["value"]], k)
    _same(c2[k + ["value"]], t31[t31.model.isin(["resnet18", "convnext_small"])][k + ["value"]], k)
    acc = t33[(t33.metric == "top1") & t33.model.isin(["resnet50", "convnext_base"])]
    _same(c1[c1.method == "none"][["model", "pool", "metric", "value"]], acc[["model", "pool", "metric", "value"]],
          ["model", "pool", "metric"])
    _same(pub.table("castream:3")[k + ["value"]], pub.table("thesis:3.2")[k + ["value"]], k)
    _same(pub.table("castream:4"), pub.table("thesis:3.4"), ["block", "model", "dataset", "metric"])
    k5 = ["method", "placement", "model", "dataset", "metric"]
    _same(pub.table("castream:5")[k5 + ["value"]], pub.table("thesis:3.5")[k5 + ["value"]], k5)
    k6 = ["method", "representation", "model", "dataset", "metric"]
    _same(pub.table("castream:6")[k6 + ["value"]], pub.table("thesis:3.6")[k6 + ["value"]], k6)


def test_thesis_table_1_1_matches_torchvision_weight_metadata():
    import torchvision.models as tvm
    t = pub.table("thesis:1.1")
    known_typos = {("AlexNet", "top1"), ("EfficientNet-B0", "top5")}  # see index notes
    mismatches = set()
    for _, r in t.iterrows():
        enum, member = r["torchvision_weights"].split(".")
        meta = getattr(tvm, enum)[member].meta
        ref = {"top1": meta["_metrics"]["ImageNet-1K"]["acc@1"], "top5": meta["_metrics"]["ImageNet-1K"]["acc@5"],
               "params_M": meta["num_params"] / 1e6, "GFLOPs": meta["_ops"]}[r["metric"]]
        if abs(ref - r["value"]) > 0.06:
            mismatches.add((r["model_label"], r["metric"]))
    assert mismatches == known_typos


def test_thesis_2_8_reference_rows_repeat_table_2_5():
    t25, t28 = pub.table("thesis:2.5"), pub.table("thesis:2.8")
    s = t25[(t25["mask"] == "S") & ~t25.method.str.startswith("box")].set_index(["method", "metric"])["value"]
    r = t28[t28.objective.isin(["none", "mask"]) & t28.normalization.isin(["none", "range"])]
    r = r.set_index(["method", "metric"])["value"]
    diff = (s - r).abs()
    assert set(diff[diff > 0].index) == {("fakecam", "AI"), ("scorecam", "AI")} and diff.max() <= 0.1 + 1e-9


def test_derived_columns_are_consistent():
    for tid in ("groupcam:1", "groupcam:2"):
        w = pub.wide(tid)
        assert ((w["insertion"] - w["deletion"] - w["overall"]).abs() <= 0.011).all()
    for tid in ("reciprocam:3", "reciprocam:4"):
        w = pub.wide(tid, index=["kernel", "model"], columns=["variant", "metric"])
        other = [v for v in w.columns.get_level_values(0).unique() if v != "default"][0]
        assert ((w[(other, "ADCC")] - w[("default", "ADCC")] - w[(other, "ADCC_diff")]).abs() <= 0.011).all()
    w = pub.wide("reciprocam:2", index="kernel")
    assert ((1000 / w["time_ms"] - w["FPS"]).abs() <= 0.01).all()
    assert abs(w.loc["none", "time_ms"] / w.loc["single", "time_ms"] - w.loc["none", "ratio"]) < 0.04


# ------------------------------------------------------------------------------------------ claims
def _w(tid, **kw):
    return pub.wide(tid, **kw)


def test_claims_opti_cam_tables_2_1_to_2_3():
    for tid in ("thesis:2.1", "thesis:2.2"):
        w = _w(tid, index="method", columns=["model", "metric"])
        real = w.drop(index="fakecam")
        for model in w.columns.get_level_values(0).unique():
            assert real[(model, "AG")].idxmax() == "opticam"       # best AG excluding Fake-CAM
            assert real[(model, "AD")].idxmin() == "opticam"
            assert w.loc["fakecam", (model, "AD")] < 1.0            # Fake-CAM: AD near 0 ...
            assert w.loc["fakecam", (model, "AG")] < 2.0            # ... and fails AG
    w = _w("thesis:2.3", index="method", columns=["model", "metric"])
    for model in ("resnet50", "vgg16"):
        assert w[(model, "MS")].idxmin() == "opticam" and w[(model, "AOPC")].idxmin() == "opticam"


def test_claims_insertion_deletion_and_localization():
    w = _w("thesis:2.4", index="method", columns=["model", "metric"])
    assert w[("resnet50", "insertion")].idxmax() == "extremal"
    assert w[("deit_base_patch16_224", "insertion")].idxmax() == "tibav"
    for m in ("vit_base_patch16_224", "deit_base_patch16_224"):
        assert w[(m, "deletion")].drop(index="fakecam").idxmin() == "tibav"
    # the text also says TIBAV wins insertion on ViT, but Score-CAM is higher there: 66.5 vs 66.1
    assert w.loc["scorecam", ("vit_base_patch16_224", "insertion")] > w.loc["tibav", ("vit_base_patch16_224", "insertion")]
    w = _w("thesis:2.6", index="method", columns=["model", "metric"]).drop(index="fakecam")
    for m in ("resnet50", "vgg16"):
        for metric in ("OM", "LE"):
            assert w.loc["opticam", (m, metric)] == w[(m, metric)].min()
    w = _w("thesis:2.7", index="method", columns=["model", "metric"]).drop(index="fakecam")
    for m in ("vit_base_patch16_224", "deit_base_patch16_224"):
        for metric in ("OM", "LE", "SM"):
            assert w[(m, metric)].idxmin() == "opticam"
        assert w[(m, "F1")].idxmax() == "opticam"
    w = _w("thesis:2.5", index="method", columns=["mask", "metric"])
    assert w.loc["box", ("S", "AD")] > w.loc["box_complement", ("S", "AD")]   # the box alone is worse
    cams = w.drop(index=["box", "box_complement"])
    assert (cams[("B_and_S", "AD")] > cams[("S_minus_B", "AD")]).all()       # context beats the object


def test_claims_ablation_2_8_mask_beats_diff():
    w = _w("thesis:2.8", index=["method", "normalization", "objective"]).loc["opticam"]
    for n in ("range", "max", "sigmoid"):
        mask, diff = w.loc[(n, "mask")], w.loc[(n, "diff")]
        assert mask["AD"] < diff["AD"] and mask["AG"] > diff["AG"] and mask["AI"] > diff["AI"]
    assert w.xs("mask", level="objective")["AG"].idxmin() == "sigmoid"


def test_claims_ca_stream():
    w = _w("thesis:3.1", index=["model", "method"], columns=["metric", "pool"])
    for metric in ("AG", "AI", "insertion"):
        assert (w[(metric, "ca")] > w[(metric, "gap")]).all()
    assert (w[("deletion", "ca")] > w[("deletion", "gap")]).all()           # "performing lower on D"
    assert (w[("AD", "ca")] < w[("AD", "gap")]).sum() == 10                  # AD: 10 of 12, not all
    acc = _w("thesis:3.3", index="model", columns=["metric", "pool"])
    assert ((acc[("top1", "ca")] - acc[("top1", "gap")]).abs() < 0.5).all()  # on par with GAP
    rep = _w("thesis:3.6", index=["method", "metric"], columns="representation")
    assert ((rep["class_specific"] - rep["class_agnostic"]).abs() <= 0.2).all()


def test_claims_interpretable_gradients():
    w = _w("thesis:4.1", index=["model", "method"], columns=["metric", "regularizer"]).drop(index="none", level=1)
    assert (w[("AD", "cosine")] < w[("AD", "none")]).all()
    for metric in ("AG", "AI", "insertion"):
        assert (w[(metric, "cosine")] > w[(metric, "none")]).all()
    assert (w[("deletion", "cosine")] > w[("deletion", "none")]).sum() == 9  # "almost always worse"
    t42 = _w("thesis:4.2", index="regularizer")
    assert ((t42["top1"] - t42.loc["none", "top1"]).abs() < 0.6).all()
    t43 = _w("thesis:4.3", index="lambda")
    assert t43["AD"].idxmin() == 7.5e-3 and t43["AG"].idxmax() == 7.5e-3


def test_claims_vit_reciprocam():
    w = _w("reciprocam:1", index=["method", "kernel"], columns=["model", "metric"])
    for m in ("deit_base_patch16_224", "deit_small_patch16_224"):
        adcc = w[(m, "ADCC")]
        assert adcc[("vit_reciprocam", "3x3")] > adcc[("tibav", "none")] > adcc[("vit_reciprocam", "single")]
    w4 = _w("reciprocam:4", index=["kernel", "model"], columns=["variant", "metric"])
    assert (w4[("block", "ADCC")] < w4[("default", "ADCC")]).all()
    w3 = _w("reciprocam:3", index=["kernel", "model"], columns=["variant", "metric"])
    gain = w3[("wo_cls_token", "ADCC")] - w3[("default", "ADCC")]
    assert (gain.xs("deit_base_patch16_224", level="model") > 0).all()
    assert (gain.drop(index="deit_base_patch16_224", level="model") < 0).all()


def test_claims_group_cam():
    w = _w("groupcam:1", index="method")
    assert w["insertion"].idxmax() == "groupcam" and w["overall"].idxmax() == "groupcam"
    assert w["deletion"].drop(index="xrai").idxmin() == "groupcam"
    assert w["overall"].drop(index="xrai").idxmin() != "groupcam"
    g = _w("groupcam:2", index="groups")
    assert g["overall"].is_monotonic_increasing
    t = _w("groupcam:3", index="method")["time_s"].sort_values()
    assert list(t.index[:2]) == ["gradcam", "groupcam"] and t["groupcam"] < 1
    sp = _w("groupcam:4", index="method")["SP"]
    assert sp.idxmax() == "groupcam" and approx(sp["groupcam"] - sp["gradcam"], 0.8, 1e-6)


# ------------------------------------------------------------------ reproduced tables show the paper's numbers
def test_compare_flags_a_published_column_left_empty():
    from xaikit.experiments.study import compare

    rep = pd.DataFrame({"paper model": ["resnet50"], "method": ["gradcam"], "I": [50.0], "D": [10.0]})
    keys = {"paper model": "model", "method": "method"}
    ok = compare(rep, "thesis:2.4", keys, ["I", "D"],
                 metric_names={"I": "insertion", "D": "deletion"})
    assert ok.attrs["published_id"] == "thesis:2.4" and ok.attrs["published_empty"] == []
    assert ok["I published"].notna().all()
    # a model spelled otherwise than in the CSV: nothing joins; compare says so instead of silently showing "–"
    with pytest.warns(UserWarning, match="published column"):
        bad = compare(rep.assign(**{"paper model": "resnet_50"}), "thesis:2.4", keys, ["I", "D"],
                      metric_names={"I": "insertion", "D": "deletion"})
    assert bad.attrs["published_empty"] == ["I", "D"]


REPORTS = Path(__file__).resolve().parents[1] / "reports"


@pytest.mark.parametrize("prov_file", sorted(REPORTS.glob("[0-9]*/provenance.json")), ids=lambda p: p.parent.name)
def test_committed_reports_show_every_published_column(prov_file):
    """Every committed table that stands beside a published one names it (``source``) and has no published
    column left empty where xaikit/published has numbers (issue 19)."""
    import json

    tables = json.loads(prov_file.read_text())["artefacts"]["tables"]
    work = {"05": "reciprocam", "06": "groupcam"}.get(prov_file.parent.name[:2], "thesis")
    for ident, t in tables.items():
        m = re.search(r"\((?:thesis|paper|Group-CAM) (?:Table (\d+(?:\.\d+)?)|§5, Figure (7))\)", t["caption"])
        pid = f"{work}:{m.group(1) or m.group(2)}" if m else None
        if pid in pub.ids():
            assert t.get("source") == pid, f"{prov_file.parent.name} table {ident}: {pid} not joined ({t['caption']})"
        assert not t.get("published_empty"), (f"{prov_file.parent.name} table {ident}: published column(s) "
                                               f"{t['published_empty']} empty although {t.get('source')} has numbers")


def test_concatenated_comparisons_keep_what_they_record():
    from xaikit.experiments.study import compare, concat_compared

    keys = {"paper model": "model", "method": "method"}
    a = compare(pd.DataFrame({"paper model": ["resnet50"], "method": ["gradcam"], "I": [50.0]}), "thesis:2.4", keys,
                ["I"], metric_names={"I": "insertion"})
    with pytest.warns(UserWarning):
        b = compare(pd.DataFrame({"paper model": ["nope"], "method": ["gradcam"], "D": [9.0]}), "thesis:2.4", keys,
                    ["D"], metric_names={"D": "deletion"})
    assert pd.concat([a, b]).attrs == {}  # what pandas does with differing attrs
    t = concat_compared([a, b])
    assert t.attrs["published_id"] == "thesis:2.4" and t.attrs["published_empty"] == ["D"]
    assert t.attrs["directions"] == {"I": 1, "D": -1} and len(t) == 2
    # the same metric on two models, one with no published counterpart: the column is not empty
    with pytest.warns(UserWarning):
        c = compare(pd.DataFrame({"paper model": ["nope"], "method": ["gradcam"], "I": [40.0]}), "thesis:2.4", keys,
                    ["I"], metric_names={"I": "insertion"})
    assert c.attrs["published_empty"] == ["I"] and concat_compared([a, c]).attrs["published_empty"] == []
    assert concat_compared([c, c]).attrs["published_empty"] == ["I"]
