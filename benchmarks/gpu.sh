#!/usr/bin/env bash
# Population training on one NVIDIA GPU (H100 or H200) with JAX, no TensorFlow, no internet:
# benchmarks/population.py on digits and on Fashion-MNIST, K = 32 and K = 128, and the small CNN
# on a Fashion-MNIST subset (grouped convolutions), with the GPU's utilization sampled by
# nvidia-smi; benchmarks/precision.py (float32 against mixed precision) on digits; and
# benchmarks/phases.py, a whole `study run` of 16 digits runs beside the bare loop in whole
# processes (what a user waits for). Figures go to docs/benchmarks.md by hand.
#
# Two steps:
#   1. Here, on a machine with pip and the internet, in the repository's root:
#        bash benchmarks/gpu.sh prepare
#      downloads the wheels the GPU image lacks (Keras and the two packages it needs that the
#      image does not hold: namex, optree; for `study run`, Optuna and its SQLAlchemy, Alembic,
#      Mako and colorlog; Python 3.12, x86-64) into .whl/, and copies Fashion-MNIST's IDX files
#      into .gpu-data/. Both folders are git-ignored (.git/info/exclude). KerasTuner is not
#      needed: the population benchmarks call study.population, the `study run` one uses Optuna.
#   2. On the GPU machine (the device tool: carry [".whl", ".gpu-data"], timeout_s 600):
#        bash benchmarks/gpu.sh run
#      installs the wheels offline into /tmp/site, then runs the benchmarks, each under a
#      timeout, writing to $OUT (./gpu-out without $OUT) three files: summary.txt (what to
#      copy into docs/benchmarks.md), full.log, and smi.csv (benchmark, timestamp,
#      utilization %, memory MiB, every 200 ms).
#
# The timeouts add up to 580 s (one device call may run 600 s); with the machine's start, about
# 12 minutes of the 15 a task is lent. Estimated, not measured: it has not run on a GPU yet.
set -uo pipefail

# The versions the tests pass with here.
KERAS=3.15.1 NAMEX=0.1.0 OPTREE=0.20.0
OPTUNA=5.0.0 SQLALCHEMY=2.1.9 ALEMBIC=1.20.1 MAKO=1.4.3 COLORLOG=6.12.0

prepare() {
    grep -qxF "/.whl/" .git/info/exclude || echo "/.whl/" >>.git/info/exclude
    grep -qxF "/.gpu-data/" .git/info/exclude || echo "/.gpu-data/" >>.git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "keras==$KERAS" "namex==$NAMEX" "optree==$OPTREE" "optuna==$OPTUNA" \
        "sqlalchemy==$SQLALCHEMY" "alembic==$ALEMBIC" "mako==$MAKO" "colorlog==$COLORLOG" || exit 1
    mkdir -p .gpu-data/fashion-mnist
    cp /usr/share/datasets/fashion-mnist/*-ubyte.gz .gpu-data/fashion-mnist/ || exit 1
    ls -l .whl .gpu-data/fashion-mnist
}

# Run `name command...` under a timeout, sampling the GPU every 200 ms meanwhile.
bench() {
    local name=$1 limit=$2
    shift 2
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits \
        -lms 200 >"/tmp/smi-$name.csv" &
    local smi=$!
    echo "== $name: $*" | tee -a "$OUT/summary.txt"
    timeout "$limit" "$@" 2>&1 | tee -a "$OUT/full.log" | grep -v "^WARNING\|^I0000" \
        | tee -a "$OUT/summary.txt"
    echo "exit status ${PIPESTATUS[0]}" | tee -a "$OUT/summary.txt"
    kill "$smi"
    wait "$smi" 2>/dev/null
    # Mean utilization over the run (start-up and compilation included), and how often busy.
    local report='{n++; u+=$2; if ($2 > 0) b++}
        END {if (n) printf "nvidia-smi: %d samples, mean utilization %.1f%%, busy in %d%%\n",
             n, u / n, 100 * b / n}'
    awk -F', ' "$report" "/tmp/smi-$name.csv" | tee -a "$OUT/summary.txt"
    sed "s/^/$name, /" "/tmp/smi-$name.csv" >>"$OUT/smi.csv"
}

run() {
    OUT=${OUT:-gpu-out}
    mkdir -p "$OUT"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
    export XLA_PYTHON_CLIENT_PREALLOCATE=false  # so nvidia-smi's memory.used means something
    if [ ! -d /usr/share/datasets/fashion-mnist ]; then  # study.data reads Debian's path
        mkdir -p /usr/share/datasets && cp -r .gpu-data/fashion-mnist /usr/share/datasets/
    fi
    { nvidia-smi -L; python3 -c "import jax, keras; print(jax.devices(), keras.__version__)"; } \
        2>&1 | tee "$OUT/summary.txt"
    local py=python3
    # digits: the 4 x 4 x 2 grid (32 models, 10 epochs); K = 128: 8 seeds.
    bench digits-k32 90 $py benchmarks/population.py --members 32
    bench digits-k128 90 $py benchmarks/population.py --seeds 8 --members 128 --bare-models 16
    # Fashion-MNIST, the MNIST-tutorial MLP's settings (5 epochs, batch 32); bare on a few.
    bench fashion-k32 110 $py benchmarks/population.py --dataset fashion_mnist --epochs 5 \
        --batch-size 32 --members 32 --bare-models 4
    bench fashion-k128 100 $py benchmarks/population.py --dataset fashion_mnist --epochs 5 \
        --batch-size 32 --seeds 8 --members 128 --bare-models 4
    bench cnn-k32 80 $py benchmarks/population.py --builder cnn --dataset fashion_mnist \
        --limit 4000 --epochs 5 --members 32 --bare-models 4
    bench precision 40 $py benchmarks/precision.py --sequential-models 4
    # The whole `study run` (population = 32: one population of the 16 runs) against the bare
    # loop, phase by phase; `study run` as `python -m study.cli` (no console script there).
    bench phases 70 $py benchmarks/phases.py --seeds 1 --epochs 5
}

case "${1:-}" in
prepare) prepare ;;
run) run ;;
*)
    echo "usage: bash benchmarks/gpu.sh prepare|run" >&2
    exit 2
    ;;
esac
