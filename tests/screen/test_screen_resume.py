"""--resume: an interrupted run (SIGINT, SIGKILL) keeps its finished wells beside the target,
never at it; the resumed CSV equals an uninterrupted run's; partial results of another model
or with other columns are refused."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from screen_helpers import (
    assert_same_predictions,
    cli_command,
    keys_once,
    n_records,
    wait_for,
)

from napari_dcmix.cli import main


def _interrupt(screen_plates, out, sig, *extra):
    """Start an in-process CLI run, send ``sig`` once two batches of wells are saved."""
    proc = subprocess.Popen(
        cli_command("predict", *screen_plates, "--out", out, "--device", "cpu",
                    "--max-task-sites", "2", "--quiet", *extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: n_records(out) >= 2 or proc.poll() is not None, what="two batches")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


def test_sigint_then_resume(screen_plates, reference_csv, tmp_path, capsys):
    out = tmp_path / "p.csv"
    code, stderr = _interrupt(screen_plates, out, signal.SIGINT)
    assert code == 130, stderr
    assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert not out.exists()
    kept = n_records(out)
    assert kept >= 2
    plates = [str(p) for p in screen_plates]
    # without --resume an unfinished run is not silently discarded
    assert main(["predict", *plates, "--out", str(out), "--device", "cpu", "--quiet"]) == 2
    assert "pass --resume to continue it" in capsys.readouterr().err
    assert n_records(out) == kept
    assert main(["predict", *plates, "--out", str(out), "--device", "cpu", "--resume"]) == 0
    stdout = capsys.readouterr().out
    assert f"96 sites, {2 * kept} from an earlier run, 48 wells" in stdout
    keys_once(out)
    assert_same_predictions(out, reference_csv)
    assert not out.with_name(out.name + ".partial").exists()


def test_sigkill_leaves_the_previous_csv_and_resume_replaces_it(screen_plates, reference_csv,
                                                                 tmp_path):  # fmt: skip
    """With --overwrite, a SIGKILLed run leaves the user's previous CSV byte-identical; the
    resumed run then replaces it with the complete CSV."""
    out = tmp_path / "p.csv"
    out.write_bytes(b"previous,complete,results\n1,2,3\n")
    code, _ = _interrupt(screen_plates, out, signal.SIGKILL, "--overwrite")
    assert code == -signal.SIGKILL
    assert out.read_bytes() == b"previous,complete,results\n1,2,3\n"
    assert n_records(out) >= 2
    assert main(["predict", *map(str, screen_plates), "--out", str(out), "--device", "cpu",
                 "--resume", "--overwrite", "--quiet"]) == 0  # fmt: skip
    keys_once(out)
    assert_same_predictions(out, reference_csv)


@pytest.fixture
def unfinished(screen_plates, tmp_path, capsys):
    """A run that stopped at a corrupt site of the last plate (exit 2, naming plate, well and
    site): the wells of the plates before it are kept in OUT.partial."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(screen_plates[0], broken)
    site = broken / "B01_s2.tif"
    site.write_bytes(site.read_bytes()[:300])  # truncated TIFF
    out = tmp_path / "u.csv"
    plates = [*map(str, screen_plates[1:]), str(broken)]
    code = main(["predict", *plates, "--out", str(out), "--device", "cpu",
                 "--max-task-sites", "4", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "plate 'broken' well B01 site 2" in err and "B01_s2.tif" in err
    assert "Traceback" not in err and not out.exists()
    assert n_records(out) >= 8  # the two good plates
    return plates, out


def test_resume_refuses_another_model(unfinished, tmp_path, capsys):
    from napari_dcmix.model import default_model_path, load_model, save_model

    plates, out = unfinished
    other = tmp_path / "other.pt"
    model = load_model(default_model_path())
    with __import__("torch").no_grad():
        model.mixing.logits.add_(0.1)  # another model: other weights, other file
    save_model(model, other)
    kept = n_records(out)
    code = main(["predict", *plates, "--out", str(out), "--model", str(other), "--resume",
                 "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "it was written by another model" in err and "--overwrite" in err
    assert n_records(out) == kept and not out.exists()


def test_resume_refuses_other_columns(unfinished, capsys):
    plates, out = unfinished
    run = out.with_name(out.name + ".partial") / "run.json"
    manifest = json.loads(run.read_text())
    manifest["columns"] = manifest["columns"][:-1]  # as a version without the path column
    run.write_text(json.dumps(manifest))
    code = main(["predict", *plates, "--out", str(out), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "it holds columns" in err and "this run writes" in err and "path" in err


def test_resume_with_skip_bad_sites_finishes_the_rest(unfinished, capsys):
    """The unfinished run resumed with --skip-bad-sites: one warning for the corrupt site, the
    well row says one site of two was used."""
    plates, out = unfinished
    code = main(["predict", *plates, "--out", str(out), "--device", "cpu", "--resume",
                 "--skip-bad-sites", "--quiet"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    warnings = [line for line in captured.err.splitlines() if "skipped" in line]
    assert len(warnings) == 1 and "well B01 site 2 skipped: " in warnings[0]
    assert warnings[0].count("site 2") == 1 and "B01_s2.tif" in warnings[0]
    from screen_helpers import read_rows

    rows = read_rows(out)
    well = [r for r in rows if r["plate"] == "broken" and r["well"] == "B01" and
            r["level"] == "well"]  # fmt: skip
    assert len(well) == 1 and well[0]["sites_used"] == "1"
    assert well[0]["notes"].startswith("skipped site 2: ") and "B01_s2.tif" in well[0]["notes"]
    assert not [r for r in rows if r["plate"] == "broken" and r["well"] == "B01" and
                r["site"] == "2"]  # fmt: skip
    assert len({r["path"] for r in rows}) == 3


def test_resume_refuses_other_plates(unfinished, capsys):
    """A resume with a plate left out (its finished wells would be deleted with the partial
    results) or added is refused, naming the plates; nothing is lost."""
    plates, out = unfinished
    kept = n_records(out)
    code = main(["predict", *plates[1:], "--out", str(out), "--device", "cpu", "--resume",
                 "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "the interrupted run predicted 3 plate(s); this run leaves out 'Screen1'" in err
    assert plates[0] in err and "--overwrite" in err
    assert n_records(out) == kept and not out.exists()


def test_resume_refuses_other_plate_options_or_settings(unfinished, capsys):
    plates, out = unfinished
    kept = n_records(out)
    for extra, said in [
        (["--max-tiles", "1"], "predicted with --max-tiles None, this run with 1"),
        (["--channel-map", "DNA=Mito,Mito=DNA"],
         "was read with channel_map {'DNA': 'DNA', 'ER': 'ER', 'RNA': 'RNA', 'AGP': 'AGP', "
         "'Mito': 'Mito'}, this run reads it with {'DNA': 'Mito', 'ER': 'ER', 'RNA': 'RNA', "
         "'AGP': 'AGP', 'Mito': 'DNA'}"),
    ]:  # fmt: skip
        code = main(["predict", *plates, "--out", str(out), "--device", "cpu", "--resume",
                     "--quiet", *extra])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and said in err and "Traceback" not in err, err
    assert n_records(out) == kept and not out.exists()
    # a map that feeds each stain from the stain of its name reads the plates as before
    assert main(["predict", *plates, "--out", str(out), "--device", "cpu", "--resume",
                 "--quiet", "--skip-bad-sites", "--channel-map", "Mito=Mito"]) == 0  # fmt: skip


def test_resume_without_skip_bad_sites_after_a_run_that_skipped(screen_plates, screen_model,
                                                                  tmp_path):  # fmt: skip
    """Results with skipped sites are not continued by a run that must not skip."""
    import shutil

    from napari_dcmix.model.train_settings import PredictConfig
    from napari_dcmix.plate import open_plate
    from napari_dcmix.screen import ResumeError, predict_screen

    broken = tmp_path / "broken"
    shutil.copytree(screen_plates[0], broken)
    (broken / "A01_s2.tif").write_bytes((broken / "A01_s2.tif").read_bytes()[:300])
    plate = open_plate(broken)
    model = screen_model
    out = tmp_path / "p.csv"
    config = PredictConfig(device="cpu", skip_bad_sites=True, max_task_sites=2, batch_size=4)
    gen = predict_screen(model, [plate], config, out)
    while n_records(out) < 2:
        next(gen)
    gen.close()  # interrupted
    with pytest.raises(ResumeError, match="predicted with --skip-bad-sites True, this run "
                                          "with False"):  # fmt: skip
        list(predict_screen(model, [plate], PredictConfig(device="cpu"), out, resume=True))


def test_resume_refuses_results_of_wells_the_plate_lost(screen_plates, tmp_path, capsys):
    """The plate changed since the interrupted run (a well is gone): a ResumeError naming the
    plate and the well, not a KeyError traceback."""
    import shutil

    plate = tmp_path / "plate"
    shutil.copytree(screen_plates[0], plate)
    last = plate / "B04_s2.tif"
    last.write_bytes(last.read_bytes()[:300])
    out = tmp_path / "p.csv"
    args = ["predict", str(plate), "--out", str(out), "--device", "cpu", "--quiet",
            "--max-task-sites", "4", "--batch-size", "4"]  # fmt: skip
    assert main(args) == 2
    assert n_records(out) >= 2
    for site in plate.glob("A01_s*.tif"):
        site.unlink()
    shutil.copy(screen_plates[0] / "B04_s2.tif", last)
    capsys.readouterr()
    (record,) = tmp_path.glob("*/run.json")
    before = record.read_bytes()
    assert main([*args, "--resume", "--skip-bad-sites"]) == 2
    err = capsys.readouterr().err
    assert "it holds results of well A01 of plate 'plate'" in err and str(plate) in err
    assert "no longer has" in err and "Traceback" not in err
    assert record.read_bytes() == before  # a refused resume leaves the record as it was
