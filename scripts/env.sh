# shellcheck shell=bash
# Source this file to enter the environment that `make setup` built:
#   source scripts/env.sh
# It activates the virtual environment and the colcon install space of this checkout.
_romp_ros_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
_romp_ros_venv="${ROMP_ROS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/romp_ros/venv-py311}"
if [ ! -f "$_romp_ros_venv/bin/activate" ] || [ ! -f "$_romp_ros_root/install/local_setup.bash" ]; then
  echo "romp_ros: environment not built yet; run 'make setup' in $_romp_ros_root" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_romp_ros_venv/bin/activate"
export AMENT_PREFIX_PATH="$_romp_ros_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# colcon's setup scripts read unset variables; relax nounset while sourcing them
case $- in *u*) _romp_ros_nounset=1; set +u ;; *) _romp_ros_nounset= ;; esac
# shellcheck disable=SC1091
source "$_romp_ros_root/install/local_setup.bash"
[ -n "$_romp_ros_nounset" ] && set -u
export ROMP_ROS_ROOT="$_romp_ros_root"
unset _romp_ros_root _romp_ros_venv _romp_ros_nounset
