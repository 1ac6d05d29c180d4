"""The Dask worker plugin that carries a model file to every worker (imports distributed, so
it is imported only when a cluster is used)."""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin

from napari_dcmix.screen.tasks import forget_model, plugin_name, register_model


class ModelPlugin(WorkerPlugin):
    """A model file's bytes, registered on every worker of the cluster (workers that join
    later get it too); each worker process loads the model from them once, on first use."""

    idempotent = True

    def __init__(self, sha256: str, data: bytes) -> None:
        self.sha256 = sha256
        self.data = data
        self.name = plugin_name(sha256)

    def setup(self, worker: Any) -> None:
        register_model(self.sha256, self.data)

    def teardown(self, worker: Any) -> None:
        forget_model(self.sha256)
