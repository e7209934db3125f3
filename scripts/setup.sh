#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with compactnn (editable) and its test extras, and
# Fashion-MNIST from Debian's dataset-fashion-mnist package when we are root and have apt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.compactnn-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -qq -e ".[test]"
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
