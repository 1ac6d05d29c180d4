"""Stain mapping: present a plate's stains under a model's stain names.

A model trained on "DNA, ER, RNA, AGP, Mito" cannot read a plate whose stains are called
"Hoechst 33342, ConA, Syto14, Phalloidin, MitoTracker Deep Red" until each model stain is given
a plate stain. ``parse_channel_map`` reads the command-line form
(``"Hoechst 33342=DNA,MitoTracker Deep Red=Mito"``), ``suggest_channel_map`` proposes one from
the names (Hoechst/DAPI -> DNA, MitoTracker -> Mito, ...; generic names such as w1..w5 only by
position, and only when asked to), and ``map_channels`` returns a plate view that presents the
model's stain names in the model's order and reads the mapped subset of the plate's stains (a
plate with more stains than the model is fine). ``constant_channels`` finds stains that carry
nothing (one value everywhere), which training cannot normalise; ``map_channels(...,
exclude=...)`` leaves them out.

Stain names containing ``,`` or ``=`` cannot be written in the text form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_dcmix.errors import PlateError
from napari_dcmix.plate.base import Plate


class ChannelMapError(PlateError):
    """A channel map is malformed or does not fit the plate (the message says how)."""


# keyword -> (stain kind, rank): a lower rank wins when several plate stains share a kind
# (e.g. Phalloidin and WGA both stain "AGP", actin first). Keywords of 4+ letters also match
# the start of a word ("Syto14", "MitoTracker Deep Red", "Concanavalin A").
_KEYWORDS: dict[str, tuple[str, int]] = {
    "dna": ("dna", 0),
    "nuclei": ("dna", 1),
    "nucleus": ("dna", 1),
    "hoechst": ("dna", 0),
    "h33342": ("dna", 0),
    "dapi": ("dna", 0),
    "draq5": ("dna", 1),
    "er": ("er", 0),
    "cona": ("er", 0),
    "concanavalin": ("er", 0),
    "calnexin": ("er", 1),
    "rna": ("rna", 0),
    "syto": ("rna", 0),
    "nucleoli": ("rna", 1),
    "agp": ("agp", 0),
    "phalloidin": ("agp", 0),
    "actin": ("agp", 0),
    "golgi": ("agp", 1),
    "wga": ("agp", 1),
    "membrane": ("agp", 2),
    "mito": ("mito", 0),
    "mitotracker": ("mito", 0),
    "mitochondria": ("mito", 0),
    "tom20": ("mito", 1),
}
# names that say nothing about the stain: w1, ch2, C03, "Channel 4", 488
_GENERIC = re.compile(r"^(w|c|ch|chan|channel|wavelength)?\s*[-_ ]?\d+$", re.IGNORECASE)


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^0-9a-z]+", name.lower()) if t]


def stain_kind(name: str) -> tuple[str, int] | None:
    """``(kind, rank)`` of a stain name ("Hoechst 33342" -> ("dna", 0)), or None."""
    joined = re.sub(r"[^0-9a-z]", "", name.lower())
    if joined in _KEYWORDS:
        return _KEYWORDS[joined]
    best: tuple[str, int] | None = None
    for token in _tokens(name):
        for key, (kind, rank) in _KEYWORDS.items():
            hit = token == key or (len(key) >= 4 and token.startswith(key))
            if hit and (best is None or rank < best[1]):
                best = (kind, rank)
    return best


def is_generic(name: str) -> bool:
    """True for names that do not say which stain it is (w1, ch2, "Channel 3")."""
    return bool(_GENERIC.match(name.strip()))


@dataclass(frozen=True)
class ChannelMapSuggestion:
    """A proposed mapping ``{plate stain: model stain}``. ``missing``: model stains left
    without a plate stain; ``by_position``: some pairs are guesses by position only (generic
    names such as w1..w5), to be confirmed by the user; ``notes``: why pairs were made or not."""

    mapping: dict[str, str]
    missing: tuple[str, ...]
    by_position: bool
    notes: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing

    def text(self) -> str:
        return format_channel_map(self.mapping)


def suggest_channel_map(
    plate_channels: Sequence[str], model_channels: Sequence[str], *, by_position: bool = False
) -> ChannelMapSuggestion:
    """Suggest which plate stain feeds each model stain: the same name (any case), else the
    same kind of stain (Hoechst/DAPI -> DNA, MitoTracker -> Mito, Phalloidin -> AGP, ...).
    With ``by_position``, model stains still unpaired take the unpaired plate stains in order
    when both lists are equally long (only then is position a reasonable guess)."""
    plate = list(plate_channels)
    mapping: dict[str, str] = {}
    notes: list[str] = []
    used: set[str] = set()
    lower = {c.lower(): c for c in plate}
    for target in model_channels:
        if target.lower() in lower and lower[target.lower()] not in used:
            mapping[lower[target.lower()]] = target
            used.add(lower[target.lower()])
    for target in model_channels:
        if target in mapping.values():
            continue
        kind = stain_kind(target)
        if kind is None:
            continue
        candidates = [
            (stain_kind(c)[1], c)  # type: ignore[index]
            for c in plate
            if c not in used and stain_kind(c) is not None and stain_kind(c)[0] == kind[0]  # type: ignore[index]
        ]
        if not candidates:
            continue
        best_rank = min(r for r, _ in candidates)
        best = [c for r, c in candidates if r == best_rank]
        if len(best) > 1:
            notes.append(f"{target}: several plate stains could be it ({', '.join(best)})")
            continue
        mapping[best[0]] = target
        used.add(best[0])
        notes.append(f"{best[0]} -> {target} (same kind of stain)")
    missing = [t for t in model_channels if t not in mapping.values()]
    positional = False
    free = [c for c in plate if c not in used]
    if missing and by_position and len(free) == len(missing):
        for source, target in zip(free, missing, strict=True):
            mapping[source] = target
            notes.append(f"{source} -> {target} (by position only)")
        positional, missing = True, []
    ordered = {s: mapping[s] for s in plate if s in mapping}
    return ChannelMapSuggestion(ordered, tuple(missing), positional, tuple(notes))


def parse_channel_map(text: str) -> dict[str, str]:
    """``"Hoechst 33342=DNA, MitoTracker=Mito"`` -> ``{"Hoechst 33342": "DNA", ...}`` (plate
    stain = model stain). Raises ChannelMapError naming the faulty item."""
    if not text or not text.strip():
        raise ChannelMapError(
            "channel map is empty; expected 'plate stain=model stain' pairs separated by commas, "
            "e.g. 'Hoechst 33342=DNA,MitoTracker=Mito'"
        )
    mapping: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if item.count("=") != 1:
            raise ChannelMapError(
                f"channel map item {item.strip()!r}: expected 'plate stain=model stain' (one '=')"
            )
        source, target = (part.strip() for part in item.split("="))
        if not source or not target:
            raise ChannelMapError(
                f"channel map item {item.strip()!r}: a stain name is empty on one side of '='"
            )
        if source in mapping:
            raise ChannelMapError(f"channel map names plate stain {source!r} twice")
        if target in mapping.values():
            raise ChannelMapError(f"channel map gives model stain {target!r} twice")
        mapping[source] = target
    return mapping


def format_channel_map(mapping: Mapping[str, str]) -> str:
    """The text form of a mapping (what ``parse_channel_map`` reads)."""
    return ",".join(f"{s}={t}" for s, t in mapping.items())


def _plate_label(plate: Any) -> str:
    return f"plate {getattr(plate, 'name', '?')!r}"


def _resolve_source(source: str, plate: Any) -> str:
    channels = list(plate.channels)
    if source in channels:
        return source
    folded = [c for c in channels if c.lower() == source.lower()]
    if len(folded) == 1:
        return folded[0]
    raise ChannelMapError(
        f"channel map names stain {source!r}, which {_plate_label(plate)} does not have; "
        f"its stains are: {', '.join(channels)}"
    )


class MappedPlate(Plate):
    """A view of ``base`` that presents ``sources`` (plate stains) as ``names``: ``read``
    returns those stains only, in that order. Wells, sites, shape, dtype, plane, timepoint
    and pixel size are the base's; so are attributes the view does not define."""

    def __init__(self, base: Plate, sources: Sequence[str], names: Sequence[str]) -> None:
        super().__init__(
            name=base.name,
            layout=base.layout,
            path=base.path,
            sites={w: base.sites(w) for w in base.wells},
            channels=list(names),
            image_shape=base.image_shape,
            dtype=base.dtype,
            shape_source=getattr(base, "_shape_source", ""),
            planes=getattr(base, "planes", (1,)),
            timepoints=getattr(base, "timepoints", (1,)),
            plane=getattr(base, "plane", None),
            timepoint=getattr(base, "timepoint", None),
        )
        self.base = base
        self.sources = list(sources)
        self.index = [list(base.channels).index(s) for s in self.sources]

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes this view lacks (e.g. the layout's planes/timepoints)
        base = self.__dict__.get("base")
        if base is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(base, name)

    @property
    def mapping(self) -> dict[str, str]:
        """``{plate stain: presented name}``."""
        return dict(zip(self.sources, self.channels, strict=True))

    def _find_pixel_size(self) -> Any:
        return self.base._pixel_size_info()  # the base plate's, however it was found or set

    def _read_site_notes(self, well: str, site: int) -> tuple[np.ndarray, list[str]]:
        data, notes = self.base.read_with_notes(well, site)
        return data[self.index], list(notes)

    def _read_thumbnail(self, well: str, site: int, factor: int) -> np.ndarray:
        return self.base.read_thumbnail(well, site, factor)[self.index]

    def __repr__(self) -> str:
        pairs = ", ".join(f"{s}->{t}" for s, t in self.mapping.items())
        return f"MappedPlate({self.base!r}, {pairs})"


def base_plate(plate: Any) -> Any:
    """The plate behind any mapped views."""
    while isinstance(plate, MappedPlate):
        plate = plate.base
    return plate


def map_channels(
    plate: Plate,
    mapping: Mapping[str, str] | str | None = None,
    order: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
) -> Plate:
    """A view of ``plate`` with its stains renamed by ``mapping`` (``{plate stain: name}``, or
    the text form) and, with ``order`` (a model's stains), exactly those names in that order:
    each name comes from the mapping or else from a plate stain of the same name. Without
    ``order`` the view lists the mapped stains in the plate's order (all of them when there is
    no mapping), less ``exclude``. Returns ``plate`` itself when nothing changes.

    Raises ChannelMapError when the mapping names a stain the plate lacks (listing the
    plate's), or when a name of ``order`` has no plate stain."""
    plate = base_plate(plate)
    if isinstance(mapping, str):
        mapping = parse_channel_map(mapping)
    pairs = {_resolve_source(s, plate): t for s, t in (mapping or {}).items()}
    excluded = {_resolve_source(c, plate) for c in exclude}
    if len(set(pairs.values())) != len(pairs):
        raise ChannelMapError("channel map gives one model stain several plate stains")
    if order is None:
        if pairs:
            sources = [c for c in plate.channels if c in pairs and c not in excluded]
        else:
            sources = [c for c in plate.channels if c not in excluded]
        names = [pairs.get(c, c) for c in sources]
        if len(set(names)) != len(names):
            raise ChannelMapError(
                f"channel map: the names {names} would not be unique on {_plate_label(plate)}"
            )
    else:
        by_target = {t: s for s, t in pairs.items()}
        sources, names, missing = [], [], []
        for target in order:
            source = by_target.get(target)
            if source is None and target in plate.channels and target not in pairs:
                source = target
            if source is None or source in excluded:
                missing.append(target)
                continue
            sources.append(source)
            names.append(target)
        if missing:
            raise ChannelMapError(
                f"{_plate_label(plate)} has no stain mapped to {', '.join(missing)} (needed by "
                f"the model: {', '.join(order)}); its stains are: {', '.join(plate.channels)}"
            )
    if not sources:
        raise ChannelMapError(f"channel map leaves no stain of {_plate_label(plate)}")
    if sources == list(plate.channels) and names == list(plate.channels):
        return plate
    return MappedPlate(plate, sources, names)


def constant_channels(
    plate: Any, sites: Iterable[tuple[str, int]], should_stop: Any = None
) -> list[str]:
    """The stains of ``plate`` with one value over every site of ``sites`` (empty channels).

    Reads sites until every stain has shown two values, so a normal plate costs one site
    read; only a constant stain makes it read them all."""
    names = list(plate.channels)
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    for well, site in sites:
        if should_stop is not None and should_stop():
            break
        flat = np.asarray(plate.read(well, site)).reshape(len(names), -1)
        mins, maxs = flat.min(axis=1), flat.max(axis=1)
        lo = mins if lo is None else np.minimum(lo, mins)
        hi = maxs if hi is None else np.maximum(hi, maxs)
        if bool(np.all(hi > lo)):
            return []
    if lo is None or hi is None:
        return []
    return [n for n, a, b in zip(names, lo, hi, strict=True) if not b > a]
