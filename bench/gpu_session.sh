#!/usr/bin/env bash
# One GPU session of the default recipe, as one script (a GPU is lent for minutes, not hours):
#   1. tests/test_cuda.py (CUDA update == CPU update, bf16 on CUDA, checkpoints across devices);
#   2. training runs side by side on the one GPU for BUDGET seconds each, stopped with SIGINT (ONLY;
#      default: CarRacing-v3 seeds 0 and 1 (default-seed0/1) and highway scenarios 1 and 2 (highway-s1/s2);
#      constant-seed<k>: examples/explore-constant.yaml), each with NUM_ENVS collection processes, evaluated
#      asynchronously on the CPU;
#   3. PROFILE=<run name>: py-spy samples that run's trainer (idle time included: waits on the GPU and on the
#      envs show) for PROFILE_S seconds from PROFILE_AT seconds in, as collapsed stacks in pyspy.txt;
#   4. the run directories (event files, configs, reports, logs; no checkpoints) packed into runs.tar.gz.
#
#   OUT=bench/out/gpu BUDGET=390 bash bench/gpu_session.sh
#   python bench/learning.py --report-only --configs default --seeds 0,1 --out <unpacked>/runs
#
# Wheels that the GPU image lacks (gymnasium, Box2D, pygame-ce, highway-env, google-crc32c) are
# installed from .whl/ when it exists (see /work/.library/device/README.md for how to fetch them).
set -u
OUT=${OUT:-bench/out/gpu}
BUDGET=${BUDGET:-390}
NUM_ENVS=${NUM_ENVS:-3}
ONLY=${ONLY:-default-seed0 default-seed1 highway-s1 highway-s2}  # default-seed<k>, highway-s<scenario>
EVAL_FREQ=${EVAL_FREQ:-5000}  # agent steps
SKIP_TESTS=${SKIP_TESTS:-0}
THREADS=${THREADS:-2}  # torch threads per training process
DEVICE=${DEVICE:-cuda}  # cpu: a dry run of this script on a machine without a GPU
PY=${PY:-python3}
PROFILE=${PROFILE:-}
PROFILE_AT=${PROFILE_AT:-180}
PROFILE_S=${PROFILE_S:-40}
mkdir -p "$OUT"
RUNS=$(mktemp -d)/runs
mkdir -p "$RUNS"
source "$(dirname "$0")/_gpu_lib.sh"
export PYTHONPATH=$PWD
install_wheels
export PYTHONUNBUFFERED=1

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  nproc
} > "$OUT/machine.txt" 2>&1

# The CUDA tests run beside the training runs (seconds of GPU work; the minutes are the runs').
[ "$SKIP_TESTS" = 1 ] || (timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py > "$OUT/pytest_cuda.txt" 2>&1 &)

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 15 > "$OUT/gpu_util.csv" 2>&1 &
UTIL=$!

common=(--max-timesteps 10000000 --checkpoint-freq 0 --eval-freq "$EVAL_FREQ"
        --set training.device="$DEVICE" --set training.num_envs="$NUM_ENVS" --set training.eval_workers=2
        --set logging.progress=false)
train() {  # name, then train arguments
  local name=$1; shift
  OMP_NUM_THREADS=$THREADS timeout -s INT -k 60 "$BUDGET" \
    $PY -m td3drive.cli train --run-dir "$RUNS/$name" "${common[@]}" "$@" > "$RUNS/$name.log" 2>&1
  echo "$name exit $?" >> "$RUNS/exits.txt"
}
pids=()
for name in $ONLY; do
  case $name in
    default-seed*) train "$name" --seed "${name#default-seed}" & pids+=($!) ;;
    constant-seed*) train "$name" --seed "${name#constant-seed}" --config examples/explore-constant.yaml &
                    pids+=($!) ;;
    highway-s*) train "$name" --env highway --scenario "${name#highway-s}" --seed 0 --set training.num_eval_episodes=5 &
                pids+=($!) ;;
    *) echo "unknown run $name" >&2 ;;
  esac
done
if [ -n "$PROFILE" ]; then
  sleep "$PROFILE_AT"
  profile_trainer "$RUNS/$PROFILE" "$PROFILE_S" "$OUT/pyspy.txt"
fi
wait "${pids[@]}"
kill "$UTIL" 2>/dev/null
tar czf "$OUT/runs.tar.gz" --exclude=checkpoints -C "$(dirname "$RUNS")" runs
cat "$RUNS/exits.txt"; tail -n 5 "$RUNS"/*.log
