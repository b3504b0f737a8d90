#!/usr/bin/env bash
# Idempotent environment build for a machine without a ROS apt repository:
#   1. system tools (cmake, g++, ninja) are checked, and installed with apt when we are root;
#   2. a Python 3.11 virtual environment in .venv with torch, ROS 2 Kilted wheels, test tools;
#   3. a colcon build of this package (messages + Python) and of the local message packages
#      that have no wheel (tf2_msgs), into install/.
# Each step records a stamp so a second run only redoes what changed.
# On a normal ROS 2 machine use the README's "ROS 2 workspace" route instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The venv lives outside the source tree: CMake refuses exported include directories (numpy's)
# that sit inside the package's source directory.
VENV="${ROMP_ROS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/romp_ros/venv-py311}"
STAMPS="$VENV/.romp_ros_stamps"
PY_BOOT="${PYTHON:-python3.11}"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# -- 1. system tools ------------------------------------------------------------------------
missing=()
for tool in cmake g++ ninja make; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  pkgs=()
  for t in "${missing[@]}"; do
    case "$t" in
      g++) pkgs+=(g++) ;; ninja) pkgs+=(ninja-build) ;; *) pkgs+=("$t") ;;
    esac
  done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing missing tools: ${pkgs[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
  else
    die "missing tools: ${missing[*]}. Install them with: sudo apt-get install ${pkgs[*]}"
  fi
fi
command -v "$PY_BOOT" >/dev/null 2>&1 || PY_BOOT=python3
"$PY_BOOT" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || die "Python 3.11 is required (the ROS 2 Kilted wheels are built for CPython 3.11); set PYTHON=/path/to/python3.11"

# -- 2. virtual environment -------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY_BOOT" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
CONSTRAINTS=(-c "$ROOT/requirements/constraints.txt")

stamp_ok() {  # stamp_ok NAME FILE... : true when the stamp is newer than every FILE
  local name=$1; shift
  [ -f "$STAMPS/$name" ] || return 1
  local f
  for f in "$@"; do [ "$f" -nt "$STAMPS/$name" ] && return 1; done
  return 0
}

if ! stamp_ok base requirements/constraints.txt; then
  log "installing pip tooling and torch (CPU works; the wheel on this machine's disk is used)"
  "${PIP[@]}" install --upgrade pip wheel "setuptools<80"
  "${PIP[@]}" install "${CONSTRAINTS[@]}" torch torchvision
  touch "$STAMPS/base"
fi

if ! stamp_ok ros requirements/ros-kilted.txt requirements/constraints.txt; then
  log "installing ROS 2 Kilted wheels (rclpy, messages, rosidl, ament, colcon)"
  "${PIP[@]}" install "${CONSTRAINTS[@]}" -r requirements/ros-kilted.txt
  touch "$STAMPS/ros"
fi

if ! stamp_ok dev requirements/dev.txt requirements/constraints.txt setup.cfg setup.py; then
  log "installing runtime and test dependencies"
  "${PIP[@]}" install "${CONSTRAINTS[@]}" -r requirements/dev.txt
  # the runtime dependencies declared by setup.cfg, without installing the package itself
  "${PIP[@]}" install "${CONSTRAINTS[@]}" $("$VENV/bin/python" "$ROOT/scripts/list_requirements.py")
  # simple-romp: the reference implementation, a test-only oracle. Its sdist needs cython and
  # numpy at build time and does not declare them, hence --no-build-isolation.
  "${PIP[@]}" install "${CONSTRAINTS[@]}" --no-build-isolation --no-deps simple-romp
  # TrackEval (HOTA, IDF1) needs only numpy, scipy and pillow at run time; its declared
  # dependencies would replace opencv-python-headless with opencv-python
  "${PIP[@]}" install "${CONSTRAINTS[@]}" --no-deps 'trackeval>=1.3'
  touch "$STAMPS/dev"
fi

# -- 3. colcon build ---------------------------------------------------------------------------
# The wheels' exported CMake files name the include directory of the Python that built them
# (/opt/python/cp311-cp311/...). Point them at this venv's Python and numpy instead.
if ! stamp_ok cmake_fix "$STAMPS/ros"; then
  log "rewriting wheel CMake include paths to this venv"
  "$VENV/bin/python" "$ROOT/scripts/fix_wheel_cmake_paths.py" "$VENV"
  touch "$STAMPS/cmake_fix"
fi

COLCON_STAMP="$ROOT/build/.romp_ros_colcon_stamp"
newer_sources() {  # any package source newer than the last build?
  [ -f "$COLCON_STAMP" ] || return 0
  [ "$STAMPS/cmake_fix" -nt "$COLCON_STAMP" ] && return 0
  [ -n "$(find CMakeLists.txt package.xml msg scripts/ros_deps romp_ros launch config rviz scripts \
          -newer "$COLCON_STAMP" -type f -not -name '*.pyc' -print -quit 2>/dev/null)" ]
}
if [ ! -d install/romp_ros ] || newer_sources; then
  log "colcon build (romp_ros + local tf2_msgs)"
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  export AMENT_PREFIX_PATH="$VENV"
  export CMAKE_PREFIX_PATH="$VENV"
  mkdir -p build
  colcon --log-base log build --symlink-install --event-handlers console_direct- \
    --base-paths scripts/ros_deps . \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -G Ninja -DBUILD_TESTING=OFF \
    >build/colcon.log 2>&1 || { tail -50 build/colcon.log >&2; die "colcon build failed (full log: build/colcon.log)"; }
  # --symlink-install leaves links to deleted or moved sources behind; drop them so that
  # the install space never serves a module the checkout no longer has
  find install -xtype l -delete
  touch "$COLCON_STAMP"
fi
log "environment ready: source scripts/env.sh"
