"""Whole screens: many plates predicted in this process or on a Dask cluster, exactly once,
resumable (see ``run.predict_screen``); ``executor`` runs independent tasks anywhere."""

from napari_dcmix.screen.executor import ExecutorError, dask_client, run_tasks
from napari_dcmix.screen.partial import PartialStore, ResumeError, partial_folder
from napari_dcmix.screen.run import (
    ScreenProgress,
    ScreenResult,
    model_sha256,
    plate_spec,
    predict_screen,
)
from napari_dcmix.screen.tasks import PlateSpec, Task, TaskResult, plan_tasks

__all__ = [
    "ExecutorError",
    "PartialStore",
    "PlateSpec",
    "ResumeError",
    "ScreenProgress",
    "ScreenResult",
    "Task",
    "TaskResult",
    "dask_client",
    "model_sha256",
    "partial_folder",
    "plan_tasks",
    "plate_spec",
    "predict_screen",
    "run_tasks",
]
