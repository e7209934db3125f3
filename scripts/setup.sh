#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with the pinned CPU torch, compactnn (editable) with
# its experiments and test extras, and Fashion-MNIST from Debian's dataset-fashion-mnist package
# when we are root and have apt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH=2.13.0  # CPU build: pip's find-links (/opt/wheels) has 2.13.0+cpu, preferred to 2.13.0
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.compactnn-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    # The exact torch lives here only (pyproject.toml asks for torch>=floor): installed first, so
    # pip resolves the package against it instead of fetching the newest (CUDA) build.
    .venv/bin/python -m pip install -qq "torch==$TORCH"
    .venv/bin/python -m pip install -qq -e ".[experiments,test]" "torch==$TORCH"
    touch "$stamp"
fi
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Fashion-MNIST (Debian package dataset-fashion-mnist)..."
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            dataset-fashion-mnist >/dev/null) \
            || echo "setup: could not install dataset-fashion-mnist; experiments fall back to digits"
    else
        echo "setup: Fashion-MNIST not installed and no root+apt: experiments fall back to digits"
    fi
fi
