"""A shareable report: one self-contained HTML file (figures embedded as PNG data URIs) with
the model's importance chart and verdict, held-out accuracy and confusion matrix when the
model stores them, plate heatmaps of its predictions, and the settings, stains, seed and
versions that produced them. What the model does not store is said, not left out silently.

``napari-dcmix report MODEL [--predictions CSV] --out report.html`` and the widget's Report
button call ``write_report``. The file is written atomically.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_dcmix.errors import DcmixError

STYLE = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px;color:#202020;max-width:1100px}
h1{font-size:22px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}
.verdict{font-size:15px;background:#f3f3f3;padding:10px 14px;border-left:4px solid #555}
.missing{color:#8a4b00} table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left} img{max-width:100%}
.figs{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
"""
SETTINGS_SHOWN = (
    "init_seed",
    "mode",
    "epochs",
    "batch_size",
    "lr",
    "mixing_lr",
    "weight_decay",
    "seed",
    "device",
    "val_fraction",
    "augment",
    "fresh_mixing",
    "backbone",
    "k",
    "mixing_mode",
    "temperature",
    "input_size",
    "n_wells",
    "n_sites",
    "plates",
    "trained_on",
    "torch_version",
    "train_seconds",
)


@dataclass
class ReportResult:
    path: Path
    missing: list[str] = field(default_factory=list)  # what the report could not show
    figures: int = 0


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(rows: Sequence[tuple[Any, Any]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def _importance_figure(view: dict[str, Any]) -> bytes:
    from matplotlib.figure import Figure

    from napari_dcmix.figures import draw_importance, png_bytes, stain_colors

    groups = len(view["per_class"]) or 1
    fig = Figure(
        figsize=(max(5.0, 1.0 + 0.7 * len(view["names"]) * groups), 3.2), layout="constrained"
    )
    ax = fig.add_subplot()
    draw_importance(
        ax,
        view["names"],
        view["values"],
        stain_colors(view["names"]),
        interval=view["interval"],
        greyed=view["greyed"],
        per_class=view["per_class"] or None,
        title="Channel importance" + (" (did not learn: greyed)" if view["greyed"] else ""),
    )
    return png_bytes(fig)


def _confusion_figure(view: dict[str, Any]) -> bytes:
    from matplotlib.figure import Figure

    from napari_dcmix.figures import draw_confusion, png_bytes

    fig = Figure(figsize=(3.2, 3.0), layout="constrained")
    draw_confusion(fig.add_subplot(), view["confusion"], view["classes"])
    return png_bytes(fig)


def _heatmap_figure(table: Any, spec: Any, label: str) -> bytes:
    from matplotlib.figure import Figure

    from napari_dcmix.figures import draw_colorbar, draw_plate_heatmap, png_bytes
    from napari_dcmix.session.scores import score_values

    wells = table.wells()
    probs = np.stack([table.probs[w] for w in wells])
    scores = dict(zip(wells, score_values(table.class_names, probs, spec), strict=True))
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax, cax = fig.subplots(2, 1, height_ratios=[12, 1])
    image = draw_plate_heatmap(
        ax, scores, spec.colormap, spec.limits, title=f"plate {label}: {spec.label()}"
    )
    draw_colorbar(fig, cax, spec.colormap, spec.limits, spec.label(), mappable=image)
    return png_bytes(fig)


def _tables(predictions: Any) -> list:
    """Per-plate well tables from a CSV path or PlatePredictions objects."""
    from napari_dcmix.session.predictions_csv import WellTable, read_well_tables

    if predictions is None:
        return []
    if isinstance(predictions, (str, Path)):
        return read_well_tables(predictions)
    tables = []
    for p in predictions:
        t = WellTable(p.plate_name, list(p.class_names), path=str(getattr(p, "path", "") or ""))
        t.probs = {w.well: w.probs for w in p.wells()}
        tables.append(t)
    return tables


def report_html(
    model: Any,
    predictions: Any = None,
    model_path: str | Path | None = None,
    title: str | None = None,
) -> tuple[str, list[str], int]:
    """The report as an HTML string; also what is missing and how many figures it has."""
    from napari_dcmix import __version__
    from napari_dcmix.session.importance import importance_view
    from napari_dcmix.session.scores import ScoreSpec

    view = importance_view(model)
    missing: list[str] = []
    figures = 0
    name = Path(model_path).name if model_path else "model in memory"
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title or 'napari-dcmix report: ' + name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>napari-dcmix report: {html.escape(name)}</h1>",
        f"<p>Written {when} by napari-dcmix {html.escape(__version__)}. Stains: "
        f"{html.escape(', '.join(model.channel_names))}; classes: "
        f"{html.escape(', '.join(model.class_names))}.</p>",
        f"<p class='verdict'>{html.escape(view['caption'])}</p>",
        "<h2>Channel importance</h2><div class='figs'>",
        _img(_importance_figure(view), "channel importance chart"),
    ]
    figures += 1
    if view["confusion"] is not None:
        parts.append(_img(_confusion_figure(view), "held-out confusion matrix"))
        figures += 1
    parts.append("</div>")
    rows = []
    for i, stain in enumerate(view["names"]):
        ivl = view["interval"][i] if view["interval"] else None
        span = f"{ivl[0]:.3f}-{ivl[1]:.3f}" if ivl else "-"
        rows.append((stain, f"{view['values'][i]:.3f} (95% interval {span})"))
    parts.append(_table(rows))
    if not view["evidence"]:
        missing.append(
            "No held-out evidence is stored with this model: the bars are its mixing weights, "
            "without intervals, held-out accuracy or confusion matrix (train or fine-tune it "
            "on labelled wells with a version that stores evidence)."
        )
    else:
        if view["held_out"]:
            parts.append(f"<p>{html.escape(view['held_out_text'])}.</p>")
        else:
            missing.append("No held-out accuracy: too few labelled wells were held out.")
        if view["interval"] is None:
            missing.append("No importance intervals: a single training run was stored.")
        if view["held_out"] and view["confusion"] is None:
            missing.append("No confusion matrix is stored with the held-out accuracy.")

    parts.append("<h2>Plate heatmaps</h2>")
    tables = _tables(predictions)
    if not tables:
        missing.append("No predictions were given (--predictions CSV): no plate heatmap.")
        parts.append("<p class='missing'>No predictions were given.</p>")
    parts.append("<div class='figs'>")
    names = [t.plate for t in tables]
    for table in tables:
        # plates of one name are told apart by their path
        label = f"{table.plate} ({table.path})" if names.count(table.plate) > 1 else table.plate
        if len(table.class_names) < 2 or not table.probs:
            missing.append(f"plate {label}: no wells with two or more class probabilities")
            continue
        unread = [w for w in table.wells() if not np.all(np.isfinite(table.probs[w]))]
        if unread:
            shown = ", ".join(unread[:10]) + (" ..." if len(unread) > 10 else "")
            missing.append(
                f"plate {label}: {len(unread)} well(s) have no predicted site (every site was "
                f"skipped) and are blank in its heatmap: {shown}"
            )
        for cls in table.class_names[1:] if len(table.class_names) > 2 else table.class_names[-1:]:
            spec = ScoreSpec("probability", cls).resolved(table.class_names)
            parts.append(_img(_heatmap_figure(table, spec, label), f"plate {label} {spec.label()}"))
            figures += 1
    parts.append("</div>")

    info = dict(model.training_info or {})
    scale = getattr(model, "scale", None)
    parts.append("<h2>Model and settings</h2>")
    rows = [
        ("model file", str(model_path) if model_path else "not saved"),
        ("stains", ", ".join(model.channel_names)),
        ("classes", ", ".join(model.class_names)),
        ("backbone", getattr(model, "backbone_name", "?")),
        ("blended images (K)", getattr(model, "k", "?")),
        ("mixing mode", getattr(model, "mode", "?")),
        ("input size", getattr(model, "input_size", "?")),
        ("pixel scale", str(scale) if scale is not None else "not stored"),
        ("napari-dcmix", __version__),
    ]
    rows += [(k, info[k]) for k in SETTINGS_SHOWN if k in info]
    if "seed" not in info and "init_seed" not in info:
        missing.append("The model does not record the seed it was trained with.")
    parts.append(_table(rows))
    if missing:
        items = "".join(f"<li>{html.escape(m)}</li>" for m in missing)
        parts.append(f"<h2>Not in this report</h2><ul class='missing'>{items}</ul>")
    parts.append("</body></html>")
    return "\n".join(parts), missing, figures


def write_report(
    model: Any,
    out: str | Path,
    predictions: Any = None,
    model_path: str | Path | None = None,
    overwrite: bool = False,
) -> ReportResult:
    """Write the HTML report of ``model`` (and ``predictions``: a predictions CSV path or
    PlatePredictions objects) to ``out``, atomically; an existing file is replaced only with
    ``overwrite``."""
    from napari_dcmix.atomic import OutputError, atomic_write_text, check_writable

    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputError(f"{out} exists (nothing was written); pass overwrite to replace it")
    check_writable(out, "report")
    if isinstance(predictions, (str, Path)) and not Path(predictions).is_file():
        raise DcmixError(f"predictions CSV {predictions} does not exist")
    text, missing, figures = report_html(model, predictions, model_path)
    atomic_write_text(out, text, what="report")
    return ReportResult(out, missing, figures)
