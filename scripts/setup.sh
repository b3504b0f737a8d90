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

stamp_in() {  # stamp_in DIR NAME FILE... : true when DIR/NAME is newer than every FILE
  local dir=$1 name=$2; shift 2
  [ -f "$dir/$name" ] || return 1
  local f
  for f in "$@"; do [ "$f" -nt "$dir/$name" ] && return 1; done
  return 0
}
stamp_ok() { stamp_in "$STAMPS" "$@"; }  # stamp_ok NAME FILE... : in this venv's stamps

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
  # bpy (Blender 5.0 as a Python module, CPython 3.11) imports the exported glTF / BVH in
  # test_blender_import.py. It declares numpy<2 but runs with this numpy 2.x; --no-deps keeps
  # the constrained numpy (its other dependencies are in requirements/dev.txt). ~820 MB.
  "${PIP[@]}" install "${CONSTRAINTS[@]}" --no-deps 'bpy==5.0.1'
  touch "$STAMPS/dev"
fi

# -- 2b. ROS 2 launch and command line (test tooling) -----------------------------------------
# ../shared/ros2-cli holds launch, launch_ros and the ros2 command as sources (no wheels exist).
# They are test tools: on a ROS 2 machine they come with ROS and romp_ros never needs this.
ROS2_CLI_SRC="${ROMP_ROS_ROS2_CLI:-$ROOT/../shared/ros2-cli}"
ROS2_CLI_PACKAGES=(launch launch_xml launch_yaml launch_ros rosidl_runtime_py ros2cli ros2pkg
                   ros2run ros2launch ros2topic ros2node ros2lifecycle ros2param ros2service)
install_ros2_cli() {  # install_ros2_cli VENV STAMPS : pip-install the folders into VENV
  local venv=$1 stamps=$2 copy
  stamp_in "$stamps" ros2cli "$ROS2_CLI_SRC/README.md" && return 0
  log "installing ROS 2 launch and the ros2 command from $ROS2_CLI_SRC into $venv"
  local pip_log="$stamps/ros2cli-install.log"
  # their run-time dependencies (lark comes with the ROS wheels as lark-parser)
  "$venv/bin/python" -m pip --disable-pip-version-check install osrf-pycommon psutil pyyaml \
    argcomplete packaging >"$pip_log" 2>&1 || { tail -20 "$pip_log" >&2; die "see $pip_log"; }
  # the sources may be read-only (and shared): build from a private copy
  copy="$(mktemp -d)"
  cp -r "$ROS2_CLI_SRC/." "$copy/"
  chmod -R u+w "$copy"
  local pkg args=()
  for pkg in "${ROS2_CLI_PACKAGES[@]}"; do args+=("$copy/$pkg"); done
  "$venv/bin/python" -m pip --disable-pip-version-check install --no-deps \
    --no-build-isolation "${args[@]}" >>"$pip_log" 2>&1 \
    || { rm -rf "$copy"; tail -20 "$pip_log" >&2; die "installing $ROS2_CLI_SRC failed: $pip_log"; }
  rm -rf "$copy"
  touch "$stamps/ros2cli"
}
# composition_interfaces (imported by launch_ros) is an interface package: colcon builds it
# below, like tf2_msgs.
EXTRA_BASE_PATHS=()
if [ -d "$ROS2_CLI_SRC" ]; then
  install_ros2_cli "$VENV" "$STAMPS"
  EXTRA_BASE_PATHS+=("$ROS2_CLI_SRC/composition_interfaces")
else
  log "no $ROS2_CLI_SRC: ros2 launch / lifecycle / param tests will be skipped"
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
missing_extra() {  # an extra package (composition_interfaces) not built yet?
  local p
  for p in "${EXTRA_BASE_PATHS[@]}"; do [ -d "install/$(basename "$p")" ] || return 0; done
  return 1
}
if [ ! -d install/romp_ros ] || newer_sources || missing_extra; then
  log "colcon build (romp_ros + local tf2_msgs${EXTRA_BASE_PATHS:+ + composition_interfaces})"
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  export AMENT_PREFIX_PATH="$VENV"
  export CMAKE_PREFIX_PATH="$VENV"
  mkdir -p build
  colcon --log-base log build --symlink-install --event-handlers console_direct- \
    --base-paths scripts/ros_deps . "${EXTRA_BASE_PATHS[@]}" \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -G Ninja -DBUILD_TESTING=OFF \
    >build/colcon.log 2>&1 || { tail -50 build/colcon.log >&2; die "colcon build failed (full log: build/colcon.log)"; }
  # --symlink-install leaves links to deleted or moved sources behind; drop them so that
  # the install space never serves a module the checkout no longer has
  find install -xtype l -delete
  touch "$COLCON_STAMP"
fi
# -- 4. the second ROS distribution of the tests (ROS 2 Jazzy) -----------------------------------
if [ "${ROMP_ROS_JAZZY:-1}" != 0 ]; then
  bash "$ROOT/scripts/setup_jazzy.sh"
fi
log "environment ready: source scripts/env.sh"
