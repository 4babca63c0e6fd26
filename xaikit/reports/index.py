"""The reports index: ``index.md`` and ``index.html`` listing every notebook's status, provenance,
tables (md/csv/tex) and figures (PNG thumbnails in the HTML), built from the folders on disk.

A runner's failed or interrupted rerun keeps its partial output apart in ``<notebook>.failed/``: it is
listed as its own row (status ``failed``/``interrupted``, marked partial) next to the notebook's last
complete report. Hidden folders (a run in progress, ``.<notebook>.running-*``) are never listed, so a
killed runner leaves no half-written row."""
from __future__ import annotations

import html
import os
from pathlib import Path

from . import provenance as prov


def collect(root: str | os.PathLike) -> list[dict]:
    """One entry per ``<root>/<notebook>/provenance.json`` (folders starting with ``_`` or ``.`` are
    other profiles or scratch and are skipped), with its tables and figures found on disk."""
    root = Path(root)
    entries = []
    if not root.is_dir():
        return entries
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        rec = prov.read_json(folder / "provenance.json")
        if not rec:
            continue
        arte = rec.get("artefacts", {})
        captions = {}
        for kind in ("tables", "figures"):
            for ident, a in arte.get(kind, {}).items():
                for f in a.get("files", {}).values():
                    captions[Path(f).stem] = (ident, a.get("caption", ""))
        tables = []
        for md in sorted((folder / "tables").glob("table_*.md")):
            ident, cap = captions.get(md.stem, (md.stem[len("table_"):], ""))
            files = {ext: md.with_suffix("." + ext) for ext in ("md", "csv", "tex")
                     if md.with_suffix("." + ext).exists()}
            tables.append({"id": ident, "caption": cap, "files": files})
        figures = []
        for png in sorted((folder / "figures").glob("*.png")):
            ident, cap = captions.get(png.stem, (png.stem.replace("figure_", "", 1), ""))
            files = {"png": png}
            if png.with_suffix(".pdf").exists():
                files["pdf"] = png.with_suffix(".pdf")
            figures.append({"id": ident, "caption": cap, "files": files})
        executed = folder / f"{folder.name}.ipynb"
        if not executed.exists() and rec.get("notebook"):  # <notebook>.failed/ holds <notebook>.ipynb
            executed = folder / f"{rec['notebook']}.ipynb"
        entries.append({"notebook": folder.name, "dir": folder, "prov": rec, "tables": tables,
                        "figures": figures, "executed": executed if executed.exists() else None})
    return entries


def _summary(rec: dict) -> dict:
    run = rec.get("run", {})
    g = rec.get("git", {})
    v = rec.get("versions", {})
    d = rec.get("device", {})
    wall = run.get("wall_s", rec.get("wall_s"))
    commit = str(g.get("short", "unknown")) + ("+dirty" if g.get("dirty") else "")
    claims = rec.get("claims")
    note = None
    if run.get("partial"):
        note = ("partial output of a run that did not pass"
                + (f"; the last complete report is {run['complete_report']}" if run.get("complete_report")
                   else "; there is no complete report"))
    return {
        "note": note,
        "status": run.get("status", "unknown (run interactively)"),
        "error": run.get("error"),
        "wall": f"{wall:.1f} s" if isinstance(wall, (int, float)) else "?",
        "profile": rec.get("profile", "?"),
        "params": ", ".join(f"{k}={v!r}" for k, v in sorted(rec.get("parameters", {}).items())),
        "commit": commit,
        "device": d.get("device", "?") + (f" ({d['gpu']})" if d.get("gpu") else "") + f", {d.get('cpus', '?')} CPUs",
        "versions": ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "finished": run.get("finished", rec.get("updated", "?")),
        "claims": (f"{sum(bool(x) for x in claims.values())}/{len(claims)} hold" if claims else "none"),
    }


def write_index(root: str | os.PathLike, title: str | None = None) -> tuple[Path, Path]:
    """Write ``<root>/index.md`` and ``<root>/index.html``; links are relative to ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    entries = collect(root)
    title = title or f"xaikit reports ({root.name})"

    def rel(p: Path) -> str:
        return Path(os.path.relpath(p, root)).as_posix()

    md = [f"# {title}", "", f"_index written {prov.now()}_", ""]
    md += ["| notebook | status | wall time | profile | commit | claims |", "|---|---|---|---|---|---|"]
    for e in entries:
        s = _summary(e["prov"])
        md.append(f"| [{e['notebook']}](#{e['notebook']}) | {s['status']} | {s['wall']} | {s['profile']} | "
                  f"{s['commit']} | {s['claims']} |")
    for e in entries:
        s = _summary(e["prov"])
        md += ["", f"## {e['notebook']}", "", f"- **status**: {s['status']}"]
        if s["note"]:
            md.append(f"- **note**: {s['note']}")
        if s["error"]:
            md.append(f"- **error**: `{s['error']}`")
        md += [f"- **wall time**: {s['wall']} (finished {s['finished']})", f"- **profile**: {s['profile']}",
               f"- **parameters**: {s['params'] or '(defaults)'}", f"- **commit**: {s['commit']}",
               f"- **device**: {s['device']}", f"- **versions**: {s['versions']}", f"- **claims**: {s['claims']}"]
        if e["executed"]:
            md.append(f"- **executed notebook**: [{e['executed'].name}]({rel(e['executed'])})")
        if e["tables"]:
            md += ["", "Tables:", ""]
            for t in e["tables"]:
                links = " ".join(f"[{ext}]({rel(p)})" for ext, p in t["files"].items())
                md.append(f"- Table {t['id']}{': ' + t['caption'] if t['caption'] else ''} ({links})")
        if e["figures"]:
            md += ["", "Figures:", ""]
            for f in e["figures"]:
                links = " ".join(f"[{ext}]({rel(p)})" for ext, p in f["files"].items())
                md.append(f"- Figure {f['id']}{': ' + f['caption'] if f['caption'] else ''} ({links})")
    md_path = root / "index.md"
    md_path.write_text("\n".join(md) + "\n")

    esc = html.escape
    h = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{esc(title)}</title>",
         "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
         ".passed{color:#080}.failed,.interrupted{color:#c00;font-weight:bold}"
         "figure{display:inline-block;margin:6px;vertical-align:top;max-width:260px}"
         "figure img{max-width:250px;border:1px solid #ddd}figcaption{font-size:80%}"
         "code{background:#f4f4f4}</style></head><body>", f"<h1>{esc(title)}</h1>",
         f"<p><small>index written {esc(prov.now())}</small></p>",
         "<table><tr><th>notebook</th><th>status</th><th>wall time</th><th>profile</th><th>commit</th>"
         "<th>claims</th></tr>"]
    for e in entries:
        s = _summary(e["prov"])
        h.append(f"<tr><td><a href='#{esc(e['notebook'])}'>{esc(e['notebook'])}</a></td>"
                 f"<td class='{esc(s['status'].split()[0])}'>{esc(s['status'])}</td><td>{esc(s['wall'])}</td>"
                 f"<td>{esc(s['profile'])}</td><td>{esc(s['commit'])}</td><td>{esc(s['claims'])}</td></tr>")
    h.append("</table>")
    for e in entries:
        s = _summary(e["prov"])
        h.append(f"<h2 id='{esc(e['notebook'])}'>{esc(e['notebook'])} "
                 f"<span class='{esc(s['status'].split()[0])}'>[{esc(s['status'])}]</span></h2><ul>")
        if s["note"]:
            h.append(f"<li><b>note</b>: {esc(s['note'])}</li>")
        if s["error"]:
            h.append(f"<li><b>error</b>: <code>{esc(s['error'])}</code></li>")
        for key in ("wall", "profile", "params", "commit", "device", "versions", "claims"):
            h.append(f"<li><b>{key}</b>: {esc(s[key] or '(defaults)')}</li>")
        if e["executed"]:
            h.append(f"<li><b>executed notebook</b>: <a href='{esc(rel(e['executed']))}'>{esc(e['executed'].name)}</a></li>")
        h.append("</ul>")
        if e["tables"]:
            h.append("<h3>Tables</h3><ul>")
            for t in e["tables"]:
                links = " ".join(f"<a href='{esc(rel(p))}'>{ext}</a>" for ext, p in t["files"].items())
                h.append(f"<li>Table {esc(t['id'])}{': ' + esc(t['caption']) if t['caption'] else ''} ({links})</li>")
            h.append("</ul>")
        if e["figures"]:
            h.append("<h3>Figures</h3>")
            for f in e["figures"]:
                png = esc(rel(f["files"]["png"]))
                extra = f" <a href='{esc(rel(f['files']['pdf']))}'>pdf</a>" if "pdf" in f["files"] else ""
                h.append(f"<figure><a href='{png}'><img src='{png}' alt='Figure {esc(f['id'])}'></a>"
                         f"<figcaption>Figure {esc(f['id'])}{': ' + esc(f['caption']) if f['caption'] else ''}"
                         f"{extra}</figcaption></figure>")
    h.append("</body></html>")
    html_path = root / "index.html"
    html_path.write_text("\n".join(h) + "\n")
    return md_path, html_path
