"""Reports: tables (CSV + Markdown + LaTeX, published | reproduced), figures, claims, provenance.

    rep = xk.reports.Reporter("02_opti_cam", cfg)
    rep.table(df, "2.1", caption="Average Drop / Gain", published=paper_df)
    rep.figure(fig, "2.2", caption="Saliency maps")
    rep.claims({"Opti-CAM has the best AG": True})

The batch runner (``python -m xaikit.run``) executes the notebooks and builds ``reports/index.*``.
"""
from .figures import curves, overlay, saliency_grid
from .provenance import git_info, notebook_dir, profile_root, stamp, versions
from .reporter import FigureOutput, Reporter
from .tables import side_by_side, write_table

__all__ = ["Reporter", "FigureOutput", "side_by_side", "write_table", "overlay", "saliency_grid", "curves",
           "stamp", "git_info", "versions", "notebook_dir", "profile_root"]
