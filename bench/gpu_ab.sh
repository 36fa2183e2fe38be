#!/usr/bin/env bash
# A/B of two trainers on one GPU, side by side for B seconds: the package in .ab/old (A) and this checkout
# (B), CarRacing seed 0, 3 collection env processes each, evaluation off; py-spy samples B's trainer for 40 s
# from B/2 seconds in; prints the median updates/s of each (after the first quarter of its log points).
#
#   mkdir -p .ab/old && git archive <commit> td3drive | tar -x -C .ab/old     # A: an older trainer
#   OUT=bench/out/ab B=190 bash bench/gpu_ab.sh                              # (device run: carry .ab and .whl)
#
# Used for docs/BENCHMARKS.md section 12b (A: the commit before the env-step overlap).
set -u
B=${B:-180}; DEV=${DEV:-cuda}; PY=${PY:-python3}; OUT=${OUT:-bench/out/ab}
R=$(mktemp -d); mkdir -p "$OUT"
source "$(dirname "$0")/_gpu_lib.sh"
[ "$DEV" = cuda ] && install_wheels && SITE=/tmp/site
unset PYTHONPATH  # each trainer below gets its own package root
export PYTHONUNBUFFERED=1
common="--max-timesteps 10000000 --checkpoint-freq 0 --eval-freq 0 --set training.device=$DEV
        --set training.num_envs=3 --set logging.progress=false --seed 0"
run() {  # name, package root
  (cd "$2" && PYTHONPATH=${SITE:-}:$PWD OMP_NUM_THREADS=2 timeout -s INT -k 30 "$B" \
     $PY -m td3drive.cli train --run-dir "$R/$1" $common > "$R/$1.log" 2>&1)
}
run A .ab/old &
run B "$PWD" &
sleep $((B / 2))
profile_trainer "$R/B" 40 "$OUT/pyspy_B.txt" --threads
wait
PYTHONPATH=${SITE:-}:$PWD $PY - "$R" <<'PY' | tee "$OUT/ab.txt"
import sys

import numpy as np

from td3drive.analysis.events import read_run

for name in ("A", "B"):
    s = read_run(f"{sys.argv[1]}/{name}").series
    u = s["progress/updates_per_s"].values
    print(name, "agent steps", int(s["progress/frames"].steps[-1]),
          "median updates/s", round(float(np.median(u[len(u) // 4:])), 1))
PY
tar czf "$OUT/ab_runs.tar.gz" --exclude=checkpoints -C "$R" .
