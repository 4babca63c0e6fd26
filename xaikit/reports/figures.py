"""Figure helpers: saliency overlays, saliency grids (images × methods), insertion/deletion curves.

All helpers draw on matplotlib axes and never rely on inline output; save figures through
:meth:`xaikit.reports.Reporter.figure` (PNG, PDF under ``full``, profile stamped, figure closed).
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")  # artefacts never depend on an interactive backend

from ..errors import InputError  # noqa: E402


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _image_hwc(image01) -> np.ndarray:
    """(3,H,W) or (H,W,3) or (H,W) in [0,1] -> (H,W,3) or (H,W), clipped to [0,1]."""
    im = _np(image01)
    if im.ndim == 3 and im.shape[0] in (1, 3) and im.shape[-1] not in (1, 3):
        im = np.moveaxis(im, 0, -1)
    if im.ndim == 3 and im.shape[-1] == 1:
        im = im[..., 0]
    if im.ndim not in (2, 3):
        raise InputError(f"image must be (3,H,W), (H,W,3) or (H,W) in [0,1], got shape {im.shape}")
    return np.clip(im, 0.0, 1.0)


def overlay(ax, image01, sal=None, alpha: float = 0.5, cmap: str = "jet", title: str | None = None,
            vmin: float = 0.0, vmax: float = 1.0):
    """Draw the photo and the saliency map on top of it (``cmap`` at ``alpha``) on one axis.

    ``image01`` is in pixel space ([0,1], ``(3,H,W)`` or ``(H,W,3)``); ``sal`` is ``(H,W)``, or
    ``(h,w)`` at a lower resolution: it is stretched over the same extent so it stays aligned with
    the photo. Returns the saliency ``AxesImage`` (for a colorbar), or the photo's if ``sal`` is None.
    """
    im = _image_hwc(image01)
    h, w = im.shape[:2]
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    handle = ax.imshow(im, cmap="gray" if im.ndim == 2 else None, extent=extent, interpolation="bilinear")
    if sal is not None:
        s = _np(sal)
        if s.ndim == 3 and s.shape[0] == 1:
            s = s[0]
        if s.ndim != 2:
            raise InputError(f"saliency map must be (H,W) for one image, got shape {s.shape}; "
                             "index the batch first, e.g. sal[i]")
        handle = ax.imshow(s, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax, extent=extent,
                           interpolation="bilinear")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return handle


def saliency_colorbar(fig, handle, ax, shrink: float = 0.8, fraction: float = 0.03):
    """The colourbar of saliency overlays (``handle`` from :func:`overlay`) beside the axes ``ax``."""
    cb = fig.colorbar(handle, ax=ax, shrink=shrink, fraction=fraction, pad=0.01)
    cb.set_label("saliency", fontsize=8)
    return cb


def _wrap(title: str, width: int) -> str:
    """Wrap each line of a column title at ``width`` characters (long names ran into their neighbours)."""
    import textwrap

    return "\n".join(textwrap.fill(line, max(8, width)) or line for line in str(title).split("\n"))


def saliency_grid(images01, maps: Mapping[str, object], row_titles: Sequence[str] | None = None,
                  alpha: float = 0.5, cmap: str = "jet", size: float = 1.8, show_image: bool = True,
                  colorbar: bool = True, suptitle: str | None = None):
    """A grid with one row per image and one column per method (first column: the photo).

    ``images01``: (B,3,H,W) in [0,1]; ``maps``: ``{method: (B,H,W)}``; ``row_titles``: one label per
    image (e.g. ``"GT: Egyptian cat / pred: tabby"``). A shared colorbar spans the grid.
    Returns the figure.
    """
    import matplotlib.pyplot as plt

    imgs = _np(images01)
    if imgs.ndim == 3:
        imgs = imgs[None]
    b = imgs.shape[0]
    if not maps:
        raise InputError("saliency_grid needs at least one method in maps={name: (B,H,W)}")
    for name, m in maps.items():
        if _np(m).shape[0] != b:
            raise InputError(f"maps[{name!r}] has {_np(m).shape[0]} maps for {b} images; "
                             "give one (H,W) map per image")
    if row_titles is not None and len(row_titles) != b:
        raise InputError(f"{len(row_titles)} row_titles for {b} images; give one title per image")
    cols = list(maps)
    ncol = len(cols) + int(show_image)
    fig, axes = plt.subplots(b, ncol, figsize=(size * ncol + (0.6 if colorbar else 0), size * b + 0.4),
                             squeeze=False, constrained_layout=True)
    handle = None
    for i in range(b):
        j0 = 0
        if show_image:
            overlay(axes[i, 0], imgs[i], None, title="image" if i == 0 else None)
            j0 = 1
        for j, name in enumerate(cols):
            handle = overlay(axes[i, j0 + j], imgs[i], _np(maps[name])[i], alpha=alpha, cmap=cmap,
                             title=_wrap(name, int(size * 11)) if i == 0 else None)
        if row_titles is not None:
            axes[i, 0].set_ylabel(str(row_titles[i]), fontsize=8)
    if colorbar and handle is not None:
        saliency_colorbar(fig, handle, axes).ax.tick_params(labelsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def curves(ax, curves: Mapping[str, object], x=None, xlabel: str = "fraction of pixels",
           ylabel: str = "class probability", title: str | None = None, fill: bool = False,
           legend: bool = True):
    """Plot insertion/deletion curves ``{label: (steps,)}`` (or ``(B,steps)``, averaged over images)
    against the fraction of pixels inserted/deleted; the legend shows each curve's AUC
    (trapezoidal on ``x`` in [0,1]). Returns ``{label: auc}``."""
    aucs = {}
    for label, c in curves.items():
        y = _np(c)
        if y.ndim == 2:
            y = y.mean(0)
        if y.ndim != 1:
            raise InputError(f"curve {label!r} must be (steps,) or (B,steps), got shape {y.shape}")
        xs = np.linspace(0.0, 1.0, len(y)) if x is None else _np(x)
        area = float(np.sum((y[1:] + y[:-1]) * np.diff(xs)) / 2.0) if len(y) > 1 else float(y[0])
        aucs[label] = area
        (line,) = ax.plot(xs, y, label=f"{label} (AUC {area:.3f})", lw=1.5)
        if fill:
            ax.fill_between(xs, y, alpha=0.15, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    if legend and curves:
        ax.legend(fontsize=8)
    return aucs
