"""Runs many ``napari-dcmix`` command lines in one Python process, through the real entry point
``napari_dcmix.cli.main``, and records for each its exit status, stdout, stderr and any
exception that escaped (with its traceback).

Usage: ``python driver.py JOBS.json RESULTS.json`` where JOBS is ``[{"id": ..., "argv": [...]}]``.
One process for the whole corpus keeps it fast (Python, numpy and torch start once); a few cases
also run as separate processes (tests/bad_input/test_corpus.py) to see the real exit status.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback
import warnings


def run_one(argv: list[str]) -> dict:
    from napari_dcmix.cli import main

    out, err = io.StringIO(), io.StringIO()
    escaped = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse errors exit with status 2
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            rc = None
            escaped = traceback.format_exc()
    return {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue(), "escaped": escaped}


def main() -> int:
    jobs_path, results_path = sys.argv[1:3]
    with open(jobs_path) as fh:
        jobs = json.load(fh)
    warnings.simplefilter("default")
    results = {}
    for job in jobs:
        results[job["id"]] = run_one(job["argv"])
    with open(results_path, "w") as fh:
        json.dump(results, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
