"""Where independent tasks run: in this process, on a local Dask cluster, or on the workers of a
running Dask scheduler. Used by screen prediction (a task = a batch of wells) and reusable for
any set of independent callables (e.g. the members of a training ensemble)::

    with dask_client(workers=4) as client:          # or scheduler="tcp://host:8786", or neither
        for index, value in run_tasks(client, fn, [(a1,), (a2,)], describe=str):
            ...                                      # results in completion order

``client`` is None without ``workers`` and ``scheduler``: ``run_tasks`` then calls the tasks one
after the other in this process. dask.distributed is imported only when a cluster is used.

Why Dask: it is the scheduler the bioimage ecosystem already runs (napari, cellpose's
distributed mode, dask-jobqueue on SLURM/PBS), it reschedules the tasks of a worker that dies,
and the same ``dask scheduler`` / ``dask worker`` commands serve a workstation and a cluster.

A local cluster has ``workers`` processes with one thread each: torch and numpy then run one
task per process with one OpenMP thread (the nanny sets ``OMP_NUM_THREADS=1``), so N workers
keep N cores busy without the threads of several tasks competing for the same cores, and each
process has its own copy of the model and no GIL shared between tasks.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from typing import Any

from napari_dcmix.errors import DcmixError

__all__ = ["ExecutorError", "connected", "dask_client", "run_tasks", "worker_count"]

# How long a run waits while the scheduler has no worker at all before it gives up.
NO_WORKER_TIMEOUT_S = 120.0


class ExecutorError(DcmixError):
    """The cluster could not be reached, was lost, or could not run a task."""


def _quiet_dask_logs() -> None:
    """Keep distributed's connection chatter (a killed worker, a closing comm) off the CLI's
    stderr; what matters reaches the user as an ``ExecutorError``."""
    import distributed  # noqa: F401 - its import configures its loggers: quiet them after

    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("distributed", "tornado"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _connect(address: str, timeout: float) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorError(
            f"no Dask scheduler answered at {address} within {timeout:g} s ({exc}); expected "
            "a running `dask scheduler` there (check the address, the port and the firewall)"
        ) from None
    except Exception as exc:  # malformed address, unknown protocol
        raise ExecutorError(
            f"cannot connect to a Dask scheduler at {address!r}: {type(exc).__name__}: {exc} "
            "(expected an address such as tcp://host:8786)"
        ) from None


@contextlib.contextmanager
def dask_client(
    workers: int | None = None, scheduler: str | None = None, timeout: float = 10.0
) -> Iterator[Any]:
    """A ``distributed.Client`` for a new local cluster of ``workers`` processes (one thread
    each), or for the running scheduler at ``scheduler``; None (run in-process) without
    either. The client (and a local cluster) are closed when the block ends."""
    if workers is None and scheduler is None:
        yield None
        return
    if workers is not None and scheduler is not None:
        raise ExecutorError("give workers or a scheduler address, not both")
    _quiet_dask_logs()
    if scheduler is not None:
        client = _connect(str(scheduler), float(timeout))
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=2 if connected(client) else 0.1)
        return
    if int(workers) < 1:
        raise ExecutorError(f"workers: expected >= 1 worker processes, found {workers}")
    from distributed import Client, LocalCluster

    try:
        cluster = LocalCluster(
            n_workers=int(workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
    except Exception as exc:
        raise ExecutorError(
            f"could not start a local Dask cluster of {workers} workers: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=5)
    finally:
        with contextlib.suppress(Exception):
            cluster.close(timeout=10)


def connected(client: Any) -> bool:
    """Whether the client is connected to its scheduler (calls to a lost one would block while
    the client tries to reconnect)."""
    return client is not None and getattr(client, "status", "") == "running"


def worker_count(client: Any) -> int:
    """Workers connected to the client's scheduler now (1 for in-process runs)."""
    if client is None:
        return 1
    return len(client.scheduler_info(n_workers=-1).get("workers", {}))


def _address(client: Any) -> str:
    try:
        return str(client.scheduler.address)
    except Exception:
        return "the scheduler"


def run_tasks(
    client: Any,
    fn: Callable[..., Any],
    args: Sequence[tuple],
    *,
    describe: Callable[[int], str] = lambda i: f"task {i}",
    key_prefix: str = "dcmix-task",
    no_worker_timeout: float = NO_WORKER_TIMEOUT_S,
) -> Iterator[tuple[int, Any]]:
    """``fn(*args[i])`` for every ``i``; yields ``(i, result)`` as each finishes (in-process:
    in order). Each task runs to completion exactly once as far as the caller sees: a worker
    that dies mid-task has its tasks rerun elsewhere by Dask, and each result is yielded once.

    A task that raises ends the run with that exception (the other tasks are cancelled);
    Dask's ``KilledWorker`` (a task whose workers died several times), a lost scheduler and a
    scheduler with no worker for ``no_worker_timeout`` seconds raise ``ExecutorError``
    naming the task (``describe(i)``) or the scheduler. Closing the iterator cancels the rest.
    """
    if client is None:
        for i, a in enumerate(args):
            yield i, fn(*a)
        return
    import uuid

    from distributed import wait

    address = _address(client)  # now, while connected (a lost client may forget it)
    run = uuid.uuid4().hex[:12]
    futures = [
        client.submit(fn, *a, key=f"{key_prefix}-{run}-{i}", pure=False) for i, a in enumerate(args)
    ]
    index = {f.key: i for i, f in enumerate(futures)}
    pending = set(futures)
    no_workers_since: float | None = None
    try:
        while pending:
            try:
                with client.as_current():  # wait() looks for the client there
                    done, not_done = wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done, not_done = set(), pending
            except (CancelledError, OSError):  # FuturesCancelledError, CommClosedError...:
                raise ExecutorError(  # the scheduler is gone
                    f"lost the connection to the Dask scheduler at {address} (the "
                    "scheduler stopped or the network failed)"
                ) from None
            for fut in sorted(done, key=lambda f: index[f.key]):
                yield index[fut.key], _result(fut, address, describe(index[fut.key]))
            pending = set(not_done)
            if pending and not done:
                no_workers_since = _check_workers(client, address, no_workers_since,
                                                  no_worker_timeout)  # fmt: skip
    finally:
        if pending and connected(client):  # (without a scheduler it would wait to reconnect)
            with contextlib.suppress(Exception):
                client.cancel(list(pending), force=True)


def _result(fut: Any, address: str, what: str) -> Any:
    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    status = fut.status
    if status == "cancelled":
        raise ExecutorError(
            f"lost the connection to the Dask scheduler at {address} while running "
            f"{what} (the scheduler stopped or the network failed)"
        )
    try:
        return fut.result()
    except KilledWorker as exc:
        raise ExecutorError(
            f"{what} failed: the Dask workers running it died repeatedly ({exc}); a site may "
            "need more memory than a worker has"
        ) from None
    except (CancelledError, CommClosedError):  # not the task's own errors: they pass through
        raise ExecutorError(
            f"lost the connection to the Dask scheduler at {address} while running {what}"
        ) from None


def _check_workers(client: Any, address: str, since: float | None, limit: float) -> float | None:
    """Raise when the scheduler has had no worker for ``limit`` seconds; returns the time the
    current stretch without workers began (None while there are workers)."""
    try:
        n = worker_count(client)
    except Exception as exc:
        raise ExecutorError(
            f"lost the connection to the Dask scheduler at {address}: {type(exc).__name__}: {exc}"
        ) from None
    if n:
        return None
    now = time.monotonic()
    if since is None:
        return now
    if now - since > limit:
        raise ExecutorError(
            f"the Dask scheduler at {address} has had no worker for {limit:g} s; "
            "start workers with `dask worker ADDRESS`"
        )
    return since
