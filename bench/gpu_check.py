"""GPU check for a lent CUDA machine: correctness against the CPU, then a throughput table.

One command, nothing to install beyond torch + numpy (run from the repository root):

    PYTHONPATH=src python bench/gpu_check.py [--quick] [--markdown PATH]

1. Correctness: the same models predict the same random 5-channel uint16 sites on the CPU
   (float32) and on CUDA through ``predict_arrays`` (autocast float16, pinned transfers);
   prints the max absolute difference of class probabilities, also for CUDA float32.
2. Throughput: images/s of the model's forward pass at 5x512x512 for batch sizes 32..512,
   default backbone and ResNet-18/50, with and without autocast and channels_last
   (inputs already on the GPU: the model's ceiling), plus end-to-end ``predict_arrays``
   from host uint16 arrays for the default backbone.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time

import numpy as np
import torch

from napari_dcmix.model import build_model, predict_arrays
from napari_dcmix.plate.normalise import ChannelStats

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]
CLASSES = ["control", "treated", "other", "fourth"]
# "cuda" on the GPU machine; "--dry-run" uses the CPU with tiny sizes to test this script here.
DEV = "cuda"
SIZE = 512
BACKBONES = ("small_cnn", "resnet18", "resnet50")


def _model(backbone: str, input_size: int):
    model = build_model(CHANNELS, CLASSES, backbone=backbone, input_size=input_size, seed=0)
    model.normalisation = ChannelStats(CHANNELS, [100.0] * 5, [4000.0] * 5)
    return model.eval()


def correctness(n: int = 16) -> list[str]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4096, size=(n, 5, SIZE, SIZE), dtype=np.uint16)
    lines = ["| backbone | input | max abs diff p (CUDA autocast vs CPU) | (CUDA fp32 vs CPU) |"]
    lines.append("|---|---|---|---|")
    for backbone in BACKBONES:
        for size in (128, SIZE):
            model = _model(backbone, size)
            cpu = predict_arrays(model, x, batch_size=8, device="cpu")
            amp = predict_arrays(model, x, batch_size=8, device=DEV)
            # fp32 on CUDA: same preprocessing, forward without autocast.
            from napari_dcmix.model.data import preprocess

            batch = np.stack([preprocess(im, size, model.normalisation) for im in x])
            net = model.to(DEV)
            with torch.inference_mode():
                logits = net(torch.from_numpy(batch).to(DEV))
            fp32 = torch.softmax(logits.float(), 1).cpu().numpy()
            model.to("cpu")
            lines.append(
                f"| {backbone} | {size} | {np.abs(amp - cpu).max():.2e} | "
                f"{np.abs(fp32 - cpu).max():.2e} |"
            )
            print(lines[-1], flush=True)
    return lines


def _empty_cache() -> None:
    if DEV == "cuda":
        torch.cuda.empty_cache()


def _sync() -> None:
    if DEV == "cuda":
        torch.cuda.synchronize()


def _time(fn, min_time: float = 0.5) -> float:
    fn()
    _sync()
    fn()
    _sync()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        _sync()
        dt = time.perf_counter() - t0
        if dt >= min_time or n >= 20:
            return dt / n


def throughput(batch_sizes: list[int]) -> list[str]:
    lines = [
        "| backbone | batch | fp32 | fp32 channels_last | autocast fp16 "
        "| autocast + channels_last |",
        "|---|---|---|---|---|---|",
    ]
    for backbone in BACKBONES:
        model = _model(backbone, SIZE).to(DEV)
        for bs in batch_sizes:
            cells = []
            for amp in (False, True):
                for cl in (False, True):
                    fmt = torch.channels_last if cl else torch.contiguous_format
                    net = model.to(memory_format=fmt)
                    try:
                        x = torch.randn(bs, 5, SIZE, SIZE, device=DEV).to(memory_format=fmt)
                        ctx = (
                            torch.autocast(
                                DEV, dtype=torch.float16 if DEV == "cuda" else torch.bfloat16
                            )
                            if amp
                            else contextlib.nullcontext()
                        )

                        def step(net=net, x=x, ctx=ctx):
                            with torch.inference_mode(), ctx:
                                net(x)

                        cells.append(f"{bs / _time(step):,.0f}")
                    except torch.OutOfMemoryError:
                        cells.append("OOM")
                    finally:
                        x = None
                        _empty_cache()
            lines.append(f"| {backbone} | {bs} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
        model.to("cpu")
        del model
        _empty_cache()
    return lines


def end_to_end(batch_sizes: list[int]) -> list[str]:
    lines = ["| predict_arrays (host uint16 -> probs), small_cnn input 512 | batch | images/s |"]
    lines.append("|---|---|---|")
    rng = np.random.default_rng(1)
    x = rng.integers(
        0,
        4096,
        size=(max(batch_sizes) * (1 if DEV == "cpu" else 4), 5, SIZE, SIZE),
        dtype=np.uint16,
    )
    model = _model("small_cnn", SIZE)
    for bs in batch_sizes:
        predict_arrays(model, x[:bs], batch_size=bs, device=DEV)
        t0 = time.perf_counter()
        predict_arrays(model, x, batch_size=bs, device=DEV)
        dt = time.perf_counter() - t0
        lines.append(f"| | {bs} | {len(x) / dt:,.0f} |")
        print(lines[-1], flush=True)
    return lines


def streaming() -> list[str]:
    """predict_plate (background reads, pinned transfers, autocast) on a small plate on disk."""
    import tempfile

    from napari_dcmix.model import predict_plate_all
    from napari_dcmix.plate import open_plate
    from napari_dcmix.synthetic import write_synthetic_plate

    with tempfile.TemporaryDirectory() as tmp:
        info = write_synthetic_plate(tmp, layout="tiff", n_wells=24, sites=2, image_size=256)
        plate = open_plate(info.path)
        model = _model("small_cnn", 128)
        cpu = predict_plate_all(model, plate, device="cpu")
        t0 = time.perf_counter()
        gpu = predict_plate_all(model, plate, device=DEV)
        dt = time.perf_counter() - t0
    diff = max(
        float(np.abs(a.probs - b.probs).max()) for a, b in zip(cpu.sites, gpu.sites, strict=True)
    )
    line = (
        f"predict_plate streaming, 48 sites 5x256x256 from TIFF: device used {gpu.device}, "
        f"max abs diff p vs CPU {diff:.2e}, {len(gpu.sites) / dt:,.0f} sites/s"
    )
    print(line, flush=True)
    return [line]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="CUDA correctness and throughput check")
    ap.add_argument("--quick", action="store_true", help="batch sizes 32 and 128 only")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: test this script")
    args = ap.parse_args(argv)
    global DEV, SIZE
    if args.dry_run:
        DEV, SIZE = "cpu", 64
    elif not torch.cuda.is_available():
        print("CUDA is not available here: nothing to check.")
        return 1
    torch.backends.cudnn.benchmark = True
    head = (
        f"torch {torch.__version__}, "
        f"{torch.cuda.get_device_name(0) if DEV == 'cuda' else 'CPU dry run'}, "
        f"python {platform.python_version()}"
    )
    print(head, flush=True)
    sizes = [32, 128] if args.quick or args.dry_run else [32, 64, 128, 256, 512]
    out = [
        head,
        "",
        *correctness(),
        "",
        *throughput(sizes),
        "",
        *end_to_end([32, 128] if not args.dry_run else [8]),
        "",
        *streaming(),
    ]
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
