# Shared by bench/gpu_session.sh and bench/gpu_ab.sh (sourced; $PY is the python to use).

# Install the wheels in .whl/ (what the GPU image lacks, see /work/.library/device/README.md) into /tmp/site
# and put them on PYTHONPATH and PATH; returns 1 when there is no .whl/.
install_wheels() {
  [ -d .whl ] || return 1
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/site/bin:$PATH
}

# profile_trainer RUN_DIR SECONDS OUT_FILE [py-spy options]: py-spy samples (idle time included) the trainer
# of the run started with `timeout ... td3drive.cli train --run-dir RUN_DIR` as collapsed stacks.
profile_trainer() {
  local run=$1 seconds=$2 out=$3; shift 3
  # The oldest process with the run's directory on its command line is its `timeout`; the trainer is that
  # one's oldest child (forked env workers share the trainer's command line).
  local target
  target=$(pgrep -o -P "$(pgrep -o -f -- "--run-dir $run ")")
  py-spy record --idle --rate 50 --duration "$seconds" --format raw "$@" --pid "$target" -o "$out" \
    > "${out%.txt}.log" 2>&1
}
