"""Write synthetic sites in each layout's exact on-disk naming scheme.

A known pixel size (``SiteWriter.pixel_size_um``) is written where and as each instrument
writes it: OME-TIFF ``Pixels PhysicalSizeX/Y`` (µm) in the tiff layout, MetaXpress
(MetaSeries) XML with ``spatial-calibration-x/-y`` in each ImageXpress TIFF's
ImageDescription, ``ImageResolutionX/Y`` in metres in the Harmony index, and an OME-NGFF
``scale`` with ``micrometer`` y/x axes in OME-Zarr. RxRx1 stores none (its PNGs are written as
the dataset ships them).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from napari_dcmix.errors import PlateError
from napari_dcmix.plate.wells import row_letters, well_row_col

RXRX1_CHANNELS = ("Hoechst", "ConA", "Phalloidin", "Syto14", "MitoTracker", "WGA")
_RXRX1_ALIASES = {"dna": "Hoechst", "er": "ConA", "agp": "Phalloidin", "rna": "Syto14",
                  "mito": "MitoTracker"}  # fmt: skip
HARMONY_NS = "http://www.perkinelmer.com/PEHH/HarmonyV5"


def layout_channels(layout: str, channels: Sequence[str]) -> list[str]:
    """Channel names as the written plate will report them (RxRx1 fixes its stain names)."""
    if layout != "rxrx1":
        return list(channels)
    out = []
    for name in channels:
        mapped = name if name in RXRX1_CHANNELS else _RXRX1_ALIASES.get(name.lower())
        if mapped is None:
            raise PlateError(
                f"the rxrx1 layout names its channels {', '.join(RXRX1_CHANNELS)}; "
                f"channel {name!r} is none of them (DNA, ER, AGP, RNA, Mito map onto them)"
            )
        out.append(mapped)
    if len(set(out)) != len(out):
        raise PlateError(f"channels {list(channels)} map onto the same RxRx1 stain twice")
    return sorted(out, key=RXRX1_CHANNELS.index)


def _imwrite(path: Path, data: np.ndarray, **kwargs) -> None:
    """``tifffile.imwrite`` with errors that name the file (tifffile reports a short write, a
    full disk or a file-size limit, without an errno or a path)."""
    import tifffile

    try:
        tifffile.imwrite(path, data, **kwargs)
    except OSError as exc:
        if exc.errno is not None:
            raise OSError(exc.errno, f"{exc.strerror} ({path.name})") from None
        raise OSError(
            f"{path.name}: {exc} (a short write: the disk is full or a file-size limit was reached)"
        ) from None


class SiteWriter:
    """Base: ``write_site(well, site, (C, H, W))`` for every site, then ``finish()``."""

    def __init__(self, out_dir: Path, plate_name: str, channels: Sequence[str], sites: int,
                 seed: int) -> None:  # fmt: skip
        self.out_dir, self.plate_name, self.channels = Path(out_dir), plate_name, list(channels)
        self.n_sites, self.seed = sites, seed
        self.n_planes = self.n_timepoints = 1  # several: imagexpress and operetta only
        self.pixel_size_um: float | None = None  # written where the layout can carry it
        self.path = self.out_dir
        self.name = plate_name  # what the opened Plate reports as its name

    def write_site(self, well: str, site: int, data: np.ndarray) -> None:
        """Write one site; imagexpress and operetta also take ``plane=`` and ``timepoint=``
        (1-based)."""
        raise NotImplementedError

    def finish(self, wells: Sequence[str]) -> None:
        """Write the plate's metadata files once every site is written."""


class TiffWriter(SiteWriter):
    """``{plate}/{well}_s{site}.tif`` with ``(C, H, W)`` plus ``channels.txt``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.path = self.out_dir / self.plate_name
        self.path.mkdir(parents=True, exist_ok=True)

    def write_site(self, well, site, data):
        path = self.path / f"{well}_s{site}.tif"
        if self.pixel_size_um is None:
            _imwrite(path, data, photometric="minisblack")
            return
        # OME-TIFF, as Bio-Formats' converters write it: PhysicalSize in µm, channel names
        size = float(self.pixel_size_um)
        meta = {"axes": "CYX", "PhysicalSizeX": size, "PhysicalSizeY": size,
                "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm",
                "Channel": {"Name": list(self.channels)}}  # fmt: skip
        _imwrite(path, data, photometric="minisblack", ome=True, metadata=meta)

    def finish(self, wells):
        (self.path / "channels.txt").write_text("\n".join(self.channels) + "\n")


class RxRx1Writer(SiteWriter):
    """``images/{experiment}/Plate1/{well}_s{site}_w{ch}.png`` (8-bit) plus ``metadata.csv``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.experiment = self.plate_name
        self.name = f"{self.plate_name}_1"
        self.path = self.out_dir / "images" / self.experiment / "Plate1"
        self.path.mkdir(parents=True, exist_ok=True)
        self.rows: list[str] = []

    def write_site(self, well, site, data):
        from PIL import Image

        for name, img in zip(self.channels, data, strict=True):
            w = RXRX1_CHANNELS.index(name) + 1
            Image.fromarray(np.ascontiguousarray(img, np.uint8)).save(
                self.path / f"{well}_s{site}_w{w}.png", compress_level=1
            )
        exp = self.experiment
        self.rows.append(f"{exp}_1_{well}_{site},{exp}_1_{well},{exp},1,{well},{site}")

    def finish(self, wells):
        header = "site_id,well_id,experiment,plate,well,site"
        (self.out_dir / "metadata.csv").write_text("\n".join([header, *self.rows]) + "\n")


class ImageXpressWriter(SiteWriter):
    """``{plate}/TimePoint_{t}/[ZStep_{z}/]{plate}_{well}_s{site}_w{ch}{GUID}.tif`` plus a
    ``.HTD`` file (``ZStep_{z}`` folders only when there are several planes).

    Single-site plates omit ``_s{site}``, as MetaXpress does; a thumbnail is written too.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.path = self.out_dir / self.plate_name
        (self.path / "TimePoint_1").mkdir(parents=True, exist_ok=True)
        self.rng = np.random.default_rng([self.seed, 4242])

    def write_site(self, well, site, data, plane: int = 1, timepoint: int = 1):
        folder = self.path / f"TimePoint_{timepoint}"
        if self.n_planes > 1:
            folder = folder / f"ZStep_{plane}"
        folder.mkdir(parents=True, exist_ok=True)
        site_part = f"_s{site}" if self.n_sites > 1 else ""
        for c, img in enumerate(data, start=1):
            guid = str(uuid.UUID(bytes=self.rng.bytes(16))).upper()
            name = f"{self.plate_name}_{well}{site_part}_w{c}{guid}.tif"
            if self.pixel_size_um is None:
                _imwrite(folder / name, img)
            else:
                text = metaxpress_description(
                    self.channels[c - 1], well, site, img, self.pixel_size_um, plane
                )
                _imwrite(folder / name, img, description=text, software="MetaSeries",
                         metadata=None)  # fmt: skip
            if well == "A01" and site == 1:
                thumb = f"{self.plate_name}_{well}{site_part}_w{c}_thumb{guid}.tif"
                _imwrite(folder / thumb, img[::4, ::4])

    def finish(self, wells):
        rows = max(well_row_col(w)[0] for w in wells) + 1
        cols = max(well_row_col(w)[1] for w in wells)
        lines = ['"HTSInfoFile", Version 1.0', f'"Description", "{self.plate_name}"',
                 f'"TimePoints", {self.n_timepoints}', f'"XWells", {cols}', f'"YWells", {rows}',
                 f'"XSites", {self.n_sites}', '"YSites", 1', '"Waves", TRUE',
                 f'"NWavelengths", {len(self.channels)}']  # fmt: skip
        if self.n_planes > 1:
            lines += ['"ZSeries", TRUE', f'"ZSteps", {self.n_planes}']
        lines += [f'"WaveName{i}", "{n}"' for i, n in enumerate(self.channels, start=1)]
        lines.append('"EndFile"')
        (self.path / f"{self.plate_name}.HTD").write_text("\r\n".join(lines) + "\r\n")


def metaxpress_description(
    channel: str, well: str, site: int, img: np.ndarray, pixel_size_um: float, plane: int = 1
) -> str:
    """The MetaSeries XML MetaXpress writes into each TIFF's ImageDescription (Software
    ``MetaSeries``): ``<MetaData>`` with ``prop`` elements (id, type, value), the per-plane
    ones in ``<PlaneInfo>``, among them ``spatial-calibration-x/-y`` in
    ``spatial-calibration-units`` ``um``; CR LF between elements, as on the instrument's PC."""

    def prop(key: str, kind: str, value: object) -> str:
        return f'<prop id="{key}" type="{kind}" value="{escape(str(value), {chr(34): "&quot;"})}"/>'

    size = format(float(pixel_size_um), ".10g")
    bits = 8 * img.dtype.itemsize
    lines = [
        "<MetaData>",
        prop("Description", "string", f"{channel}&#13;&#10;Binning: 1 x 1&#13;&#10;"),
        prop("MetaDataVersion", "float", 1),
        prop("ApplicationName", "string", "MetaXpress"),
        prop("ApplicationVersion", "string", "napari-dcmix synthetic"),
        "<PlaneInfo>",
        prop("plane-type", "string", "plane"),
        prop("pixel-size-x", "int", img.shape[1]),
        prop("pixel-size-y", "int", img.shape[0]),
        prop("bits-per-pixel", "int", bits),
        prop("spatial-calibration-state", "bool", "on"),
        prop("spatial-calibration-x", "float", size),
        prop("spatial-calibration-y", "float", size),
        prop("spatial-calibration-units", "string", "um"),
        prop("image-name", "string", channel),
        prop("stage-label", "string", f"{well} : Site {site}"),
        prop("z-position", "float", float(plane)),
        prop("camera-binning-x", "int", 1),
        prop("camera-binning-y", "int", 1),
        prop("_IllumSetting_", "string", channel),
        "</PlaneInfo>",
        "<SetInfo>",
        prop("number-of-planes", "int", 1),
        "</SetInfo>",
        "</MetaData>",
    ]
    return "\r\n".join(lines)


class OperettaWriter(SiteWriter):
    """``{plate}/Images/rXXcXXfXXpZZ-chXskTfk1fl1.tiff`` plus ``Images/Index.idx.xml``:
    PlaneID ``ZZ`` from 1 and TimepointID from 0 (file names' ``sk`` from 1), as Harmony
    writes them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.path = self.out_dir / self.plate_name
        (self.path / "Images").mkdir(parents=True, exist_ok=True)
        self.entries: list[str] = []

    def write_site(self, well, site, data, plane: int = 1, timepoint: int = 1):
        row, col = well_row_col(well)
        for c, img in enumerate(data, start=1):
            url = f"r{row + 1:02d}c{col:02d}f{site:02d}p{plane:02d}-ch{c}sk{timepoint}fk1fl1.tiff"
            _imwrite(self.path / "Images" / url, img)
            self.entries.append(
                f"<Image><id>{row + 1:02d}{col:02d}K{timepoint}F{site}P{plane}R{c}</id>"
                f"<URL>{url}</URL><Row>{row + 1}</Row><Col>{col}</Col><FieldID>{site}</FieldID>"
                f"<PlaneID>{plane}</PlaneID><TimepointID>{timepoint - 1}</TimepointID>"
                f"<ChannelID>{c}</ChannelID>"
                f"<ChannelName>{escape(self.channels[c - 1])}</ChannelName>{self._resolution()}"
                f"<ImageSizeX>{img.shape[1]}</ImageSizeX><ImageSizeY>{img.shape[0]}</ImageSizeY>"
                "</Image>"
            )

    def _resolution(self) -> str:
        """Harmony's pixel size elements: metres, 17 significant digits (``6.5E-07``)."""
        if self.pixel_size_um is None:
            return ""
        metres = f"{float(self.pixel_size_um) * 1e-6:.16E}"
        return (
            f'<ImageResolutionX Unit="m">{metres}</ImageResolutionX>'
            f'<ImageResolutionY Unit="m">{metres}</ImageResolutionY>'
        )

    def finish(self, wells):
        xml = (
            f'<?xml version="1.0" encoding="utf-8"?>\n<EvaluationInputData xmlns="{HARMONY_NS}" '
            'Version="1">\n<User>dcmix</User>\n'
            f"<Plates><Plate><PlateID>{escape(self.plate_name)}</PlateID>"
            f"<Name>{escape(self.plate_name)}</Name></Plate></Plates>\n"
            "<Images>\n" + "\n".join(self.entries) + "\n</Images>\n</EvaluationInputData>\n"
        )
        (self.path / "Images" / "Index.idx.xml").write_text(xml, encoding="utf-8")


class OmeZarrWriter(SiteWriter):
    """``{plate}.zarr`` HCS plate via ``ome_zarr.writer`` (v0.5 Zarr v3, or v0.4 Zarr v2)."""

    version = "0.5"

    def __init__(self, *args, **kwargs):
        import zarr
        from ome_zarr.format import FormatV04, FormatV05

        super().__init__(*args, **kwargs)
        self.fmt = FormatV05() if self.version == "0.5" else FormatV04()
        self.path = self.out_dir / f"{self.plate_name}.zarr"
        zarr_format = 3 if self.version == "0.5" else 2
        self.root = zarr.open_group(str(self.path), mode="w", zarr_format=zarr_format)
        self._stacks: dict[tuple[str, int], np.ndarray] = {}

    def write_site(self, well, site, data, plane: int = 1, timepoint: int = 1):
        """Several planes or timepoints: the site's planes are gathered and written as one
        5-D ``tczyx`` image (one chunk per t and z) once its last plane arrives."""
        if self.n_planes > 1 or self.n_timepoints > 1:
            stack = self._stacks.setdefault(
                (well, site),
                np.zeros((self.n_timepoints, data.shape[0], self.n_planes, *data.shape[1:]),
                         data.dtype),
            )  # fmt: skip
            stack[timepoint - 1, :, plane - 1] = data
            if (plane, timepoint) == (self.n_planes, self.n_timepoints):
                chunks = (1, data.shape[0], 1, *data.shape[1:])
                self._write_image(well, site, self._stacks.pop((well, site)), "tczyx",
                                  {"chunks": chunks})  # fmt: skip
            return
        self._write_image(well, site, self.image_data(data), self.axes, self.storage(data))

    def _write_image(self, well, site, data, axes, storage):
        from ome_zarr.writer import write_image

        row, col = well_row_col(well)
        group = self.root.require_group(row_letters(row)).require_group(str(col))
        image = group.require_group(str(site - 1))
        top = float(np.iinfo(data.dtype).max) if data.dtype.kind in "ui" else 1.0
        omero = {"channels": [
            {"label": n, "color": "FFFFFF", "active": True,
             "window": {"start": 0.0, "end": top, "min": 0.0, "max": top}}
            for n in self.channels
        ]}  # fmt: skip
        physical = {}
        if self.pixel_size_um is not None:  # y/x scale in micrometres (other axes: no unit)
            size = float(self.pixel_size_um)
            physical = {"scale": {**dict.fromkeys(axes, 1.0), "y": size, "x": size},
                        "axes_units": {"y": "micrometer", "x": "micrometer"}}  # fmt: skip
        write_image(data, image, scale_factors=[], axes=axes, fmt=self.fmt, omero=omero,
                    storage_options=storage, **physical)  # fmt: skip

    axes = "cyx"

    def image_data(self, data: np.ndarray) -> np.ndarray:
        return data

    def storage(self, data: np.ndarray) -> dict:
        """One chunk per site; the codec is ome-zarr-py's default (zstd, via zarr)."""
        return {"chunks": data.shape}

    def finish(self, wells):
        from ome_zarr.writer import write_plate_metadata, write_well_metadata

        rows = sorted({w[:-2] for w in wells}, key=lambda r: well_row_col(r + "01")[0])
        cols = sorted({str(well_row_col(w)[1]) for w in wells}, key=int)
        paths = [f"{w[:-2]}/{well_row_col(w)[1]}" for w in wells]
        write_plate_metadata(self.root, rows, cols, paths, fmt=self.fmt,
                             field_count=self.n_sites, name=self.plate_name)  # fmt: skip
        for p in paths:
            images = [str(s) for s in range(self.n_sites)]
            write_well_metadata(self.root[p], images, fmt=self.fmt)


class OmeZarrV04Writer(OmeZarrWriter):
    version = "0.4"


class Bioformats2rawWriter(OmeZarrWriter):
    """OME-Zarr v0.4 as bioformats2raw (the usual converter of vendor HCS formats, e.g. for
    the IDR) writes it by default: 5-D ``tczyx`` images, one chunk per plane (tiles of at most
    1024 x 1024), Blosc lz4 level 5 with byte shuffle."""

    version = "0.4"
    axes = "tczyx"

    def image_data(self, data: np.ndarray) -> np.ndarray:
        return data[None, :, None]

    def storage(self, data: np.ndarray) -> dict:
        from numcodecs import Blosc

        h, w = data.shape[-2:]
        return {
            "chunks": (1, 1, 1, min(h, 1024), min(w, 1024)),
            "compressor": Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE),
        }


WRITERS: dict[str, type[SiteWriter]] = {
    "tiff": TiffWriter,
    "rxrx1": RxRx1Writer,
    "imagexpress": ImageXpressWriter,
    "operetta": OperettaWriter,
    "ome-zarr": OmeZarrWriter,
}
