#!/usr/bin/env bash
# Runs the whole test suite in the project's virtual environment (set up by `make setup`).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# Keep napari's and matplotlib's caches/config out of the user's home.
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$PWD/.ci-home/config}
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-$PWD/.ci-home/cache}
export MPLCONFIGDIR=${MPLCONFIGDIR:-$PWD/.ci-home/mpl}
mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$MPLCONFIGDIR"
exec "$VENV/bin/python" -m pytest "$@"
