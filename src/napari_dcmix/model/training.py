"""Training as a generator: yields TrainProgress, returns TrainResult (a DcmixEnsemble with its
held-out evidence).

``train`` (plates + labels) and ``train_arrays`` (in-memory arrays) share one implementation:
a ``LabelledSet`` is built (no pixels read), then:

1. the pixel scale is settled (the config's, else the given model's, else bin 1 and 128-pixel
   crops, or the whole binned site when it is smaller) and checked against every plate;
2. each ensemble member gets the wells it holds out (``folds.member_holdouts``);
3. per-channel normalisation is estimated at the model's scale from sampled sites, and (crop
   mode) each site's foreground is mapped on a thumbnail;
4. the members train, in parallel threads when the machine has cores for it, on batches that
   reader threads assemble while they train (``sites.BatchLoader``): random crops at new
   positions every epoch, flips and turns, a class-balanced loss; then each member's BatchNorm
   statistics are recalibrated, its blend relevance is measured (``readout.blend_relevance``)
   and it predicts its held-out wells (tiles averaged into sites, sites into wells);
5. with 3 or more classes, each member trains one-vs-reference mixing layers and heads on its
   frozen backbone, one per class, whose readouts are the per-class importance;
6. the evidence (out-of-fold confusion matrix, balanced accuracy with its interval, importance
   means and intervals over members) is stored with the ensemble.

The model passed in is never modified: training works on copies. Deterministic on the CPU for
a seed (and a number of parallel members): every member has its own seeds for initialisation,
sampling and augmentation. On CUDA/MPS members train one at a time and each step asks for
deterministic algorithms (warn-only: kernels without a deterministic version still run, so
accelerator runs are seeded, not guaranteed bit-identical).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_dcmix.errors import LabelsError, ModelError
from napari_dcmix.model import evidence as ev
from napari_dcmix.model.classifier import DcmixClassifier, build_model
from napari_dcmix.model.data import check_labels
from napari_dcmix.model.device import resolve_device
from napari_dcmix.model.ensemble import DcmixEnsemble, as_members
from napari_dcmix.model.folds import member_holdouts
from napari_dcmix.model.readout import blend_relevance
from napari_dcmix.model.scale import PixelScale, effective_scale
from napari_dcmix.model.sites import (
    BatchLoader,
    Foreground,
    LabelledSet,
    SiteCache,
    SitePrep,
    array_set,
    estimate_stats,
    foreground_map,
    plan_epoch,
    plate_set,
)
from napari_dcmix.model.train_settings import (
    FINETUNE_DEFAULTS,
    TrainConfig,
    TrainProgress,
    TrainResult,
)
from napari_dcmix.plate.normalise import check_finite

RECALIBRATION_INPUTS = 512  # training inputs whose activations set the BatchNorm statistics
RELEVANCE_INPUTS = 256  # training inputs the blend relevance is measured on
REFERENCE_NAMES = ("control", "dmso", "negative", "neg")


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on accelerators. CPU kernels used here are deterministic already
    (the determinism test checks it) and the global switch slows CPU training several-fold."""
    if device.type == "cpu":
        yield
        return
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def _prepare_model(
    model: DcmixClassifier | None,
    channel_names: list[str],
    class_names: list[str],
    config: TrainConfig,
    seed: int | None = None,
) -> tuple[DcmixClassifier, list[str]]:
    """A fresh model or a deep copy of ``model`` fitting the data; returns it and notes."""
    seed = config.seed if seed is None else seed
    notes: list[str] = []
    if model is None and config.mode == "mixing":
        raise ModelError("training mode 'mixing' fine-tunes a trained model: give one (--init)")
    if model is None or config.mode == "scratch":
        # fresh weights, with the architecture of the given model or else the config's
        if model is None:
            arch = {"backbone": config.backbone, "k": config.k, "mode": config.mixing_mode,
                    "temperature": config.temperature, "input_size": config.input_size,
                    "pretrained_path": config.pretrained_path}  # fmt: skip
        else:
            arch = {k: v for k, v in model.config().items() if k not in ("channel_names",
                    "class_names", "members")}  # fmt: skip
            notes.append(
                f"from scratch with the architecture of the given model ({model.backbone_name})"
            )
        net = build_model(channel_names, class_names, seed=seed, **arch)
        net.mixing.randomise(config.mixing_init_std, seed)
        return net, notes
    if list(model.channel_names) != list(channel_names) and not config.fresh_mixing:
        raise ModelError(
            f"the model's channels {list(model.channel_names)} differ from the plate's "
            f"channels {list(channel_names)}; ask for a fresh mixing layer to fine-tune it "
            "on these channels"
        )
    if config.fresh_mixing:
        # the backbone is kept; the mixing layer and the class head start afresh, so the
        # importance answers which stain separates these classes, not the model's old ones
        net = model.adapted(channel_names, seed=seed).with_classes(class_names, seed=seed)
        net.mixing.randomise(config.mixing_init_std, seed)
        notes.append("fresh mixing layer and class head (backbone kept)")
    else:
        net = copy.deepcopy(model)
    if list(net.class_names) != list(class_names):
        # the labels index the labelled classes (sorted): a head of other (or more) classes
        # would be trained on the wrong outputs
        net = net.with_classes(class_names, seed=seed)
        notes.append(f"fresh class head for classes {class_names}")
    return net, notes


def _device_name(device: torch.device) -> str:
    """The device as shown to the user, with its index: "cpu", "cuda:0", "mps"."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def member_seed(seed: int, member: int) -> int:
    """An independent 63-bit seed for ensemble member ``member`` of a run seeded ``seed``."""
    return (
        int(np.random.SeedSequence([int(seed), int(member)]).generate_state(1, np.uint64)[0]) >> 1
    )


def resolve_scale(
    config: TrainConfig, model: Any, shapes: Sequence[tuple[int, int]]
) -> tuple[PixelScale, int]:
    """``(scale, input size)``: the config's bin / crop, else the given model's, else bin 1
    and a 128-pixel crop (``scale.effective_scale``), checked against every site shape
    (ModelError naming both sizes when a crop does not fit)."""
    base = getattr(model, "scale", None) if model is not None else None
    scale = effective_scale(config.bin, config.crop, base, list(shapes))
    for shape in dict.fromkeys(tuple(s) for s in shapes):
        scale.check_site(shape)
    if scale.crop is not None:
        return scale, scale.crop
    return scale, int(model.input_size if model is not None else config.input_size)


def reference_class(class_names: Sequence[str], counts: np.ndarray, given: str | None) -> str:
    """The class per-class importance is measured against (see ``TrainConfig.reference``)."""
    names = list(class_names)
    if given is not None:
        if given not in names:
            raise LabelsError(
                f"reference class {given!r} is not one of the labelled classes: {', '.join(names)}"
            )
        return given
    for name in names:
        if name.strip().lower() in REFERENCE_NAMES:
            return name
    return names[int(np.argmax(counts))]


@dataclass
class _Member:
    """One ensemble member's job and, once trained, what it produced."""

    number: int  # 0-based
    net: DcmixClassifier
    train_idx: np.ndarray  # site indices it trains on
    heldout_idx: np.ndarray  # site indices it predicts afterwards
    seed: int
    history: list[dict[str, Any]] = field(default_factory=list)
    site_probs: dict[int, np.ndarray] = field(default_factory=dict)  # held-out site -> probs
    per_class: dict[str, np.ndarray] = field(default_factory=dict)  # class -> readout


def _class_weights(y: np.ndarray, n_classes: int, balance: bool) -> torch.Tensor | None:
    if not balance:
        return None
    counts = np.bincount(y, minlength=n_classes).astype(float)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(w, dtype=torch.float32)


def _fixed_samples(
    data: LabelledSet, idx: np.ndarray, scale: PixelScale, fg: dict, seed: int, limit: int
) -> list:
    """Up to ``limit`` unaugmented inputs of the sites ``idx`` at fixed, seeded positions."""
    rng = np.random.default_rng([int(seed), 5])
    chosen = rng.permutation(idx)[:limit] if len(idx) > limit else idx
    return plan_epoch(data, np.sort(chosen), scale, fg, rng, 1, augment=False, shuffle=False)


def _recalibrate_batchnorm(net: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Running BatchNorm statistics = exact averages over (a sample of) the unaugmented
    training inputs, so that prediction sees the statistics of the final weights."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for xb in batches:
            if len(xb) > 1:
                net(xb)
    for m, mom in zip(bns, momenta, strict=True):
        m.momentum = mom


class _Context:
    """What every member of one run shares."""

    def __init__(self, data, prep, loader, fg, config, device, device_name, total_steps, stop):
        self.data: LabelledSet = data
        self.prep: SitePrep = prep
        self.loader: BatchLoader = loader
        self.fg: dict[int, Foreground | None] = fg
        self.config: TrainConfig = config
        self.device = device
        self.device_name = device_name
        self.total_steps = total_steps
        self.stop = stop
        self.done_steps = 0
        self.lock = threading.Lock()

    def step_done(self) -> int:
        with self.lock:
            self.done_steps += 1
            return self.done_steps


def _fit_member(
    ctx: _Context,
    job: _Member,
    members: int,
    config: TrainConfig,
    data: LabelledSet | None = None,
    label: str = "",
    phase: str = "train",
) -> Generator[TrainProgress, None, _Member | None]:
    """Train one member in place (a copy); returns it, or None when cancelled."""
    data = data if data is not None else ctx.data
    net, device = job.net, ctx.device
    scale = ctx.prep.scale
    rng = np.random.default_rng([job.seed, 3])
    net.to(device)
    frozen = config.mode == "mixing"
    for p in net.backbone.parameters():
        p.requires_grad_(not frozen)
    mixing_params = list(net.mixing.parameters())
    other = [
        p for n, p in net.named_parameters() if not n.startswith("mixing.") and p.requires_grad
    ]
    opt = torch.optim.AdamW(
        [
            {"params": mixing_params, "lr": config.mixing_lr, "weight_decay": 0.0},
            {"params": other, "lr": config.lr, "weight_decay": config.weight_decay},
        ]
    )
    n_samples = len(job.train_idx) * config.crops_per_site
    steps = math.ceil(n_samples / config.batch_size)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * config.epochs)
        if config.cosine_schedule
        else None
    )
    weights = _class_weights(data.y[job.train_idx], len(net.class_names), config.balance)
    loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device))
    y_all = torch.from_numpy(data.y)
    what = f"member {job.number + 1}/{members}{label}"
    for epoch in range(1, config.epochs + 1):
        net.train()
        if frozen:
            net.backbone.eval()  # frozen backbone: keep its BatchNorm statistics too
        samples = plan_epoch(
            data, job.train_idx, scale, ctx.fg, rng, config.crops_per_site, config.augment
        )
        loss_sum, correct, seen = 0.0, 0, 0
        for step, (xb_np, idx) in enumerate(
            ctx.loader.batches(samples, config.batch_size, ctx.stop), start=1
        ):
            yb = y_all[torch.from_numpy(idx)]
            with _deterministic(device):
                xb, yb_d = torch.from_numpy(xb_np).to(device), yb.to(device)
                logits = net(xb)
                loss = loss_fn(logits, yb_d)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.detach().argmax(1).cpu() == yb).sum())
            seen += len(idx)
            done = ctx.step_done()
            yield TrainProgress(
                epoch=epoch, epochs=config.epochs, step=step, steps=steps,
                loss=loss_sum / seen, train_accuracy=correct / seen, val_accuracy=None,
                importance=net.channel_importance(),
                message=f"{what} epoch {epoch}/{config.epochs} step {step}/{steps} "
                f"loss {loss_sum / seen:.4f}",
                phase=phase, device=ctx.device_name, member=job.number + 1, members=members,
                done=done, total=ctx.total_steps,
            )  # fmt: skip
        if ctx.stop is not None and ctx.stop():
            return None
        record = {
            "member": job.number + 1,
            "epoch": epoch,
            "loss": loss_sum / max(1, seen),
            "train_accuracy": correct / max(1, seen),
            "val_accuracy": None,
            "importance": net.channel_importance(),
        }
        job.history.append(record)
        yield TrainProgress(
            epoch=epoch, epochs=config.epochs, step=steps, steps=steps, loss=record["loss"],
            train_accuracy=record["train_accuracy"], val_accuracy=None,
            importance=record["importance"],
            message=f"{what} epoch {epoch}/{config.epochs} done: loss {record['loss']:.4f} "
            f"train acc {record['train_accuracy']:.3f}",
            phase=phase, device=ctx.device_name, member=job.number + 1, members=members,
            done=ctx.done_steps, total=ctx.total_steps,
        )  # fmt: skip
    fixed = _fixed_samples(data, job.train_idx, scale, ctx.fg, job.seed, RECALIBRATION_INPUTS)
    size = max(config.batch_size, 2)

    def on_device(samples: list) -> Iterator[torch.Tensor]:
        """Batches streamed to the device (never all of them held at once)."""
        for xb, _ in ctx.loader.batches(samples, size, ctx.stop):
            yield torch.from_numpy(xb).to(device)

    with _deterministic(device):
        if not frozen:
            _recalibrate_batchnorm(net, on_device(fixed))
        if ctx.stop is not None and ctx.stop():
            return None
        net.eval()
        used = list(on_device(fixed[:RELEVANCE_INPUTS]))
        if ctx.stop is not None and ctx.stop():
            return None
        net.blend_relevance = [float(v) for v in blend_relevance(net, used)]
    for p in net.parameters():
        p.requires_grad_(True)
    return job


def _predict_sites(ctx: _Context, net: nn.Module, idx: np.ndarray) -> dict[int, np.ndarray]:
    """Class probabilities of whole sites: tiles (or the resized site) averaged."""
    out: dict[int, np.ndarray] = {}
    net.eval()
    cap = ctx.config.max_tiles
    with torch.no_grad(), _deterministic(ctx.device):
        for i in idx.tolist():
            if ctx.stop is not None and ctx.stop():
                break
            tiles = ctx.prep.tiles(ctx.data.source.read(ctx.data.keys[i]), cap)
            probs = []
            for start in range(0, len(tiles), 64):
                x = torch.from_numpy(tiles[start : start + 64]).to(ctx.device)
                probs.append(torch.softmax(net(x).float(), dim=1).cpu().numpy())
            out[i] = np.concatenate(probs).mean(axis=0).astype(np.float64)
    return out


def _run_jobs(
    jobs: list[Callable[[], Generator[TrainProgress, None, Any]]],
    workers: int,
    stop: threading.Event,
    user_stop: Callable[[], bool] | None,
) -> Generator[TrainProgress, None, list[Any]]:
    """Run independent generator jobs (in this thread, or in ``workers`` threads); yields their
    progress as it comes and returns their results in job order. Only this thread calls
    ``user_stop`` (it need not be thread-safe); jobs watch ``stop``, which it sets."""
    results: list[Any] = [None] * len(jobs)

    def check() -> None:
        if user_stop is not None and user_stop():
            stop.set()

    if workers <= 1 or len(jobs) <= 1:
        for i, make in enumerate(jobs):
            gen = make()
            while True:
                try:
                    item = next(gen)
                except StopIteration as done:
                    results[i] = done.value
                    break
                yield item
                check()
            if stop.is_set():
                break
        return results
    events: queue.Queue = queue.Queue()  # unbounded: a worker never blocks on it
    todo = list(range(len(jobs)))
    todo_lock = threading.Lock()

    def worker() -> None:
        try:
            while not stop.is_set():
                with todo_lock:
                    if not todo:
                        return
                    i = todo.pop(0)
                gen = jobs[i]()
                while True:
                    try:
                        item = next(gen)
                    except StopIteration as done:
                        events.put(("done", i, done.value))
                        break
                    events.put(("event", i, item))
        except BaseException as exc:  # re-raised in the caller's thread
            stop.set()
            events.put(("error", -1, exc))
        finally:
            events.put(("exit", -1, None))

    threads = [
        threading.Thread(target=worker, name=f"dcmix-member-{n}", daemon=True)
        for n in range(min(workers, len(jobs)))
    ]
    for t in threads:
        t.start()
    running, error, finished = len(threads), None, False
    try:
        while running:
            check()
            try:
                kind, i, item = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if kind == "event":
                yield item
            elif kind == "done":
                results[i] = item
            elif kind == "error":
                error = error or item
            else:
                running -= 1
        finished = True
    finally:
        if not finished:  # the consumer closed us, or an exception: stop the workers
            stop.set()
        for t in threads:
            t.join()
    if error is not None:
        raise error
    return results


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (at least 1), then restore the count."""
    prev = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _workers(config: TrainConfig, n_jobs: int, device: torch.device) -> int:
    if device.type != "cpu":
        return 1  # one accelerator: members take turns (and its determinism switch is global)
    if config.parallel is not None:
        return max(1, min(config.parallel, n_jobs))
    # one member per core, each on one intra-op thread; a caller that capped torch's threads
    # to leave a core free (the viewer does) still gets every core for independent members:
    # measured on 2 cores, the viewer's Fine-tune took 95 s one member at a time and 43 s two
    # at a time, and its longest stall stayed under one canvas repaint (bench/ui_latency.py)
    return max(1, min(n_jobs, os.cpu_count() or 1))


def _client_text(client: Any) -> str:
    try:
        return str(client.scheduler.address)
    except Exception:
        return "a Dask scheduler"


def _train_remote(
    client: Any,
    remote: Any,
    data: LabelledSet,
    jobs: list[_Member],
    pairs: list[tuple[int, str]],
    ref: str,
    scale: PixelScale,
    input_size: int,
    stats: Any,
    fg: dict,
    config: TrainConfig,
    ctx: _Context,
    stopped: Callable[[], bool],
) -> Generator[TrainProgress, None, list[_Member] | None]:
    """Members, then one-vs-reference layers, as Dask tasks; yields a TrainProgress per
    finished task; returns the trained members (with held-out probabilities and per-class
    readouts)."""
    from napari_dcmix.model.remote_training import MemberTask, run_remote

    if remote is None:
        raise ModelError(
            "training on a Dask cluster needs the plates' openers (how a worker reopens them)"
        )
    members = len(jobs)
    tasks = [MemberTask(remote, scale, input_size, stats, fg, config, job, members) for job in jobs]
    per_task = ctx.total_steps // max(1, len(tasks) + len(pairs))
    done = 0
    trained: list[_Member | None] = [None] * members
    for i, job in run_remote(client, tasks, lambda i: f"ensemble member {i + 1}/{members}",
                             stopped):  # fmt: skip
        trained[i] = job
        done += 1
        yield TrainProgress(
            epoch=config.epochs, epochs=config.epochs, step=1, steps=1,
            loss=job.history[-1]["loss"], train_accuracy=job.history[-1]["train_accuracy"],
            val_accuracy=None, importance=job.net.channel_importance(),
            message=f"member {i + 1}/{members} done on a Dask worker ({done}/{members})",
            device=ctx.device_name, member=i + 1, members=members,
            done=done * per_task, total=ctx.total_steps,
        )  # fmt: skip
    if stopped() or any(j is None for j in trained):
        return None
    finished = [j for j in trained if j is not None]
    if pairs:
        cfg = per_class_config(config)
        subs = [_per_class_member(finished[j], data, config, ref, c) for j, c in pairs]
        pair_tasks = [
            MemberTask(remote, scale, input_size, stats, fg, cfg, sub, members, pair=(ref, c))
            for sub, (_, c) in zip(subs, pairs, strict=True)
        ]
        for i, readout in run_remote(client, pair_tasks,
                                     lambda i: f"per-class layer {pairs[i][1]} of member "
                                     f"{pairs[i][0] + 1}", stopped):  # fmt: skip
            j, cls = pairs[i]
            finished[j].per_class[cls] = readout
            done += 1
            if stopped():
                return None
            yield TrainProgress(
                epoch=config.epochs, epochs=config.epochs, step=1, steps=1, loss=None,
                train_accuracy=None, val_accuracy=None, importance={},
                message=f"{cls} vs {ref} layer of member {j + 1} done on a Dask worker",
                phase="per-class", device=ctx.device_name, member=j + 1, members=members,
                done=done * per_task, total=ctx.total_steps,
            )  # fmt: skip
    return finished


def _seen_by_start(model: Any, data: LabelledSet, holdouts: list[np.ndarray]) -> int:
    """Held-out wells that the starting model (``--init``, the widget's model) was trained
    on: their accuracy is then no evidence (its backbone learnt them with their labels)."""
    trained = set((getattr(model, "training_info", None) or {}).get("trained_wells") or [])
    if not trained:
        return 0
    held = np.flatnonzero(np.any(holdouts, axis=0)) if holdouts else []
    return sum(1 for g in held if data.group_keys[g] and data.group_keys[g] in trained)


def _evidence(
    data: LabelledSet,
    jobs: list[_Member],
    scheme: str,
    reference: str | None,
    per_class_names: list[str],
    seed: int,
    n_classes: int,
    seen_by_start: int = 0,
) -> dict[str, Any]:
    channels, classes = data.channel_names, data.class_names
    members = np.stack([j.net.importance_vector().numpy() for j in jobs])
    importance, interval = ev.importance_summary(channels, members)
    # out of fold: each held-out well's probabilities = mean over its sites (and over the
    # members that held it out, with leave-one-plate-out and more members than plates)
    by_well: dict[int, list[np.ndarray]] = {}
    for job in jobs:
        for i, p in job.site_probs.items():
            by_well.setdefault(int(data.groups[i]), []).append(p)
    held_out = None
    if by_well:
        truth = data.group_labels()
        confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
        for g, probs in by_well.items():
            confusion[truth[g], int(np.argmax(np.mean(probs, axis=0)))] += 1
        low, high = ev.balanced_accuracy_interval(confusion, seed=seed)
        held_out = {
            "balanced_accuracy": ev.balanced_accuracy(confusion),
            "interval": [low, high],
            "n_wells": int(confusion.sum()),
            "confusion": confusion.tolist(),
            "level": "well",
            "seen_by_start": int(seen_by_start),
        }
    per_class: dict[str, dict[str, float]] = {}
    per_class_interval: dict[str, dict[str, list[float]]] = {}
    for cls in per_class_names:
        values = np.stack([j.per_class[cls] for j in jobs if cls in j.per_class])
        imp, ivl = ev.importance_summary(channels, values)
        per_class[cls] = imp
        if ivl is not None:
            per_class_interval[cls] = ivl
    return {
        "version": ev.EVIDENCE_VERSION,
        "scheme": scheme,
        "classes": list(classes),
        "channels": list(channels),
        "chance": 1.0 / n_classes,  # the classes with labelled wells
        "held_out": held_out,
        "readout": "blend relevance (occlusion) x mixing weights"
        if jobs[0].net.k > 1
        else "mixing weights (K = 1)",
        "importance": importance,
        "interval": interval,
        "members": [dict(zip(channels, m.tolist(), strict=True)) for m in members],
        "reference": reference if per_class else None,
        "per_class": per_class,
        "per_class_interval": per_class_interval,
    }


def _train_set(
    model: Any,
    data: LabelledSet,
    config: TrainConfig,
    should_stop: Callable[[], bool] | None,
    info: dict[str, Any],
    client: Any = None,
    remote: Any = None,
) -> Generator[TrainProgress, None, TrainResult]:
    t0 = time.perf_counter()
    classes, channels = data.class_names, data.channel_names
    present = np.unique(data.y)
    if len(present) < 2:
        raise LabelsError(f"labels: at least 2 classes are needed to train, found {len(present)}")
    device = resolve_device(config.device)  # fails before reading sites
    device_name = _device_name(device)
    base_members = as_members(model)
    shapes = [data.source.shape(k) for k in {k.source: k for k in data.keys}.values()]
    scale, input_size = resolve_scale(config, base_members[0] if base_members else None, shapes)
    counts = np.bincount(data.group_labels(), minlength=len(classes))
    labelled = [c for i, c in enumerate(classes) if counts[i] > 0]  # classes with wells
    ref = reference_class(labelled, counts[counts > 0], config.reference)
    holdouts, scheme = member_holdouts(
        data.group_labels(), data.group_source, config.ensemble, config.holdout, config.seed,
        config.val_fraction,
    )  # fmt: skip
    if config.holdout == "plate" and any(m.any() for m in holdouts):
        scheme += "; the normalisation is estimated on every plate, the held-out one included"
    stop = threading.Event()

    def stopped() -> bool:
        if should_stop is not None and should_stop():
            stop.set()
        return stop.is_set()

    # the members, built here (seeded construction uses the global RNG: not in threads)
    jobs: list[_Member] = []
    notes: list[str] = []
    all_idx = np.arange(len(data))
    for m, mask in enumerate(holdouts):
        base = base_members[m % len(base_members)] if base_members else None
        seed = member_seed(config.seed, m)
        net, member_notes = _prepare_model(base, channels, classes, config, seed=seed)
        net.scale, net.input_size = scale, input_size
        notes = notes or member_notes
        held = np.isin(data.groups, np.flatnonzero(mask))
        train_idx = all_idx[~held]
        missing = sorted(set(data.y[held].tolist()) - set(data.y[train_idx].tolist()))
        if missing:
            out = sorted({data.group_names[g].rsplit(" ", 1)[0] for g in np.flatnonzero(mask)})
            raise ModelError(
                f"member {m + 1} of the ensemble holds out {', '.join(out)} ({scheme}) and "
                f"would train without class(es) {', '.join(classes[i] for i in missing)}, "
                "whose labelled wells all lie there: label wells of every class on more plates "
                "(or hold out wells instead of plates)"
            )
        jobs.append(_Member(m, net, train_idx, all_idx[held], seed))
    seen = _seen_by_start(model, data, holdouts)
    if seen:
        scheme += f"; {seen} held-out well(s) trained the model this one started from"
    for note in notes:
        yield TrainProgress(0, config.epochs, 0, 0, None, None, None, {}, note, phase="read",
                            device=device_name, members=len(jobs))  # fmt: skip
    yield TrainProgress(0, config.epochs, 0, 1, None, None, None, {},
                        f"estimating the normalisation ({scale})", phase="read",
                        device=device_name, members=len(jobs))  # fmt: skip
    stats = estimate_stats(data, all_idx, scale, input_size, config.seed, stopped)
    if stats is None:
        return TrainResult(model=None, cancelled=True)
    fg: dict[int, Foreground | None] = {}
    if scale.crop is not None:
        for n, i in enumerate(all_idx.tolist(), start=1):
            if stopped():
                return TrainResult(model=None, cancelled=True)
            fg[i] = foreground_map(data.source, data.keys[i], scale, stats)
            if n == len(all_idx) or n % 16 == 0:
                yield TrainProgress(0, config.epochs, n, len(all_idx), None, None, None, {},
                                    f"mapping where sites have signal {n}/{len(all_idx)}",
                                    phase="read", device=device_name,
                                    members=len(jobs))  # fmt: skip
    prep = SitePrep(scale, input_size, stats)
    cache = SiteCache(config.cache_mb * 2**20)
    loader = BatchLoader(data, prep, cache, config.read_threads)
    steps_of = [math.ceil(len(j.train_idx) * config.crops_per_site / config.batch_size)
                for j in jobs]  # fmt: skip
    others = [c for c in labelled if c != ref] if len(labelled) >= 3 else []
    pair_steps = [
        math.ceil(
            int(np.isin(data.y[j.train_idx], [classes.index(ref), classes.index(c)]).sum())
            * config.crops_per_site / config.batch_size
        )
        for j in jobs
        for c in others
    ]  # fmt: skip
    total = (sum(steps_of) + sum(pair_steps)) * config.epochs
    ctx = _Context(data, prep, loader, fg, config, device, device_name, total, stop.is_set)
    for job in jobs:
        job.net.normalisation = stats

    def member_job(job: _Member) -> Callable[[], Generator]:
        def run() -> Generator[TrainProgress, None, _Member | None]:
            done = yield from _fit_member(ctx, job, len(jobs), config)
            if done is None:
                return None
            job.site_probs = _predict_sites(ctx, job.net, job.heldout_idx)
            return job

        return run

    pairs = [(j, c) for j in range(len(jobs)) for c in others]
    if client is not None:
        workers = f"Dask workers ({_client_text(client)})"
        outcome = yield from _train_remote(client, remote, data, jobs, pairs, ref, scale,
                                           input_size, stats, fg, config, ctx, stopped)  # fmt: skip
        if outcome is None:
            return TrainResult(model=None, cancelled=True)
        jobs = outcome
    else:
        workers = _workers(config, len(jobs), device)
        threads = max(1, torch.get_num_threads() // workers) if device.type == "cpu" else 1
        with torch_threads(threads) if workers > 1 else contextlib.nullcontext():
            finished = yield from _run_jobs([member_job(j) for j in jobs], workers, stop,
                                            stopped)  # fmt: skip
            if stopped() or any(f is None for f in finished):
                return TrainResult(model=None, cancelled=True)
            subs = [_per_class_member(jobs[j], data, config, ref, c) for j, c in pairs]
            per_class_jobs = [
                _per_class_job(ctx, sub, len(jobs), config, ref, c)
                for sub, (_, c) in zip(subs, pairs, strict=True)
            ]
            outcomes = yield from _run_jobs(per_class_jobs, workers, stop, stopped)
            if stopped() or any(o is None for o in outcomes):
                return TrainResult(model=None, cancelled=True)
            for (job_i, cls), readout in zip(pairs, outcomes, strict=True):
                jobs[job_i].per_class[cls] = readout
    evidence = _evidence(data, jobs, scheme, ref, others, config.seed, len(labelled), seen)
    history = [rec for job in jobs for rec in job.history]
    members = []
    for job in jobs:
        net = job.net.to("cpu").eval()
        net.training_info = {
            "member": job.number + 1,
            "seed": job.seed,
            "n_train_sites": len(job.train_idx),
            "n_heldout_sites": len(job.heldout_idx),
            "final": {k: v for k, v in job.history[-1].items() if k != "importance"},
        }
        members.append(net)
    training_info = {
        **dataclasses.asdict(config),
        **info,
        "notes": notes,
        "scale": scale.to_dict(),
        "input_size": input_size,
        "n_sites": len(data),
        "n_wells": len(data.group_names),
        "members": len(jobs),
        "holdout_scheme": scheme,
        "trained_wells": sorted(k for k in data.group_keys if k),
        "parallel_members": workers,
        "train_seconds": round(time.perf_counter() - t0, 3),
        "device_used": device_name,
        "torch_version": str(torch.__version__),
    }
    ensemble = DcmixEnsemble(members, evidence=evidence, training_info=training_info)
    return TrainResult(
        model=ensemble,
        history=history,
        importance=ensemble.channel_importance(),
        evidence=evidence,
    )


def pair_set(data: LabelledSet, ref: str, cls: str) -> LabelledSet:
    """The labelled set relabelled for one-vs-reference: ``ref`` -> 0, ``cls`` -> 1 (sites of
    other classes keep index 0 and are never sampled: callers pass their indices only)."""
    y = np.zeros(len(data), dtype=np.int64)
    y[data.y == data.class_names.index(cls)] = 1
    return dataclasses.replace(data, y=y, class_names=[ref, cls])


def _per_class_member(job: _Member, data: LabelledSet, config: TrainConfig, ref: str,
                      cls: str) -> _Member:  # fmt: skip
    """One-vs-reference: a fresh mixing layer and binary head on the member's frozen backbone,
    for its training sites of the two classes. Built in the caller's thread (seeded
    construction uses torch's global RNG)."""
    ref_i, cls_i = data.class_names.index(ref), data.class_names.index(cls)
    keep = np.isin(data.y[job.train_idx], [ref_i, cls_i])
    seed = member_seed(job.seed, 1 + cls_i)
    net = job.net.adapted(data.channel_names, [ref, cls], seed=seed)
    net.mixing.randomise(config.mixing_init_std, seed)
    net.normalisation = job.net.normalisation
    return _Member(job.number, net, job.train_idx[keep], np.empty(0, dtype=np.int64), seed)


def per_class_config(config: TrainConfig) -> TrainConfig:
    """The settings of one-vs-reference training: a fresh mixing layer and head on a frozen
    backbone, which is fine-tuning, so at least the fine-tuning rates (with the rates of
    training from scratch, 1e-3 / 1e-2, the layers barely leave their random start and the
    per-class bars are noise)."""
    return dataclasses.replace(
        config,
        mode="mixing",
        lr=max(config.lr, FINETUNE_DEFAULTS["lr"]),
        mixing_lr=max(config.mixing_lr, FINETUNE_DEFAULTS["mixing_lr"]),
    )


def _per_class_job(
    ctx: _Context, sub: _Member, members: int, config: TrainConfig, ref: str, cls: str
) -> Callable[[], Generator]:
    """The job training ``sub`` (``_per_class_member``); it returns the readout (C,)."""
    pair = pair_set(ctx.data, ref, cls)
    cfg = per_class_config(config)

    def run() -> Generator[TrainProgress, None, np.ndarray | None]:
        done = yield from _fit_member(
            ctx, sub, members, cfg, data=pair, label=f", {cls} vs {ref}", phase="per-class"
        )
        return None if done is None else done.net.importance_vector().numpy()

    return run


def train_arrays(
    model: DcmixClassifier | DcmixEnsemble | None,
    x: np.ndarray,
    y: Sequence[Any] | np.ndarray,
    config: TrainConfig | None = None,
    should_stop: Callable[[], bool] | None = None,
    channel_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    *,
    groups: np.ndarray,
    client: Any = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train on in-memory raw images x (N, C, H, W) with labels y (class names, or indices into
    ``class_names`` / the model's classes) and ``groups``: the well of each image (images of
    one well always fall on the same side of a held-out split). The same pipeline as
    ``train``: the model's scale, normalisation estimated from x, an ensemble with evidence."""
    config = config or TrainConfig()
    x = np.asarray(x)
    if x.ndim != 4:
        raise ModelError(f"training images: expected (N, C, H, W), found shape {x.shape}")
    if len(x) == 0:
        raise ModelError("empty training set: no images")
    y_arr = np.asarray(y)
    if len(y_arr) != len(x):
        raise ModelError(f"expected one label per image: {len(x)} images, {len(y_arr)} labels")
    if y_arr.dtype.kind in "iu":
        names = list(class_names or (model.class_names if model is not None else []))
        if not names:
            names = [str(i) for i in range(int(y_arr.max()) + 1)]
        labels = [names[i] for i in y_arr]
    else:
        labels = [str(v) for v in y_arr]
        names = sorted(set(labels))
    present = sorted(set(labels))
    if len(present) < 2:
        raise LabelsError(f"labels: at least 2 classes are needed to train, found {present}")
    channels = list(
        channel_names
        or (
            model.channel_names
            if model is not None
            else [f"channel {i}" for i in range(x.shape[1])]
        )
    )
    if len(channels) != x.shape[1]:
        raise ModelError(f"expected {len(channels)} channels {channels}, found {x.shape[1]}")
    for i in range(len(x)):
        check_finite(x[i], f"image {i}")
    index = {c: i for i, c in enumerate(names)}
    y_idx = np.array([index[v] for v in labels], dtype=np.int64)
    data = array_set(x, y_idx, groups, channels, names)
    info = {"source": "arrays"}
    remote = None
    if client is not None:
        from napari_dcmix.model.remote_training import Rebuild

        remote = Rebuild(channels, names, x=x, y=y_idx, groups=np.asarray(groups))
    return (yield from _train_set(model, data, config, should_stop, info, client, remote))


def train(
    model: DcmixClassifier | DcmixEnsemble | None,
    plates: Any,
    labels: dict[str, str] | Sequence[dict[str, str]],
    config: TrainConfig | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    client: Any = None,
    openers: Sequence[Callable[[], Any]] | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train on labelled wells of one plate or several (one labels dict per plate): an
    ensemble of ``config.ensemble`` members with held-out evidence (see the module docstring).
    Sites are read while training runs; nothing is held in memory beyond a bounded cache.

    ``client``: a ``distributed.Client`` (``napari_dcmix.screen.dask_client``): the members
    train as Dask tasks on its workers, which reopen the plates with ``openers`` (picklable
    callables, one per plate, e.g. ``functools.partial(open_plate, path)``)."""
    config = config or TrainConfig()
    plate_list = list(plates) if isinstance(plates, (list, tuple)) else [plates]
    label_list = [labels] if isinstance(labels, dict) else list(labels)
    if not plate_list:
        raise ModelError("no plate to train on")
    label_list, classes = check_labels(plate_list, label_list)
    channels = list(plate_list[0].channels)
    for p in plate_list[1:]:
        if list(p.channels) != channels:
            raise ModelError(
                f"plates have different channels: {plate_list[0].name!r} {channels}, "
                f"{p.name!r} {list(p.channels)}"
            )
    data = plate_set(plate_list, label_list, classes)
    info = {"plates": [p.name for p in plate_list], "n_labelled_wells": len(data.group_names)}
    remote = None
    if client is not None:
        from napari_dcmix.model.remote_training import Rebuild, keys_digest

        if openers is None or len(openers) != len(plate_list):
            raise ModelError(
                "training on a Dask cluster needs one opener per plate (how a worker reopens it)"
            )
        remote = Rebuild(channels, classes, openers=list(openers), labels=label_list,
                         keys_digest=keys_digest(data.keys))  # fmt: skip
    return (yield from _train_set(model, data, config, should_stop, info, client, remote))
