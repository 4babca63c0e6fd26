"""Chapter 2's claims, on hand-made tables: each says what the thesis says and turns False when a table
contradicts it."""
import pandas as pd

from xaikit.experiments import chapter2 as ch2

METHODS = ["Fake-CAM", "Grad-CAM", "Score-CAM", "Opti-CAM"]


def _t21(ad, ag, ai):
    return pd.DataFrame({"model": "m", "method": METHODS, "AD reproduced": ad, "AG reproduced": ag,
                         "AI reproduced": ai})


def _t26(om):
    # Opti-CAM wins OM only (the thesis: best on OM and LE, poor on the rest); Grad-CAM wins the others
    cols = {f"{k} reproduced": [50.0, 60.0, 45.0, 40.0] for k in ("F1", "BA", "SP", "EP")}
    cols.update({f"{k} reproduced": [50.0, 30.0, 45.0, 48.0] for k in ("LE", "SM")})
    return pd.DataFrame({"model": "m", "method": METHODS, "OM reproduced": om, **cols})


T28 = pd.DataFrame({"method": "Opti-CAM", "objective": ["Mask", "Diff", "Mask", "Diff"],
                    "normalization": ["Range", "Range", "Max", "Max"], "AG reproduced": [66.3, 18.5, 66.2, 17.8]})
T23 = pd.DataFrame({"model": "m", "method": METHODS[1:], "MS reproduced": [1.1, 1.2, 0.9]})


def test_the_thesis_results_hold_every_claim():
    # thesis Table 2.1, ResNet-50 columns (Fake-CAM AD 0.8, AG 1.6, AI 46.0; Opti-CAM 1.4 / 66.3 / 92.5)
    t21 = _t21([0.8, 14.4, 9.9, 1.4], [1.6, 12.3, 15.8, 66.3], [46.0, 37.6, 45.4, 92.5])
    c = ch2.claims(t21, _t26([60.0, 70.0, 65.0, 50.0]), T28, t23=T23)
    assert all(c.values()) and len(c) == 8, c
    assert "Opti-CAM has the best Max-Sensitivity (§2.7)" not in ch2.claims(t21, _t26([60.0] * 4), T28)


def test_each_claim_fails_on_a_contradicting_table():
    t21 = _t21([0.8, 1.0, 9.9, 1.4], [6.0, 12.3, 70.0, 66.3], [46.0, 37.6, 95.4, 92.5])
    c = ch2.claims(t21, _t26([60.0, 70.0, 65.0, 50.0]), T28, t23=T23.assign(**{"MS reproduced": [0.5, 1.2, 0.9]}))
    assert {k for k, v in c.items() if not v} == {
        "Opti-CAM has the best AD (excluding Fake-CAM)", "Opti-CAM has the best AG (excluding Fake-CAM)",
        "Opti-CAM has the best AI (excluding Fake-CAM)", "Fake-CAM has near-zero AG (< 5.0%)",
        "Opti-CAM has the best Max-Sensitivity (§2.7)"}


def test_a_lead_within_the_intervals_is_reported_within_noise():
    t21 = _t21([0.8, 14.4, 9.9, 1.4], [1.6, 12.3, 15.8, 66.3], [46.0, 37.6, 45.4, 92.5])
    wide = t21.assign(**{"AD ±": 10.0, "AG ±": 1.0, "AI ±": 30.0})  # AD and AI leads within noise, AG clear
    c = ch2.claims(wide, _t26([60.0, 70.0, 65.0, 50.0]), T28, t23=T23)
    assert c["Opti-CAM has the best AD (excluding Fake-CAM)"] == "within noise"
    assert c["Opti-CAM has the best AI (excluding Fake-CAM)"] == "within noise"
    assert c["Opti-CAM has the best AG (excluding Fake-CAM)"] is True
    t28 = T28.assign(**{"AG ±": [30.0, 30.0, 1.0, 1.0]})  # Range's gap is within noise, Max's is not
    assert ch2.claims(t21, _t26([60.0] * 4), t28)["Mask beats Diff in AG for every normalization"] == "within noise"


def test_localization_wins_are_counted_per_model():
    # Opti-CAM wins 3 of the 7 metrics (OM, LE, SM) on each of two models: a minority on each, although the
    # pooled count (6) would be most of 7; winning 4 on one model is a majority there
    def t26(model, le_sm):
        t = _t26([60.0, 70.0, 65.0, 50.0]).assign(model=model)
        return t.assign(**{"LE reproduced": le_sm, "SM reproduced": le_sm})
    t21 = _t21([0.8, 14.4, 9.9, 1.4], [1.6, 12.3, 15.8, 66.3], [46.0, 37.6, 45.4, 92.5])
    two = pd.concat([t26("a", [50.0, 30.0, 45.0, 20.0]), t26("b", [50.0, 30.0, 45.0, 20.0])], ignore_index=True)
    claim = "Opti-CAM does not win most localization metrics"
    assert ch2.claims(t21, two, T28)[claim] is True
    four = two.copy()
    four.loc[(four.model == "b") & (four.method == "Opti-CAM"), "F1 reproduced"] = 99.0
    assert ch2.claims(t21, four, T28)[claim] is False
