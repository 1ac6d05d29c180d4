"""Remote OME-Zarr plates: served by a real HTTP server and a real S3-compatible server (moto)
on 127.0.0.1; predicted with the same CSV as their local copies; errors name the URL."""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from screen_helpers import read_rows, run_cli

from napari_dcmix.cli import main


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def http_root(screen_plates):
    """``http://127.0.0.1:PORT`` serving the folder above the screen plates."""
    root = Path(os.path.commonpath([str(p) for p in screen_plates]))
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def _url(http_root, plate: Path) -> str:
    base, root = http_root
    return f"{base}/{plate.relative_to(root).as_posix()}"


def _same_rows_as_local(remote_csv: Path, reference_csv: Path, local: Path, url: str) -> None:
    """The remote plate's rows equal the local copy's rows, the path column aside (its URL)."""
    rows = read_rows(remote_csv)
    ref = [r for r in read_rows(reference_csv) if r["path"] == str(local)]
    assert rows and len(rows) == len(ref)
    for a, b in zip(rows, ref, strict=True):
        assert a["path"] == url
        assert {k: v for k, v in a.items() if k != "path"} == {
            k: v for k, v in b.items() if k != "path"
        }


def test_http_plates_predict_like_their_local_copies(http_root, screen_plates, reference_csv,
                                                     tmp_path, capsys):  # fmt: skip
    """OME-Zarr v0.5 (Zarr v3) and v0.4 (Zarr v2) plates over HTTP, read through zarr."""
    for plate in screen_plates[1:]:
        url = _url(http_root, plate)
        out = tmp_path / f"{plate.name}.csv"
        assert main(["predict", url, "--out", str(out), "--device", "cpu", "--quiet"]) == 0
        _same_rows_as_local(out, reference_csv, plate, url)
    assert "Traceback" not in capsys.readouterr().err


def test_python_api_opens_a_url(http_root, screen_plates):
    from napari_dcmix import open_plate

    url = _url(http_root, screen_plates[1])
    plate = open_plate(url)
    local = open_plate(screen_plates[1])
    assert plate.path == url and plate.layout == "ome-zarr" and plate.name == local.name
    assert plate.wells == local.wells and plate.channels == local.channels
    assert (plate.read("B02", 2) == local.read("B02", 2)).all()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_remote_errors_name_the_url(http_root, screen_plates, tmp_path, capsys):
    base, _ = http_root
    plate_url = _url(http_root, screen_plates[1])
    refused = f"http://127.0.0.1:{_free_port()}/plate.zarr"
    cases = [
        (
            f"{base}/no-such-plate.zarr",
            "nothing there (no zarr.json or .zgroup: HTTP 404 or no "
            "such key); expected an OME-Zarr plate",
        ),
        (refused, "cannot connect (ClientConnectorError"),
        (f"{plate_url}/B/2", "is a Zarr group: it has no OME-NGFF 'plate' metadata"),
        (f"{plate_url}/B/2/0", "is an OME-Zarr image, not a plate"),
        ("ftp://127.0.0.1/plate.zarr", "cannot open ftp:// URLs"),
    ]
    for url, message in cases:
        out = tmp_path / "x.csv"
        assert main(["predict", url, "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert url in err and message in err, err
        assert "Traceback" not in err and not out.exists()
        assert len(err.strip().splitlines()) == 1


def test_napari_reader_opens_a_url(http_root, screen_plates, make_napari_viewer):
    from napari_dcmix._napari.reader import get_reader

    url = _url(http_root, screen_plates[2])
    assert get_reader(f"{http_root[0]}/no-such-plate.zarr") is None  # declined, no traceback
    viewer = make_napari_viewer()
    viewer.open(url, plugin="napari-dcmix")
    names = [layer.name for layer in viewer.layers]
    assert names == ["DNA", "ER", "RNA", "AGP", "Mito", "wells"]
    assert len(viewer.layers["wells"].data) == 16


# --- S3 (moto's server) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server(screen_plates):
    """A moto S3 server on 127.0.0.1 with bucket ``screen`` holding plate 1 under ``plates/``;
    yields the environment a client needs (endpoint and test credentials)."""
    pytest.importorskip("moto")
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}"}  # fmt: skip
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"],
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")  # fmt: skip
        s3.create_bucket(Bucket="screen")
        root = screen_plates[1]
        for f in root.rglob("*"):
            if f.is_file():
                s3.upload_file(str(f), "screen", f"plates/{root.name}/{f.relative_to(root)}")
        yield env
    finally:
        server.stop()


def _env(extra: dict[str, str], drop: tuple[str, ...] = ()) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({k: v for k, v in extra.items() if k not in drop})
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = os.devnull
    return env


def test_s3_plate_predicts_like_its_local_copy(s3_server, screen_plates, reference_csv,
                                               tmp_path):  # fmt: skip
    url = f"s3://screen/plates/{screen_plates[1].name}"
    out = tmp_path / "s3.csv"
    result = run_cli("predict", url, "--out", out, "--device", "cpu", "--quiet",
                     env=_env(s3_server))  # fmt: skip
    assert result.returncode == 0, result.stderr
    _same_rows_as_local(out, reference_csv, screen_plates[1], url)
    # an S3 key that holds nothing, and no credentials at all: errors that name the URL
    missing = run_cli("info", "s3://screen/plates/none.zarr", env=_env(s3_server))
    assert missing.returncode == 2
    assert "s3://screen/plates/none.zarr: nothing there" in missing.stderr
    nocreds = run_cli(
        "info", url, env=_env(s3_server, drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    )
    assert nocreds.returncode == 2
    assert f"{url}: no S3 credentials found" in nocreds.stderr
    assert "AWS_ACCESS_KEY_ID" in nocreds.stderr and "Traceback" not in nocreds.stderr
