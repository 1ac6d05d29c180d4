"""The bank: ready-made plates (every layout) and models the corpus cases copy and break."""

from __future__ import annotations

import pytest
from bad_input_cases import build_bank


@pytest.fixture(scope="session")
def bank(tmp_path_factory):
    return build_bank(tmp_path_factory.mktemp("bank"))
