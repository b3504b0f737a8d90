#!/usr/bin/env bash
# Idempotent environment build for a machine without a ROS apt repository:
#   1. system tools (cmake, g++, ninja) are checked, and installed with apt when we are root;
#   2. a Python 3.11 virtual environment in .venv with torch, ROS 2 Kilted wheels, test tools;
#   3. a colcon build of this package (messages + Python) and of the local message packages
#      that have no wheel (tf2_msgs; composition_interfaces for launch_ros), into install/;
#   4. the same for ROS 2 Jazzy in a second venv and build/jazzy/install (scripts/setup_jazzy.sh,
#      skipped with ROMP_ROS_JAZZY=0): `make test` runs the ROS suites on both distributions.
# With ../shared/ros2-cli (launch, launch_ros, the ros2 command as sources) they are installed
# into both venvs for the `ros2 launch` tests.
# Each step records a stamp so a second run only redoes what changed.
# On a normal ROS 2 machine use the README's "ROS 2 workspace" route instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The venv lives outside the source tree: CMake refuses exported include directories (numpy's)
# that sit inside the package's source directory.
VENV="${ROMP_ROS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/romp_ros/venv-py311}"
LOG_TAG=setup
# shellcheck source=scripts/setup_lib.sh
source "$ROOT/scripts/setup_lib.sh"

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

# -- 2. virtual environment -------------------------------------------------------------------
make_venv Kilted
PINS=(-c "$ROOT/requirements/constraints.txt")

if ! stamp_ok base requirements/constraints.txt; then
  begin_step base "installing pip tooling and torch (a CPU build is enough)"
  quiet_pip base --upgrade pip wheel "setuptools<80"
  quiet_pip base "${PINS[@]}" torch torchvision
  touch "$STAMPS/base"
fi

if ! stamp_ok ros requirements/ros-kilted.txt requirements/constraints.txt; then
  begin_step ros "installing ROS 2 Kilted wheels (rclpy, messages, rosidl, ament, colcon)"
  quiet_pip ros "${PINS[@]}" -r requirements/ros-kilted.txt
  touch "$STAMPS/ros"
fi

if ! stamp_ok dev requirements/dev.txt requirements/constraints.txt setup.cfg setup.py; then
  begin_step dev "installing runtime and test dependencies"
  quiet_pip dev "${PINS[@]}" -r requirements/dev.txt
  # the runtime dependencies declared by setup.cfg, without installing the package itself
  # shellcheck disable=SC2046
  quiet_pip dev "${PINS[@]}" $("$VENV/bin/python" "$ROOT/scripts/list_requirements.py")
  # simple-romp: the reference implementation, a test-only oracle. Its sdist needs cython and
  # numpy at build time and does not declare them, hence --no-build-isolation.
  quiet_pip dev "${PINS[@]}" --no-build-isolation --no-deps simple-romp
  # TrackEval (HOTA, IDF1) needs only numpy, scipy and pillow at run time; its declared
  # dependencies would replace opencv-python-headless with opencv-python
  quiet_pip dev "${PINS[@]}" --no-deps 'trackeval>=1.3'
  # bpy (Blender 5.0 as a Python module, CPython 3.11) imports the exported glTF / BVH in
  # test_blender_import.py. It declares numpy<2 but runs with this numpy 2.x; --no-deps keeps
  # the constrained numpy (its other dependencies are in requirements/dev.txt). ~820 MB.
  quiet_pip dev "${PINS[@]}" --no-deps 'bpy==5.0.1'
  touch "$STAMPS/dev"
fi

# -- 2b. ROS 2 launch and command line (test tooling) -----------------------------------------
# composition_interfaces (imported by launch_ros) is an interface package: colcon builds it
# below, like tf2_msgs.
EXTRA_BASE_PATHS=()
if [ -d "$ROS2_CLI_SRC" ]; then
  install_ros2_cli
  EXTRA_BASE_PATHS+=("$ROS2_CLI_SRC/composition_interfaces")
else
  log "no $ROS2_CLI_SRC: ros2 launch / lifecycle / param tests will be skipped"
fi

# -- 3. colcon build ---------------------------------------------------------------------------
fix_wheel_cmake
colcon_build "$ROOT/build" "$ROOT/install" "$ROOT/log" "${EXTRA_BASE_PATHS[@]}"

# -- 4. the second ROS distribution of the tests (ROS 2 Jazzy) -----------------------------------
if [ "${ROMP_ROS_JAZZY:-1}" != 0 ]; then
  bash "$ROOT/scripts/setup_jazzy.sh"
fi
log "environment ready: source scripts/env.sh"
