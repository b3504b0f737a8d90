# shellcheck shell=bash
# The steps scripts/setup.sh (ROS 2 Kilted) and scripts/setup_jazzy.sh (ROS 2 Jazzy) share:
# a Python 3.11 venv from PyPI wheels, launch and the ros2 command from ../shared/ros2-cli, and
# a colcon build of this package. Sourced, not run. The caller sets:
#   ROOT     the checkout          VENV     the venv          LOG_TAG  the log prefix
# Each step records a stamp in $VENV/.romp_ros_stamps, so a second run only redoes what changed.

log() { printf '[%s] %s\n' "$LOG_TAG" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2; exit 1; }

STAMPS="$VENV/.romp_ros_stamps"
# launch, launch_ros and the ros2 command as sources (no wheels exist): test tools, which a
# ROS 2 machine has already
ROS2_CLI_SRC="${ROMP_ROS_ROS2_CLI:-$ROOT/../shared/ros2-cli}"
ROS2_CLI_PACKAGES=(launch launch_xml launch_yaml launch_ros rosidl_runtime_py ros2cli ros2pkg
                   ros2run ros2launch ros2topic ros2node ros2lifecycle ros2param ros2service)

stamp_ok() {  # stamp_ok NAME FILE... : true when the stamp NAME is newer than every FILE
  local name=$1; shift
  [ -f "$STAMPS/$name" ] || return 1
  local f
  for f in "$@"; do [ "$f" -nt "$STAMPS/$name" ] && return 1; done
  return 0
}

begin_step() {  # begin_step NAME MESSAGE : say MESSAGE; NAME's pip log starts afresh
  log "$2"
  : >"$STAMPS/$1.log"
}

quiet_pip() {  # quiet_pip LOGNAME ARGS... : pip install into $VENV; its log shown on failure
  local name=$1; shift
  "$VENV/bin/python" -m pip --disable-pip-version-check install "$@" >>"$STAMPS/$name.log" 2>&1 \
    || { tail -30 "$STAMPS/$name.log" >&2; die "pip install failed (log: $STAMPS/$name.log)"; }
}

make_venv() {  # make_venv DISTRO : $VENV from Python 3.11 (the ROS wheels are built for it)
  local boot="${PYTHON:-python3.11}"
  command -v "$boot" >/dev/null 2>&1 || boot=python3
  "$boot" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
    || die "Python 3.11 is required (the ROS 2 $1 wheels are built for CPython 3.11); set PYTHON=/path/to/python3.11"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$boot" -m venv "$VENV"
  fi
  mkdir -p "$STAMPS"
}

install_ros2_cli() {  # install_ros2_cli : the ROS2_CLI_PACKAGES of $ROS2_CLI_SRC into $VENV
  stamp_ok ros2cli "$ROS2_CLI_SRC/README.md" && return 0
  begin_step ros2cli "installing ROS 2 launch and the ros2 command from $ROS2_CLI_SRC"
  # their run-time dependencies (lark comes with the ROS wheels as lark-parser)
  quiet_pip ros2cli osrf-pycommon psutil pyyaml argcomplete packaging
  local copy pkg args=()
  copy="$(mktemp -d)"  # the sources may be read-only and shared: build from a private copy
  cp -r "$ROS2_CLI_SRC/." "$copy/"
  chmod -R u+w "$copy"
  for pkg in "${ROS2_CLI_PACKAGES[@]}"; do args+=("$copy/$pkg"); done
  (quiet_pip ros2cli --no-deps --no-build-isolation "${args[@]}") || { rm -rf "$copy"; exit 1; }
  rm -rf "$copy"
  touch "$STAMPS/ros2cli"
}

fix_wheel_cmake() {  # the wheels' CMake files name the Python that built them: point at $VENV
  stamp_ok cmake_fix "$STAMPS/ros" && return 0
  log "rewriting wheel CMake include paths to this venv"
  "$VENV/bin/python" "$ROOT/scripts/fix_wheel_cmake_paths.py" "$VENV" >"$STAMPS/cmake_fix.log" 2>&1 \
    || { tail -20 "$STAMPS/cmake_fix.log" >&2; die "fix_wheel_cmake_paths.py failed"; }
  touch "$STAMPS/cmake_fix"
}

colcon_build() {  # colcon_build BUILD INSTALL LOG EXTRA_PATH... : absolute bases; if stale
  local build=$1 install=$2 logs=$3; shift 3
  local stamp="$build/.romp_ros_colcon_stamp" p stale=
  [ -d "$install/romp_ros" ] && [ -f "$stamp" ] || stale=1
  [ -z "$stale" ] && [ "$STAMPS/cmake_fix" -nt "$stamp" ] && stale=1
  for p in "$@"; do [ -d "$install/$(basename "$p")" ] || stale=1; done
  if [ -z "$stale" ] && [ -z "$(cd "$ROOT" && find CMakeLists.txt package.xml msg scripts/ros_deps \
      romp_ros launch config rviz scripts -newer "$stamp" -type f -not -name '*.pyc' \
      -print -quit 2>/dev/null)" ]; then
    return 0
  fi
  log "colcon build into $install (romp_ros + local tf2_msgs${1:+ + composition_interfaces})"
  mkdir -p "$build"
  (
    cd "$ROOT"
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    colcon --log-base "$logs" build --symlink-install \
      --build-base "$build" --install-base "$install" \
      --event-handlers console_direct- \
      --base-paths scripts/ros_deps . "$@" \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -G Ninja -DBUILD_TESTING=OFF
  ) >"$build/colcon.log" 2>&1 \
    || { tail -50 "$build/colcon.log" >&2; die "colcon build failed (full log: $build/colcon.log)"; }
  # --symlink-install leaves links to deleted or moved sources behind; drop them so that
  # the install space never serves a module the checkout no longer has
  find "$install" -xtype l -delete
  touch "$stamp"
}
