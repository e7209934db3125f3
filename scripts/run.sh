#!/usr/bin/env bash
# README command 1: set up, then run the main job (DCNN vs dense MLP on Fashion-MNIST).
# Extra arguments go to `compactnn compare` (e.g. --quick, --epochs 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/compactnn compare "$@"
