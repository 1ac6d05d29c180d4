"""Errors with messages meant for the user: what, where, expected, found."""

from __future__ import annotations


class DcmixError(ValueError):
    """Base class: the message is shown as it is (CLI stderr, napari notification)."""


class PlateError(DcmixError):
    """A plate folder, file or well could not be read as expected."""


class LabelsError(DcmixError):
    """A plate map / labels CSV is malformed or does not fit the plate."""


class ModelError(DcmixError):
    """A model does not fit the data it is applied to, or training cannot start."""


class CheckpointError(ModelError):
    """A model file is not a napari-dcmix checkpoint this version can load."""


class PlateWarning(UserWarning):
    """Something in a plate was skipped or is suspicious but readable (for example a site
    missing a channel file, or a site read with missing chunks)."""
