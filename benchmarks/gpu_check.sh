#!/usr/bin/env bash
# One command on a machine with one NVIDIA GPU: install convcoach offline, run its CUDA tests, train on
# the GPU (default recipe with and without --compile, the long recipe for 3 minutes, 1-process NCCL DDP,
# a resume after SIGKILL) and write one JSON ($OUT/gpu_check.json, else ./gpu_check.json), all inside
# 8 minutes. Issue 25, part 6; docs/guide/scaling.md "Checking a GPU machine".
#
#   bash benchmarks/gpu_check.sh [--dry-run] [--deadline SECONDS]
#
# Needs: a Python with CUDA torch (2.2 or later) already installed; no internet. Dependencies missing
# from that Python are installed from a folder of wheels, $CONVCOACH_WHEELS (default
# benchmarks/gpu_wheels), filled beforehand on a machine with internet for the GPU machine's Python:
#   pip download --only-binary=:all: --python-version 3.10 --platform manylinux2014_x86_64 \
#       -d benchmarks/gpu_wheels numpy pillow pyyaml rich scikit-learn matplotlib kornia optuna \
#       pytest pytest-timeout "setuptools>=77"
#   rm -f benchmarks/gpu_wheels/torch-* benchmarks/gpu_wheels/nvidia_* benchmarks/gpu_wheels/triton-*
# (kornia's and optuna's own dependencies come along; torch is removed so the GPU's build stays.)
# Fashion-MNIST is used where $CONVCOACH_DATA or /usr/share/datasets holds it, else scikit-learn's digits.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=${CONVCOACH_WHEELS:-benchmarks/gpu_wheels}
DRY=0
for arg in "$@"; do [ "$arg" = "--dry-run" ] && DRY=1; done

if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "gpu_check: $PY has no torch; install a CUDA build of torch first" >&2
    exit 2
fi
TORCH=$("$PY" -c "import torch; print(torch.__version__)")
echo "gpu_check: torch $TORCH, CUDA available: $("$PY" -c 'import torch; print(torch.cuda.is_available())')" >&2

# the project's dependencies that this Python lacks (torch is never replaced: pinned to the one installed)
MISSING=$("$PY" - <<'EOF'
import re
from importlib import metadata
from pathlib import Path

text = Path("pyproject.toml").read_text()
block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
names = re.findall(r'^\s*"([A-Za-z0-9_.\-]+)', block, re.M) + ["pytest", "pytest-timeout"]
missing = []
for name in names:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        missing.append(name)
print(" ".join(n for n in missing if n != "torch"))
EOF
)
CONSTRAINT=$(mktemp)
echo "torch==$TORCH" > "$CONSTRAINT"
if [ "$DRY" = 1 ]; then
    echo "gpu_check: dry run; would install: ${MISSING:-nothing} from $WHEELS, then convcoach --no-deps -e ." >&2
else
    if [ -n "$MISSING" ]; then
        if [ ! -d "$WHEELS" ]; then
            echo "gpu_check: missing $MISSING and no wheel folder $WHEELS (see this script's header)" >&2
            exit 2
        fi
        "$PY" -m pip install --no-index --find-links "$WHEELS" -c "$CONSTRAINT" $MISSING
    fi
    # setuptools >= 77 builds this pyproject; without build isolation no download is needed
    if ! "$PY" -m pip install --no-deps --no-build-isolation -e . >/dev/null 2>&1; then
        "$PY" -m pip install --no-index --find-links "$WHEELS" "setuptools>=77" >/dev/null 2>&1 || true
        if ! "$PY" -m pip install --no-deps --no-build-isolation -e . >/dev/null; then
            echo "gpu_check: pip could not install the project; running from src/ instead" >&2
            export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
        fi
    fi
fi
rm -f "$CONSTRAINT"
exec "$PY" benchmarks/gpu_check.py "$@"
