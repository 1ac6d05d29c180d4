"""Ensemble members (and one-vs-reference per-class layers) trained as Dask tasks.

``train(..., client=...)`` hands each member to ``napari_dcmix.screen.run_tasks``: the same
executor that scores whole screens (a local cluster of worker processes, or the workers of a
running scheduler). A task carries what a worker needs to rebuild the labelled set (how to
reopen each plate, the labels; or the arrays), the pixel scale, the normalisation, the site
foreground maps, the settings and the member's prepared network and folds; it runs the same
``_fit_member`` loop the in-process threads run, predicts its held-out sites, and sends the
trained member back. A worker that dies has its members rerun by Dask; each comes back once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Rebuild:
    """How a worker rebuilds the labelled set: reopened plates and their labels, or arrays."""

    channels: list[str]
    classes: list[str]
    openers: list[Callable[[], Any]] | None = None
    labels: list[dict[str, str]] | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    groups: np.ndarray | None = None
    keys_digest: str = ""  # the client's labelled sites: a worker must see the same ones

    def labelled_set(self) -> Any:
        from napari_dcmix.errors import ModelError
        from napari_dcmix.model.sites import array_set, plate_set

        if self.openers is None:
            return array_set(self.x, self.y, self.groups, self.channels, self.classes)
        data = plate_set([open_() for open_ in self.openers], self.labels, self.classes)
        if self.keys_digest and keys_digest(data.keys) != self.keys_digest:
            raise ModelError(
                "a Dask worker sees other sites of the plates than this process (files added "
                "or removed since, or another copy of the plates at the same path): the held-out "
                "wells would not be the ones chosen; give the workers the same plates"
            )
        return data


def keys_digest(keys: Sequence[Any]) -> str:
    """A digest of the labelled sites' keys (plate index, well, site), in order."""
    import hashlib

    text = "\n".join(f"{k.source}|{k.well}|{k.site}" for k in keys)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class MemberTask:
    """One member (``pair`` None) or one one-vs-reference layer (``pair`` = (ref, cls))."""

    rebuild: Rebuild
    scale: Any
    input_size: int
    stats: Any
    foreground: dict
    config: Any
    job: Any  # training._Member, its network prepared
    members: int
    pair: tuple[str, str] | None = None


def run_member_task(task: MemberTask) -> Any:
    """On a worker: train the member to the end; a member with its held-out site
    probabilities, or (per-class) the readout (C,)."""
    from napari_dcmix.model import training as tr
    from napari_dcmix.model.device import resolve_device
    from napari_dcmix.model.sites import BatchLoader, SiteCache, SitePrep

    data = task.rebuild.labelled_set()
    if task.pair is not None:
        data = tr.pair_set(data, *task.pair)
    cfg = task.config
    device = resolve_device(cfg.device)
    prep = SitePrep(task.scale, task.input_size, task.stats)
    loader = BatchLoader(data, prep, SiteCache(cfg.cache_mb * 2**20), cfg.read_threads)
    ctx = tr._Context(data, prep, loader, task.foreground, cfg, device,
                      tr._device_name(device), 0, lambda: False)  # fmt: skip
    gen = tr._fit_member(ctx, task.job, task.members, cfg, data=data)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            job = stop.value
            break
    if task.pair is not None:
        return job.net.importance_vector().numpy()
    job.site_probs = tr._predict_sites(ctx, job.net, job.heldout_idx)
    job.net.to("cpu")
    return job


def run_remote(
    client: Any,
    tasks: Sequence[MemberTask],
    describe: Callable[[int], str],
    stopped: Callable[[], bool] | None = None,
) -> Any:
    """Generator: ``(index, outcome)`` per finished task (each exactly once); when
    ``stopped()`` becomes true the tasks left are cancelled and it ends."""
    from napari_dcmix.screen import run_tasks

    gen = run_tasks(client, run_member_task, [(t,) for t in tasks], describe=describe,
                    key_prefix="dcmix-member")  # fmt: skip
    try:
        for item in gen:
            yield item
            if stopped is not None and stopped():
                return
    finally:
        gen.close()  # cancels the futures still pending
