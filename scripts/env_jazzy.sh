# shellcheck shell=bash
# Source this file to enter the ROS 2 Jazzy test environment that `make setup` built
# (scripts/setup_jazzy.sh): its venv and the install space build/jazzy/install.
#   source scripts/env_jazzy.sh
_romp_ros_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
_romp_ros_venv="${ROMP_ROS_VENV_JAZZY:-${XDG_CACHE_HOME:-$HOME/.cache}/romp_ros/venv-jazzy-py311}"
_romp_ros_install="$_romp_ros_root/build/jazzy/install"
if [ ! -f "$_romp_ros_venv/bin/activate" ] || [ ! -f "$_romp_ros_install/local_setup.bash" ]; then
  echo "romp_ros: Jazzy environment not built yet; run 'make setup' in $_romp_ros_root" >&2
  return 1 2>/dev/null || exit 1
fi
# Only Jazzy's paths: a shell that sourced scripts/env.sh (Kilted) must not leak into it.
unset PYTHONPATH COLCON_PREFIX_PATH CMAKE_PREFIX_PATH LD_LIBRARY_PATH
# shellcheck disable=SC1091
source "$_romp_ros_venv/bin/activate"
export AMENT_PREFIX_PATH="$_romp_ros_venv"
case $- in *u*) _romp_ros_nounset=1; set +u ;; *) _romp_ros_nounset= ;; esac
# shellcheck disable=SC1091
source "$_romp_ros_install/local_setup.bash"
[ -n "$_romp_ros_nounset" ] && set -u
export ROMP_ROS_ROOT="$_romp_ros_root" ROMP_ROS_DISTRO=jazzy
unset _romp_ros_root _romp_ros_venv _romp_ros_install _romp_ros_nounset
