"""What the importance chart shows for a model (Qt-free; the widget's chart and the report
draw it): the stored evidence's importance with intervals, its verdict, per-class importance
and held-out accuracy; a model without evidence shows its mixing weights and says so."""

from __future__ import annotations

from typing import Any


def _ordered(names: list[str], keys: list[str]) -> list[str]:
    return [n for n in names if n in keys] + [k for k in keys if k not in names]


def importance_view(model: Any) -> dict[str, Any]:
    """``names``, ``values``, ``interval`` ([low, high] per stain or None), ``greyed`` (the
    model did not learn), ``caption`` (the verdict sentence, then one per class), ``verdict``,
    ``per_class`` ({class: {"values", "interval"}}, empty without), ``held_out`` (the dict or
    None), ``held_out_text``, ``confusion`` (rows: true class) and ``classes``; ``evidence``
    tells whether any evidence is stored."""
    from napari_dcmix.model.evidence import (
        class_verdicts,
        held_out_text,
        model_evidence,
        verdict,
    )

    evidence = model_evidence(model)
    stains = list(model.channel_names)
    found = verdict(evidence)
    view: dict[str, Any] = {
        "evidence": evidence is not None,
        "verdict": found,
        "greyed": found.learned is False,
        "per_class": {},
        "held_out": None,
        "held_out_text": "",
        "confusion": None,
        "classes": list(model.class_names),
        "scale": getattr(model, "scale", None),
    }
    if evidence is None:
        importance = model.channel_importance()
        names = _ordered(stains, list(importance))
        view.update(names=names, values=[float(importance[n]) for n in names], interval=None)
        view["caption"] = found.sentence
        return view
    importance = dict(evidence.get("importance") or model.channel_importance())
    names = _ordered(stains, list(importance))
    interval = evidence.get("interval")
    view.update(
        names=names,
        values=[float(importance[n]) for n in names],
        interval=[list(map(float, interval[n])) for n in names] if interval else None,
    )
    for cls, imp in (evidence.get("per_class") or {}).items():
        ivl = (evidence.get("per_class_interval") or {}).get(cls)
        view["per_class"][cls] = {
            "values": [float(imp.get(n, 0.0)) for n in names],
            "interval": [list(map(float, ivl[n])) for n in names] if ivl else None,
        }
    held = evidence.get("held_out")
    if held:
        view["held_out"] = dict(held)
        view["held_out_text"] = held_out_text(held)
        if held.get("confusion") is not None:
            view["confusion"] = [list(map(float, row)) for row in held["confusion"]]
        view["classes"] = list(evidence.get("classes") or model.class_names)
    lines = [found.sentence] + [v.sentence for v in class_verdicts(evidence).values()]
    view["caption"] = " ".join(lines)
    view["reference"] = evidence.get("reference")
    return view
