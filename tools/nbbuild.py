"""Write a chapter notebook from a compact cell list (keeps notebooks stripped and uniform).

Usage (from a chapter's spec module): ``build(path, cells)`` where cells are ``("md", text)``,
``("params", code)``, ``("code", code)`` or ``("claims", code)``. Outputs are empty; the kernelspec
is the generic ``python3``.
"""
import nbformat

from xaikit.experiments.params import parameters_cell  # noqa: F401 - the notebooks' parameters cells


def build(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in cells:
        src = src.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            c = nbformat.v4.new_code_cell(src)
            if kind == "params":
                c.metadata["tags"] = ["parameters"]
            if kind == "claims":
                c.metadata["tags"] = ["claims"]
                if not src.startswith("# NBVAL_CHECK_OUTPUT"):
                    c.source = "# NBVAL_CHECK_OUTPUT\n" + src
            nb.cells.append(c)
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    nbformat.write(nb, path)
