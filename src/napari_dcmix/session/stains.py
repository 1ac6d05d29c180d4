"""The session's stain actions: map a plate's stains to the model's, leave stains out, and
what the network sees of a site."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from napari_dcmix.errors import DcmixError, ModelError
from napari_dcmix.session.state import NetworkView, PlateState, _resolved


class StainActions:
    """Mixed into DcmixSession (uses its plates, model and events)."""

    # --- stains ----------------------------------------------------------------------------------
    def _refuse_while_running(self, state: PlateState, what: str) -> None:
        """What the model reads of a plate stays as it is while a task on that plate runs:
        its result is stored against the plate as it read it."""
        task = self.task
        if task is not None and task.outcome is None and task.key == state.key:
            raise DcmixError(
                f"{task.action} is running on plate {state.name!r}; change its {what} when it "
                "is done, or cancel it"
            )

    def _refresh_view(self, state: PlateState) -> None:
        """The plate the model reads: the mapping in the model's stain order when it covers
        them, else the mapped / remaining stains in the plate's order."""
        from napari_dcmix.plate.channel_map import ChannelMapError, map_channels

        order = list(self.model.channel_names) if self.model is not None else None
        if order is not None and (state.channel_map or state.excluded):
            try:
                state.plate = map_channels(state.raw, state.channel_map, order, state.excluded)
                return
            except ChannelMapError:
                pass  # the model's stains are not all there: fine-tune adapts it
        state.plate = map_channels(state.raw, state.channel_map, None, state.excluded)

    def set_channel_map(
        self, mapping: Mapping[str, str] | str | None, key: str | None = None
    ) -> None:
        """Read the plate's stains under other names (``{plate stain: model stain}`` or the
        text form ``"Hoechst 33342=DNA,..."``); None or {} reads them as they are. A stain the
        plate lacks raises ChannelMapError listing the plate's."""
        from napari_dcmix.plate.channel_map import map_channels, parse_channel_map

        state = self.state(key)
        self._refuse_while_running(state, "stain mapping")
        if isinstance(mapping, str):
            mapping = parse_channel_map(mapping)
        mapping = dict(mapping or {})
        map_channels(state.raw, mapping, None, state.excluded)  # checks the names
        state.channel_map = {k: v for k, v in _resolved(mapping, state.raw).items()}
        self._refresh_view(state)
        self.events.channels_changed.emit(state.key)

    def exclude_channels(self, names: Iterable[str], key: str | None = None) -> None:
        """Leave stains out of what the model reads (e.g. an empty channel); [] restores."""
        from napari_dcmix.plate.channel_map import map_channels

        state = self.state(key)
        self._refuse_while_running(state, "excluded stains")
        names = list(dict.fromkeys(names))
        map_channels(state.raw, state.channel_map, None, names)  # checks the names
        state.excluded = names
        self._refresh_view(state)
        self.events.channels_changed.emit(state.key)

    def suggest_channel_map(self, key: str | None = None, by_position: bool = False) -> Any:
        """A suggested mapping of the plate's stains onto the model's (None when they match or
        there is no model)."""
        from napari_dcmix.plate.channel_map import suggest_channel_map

        state = self.state(key)
        if self.model is None or list(self.model.channel_names) == list(state.plate.channels):
            return None
        return suggest_channel_map(
            state.raw.channels, self.model.channel_names, by_position=by_position
        )

    def stains_match(self, key: str | None = None) -> bool:
        state = self.state(key)
        return self.model is None or list(self.model.channel_names) == list(state.plate.channels)

    # --- focus and what the network sees ---------------------------------------------------------
    def focus(self, well: str, site: int | None = None, key: str | None = None) -> None:
        from napari_dcmix.plate.wells import normalise_well

        state = self.state(key)
        well = normalise_well(well)
        if well not in state.raw.wells:
            raise DcmixError(f"plate {state.name!r} has no well {well}")
        if site is not None and int(site) not in state.raw.sites(well):
            raise DcmixError(f"plate {state.name!r}: well {well} has no site {site}")
        state.focus = (well, None if site is None else int(site))
        self.events.focus_changed.emit(state.key)

    def network_view(self, well: str | None = None, site: int | None = None) -> NetworkView:
        """The model's K blended images of a site: the given one, else the site in focus, else
        the first site of the well in focus (or of the plate)."""
        from napari_dcmix.model import blended_images

        state = self.state()
        model = self.ensure_model()
        if well is None and state.focus is not None:
            well, site = state.focus
        well = well or state.plate.wells[0]
        site = int(site) if site is not None else state.plate.sites(well)[0]
        self._check_stains(state)
        raw = state.plate.read(well, site)
        images = blended_images(model, raw)
        return NetworkView(images, well, site, state.key, tuple(raw.shape[-2:]))

    def _check_stains(self, state: PlateState) -> None:
        if list(self.model.channel_names) == list(state.plate.channels):
            return
        suggestion = self.suggest_channel_map(state.key)
        hint = (
            f" A mapping is suggested from the names: {suggestion.text()}."
            if suggestion is not None and suggestion.complete and suggestion.mapping
            else ""
        )
        raise ModelError(
            f"the model's stains {list(self.model.channel_names)} differ from plate "
            f"{state.name!r} stains {list(state.plate.channels)}. Map the plate's stains to the "
            f"model's (Stains), or annotate wells of each class and Fine-tune to adapt the "
            f"model to these stains.{hint}"
        )
