#!/usr/bin/env bash
# Issue 12's GPU measurements in one command (about 8 minutes on one H100/H200); see
# benchmarks/gpu_check.py. On a CPU machine: bash benchmarks/gpu_check.sh --dry-run
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PY" benchmarks/gpu_check.py "$@"
