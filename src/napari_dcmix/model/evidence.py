"""What a model's importance chart may claim: held-out evidence, intervals and the verdict.

numpy only (no torch), so the chart, the CLI and reports read it cheaply. Training stores an
``evidence`` dict in the model file (plain containers, JSON-able):

``{"version": 1,
   "scheme": "5-fold cross-validation by well",      # how the held-out wells were chosen
   "classes": [...], "channels": [...], "chance": 1 / n_classes,
   "held_out": {"balanced_accuracy": 0.97, "interval": [0.88, 1.0], "n_wells": 24,
                "confusion": [[...], ...],            # rows: true class, columns: predicted
                "level": "well"} or None,             # None: too few wells to hold any out
   "readout": "blend relevance x mixing weights",    # how importance is read off each member
   "importance": {stain: mean over members},
   "interval": {stain: [low, high]} or None,          # None with a single member
   "members": [{stain: value}, ...],                  # each member's readout
   "reference": "control" or None,                    # per-class importance is against it
   "per_class": {class: {stain: value}},              # empty with two classes
   "per_class_interval": {class: {stain: [low, high]}}}``

``verdict(evidence)`` turns it into the one sentence the chart and the CLI print. It names a
stain only when (a) the held-out balanced accuracy's interval lies above chance and (b) that
stain's interval lies above every other stain's; otherwise it says what does hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EVIDENCE_VERSION = 1
LEVEL = 0.95  # every interval holds 95 % (t-intervals of means; the shortest for accuracy)

# Verdict kinds, from the least to the most the evidence supports.
NO_EVIDENCE = "no-evidence"  # nothing held out (an older model file, too few wells)
DID_NOT_LEARN = "did-not-learn"  # held-out accuracy not above chance
NOT_RANKED = "not-ranked"  # learnt, but a single run gives no importance interval
NO_SINGLE_STAIN = "no-single-stain"  # learnt; the top stain's interval overlaps another's
STAIN = "stain"  # learnt; one stain's interval above every other stain's


@dataclass(frozen=True)
class Verdict:
    """What the evidence supports: ``top`` is the stain named (or None), ``sentence`` the
    text shown; ``learned`` is False when held-out accuracy is not above chance (the chart
    greys its bars), None when unknown."""

    kind: str
    top: str | None
    sentence: str
    learned: bool | None
    overlapping: tuple[str, ...] = ()


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def _span(interval: Sequence[float]) -> str:
    return f"{_fmt(interval[0])}-{_fmt(interval[1])}"


def _names(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def held_out_text(held_out: Mapping[str, Any] | None) -> str:
    """``"held-out balanced accuracy 0.97 (0.88-1.00, 24 wells)"``, or an empty string."""
    if not held_out:
        return ""
    ba, interval = held_out["balanced_accuracy"], held_out["interval"]
    return (
        f"held-out balanced accuracy {_fmt(ba)} ({_span(interval)}, "
        f"{int(held_out.get('n_wells', 0))} wells)"
    )


def learned(evidence: Mapping[str, Any] | None) -> bool | None:
    """True when the held-out balanced accuracy's interval lies above chance, False when it
    does not, None without held-out evidence."""
    if not evidence or not evidence.get("held_out"):
        return None
    held = evidence["held_out"]
    return bool(held["interval"][0] > float(evidence.get("chance", 0.5)))


def ranked_top(
    importance: Mapping[str, float], interval: Mapping[str, Sequence[float]]
) -> tuple[str | None, tuple[str, ...]]:
    """``(top, overlapping)``: the stain with the highest mean when its interval's low end lies
    above every other stain's high end (else None), and the stains whose intervals reach the
    top stain's low end (the ones it cannot be told apart from)."""
    if not importance:
        return None, ()
    best = max(importance, key=lambda c: importance[c])
    low = float(interval[best][0])
    ranked = sorted(importance, key=lambda c: -importance[c])
    overlap = tuple(c for c in ranked if c != best and float(interval[c][1]) >= low)
    return (best if not overlap else None), (best, *overlap)


def verdict(evidence: Mapping[str, Any] | None) -> Verdict:
    """The sentence the evidence supports (see the module docstring for the rule)."""
    if not evidence:
        return Verdict(
            NO_EVIDENCE,
            None,
            "No held-out evidence is stored with this model, so the bars show its weights, not "
            "a finding: fine-tune or train it on labelled wells to test which stain matters.",
            None,
        )
    held = evidence.get("held_out")
    if held and held.get("seen_by_start"):
        return Verdict(
            NO_EVIDENCE,
            None,
            f"The held-out wells are no evidence: {held['seen_by_start']} of them trained the "
            "model this one started from. Fine-tune from a model trained on other wells to "
            "test which stain matters.",
            None,
        )
    if not held:
        return Verdict(
            NO_EVIDENCE,
            None,
            "Too few labelled wells to test the model on wells it did not see (at least 2 "
            "per class are needed), so the bars show its weights, not a finding.",
            None,
        )
    if not learned(evidence):
        return Verdict(
            DID_NOT_LEARN,
            None,
            "The model did not learn to separate the classes ("
            + held_out_text(held)
            + f", chance {_fmt(float(evidence.get('chance', 0.5)))}): no stain can be named.",
            False,
        )
    importance = dict(evidence.get("importance") or {})
    interval = evidence.get("interval")
    if not interval or len(importance) < 2:  # one stain: nothing to rank it against
        return Verdict(
            NOT_RANKED,
            None,
            f"The model separates the classes ({held_out_text(held)}), but a single training "
            "run cannot say how stable the importance is: train an ensemble to rank the stains.",
            True,
        )
    top, group = ranked_top(importance, interval)
    if top is None:
        return Verdict(
            NO_SINGLE_STAIN,
            None,
            f"No single stain stands out: {_names(group)} overlap. The model separates the "
            f"classes ({held_out_text(held)}).",
            True,
            group,
        )
    return Verdict(
        STAIN,
        top,
        f"{top} drives the prediction: its importance {_fmt(importance[top])} "
        f"({_span(interval[top])}) lies above every other stain's; {held_out_text(held)}.",
        True,
    )


def class_verdicts(evidence: Mapping[str, Any] | None) -> dict[str, Verdict]:
    """Per class (against the reference class): the stain that separates it, by the same
    rule; empty without per-class importance."""
    if not evidence or not evidence.get("per_class"):
        return {}
    out: dict[str, Verdict] = {}
    ok = learned(evidence)
    ref = evidence.get("reference")
    for cls, imp in evidence["per_class"].items():
        ivl = (evidence.get("per_class_interval") or {}).get(cls)
        against = f" against {ref}" if ref else ""
        if not ok:
            out[cls] = Verdict(DID_NOT_LEARN, None, f"{cls}{against}: not learnt.", ok)
            continue
        if not ivl:
            out[cls] = Verdict(NOT_RANKED, None, f"{cls}{against}: no interval.", True)
            continue
        top, group = ranked_top(imp, ivl)
        if top is None:
            text = f"{cls}{against}: no single stain stands out ({_names(group)} overlap)."
            out[cls] = Verdict(NO_SINGLE_STAIN, None, text, True, group)
        else:
            out[cls] = Verdict(STAIN, top, f"{cls}{against}: {top}.", True)
    return out


# --- the statistics training stores ----------------------------------------------------------
def balanced_accuracy(confusion: np.ndarray) -> float:
    """Mean per-class recall of a confusion matrix (rows: true class), over classes present."""
    confusion = np.asarray(confusion, dtype=float)
    totals = confusion.sum(axis=1)
    present = totals > 0
    return float(np.mean(np.diag(confusion)[present] / totals[present]))


def balanced_accuracy_interval(
    confusion: np.ndarray, level: float = LEVEL, draws: int = 20_000, seed: int = 0
) -> tuple[float, float]:
    """Interval of the balanced accuracy's posterior (Brodersen et al., ICPR 2010): each
    class's recall ~ Beta(correct + 1, wrong + 1) (a flat prior) and the balanced accuracy is
    their mean; the interval is the shortest one holding ``level`` of ``draws`` seeded samples
    (highest posterior density, widened to contain the observed value: 32 of 32 wells right
    gives about 0.87-1.00). Honest with few wells: 4 of 4 right in both classes gives about
    0.64-1.00, not a point at 1."""
    confusion = np.asarray(confusion, dtype=float)
    totals = confusion.sum(axis=1)
    correct = np.diag(confusion)
    present = totals > 0
    rng = np.random.default_rng(seed)
    samples = np.sort(
        np.stack(
            [
                rng.beta(c + 1.0, n - c + 1.0, size=draws)
                for c, n in zip(correct[present], totals[present], strict=True)
            ]
        ).mean(axis=0)
    )
    keep = int(np.ceil(level * draws))
    widths = samples[keep - 1 :] - samples[: draws - keep + 1]
    start = int(np.argmin(widths))
    observed = balanced_accuracy(confusion)  # kept inside: the mean of two recalls near 1
    low, high = float(samples[start]), float(samples[start + keep - 1])
    return min(low, observed), max(high, observed)


# Student-t 97.5 % quantiles (scipy.stats.t.ppf(0.975, df), 4 decimals): the interval needs
# no scipy import (scipy.stats takes about half a second to import, holding the GIL: a stall
# of the viewer at the end of a fine-tune)
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281,
         2.201, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.093, 2.086, 2.0796,
         2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)  # fmt: skip


def t_quantile(df: int, level: float = LEVEL) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom: a table
    for the 95 % level up to 30 (then a Cornish-Fisher expansion, within 1e-4), scipy for
    other levels."""
    if level == 0.95:
        if df <= len(_T975):
            return _T975[df - 1]
        z = 1.959963984540054
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


def mean_interval(values: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval of the mean over rows (ensemble members) of ``values`` (M, C),
    clipped to [0, 1]. The spread of independently seeded runs is what the interval carries:
    a stain whose weight moves from run to run gets a wide interval."""
    values = np.asarray(values, dtype=float)
    m = values.shape[0]
    mean = values.mean(axis=0)
    if m < 2:
        return mean.copy(), mean.copy()
    half = t_quantile(m - 1, level) * values.std(axis=0, ddof=1) / math.sqrt(m)
    return np.clip(mean - half, 0.0, 1.0), np.clip(mean + half, 0.0, 1.0)


def importance_summary(
    channels: Sequence[str], members: Sequence[Sequence[float]]
) -> tuple[dict[str, float], dict[str, list[float]] | None]:
    """``(mean importance, interval or None)`` by stain from each member's readout."""
    values = np.asarray(members, dtype=float)
    mean = values.mean(axis=0)
    imp = {c: float(v) for c, v in zip(channels, mean, strict=True)}
    if len(values) < 2:
        return imp, None
    low, high = mean_interval(values)
    return imp, {c: [float(lo), float(hi)] for c, lo, hi in zip(channels, low, high, strict=True)}


def model_evidence(model: Any) -> dict[str, Any] | None:
    """The evidence stored with ``model`` (a trained model or ensemble), or None."""
    evidence = getattr(model, "evidence", None)
    return dict(evidence) if evidence else None
