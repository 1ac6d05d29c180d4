"""Validated argparse types: a bad number on the command line is one argparse error line
(``napari-dcmix CMD: error: argument --seed: ...``, exit status 2) that says what was expected
and what was found, before any work starts or any file is written."""

from __future__ import annotations

import argparse
import math

SEED_LIMIT = 2**63  # numpy and torch seeds are unsigned 64-bit; torch's manual_seed takes < 2**63


def _integer(text: str, what: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, found {text!r}") from None


def seed(text: str) -> int:
    """A random seed: an integer 0 <= seed < 2**63."""
    value = _integer(text, "an integer seed")
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(
            f"expected an integer seed 0 <= seed < 2**63 ({SEED_LIMIT}), found {text}"
        )
    return value


def int_range(minimum: int | None = None, maximum: int | None = None, what: str = "an integer"):
    """An argparse type: an integer within ``minimum..maximum`` (either may be None)."""

    def parse(text: str) -> int:
        value = _integer(text, what)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = "" if minimum is None else f"{minimum} <= "
            high = "" if maximum is None else f" <= {maximum}"
            raise argparse.ArgumentTypeError(f"expected {what} {low}n{high}, found {text}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its "invalid ... value" message
    return parse


def fraction(text: str) -> float:
    """A finite number within 0..1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number within 0..1, found {text!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number within 0..1, found {text}")
    return value


def plane(text: str) -> int | str:
    """A plane number as the plate's format writes it (``ZStep_3`` is 3), or ``max`` for the
    maximum projection over the planes."""
    text = str(text).strip()
    if text.lower() == "max":
        return "max"
    value = _integer(text, "a plane number or 'max'")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a plane number >= 0 or 'max', found {text}")
    return value


def timepoint(text: str) -> int:
    """A timepoint number as the plate's format writes it (``TimePoint_2`` is 2)."""
    value = _integer(text, "a timepoint number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a timepoint number >= 0, found {text}")
    return value
