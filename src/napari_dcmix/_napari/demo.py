"""The demo: napari with the sample plate, the DCMIX widget and chart; the default model
predicts every well, wells of two classes are annotated, Fine-tune (the widget's defaults)
learns which stain separates them, the plate is predicted again, and the chart ends on the
verdict the held-out evidence supports. Also renders it headless to a PNG."""

from __future__ import annotations

import os
import time
from pathlib import Path

from napari_dcmix.errors import DcmixError

DEMO_ANNOTATED_PER_CLASS = 4  # wells per class annotated up front, so Fine-tune works at once
SCREENSHOT_SIZE = (1560, 1000)  # fits the 1600x1200 Xvfb screen


def demo_annotations(labels: dict[str, str], per_class: int = DEMO_ANNOTATED_PER_CLASS):
    """The first ``per_class`` wells (row-major) of each class."""
    picked: dict[str, str] = {}
    counts: dict[str, int] = {}
    for well, label in labels.items():
        if counts.get(label, 0) < per_class:
            picked[well] = label
            counts[label] = counts.get(label, 0) + 1
    return picked


def summary(widget) -> str:
    """One line saying what the demo shows (printed, and read by the demo test)."""
    parts = [f"plate {widget.plate.name} ({len(widget.plate.wells)} wells)"]
    if widget.predictions is not None:
        counts: dict[str, int] = {}
        for w in widget.predictions.wells():
            counts[w.prediction] = counts.get(w.prediction, 0) + 1
        shown = ", ".join(f"{n} {c}" for c, n in sorted(counts.items()))
        parts.append(f"predicted on {widget.predictions.device}: {shown}")
    parts.append(f"{len(widget.annotations)} wells annotated")
    ranking = widget.chart.ranking()
    if ranking:
        parts.append("importance: " + " > ".join(ranking))
    return "; ".join(parts)


def verdict_line(widget) -> str:
    """The sentence the chart shows for the current model (what the evidence supports)."""
    from napari_dcmix.model.evidence import model_evidence, verdict

    return verdict(model_evidence(widget.model)).sentence


def save_screenshot(viewer, out: Path) -> Path:
    """The whole window as a PNG at ``out``, written through ``napari_dcmix.atomic``: a file
    already there is replaced whole or left as it was (never written in place)."""
    import io

    from matplotlib.image import imsave

    from napari_dcmix.atomic import atomic_write_bytes

    image = viewer.screenshot(canvas_only=False, flash=False)  # (H, W, 4) uint8
    buffer = io.BytesIO()
    imsave(buffer, image, format="png")
    return atomic_write_bytes(out, buffer.getvalue(), what="screenshot")


def _error_messages() -> list[str]:
    """The messages of errors notified from now on (what a failed demo step said)."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    seen: list[str] = []

    def record(event) -> None:
        if getattr(event, "severity", None) == NotificationSeverity.ERROR:
            seen.append(str(getattr(event, "message", event)))

    notification_manager.notification_ready.connect(record)
    return seen


def run_demo(
    screenshot: Path | None = None,
    plate: Path | None = None,
    model: Path | None = None,
    device: str = "auto",
    overwrite: bool = False,
    timeout_s: float = 600.0,
    finetune: bool = True,
) -> int:
    """Open the demo; with ``screenshot`` (or without a display) render, save a PNG and exit.
    ``finetune``: after the first prediction, Fine-tune on the annotated wells and predict
    again (the interactive demo does the same, step after step, while the window is open)."""
    from napari_dcmix._napari.display import ensure_display

    t0 = time.perf_counter()
    if screenshot is not None and screenshot.exists() and not overwrite:
        raise DcmixError(f"{screenshot} exists; pass --overwrite to replace it")
    headless = ensure_display()
    os.environ.setdefault("QT_API", "pyqt6")

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_dcmix.sample import cache_dir, sample_plate

    viewer = napari.Viewer(title="napari-dcmix demo", show=True)
    if headless or screenshot is not None:
        viewer.window.resize(*SCREENSHOT_SIZE)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-dcmix", "DCMIX")
    sample = sample_plate() if plate is None else None
    if not widget.open_plate(plate if plate is not None else sample.path):
        raise DcmixError(f"could not open the plate {plate or sample.path}")
    widget.session.update_settings("predict", device=device)
    if not widget.load_model(model):
        raise DcmixError(f"could not load the model {model or 'default'}")
    widget.show_chart()
    if sample is not None:
        widget.set_annotations(demo_annotations(sample.labels))
    QApplication.processEvents()
    viewer.reset_view()
    QApplication.processEvents()
    print(f"napari-dcmix demo: first frame after {time.perf_counter() - t0:.1f} s", flush=True)
    steps = ["predict", "fine-tune", "predict"] if finetune and sample is not None else ["predict"]
    outcomes: list[tuple[str, str]] = []
    widget.session.events.task_finished.connect(lambda t: outcomes.append((t.kind, t.outcome)))
    t_step = [time.perf_counter()]
    failed: list[str] = []  # the step that did not finish, and why
    messages = _error_messages()

    def start(step: str) -> None:
        t_step[0] = time.perf_counter()
        job = widget.run_predict() if step == "predict" else widget.run_finetune()
        if job is None:  # refused (its message is shown): the demo stops there
            failed.append(f"the {step} step was refused: {messages[-1] if messages else '?'}")
            steps.clear()
            return
        widget._after_job.append(ended)  # once the job's results are drawn

    def ended() -> None:
        kind, outcome = outcomes[-1] if outcomes else ("", "")
        if outcome != "done":  # failed or cancelled (its message is shown)
            why = f": {messages[-1]}" if outcome == "failed" and messages else ""
            failed.append(f"the {kind or 'first'} step {outcome or 'did not end'}{why}")
            steps.clear()
            return
        if kind == "predict":
            print(f"napari-dcmix demo: {summary(widget)}", flush=True)
        else:
            print(f"napari-dcmix demo: fine-tuned in {time.perf_counter() - t_step[0]:.1f} s; "
                  f"verdict: {verdict_line(widget)}", flush=True)  # fmt: skip
        if steps:
            start(steps.pop(0))

    print(f"napari-dcmix demo: the default model's verdict: {verdict_line(widget)}", flush=True)
    start(steps.pop(0))

    if screenshot is None and not headless:
        napari.run()
        if failed:
            raise DcmixError(f"the demo stopped: {failed[0]}")
        return 0

    from napari_dcmix._napari.workers import wait_until

    wait_until(lambda: not steps and widget.job is None, timeout_s)
    if failed:
        viewer.close()
        raise DcmixError(f"the demo stopped: {failed[0]}; no screenshot was written")
    if steps or widget.job is not None or widget.predictions is None:
        raise DcmixError(
            f"the demo did not finish within {timeout_s:.0f} s (see the messages above)"
        )
    viewer.reset_view()
    QApplication.processEvents()
    # Without a display and without --screenshot, the window goes to our own cache folder
    # (overwritten by the next headless demo; never a file of the user's).
    out = screenshot if screenshot is not None else cache_dir() / "demo.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_screenshot(viewer, out)
    if screenshot is None:
        print(
            "napari-dcmix demo: no display here, so the demo ran on a virtual screen; "
            f"its window is saved as {out.resolve()}"
        )
    else:
        print(f"napari-dcmix demo: wrote {out}")
    print(f"napari-dcmix demo: the chart says: {verdict_line(widget)}", flush=True)
    print(f"napari-dcmix demo: done after {time.perf_counter() - t0:.1f} s", flush=True)
    viewer.close()
    return 0
