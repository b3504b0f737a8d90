"""What the package's two lifecycle nodes share: the transitions that stop and release, and main.

Both nodes do their work between ``activate`` and ``deactivate`` (inferring on a camera stream,
or running an offline job) on resources that ``configure`` builds. So the other transitions
are the same two steps: stop the work (``_stop_work``, without waiting long for it) and release
what configure built (``_release``). :func:`run_node` is the executable around either node.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn


class WorkingLifecycleNode(LifecycleNode):
    """A lifecycle node that works while active; subclasses define the two steps.

    ``_stop_work()``: stop listening and working, without waiting long for work in progress.
    ``_release()``: drop what ``on_configure`` built (models, publishers). Both must be safe
    to call in any state.
    """

    @property
    def autostart(self) -> bool:
        """Whether :func:`run_node` configures and activates the node at start-up."""
        return bool(self.get_parameter('autostart').value)

    @property
    def finished(self) -> bool:
        """The node's work ended by itself and the process should exit (default: never)."""
        return False

    @property
    def failed(self) -> bool:
        """When :attr:`finished`: whether the work failed (exit status 1)."""
        return False

    def _stop_work(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the work and disable the lifecycle publishers."""
        self._stop_work()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release what configure built."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop and release, from whatever state the node is in."""
        self._stop_work()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to unconfigured after an error in a transition."""
        self._stop_work()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def log_at(self, level: int, text: str) -> None:
        """Log ``text`` through the node's logger at a Python ``logging`` level."""
        logger = self.get_logger()
        if level >= logging.ERROR:
            logger.error(text)
        elif level >= logging.WARNING:
            logger.warning(text)
        else:
            logger.info(text)


def run_node(make_node: Callable[[], WorkingLifecycleNode], node_name: str,
             bad_parameters: tuple[type[Exception], ...], args=None) -> int:
    """Run a node until SIGINT / SIGTERM, or until its work is :attr:`finished`.

    With ``autostart`` the node is configured and activated first. SIGINT and SIGTERM only
    set a flag, so the node always shuts down through its lifecycle (a live evaluation writes
    its report, training stops at a checkpoint).

    Args:
        make_node: builds the node (after ``rclpy.init``).
        node_name: the logger's name when the node cannot be built.
        bad_parameters: what ``make_node`` raises for invalid parameters.
        args: ROS arguments (None: ``sys.argv``).

    Returns:
        The exit status: 0, 1 when configure / activate failed or the work failed, 2 for
        invalid parameters.
    """
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()

    def request_stop(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        node = make_node()
    except bad_parameters as err:
        rclpy.logging.get_logger(node_name).error(f'invalid parameters: {err}')
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    status = 0
    try:
        # a signal during a long configure (a model load) skips the activation
        if node.autostart and not stop.is_set():
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                status = 1  # on_configure logged the reason
            elif not stop.is_set() and (node.trigger_activate()
                                        != TransitionCallbackReturn.SUCCESS):
                node.get_logger().error('activation failed')
                status = 1
        while status == 0 and not stop.is_set() and not node.finished and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
        if node.finished and node.failed:
            status = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.trigger_shutdown()
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
    return status
