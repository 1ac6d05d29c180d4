"""Atomic outputs (napari_dcmix.atomic): a file-size limit or SIGKILL while writing leaves a
pre-existing target byte-identical and no partial file at the target path; permissions of a
replaced file are kept. Faults are real: RLIMIT_FSIZE (what `ulimit -f` sets) and SIGKILL on a
child process."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from napari_dcmix.atomic import OutputError, atomic_write, atomic_write_text, check_writable
from napari_dcmix.plate.labels import read_labels_csv, write_labels_csv

ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
LIMIT = 64 * 1024  # bytes a child may write per file


def _limited(limit: int = LIMIT):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _python(code: str, limit: int | None = LIMIT, timeout: int = 120):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=ENV, timeout=timeout,
                          preexec_fn=_limited(limit) if limit else None)  # fmt: skip


def _others(folder: Path, *keep: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p not in keep)


WRITERS = {
    "atomic_write_bytes": "from napari_dcmix.atomic import atomic_write_bytes\n"
    "atomic_write_bytes(TARGET, b'x' * 10**6, what='test file')",
    "write_labels_csv": "from napari_dcmix.plate.labels import write_labels_csv\n"
    "from napari_dcmix.synthetic import plate_wells\n"
    "write_labels_csv(TARGET, {w: 'label-' + 'x' * 200 for w in plate_wells(1536)})",
    "save_model": "from napari_dcmix.model import build_model, save_model\n"
    "save_model(build_model(['a', 'b'], ['c', 'd'], input_size=16), TARGET)",
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_file_size_limit_keeps_the_old_file(tmp_path, writer):
    target = tmp_path / "out.bin"
    old = b"the user's complete file\n" * 10
    target.write_bytes(old)
    os.chmod(target, 0o644)
    code = f"TARGET = {str(target)!r}\n{WRITERS[writer]}"
    run = _python(code)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("napari_dcmix.atomic.OutputError: cannot write"), run.stderr
    assert str(target) in last and "File too large" in last and "unchanged" in last
    assert target.read_bytes() == old and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _others(tmp_path, target) == []  # the temporary file was removed


def test_file_size_limit_through_the_cli_keeps_the_old_model(tmp_path):
    """`train --overwrite` whose model no longer fits: exit 2, the path and the reason named,
    the previous model byte-identical."""
    from napari_dcmix.synthetic import write_synthetic_plate

    synth = write_synthetic_plate(tmp_path / "plate", n_wells=4, sites=1, image_size=16, seed=1)
    out = tmp_path / "models" / "model.pt"
    out.parent.mkdir()
    out.write_bytes(b"previous model")
    argv = ["train", str(synth.path), "--labels", str(synth.labels_csv), "--out", str(out),
            "--overwrite", "--epochs", "1", "--input-size", "16", "--k", "1",
            "--val-fraction", "0"]  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "napari_dcmix.cli", *argv], capture_output=True,
                         text=True, env=ENV, timeout=180, preexec_fn=_limited())  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"cannot write model file {out}: File too large" in run.stderr
    assert out.read_bytes() == b"previous model"
    assert _others(out.parent, out) == []


def test_file_size_limit_during_synth_leaves_no_folder(tmp_path):
    out = tmp_path / "new"
    run = subprocess.run([sys.executable, "-m", "napari_dcmix.cli", "synth", str(out),
                          "--wells", "4", "--image-size", "256"], capture_output=True, text=True,
                         env=ENV, timeout=120, preexec_fn=_limited())  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"cannot write synthetic plate folder {out}: A01_s1.tif: " in run.stderr
    assert "a file-size limit" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_sigkill_while_writing_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.pt"
    old = os.urandom(4096)
    target.write_bytes(old)
    code = f"""
        import sys, time
        from napari_dcmix.atomic import atomic_write
        with atomic_write({str(target)!r}, "wb") as fh:
            fh.write(b"new" * 100000)
            fh.flush()
            print("half written", flush=True)
            time.sleep(60)
    """
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                             text=True, env=ENV)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "half written"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        child.kill()
        child.stdout.close()
    assert target.read_bytes() == old
    # what a killed writer leaves: at most its hidden temporary file, never the target
    left = _others(tmp_path, target)
    assert len(left) == 1 and left[0].startswith(".model.pt.dcmix-tmp-")


def test_sigkill_during_synth_leaves_no_output_folder(tmp_path):
    out = tmp_path / "plate"
    argv = ["synth", str(out), "--wells", "96", "--sites", "2", "--image-size", "128"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    child = subprocess.Popen([sys.executable, "-m", "napari_dcmix.cli", *argv], env=ENV, **quiet)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until sites are being written
            staged = [p for p in tmp_path.iterdir() if ".dcmix-tmp-" in p.name]
            if staged and sum(1 for _ in staged[0].rglob("*.tif")) >= 10:
                break
            assert child.poll() is None, "synth finished before it could be killed"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        child.kill()
    assert not out.exists()


def test_replacing_keeps_permissions_and_a_new_file_follows_the_umask(tmp_path):
    from napari_dcmix.model import build_model, save_model

    model = build_model(["a", "b"], ["c", "d"], input_size=16)
    for mode in (0o644, 0o640, 0o600):
        path = tmp_path / f"m{mode:o}.pt"
        path.write_bytes(b"old")
        os.chmod(path, mode)
        save_model(model, path)
        assert stat.S_IMODE(path.stat().st_mode) == mode
    labels = tmp_path / "labels.csv"
    labels.write_text("well,label\nA01,x\n")
    os.chmod(labels, 0o664)
    write_labels_csv(labels, {"B02": "y"})
    assert stat.S_IMODE(labels.stat().st_mode) == 0o664
    assert read_labels_csv(labels) == {"B02": "y"}
    previous = os.umask(0o022)
    try:
        assert stat.S_IMODE(atomic_write_text(tmp_path / "new.txt", "x").stat().st_mode) == 0o644
    finally:
        os.umask(previous)


def test_an_exception_in_the_block_leaves_the_old_file(tmp_path):
    target = tmp_path / "pred.csv"
    target.write_text("complete,file\n")
    with pytest.raises(RuntimeError, match="mid-row"), atomic_write(target) as fh:
        fh.write("half,")
        raise RuntimeError("mid-row")
    assert target.read_text() == "complete,file\n"
    assert _others(tmp_path, target) == []


def test_output_errors_name_the_path(tmp_path):
    with pytest.raises(OutputError, match=rf"its folder {tmp_path}/gone does not exist"):
        check_writable(tmp_path / "gone" / "x.csv")
    with pytest.raises(OutputError, match=rf"{tmp_path} is a folder"):
        check_writable(tmp_path)
    with pytest.raises(OSError, match=rf"cannot write labels file {tmp_path}/gone/l\.csv"):
        write_labels_csv(tmp_path / "gone" / "l.csv", {"A01": "x"})  # OutputError is an OSError


def test_sigint_during_synth_cleans_up_and_exits_130(tmp_path):
    """Ctrl-C: 'interrupted', exit 130, no output folder and no temporary folder left."""
    out = tmp_path / "plate"
    argv = ["synth", str(out), "--wells", "96", "--sites", "2", "--image-size", "128"]
    pipes = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    child = subprocess.Popen([sys.executable, "-m", "napari_dcmix.cli", *argv], env=ENV, **pipes)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            staged = [p for p in tmp_path.iterdir() if ".dcmix-tmp-" in p.name]
            if staged and sum(1 for _ in staged[0].rglob("*.tif")) >= 10:
                break
            assert child.poll() is None, "synth finished before it could be interrupted"
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        assert child.wait(30) == 130
        assert "napari-dcmix synth: interrupted" in child.stderr.read()
    finally:
        child.kill()
        child.stderr.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
