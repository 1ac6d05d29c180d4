"""The bad-input corpus (bad_input_cases.py) through the real CLI: exit status 2, one specific
error message, no traceback, every file the user had unchanged and nothing half-written.

All cases run in one driver process (driver.py, through ``napari_dcmix.cli.main``), so the
whole corpus costs one interpreter start; the cases in ``SUBPROCESS_IDS`` also run as a real
``python -m napari_dcmix.cli`` process each."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bad_input_cases import CASES, SUBPROCESS_IDS, Case, snapshot

DRIVER = Path(__file__).with_name("driver.py")
PWNED = Path("/tmp/dcmix-pwned")  # what the malicious pickle case would create if it ran


def check(case: Case, result: dict, ws: Path, before: dict) -> None:
    stderr = result["stderr"]
    assert result["escaped"] is None, f"an exception escaped the CLI:\n{result['escaped']}"
    assert "Traceback" not in stderr, stderr
    assert result["rc"] == 2, f"exit status {result['rc']}, expected 2; stderr:\n{stderr}"
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, f"expected one error message, found {len(errors)}:\n{stderr}"
    message = stderr[stderr.index(errors[0]) :].strip()
    expect = case.expect.replace("{ws}", re.escape(str(ws)))
    assert re.search(expect, message, re.MULTILINE), (
        f"the error does not match {expect!r}:\n{message}"
    )
    after = snapshot(ws)
    assert after == before, "files changed: " + ", ".join(
        sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    )


@pytest.fixture(scope="session")
def corpus(bank, tmp_path_factory):
    """``{case id: (result, workspace, snapshot before)}`` for every case, one driver run."""
    root = tmp_path_factory.mktemp("corpus")
    jobs, spaces = [], {}
    for case in CASES:
        ws = root / case.id
        case.build(ws, bank)
        spaces[case.id] = (ws, snapshot(ws))
        jobs.append({"id": case.id, "argv": case.command(ws)})
    jobs_path, results_path = root / "jobs.json", root / "results.json"
    jobs_path.write_text(json.dumps(jobs))
    PWNED.unlink(missing_ok=True)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, str(DRIVER), str(jobs_path), str(results_path)],
                         capture_output=True, text=True, env=env, timeout=240)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert not PWNED.exists(), "the malicious pickle ran"
    results = json.loads(results_path.read_text())
    return {cid: (results[cid], *spaces[cid]) for cid in results}


def _params(cases):
    return [
        pytest.param(c, id=c.id, marks=pytest.mark.xfail(strict=True, reason=c.xfail))
        if c.xfail
        else pytest.param(c, id=c.id)
        for c in cases
    ]


def test_corpus_is_large_and_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 80
    kinds = {c.argv[0] for c in CASES}
    assert {"info", "train", "predict", "synth", "importance"} <= kinds


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input(case, corpus):
    result, ws, before = corpus[case.id]
    check(case, result, ws, before)


@pytest.mark.parametrize("case", _params([c for c in CASES if c.id in SUBPROCESS_IDS]))
def test_bad_input_in_a_real_process(case, bank, tmp_path):
    """The exit status and stderr as a shell sees them (no in-process driver)."""
    ws = tmp_path / case.id
    case.build(ws, bank)
    before = snapshot(ws)
    run = subprocess.run([sys.executable, "-m", "napari_dcmix.cli", *case.command(ws)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})  # fmt: skip
    result = {"rc": run.returncode, "stderr": run.stderr, "escaped": None}
    check(case, result, ws, before)
