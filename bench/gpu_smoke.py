"""Manual check on a machine with CUDA and torchvision (a script, not a test):

    PYTHONPATH=src python3 bench/gpu_smoke.py

1. our ResNet-18/50 load torchvision's state dicts strictly and give the same features;
2. CUDA predictions (autocast fp16, pinned memory) vs CPU: max abs difference of probabilities;
3. training on CUDA runs (and whether two runs are bit-identical);
4. CUDA out-of-memory handling: half batch, then CPU fallback with a warning;
5. streamed plate prediction throughput on CUDA at 5x512x512.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from napari_dcmix.model import (
    TrainConfig,
    build_backbone,
    build_model,
    predict_plate_all,
    train_arrays,
)
from napari_dcmix.model import inference as inf
from napari_dcmix.plate.normalise import estimate_channel_stats


class MemPlate:
    def __init__(self, n_wells: int, sites: int, size: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.name, self.layout = "Mem", "tiff"
        self.wells = [f"{'ABCDEFGH'[i // 12]}{i % 12 + 1:02d}" for i in range(n_wells)]
        self.channels = ["DNA", "ER", "RNA", "AGP", "Mito"]
        self.images = rng.integers(100, 4000, (n_wells, sites, 5, size, size)).astype(np.uint16)
        self.image_shape, self.dtype = (size, size), np.dtype("uint16")

    def sites(self, well):
        return list(range(1, self.images.shape[1] + 1))

    def site_keys(self):
        return [(w, s) for w in self.wells for s in self.sites(w)]

    def read(self, well, site):
        return self.images[self.wells.index(well), site - 1]


def check_torchvision() -> None:
    import torchvision

    for name in ("resnet18", "resnet50"):
        tv = getattr(torchvision.models, name)(weights=None).eval()
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"{name}.pth"
            torch.save(tv.state_dict(), path)
            ours = build_backbone(name, 3, pretrained_path=path).eval()
            five = build_backbone(name, 5, pretrained_path=path)
        tv.fc = torch.nn.Identity()
        x = torch.randn(2, 3, 96, 96)
        with torch.no_grad():
            diff = (tv(x) - ours(x)).abs().max().item()
        print(f"torchvision {name}: strict load OK (K=3 and K=5), max |feature diff| {diff:.2e}, "
              f"K=5 conv1 {tuple(five.conv1.weight.shape)}")  # fmt: skip


def check_predictions() -> None:
    plate = MemPlate(12, 2, 160)
    for backbone in ("small_cnn", "resnet18"):
        model = build_model(plate.channels, ["a", "b", "c"], backbone=backbone, input_size=128)
        model.normalisation = estimate_channel_stats(plate)
        cpu = predict_plate_all(model, plate, device="cpu", batch_size=8)
        gpu = predict_plate_all(model, plate, device="cuda", batch_size=8)
        p_cpu = np.stack([s.probs for s in cpu.sites])
        p_gpu = np.stack([s.probs for s in gpu.sites])
        print(f"{backbone}: CUDA (autocast fp16) vs CPU max |dp| {np.abs(p_cpu - p_gpu).max():.2e}"
              f", device reported {gpu.device!r}, model left on "
              f"{next(model.parameters()).device}")  # fmt: skip


def check_training() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4, 32, 32)).astype(np.float32)
    y = np.arange(64) % 2
    x[:, 1, 8:24, 8:24] += 2 * y[:, None, None]
    cfg = TrainConfig(epochs=3, batch_size=16, input_size=32, device="cuda", val_fraction=0.25)
    results = []
    for _ in range(2):
        gen = train_arrays(None, x, y, cfg)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                results.append(stop.value)
                break
    a, b = (r.model.state_dict() for r in results)
    same = all(torch.equal(a[k], b[k]) for k in a)
    imp = {k: round(v, 3) for k, v in results[0].importance.items()}
    print(f"CUDA training: val acc {results[0].history[-1]['val_accuracy']}, importance {imp}, "
          f"two runs bit-identical: {same}")  # fmt: skip


def check_oom() -> None:
    plate = MemPlate(4, 4, 64)
    model = build_model(plate.channels, ["a", "b"], input_size=64)
    model.normalisation = estimate_channel_stats(plate)
    ref = predict_plate_all(model, plate, device="cpu", batch_size=16)
    original = inf._Runner._forward
    sizes = []

    def fake(self, batch):
        sizes.append((self.device.type, len(batch)))
        if self.device.type == "cuda" and len(batch) > 4:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(self, batch)

    inf._Runner._forward = fake
    try:
        half = predict_plate_all(model, plate, device="cuda", batch_size=16)
        print(f"OOM retry: batch sizes tried {sorted(set(sizes))}, device {half.device}, max |dp| "
              f"vs CPU {np.abs(np.stack([s.probs for s in half.sites]) - np.stack([s.probs for s in ref.sites])).max():.2e}")  # noqa: E501 # fmt: skip

        def always(self, batch):
            if self.device.type == "cuda":
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return original(self, batch)

        inf._Runner._forward = always
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fell = predict_plate_all(model, plate, device="cuda", batch_size=16)
        print(f"OOM fallback: device {fell.device}, warnings {[str(w.message) for w in caught]}")
    finally:
        inf._Runner._forward = original


def check_throughput() -> None:
    plate = MemPlate(24, 4, 512)
    for backbone in ("small_cnn", "resnet18", "resnet50"):
        model = build_model(plate.channels, ["a", "b"], backbone=backbone, input_size=512)
        model.normalisation = estimate_channel_stats(plate)
        predict_plate_all(model, plate, device="cuda", batch_size=32, wells=plate.wells[:2])
        t0 = time.perf_counter()
        predict_plate_all(model, plate, device="cuda", batch_size=32, read_threads=8)
        dt = time.perf_counter() - t0
        print(f"streamed predict_plate {backbone} 5x512x512 input 512, 96 sites, batch 32, 8 read "
              f"threads: {96 / dt:.0f} sites/s")  # fmt: skip


if __name__ == "__main__":
    print(torch.__version__, torch.cuda.get_device_name(0))
    for check in (check_torchvision, check_predictions, check_training, check_oom,
                  check_throughput):  # fmt: skip
        try:
            check()
        except Exception as exc:  # report every check
            print(f"{check.__name__} FAILED: {type(exc).__name__}: {exc}")
