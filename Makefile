# Set-up is idempotent: a second run only checks stamps and returns.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dcmix-installed
TORCH_VERSION ?= 2.13.0
APT_PACKAGES := python3-venv xvfb xauth libxcb-icccm4 libxcb-keysyms1 libgl1 libegl1 libgl1-mesa-dri \
	libglib2.0-0 libfontconfig1 fonts-dejavu-core libdbus-1-3 libxkbcommon-x11-0 \
	libxcb-cursor0 libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 \
	chromium

.PHONY: demo test setup system-deps lint bench clean-venv

demo: setup
	$(VENV)/bin/napari-dcmix demo

test: setup
	bash scripts/run_tests.sh

setup: system-deps $(STAMP)

# Debian packages for Xvfb and Qt's xcb platform; skipped when all are present.
system-deps:
	@bash scripts/install_system_deps.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: the CPU build on this machine; a bare requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
