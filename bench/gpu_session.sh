#!/usr/bin/env bash
# Issue 10's GPU checks and figures in one command, for a session that is lent a GPU.
#
#   bash bench/gpu_session.sh prepare    # here, with network access to the package index:
#                                        # smplx and simple-romp into .gpu_session/ (ignored)
#   bash bench/gpu_session.sh run [ARGS] # on the GPU machine, from the repository root;
#                                        # ARGS go to bench/gpu_session.py
#
# The GPU machine has Python with torch, numpy, scipy, OpenCV, scikit-image, ONNX Runtime and
# pytest, and no package index. `run` puts the carried smplx wheel and the unpacked
# simple-romp sources (only its pure-Python model code is used) on PYTHONPATH, then:
#   1. runs the tests that need CUDA (skipped on a CPU): pinned uploads, the padded
#      post-processing under torch.cuda.set_sync_debug_mode('error'), torch.compile;
#   2. runs bench/gpu_session.py, which writes its tables into docs/performance.md
#      (section gpu-session) after each model.
# Everything lands in $OUT (the device tool's folder; else ./gpu_session_out): nvidia-smi.txt,
# pytest.log, bench.log, gpu_session.md / .json and the updated performance.md.
# Time: at most TEST_TIMEOUT_S (150 s) of tests, then the models in order, none started after
# BENCH_DEADLINE_S (180 s), the bench stopped outright at BENCH_TIMEOUT_S (330 s): under 8 min
# in all, inside one device call of timeout_s 600 and a 15-minute lease with its start.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="$ROOT/.gpu_session"
PY="${PYTHON:-python3}"
SMPLX_VERSION=0.1.28
REFERENCE_VERSION=1.1.4

log() { printf '[gpu_session] %s\n' "$*"; }
die() { printf '[gpu_session] ERROR: %s\n' "$*" >&2; exit 1; }

prepare() {
  mkdir -p "$CARRY"
  "$PY" -m pip download -q --no-deps --only-binary=:all: "smplx==$SMPLX_VERSION" -d "$CARRY" \
    || die "could not download smplx==$SMPLX_VERSION"
  # the sdist's build needs Cython; only its sources are wanted, hence no isolation
  "$PY" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation \
    "simple-romp==$REFERENCE_VERSION" -d "$CARRY" \
    || die "could not download simple-romp==$REFERENCE_VERSION (needs cython and numpy here)"
  log "ready: $(cd "$CARRY" && ls | tr '\n' ' ')(carry .gpu_session)"
}

run() {
  local out="${OUT:-$ROOT/gpu_session_out}" site
  mkdir -p "$out"
  site="$(mktemp -d /tmp/romp_ros_gpu_site.XXXXXX)"
  local wheels=("$CARRY"/smplx-*.whl) sdists=("$CARRY"/simple_romp-*.tar.gz)
  [ -f "${wheels[0]}" ] || die "no smplx wheel in $CARRY: run 'bash bench/gpu_session.sh prepare' here and carry .gpu_session"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" "${wheels[@]}" \
    || die "pip could not install ${wheels[*]}"
  local pythonpath="$ROOT:$site"
  if [ -f "${sdists[0]}" ]; then
    tar -xzf "${sdists[0]}" -C "$site" || die "could not unpack ${sdists[0]}"
    pythonpath="$pythonpath:$(echo "$site"/simple_romp-*)"
  else
    log "no simple-romp sdist in $CARRY: the tables will have no reference rows"
  fi
  export PYTHONPATH="$pythonpath${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
  cd "$ROOT" || die "no $ROOT"

  nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || log "nvidia-smi failed (see nvidia-smi.txt)"
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'

  log "1. the tests that need CUDA"
  timeout "${TEST_TIMEOUT_S:-150}" "$PY" -m pytest -q -p no:cacheprovider \
    test/test_pinned_upload.py test/test_padded_postprocess.py test/test_torch_compile.py \
    2>&1 | tee "$out/pytest.log"
  local tests=${PIPESTATUS[0]}

  log "2. the figures"
  timeout "${BENCH_TIMEOUT_S:-330}" "$PY" bench/gpu_session.py --out "$out" \
    --deadline-s "${BENCH_DEADLINE_S:-180}" "$@" 2>&1 | tee "$out/bench.log"
  local bench=${PIPESTATUS[0]}
  cp docs/performance.md "$out/performance.md"
  log "tests exit $tests, bench exit $bench; results in $out"
  [ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) die "usage: bash bench/gpu_session.sh prepare | run [bench/gpu_session.py ARGS]" ;;
esac
