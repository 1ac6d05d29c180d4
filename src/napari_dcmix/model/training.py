"""Training as a generator: yields TrainProgress, returns TrainResult.

``train`` (plates + labels) and ``train_arrays`` (in-memory arrays) share one implementation
(``_fit``). The model passed in is never modified: training works on a deep copy and the
result holds the trained copy. Bit-for-bit deterministic on CPU for a seed: model initialisation
uses a forked RNG, shuffling and augmentation use a private ``torch.Generator``; on CUDA/MPS each
step runs with ``torch.use_deterministic_algorithms`` (CPU kernels used are deterministic).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_dcmix.errors import LabelsError, ModelError
from napari_dcmix.model.classifier import DcmixClassifier, build_model
from napari_dcmix.model.data import check_labels, preprocess, read_labelled_sites
from napari_dcmix.model.device import resolve_device
from napari_dcmix.model.train_settings import (
    TrainConfig,
    TrainProgress,
    TrainResult,
)
from napari_dcmix.plate.normalise import estimate_channel_stats, normalise


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
) -> tuple[DcmixClassifier, list[str]]:
    """A fresh model or a deep copy of ``model`` fitting the data; returns it and notes."""
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
                    "class_names")}  # fmt: skip
            notes.append(
                f"from scratch with the architecture of the given model ({model.backbone_name})"
            )
        return build_model(channel_names, class_names, seed=config.seed, **arch), notes
    if list(model.channel_names) != list(channel_names):
        if not config.fresh_mixing:
            raise ModelError(
                f"the model's channels {list(model.channel_names)} differ from the plate's "
                f"channels {list(channel_names)}; ask for a fresh mixing layer to fine-tune it "
                "on these channels"
            )
        net = model.adapted(channel_names, seed=config.seed)
        notes.append("fresh mixing layer for the new channels")
    else:
        net = copy.deepcopy(model)
    if not set(class_names) <= set(net.class_names):
        net = net.with_classes(class_names, seed=config.seed)
        notes.append(f"fresh class head for classes {class_names}")
    return net, notes


def _device_name(device: torch.device) -> str:
    """The device as shown to the user, with its index: "cpu", "cuda:0", "mps"."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def _split(
    y: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split by group (well): each class keeps at least one training group."""
    rng = np.random.default_rng(seed)
    val_groups: list[int] = []
    if val_fraction > 0:
        for cls in np.unique(y):
            g = np.unique(groups[y == cls])
            n_val = math.floor(len(g) * val_fraction)
            if len(g) >= 2 and n_val == 0 and len(g) * val_fraction >= 0.5:
                n_val = 1
            n_val = min(n_val, len(g) - 1)
            if n_val > 0:
                val_groups += rng.permutation(g)[:n_val].tolist()
    is_val = np.isin(groups, np.asarray(val_groups, dtype=groups.dtype))
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _augment(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = xb.shape[0]
    rots = torch.randint(0, 4, (n,), generator=gen).tolist()
    flips = torch.randint(0, 2, (n,), generator=gen).tolist()
    square = xb.shape[-1] == xb.shape[-2]
    out = []
    for i in range(n):
        xi = xb[i]
        if square and rots[i]:
            xi = torch.rot90(xi, rots[i], dims=(1, 2))
        if flips[i]:
            xi = torch.flip(xi, dims=(2,))
        out.append(xi)
    return torch.stack(out)


def _recalibrate_batchnorm(
    net: nn.Module, x: torch.Tensor, idx: np.ndarray, batch: int, device
) -> None:
    """Running BatchNorm statistics = exact averages over the (unaugmented) training set, so
    that prediction sees the statistics of the final weights. small_cnn and the ResNets all
    use BatchNorm; only an experimental GroupNorm small_cnn has none (nothing to do)."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        step = max(batch, 2)
        for i in range(0, len(idx), step):
            xb = x[torch.from_numpy(idx[i : i + step])]
            if len(xb) > 1:
                net(xb.to(device))
    for m, mom in zip(bns, momenta, strict=True):
        m.momentum = mom


def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, device) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = net(x[i : i + batch].to(device))
            correct += int((logits.argmax(1).cpu() == y[i : i + batch]).sum())
    return correct / max(1, len(x))


def _fit(
    net: DcmixClassifier,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    config: TrainConfig,
    should_stop: Callable[[], bool] | None,
    info: dict[str, Any],
) -> Generator[TrainProgress, None, TrainResult]:
    """x: resized (N, C, S, S) float32, not normalised; trains ``net`` in place (a copy)."""
    if len(x) == 0:
        raise ModelError("empty training set: no labelled images")
    if len(np.unique(y)) < 2:
        raise LabelsError(
            f"labels: at least 2 classes are needed to train, found {len(np.unique(y))}"
        )
    device = resolve_device(config.device)
    device_name = _device_name(device)
    stats = estimate_channel_stats(
        x, max_sites=256, seed=config.seed, channel_names=net.channel_names
    )
    xt = torch.from_numpy(normalise(x, stats, inplace=True))  # x is ours: resized copies
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    train_idx, val_idx = _split(np.asarray(y), np.asarray(groups), config.val_fraction, config.seed)
    if len(train_idx) == 0:
        raise ModelError("empty training set after the validation split")
    x_val, y_val = xt[val_idx], yt[val_idx]
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
    steps = math.ceil(len(train_idx) / config.batch_size)
    total_steps = steps * config.epochs
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
        if config.cosine_schedule
        else None
    )
    gen = torch.Generator().manual_seed(int(config.seed))
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        net.train()
        if frozen:
            net.backbone.eval()  # frozen backbone: keep its BatchNorm statistics too
        perm = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=gen)]
        loss_sum, correct, seen = 0.0, 0, 0
        for step in range(1, steps + 1):
            if should_stop is not None and should_stop():
                return TrainResult(model=None, history=history, cancelled=True)
            idx = perm[(step - 1) * config.batch_size : step * config.batch_size]
            xb, yb = xt[idx], yt[idx]
            if config.augment:
                xb = _augment(xb, gen)
            with _deterministic(device):
                xb, yb_d = xb.to(device), yb.to(device)
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
            yield TrainProgress(
                epoch=epoch,
                epochs=config.epochs,
                step=step,
                steps=steps,
                loss=loss_sum / seen,
                train_accuracy=correct / seen,
                val_accuracy=history[-1]["val_accuracy"] if history else None,
                importance=net.channel_importance(),
                message=f"epoch {epoch}/{config.epochs} step {step}/{steps} "
                f"loss {loss_sum / seen:.4f}",
                device=device_name,
            )
        val_acc = None
        if len(val_idx) or epoch == config.epochs:
            with _deterministic(device):
                if not frozen:  # running BN statistics of the current weights
                    _recalibrate_batchnorm(net, xt, train_idx, config.batch_size, device)
                if len(val_idx):
                    val_acc = _accuracy(net, x_val, y_val, max(config.batch_size, 64), device)
        record = {
            "epoch": epoch,
            "loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "val_accuracy": val_acc,
            "importance": net.channel_importance(),
        }
        history.append(record)
        val_text = "" if val_acc is None else f" val acc {val_acc:.3f}"
        yield TrainProgress(
            epoch=epoch,
            epochs=config.epochs,
            step=steps,
            steps=steps,
            loss=record["loss"],
            train_accuracy=record["train_accuracy"],
            val_accuracy=val_acc,
            importance=record["importance"],
            message=f"epoch {epoch}/{config.epochs} done: loss {record['loss']:.4f} "
            f"train acc {record['train_accuracy']:.3f}{val_text}",
            device=device_name,
        )
    for p in net.parameters():
        p.requires_grad_(True)
    net.to("cpu").eval()
    net.normalisation = stats
    net.training_info = {
        **dataclasses.asdict(config),
        **info,
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "train_seconds": round(time.perf_counter() - t0, 3),
        "device_used": device_name,
        "final": {k: v for k, v in history[-1].items() if k != "importance"},
        "torch_version": str(torch.__version__),
    }
    return TrainResult(model=net, history=history, importance=net.channel_importance())


def train_arrays(
    model: DcmixClassifier | None,
    x: np.ndarray,
    y: Sequence[Any] | np.ndarray,
    config: TrainConfig | None = None,
    should_stop: Callable[[], bool] | None = None,
    channel_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train on in-memory raw images x (N, C, H, W) with labels y (class names, or indices into
    ``class_names`` / the model's classes). Images are resized (area) to the model's input size
    and normalised with stats estimated from x, as in ``train``."""
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
    net, notes = _prepare_model(model, channels, names, config)
    index = {c: i for i, c in enumerate(net.class_names)}
    y_idx = np.array([index[v] for v in labels], dtype=np.int64)
    xr = np.stack([preprocess(img, net.input_size, None, f"image {i}") for i, img in enumerate(x)])
    g = np.arange(len(x)) if groups is None else np.asarray(groups)
    info = {"notes": notes, "source": "arrays"}
    return (yield from _fit(net, xr, y_idx, g, config, should_stop, info))


def train(
    model: DcmixClassifier | None,
    plates: Any,
    labels: dict[str, str] | Sequence[dict[str, str]],
    config: TrainConfig | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train on labelled wells of one plate or several (one labels dict per plate). Reads each
    labelled site once (resized to the input size), then trains a copy of ``model`` (or a new
    model when ``model`` is None)."""
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
    net, notes = _prepare_model(model, channels, classes, config)
    device_name = _device_name(resolve_device(config.device))  # fails before reading sites
    for note in notes:
        yield TrainProgress(0, config.epochs, 0, 0, None, None, None, net.channel_importance(),
                            note, phase="read", device=device_name)  # fmt: skip
    reader = read_labelled_sites(
        plate_list, label_list, net.class_names, net.input_size, config.read_threads, should_stop
    )
    while True:
        try:
            done, total = next(reader)
        except StopIteration as stop:
            sites = stop.value
            break
        if done == total or done % 8 == 0:
            yield TrainProgress(
                0,
                config.epochs,
                done,
                total,
                None,
                None,
                None,
                net.channel_importance(),
                f"reading sites {done}/{total}",
                phase="read",
                device=device_name,
            )
    if sites is None:
        return TrainResult(model=None, cancelled=True)
    info = {
        "notes": notes,
        "plates": [p.name for p in plate_list],
        "n_sites": len(sites.y),
        "n_wells": sum(len(lab) for lab in label_list),
    }
    return (yield from _fit(net, sites.x, sites.y, sites.groups, config, should_stop, info))
