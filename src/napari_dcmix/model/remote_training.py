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

import dataclasses
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

    def labelled_set(self) -> Any:
        from napari_dcmix.model.sites import array_set, plate_set

        if self.openers is not None:
            return plate_set([open_() for open_ in self.openers], self.labels, self.classes)
        return array_set(self.x, self.y, self.groups, self.channels, self.classes)


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


def run_remote(client: Any, tasks: Sequence[MemberTask], describe: Callable[[int], str]) -> Any:
    """Generator: ``(index, outcome)`` per finished task (each exactly once)."""
    from napari_dcmix.screen import run_tasks

    yield from run_tasks(client, run_member_task, [(t,) for t in tasks], describe=describe,
                         key_prefix="dcmix-member")  # fmt: skip


def with_pair(task: MemberTask, job: Any, pair: tuple[str, str], config: Any) -> MemberTask:
    return dataclasses.replace(task, job=job, pair=pair, config=config)
