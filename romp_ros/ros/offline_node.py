"""The offline node: evaluation (live or on bags / datasets) and training jobs, from parameters.

A thin lifecycle node around the ROS-free library:

* ``evaluate_live``: subscribes to the perception node's ``people`` and to ``ground_truth``
  (both ``romp_ros/PersonMeshArray``; remap them) and feeds an
  :class:`~romp_ros.evaluation.session.EvaluationSession`, which pairs them by header stamp.
  A ground-truth frame the perception node never answered counts as missed once the ground
  truth is ``max_wait_s`` ahead. The report is written on deactivate, on shutdown, or after
  ``idle_timeout_s`` without ground truth.
* ``evaluate_bags`` / ``evaluate_dataset``: :func:`~romp_ros.evaluation.runner.run_evaluation`
  in a worker thread.
* ``train``: :func:`~romp_ros.train.loop.train` in a worker thread; deactivate stops it after
  the current step with a checkpoint (continue later with ``resume: true``).

``configure`` turns the parameters into the library's job objects (one clear message on a bad
value); ``activate`` starts the job. Progress goes out on ``progress``
(``romp_ros/JobProgress``) and ``/diagnostics``. Parameters: docs/ros_interface.md.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from romp_ros.core.config import ConfigError
from romp_ros.msg import JobProgress, PersonMeshArray
from romp_ros.ros.lifecycle import WorkingLifecycleNode, run_node
from romp_ros.ros.offline_params import (
    OFFLINE_PARAMETERS,
    OFFLINE_PARAMETERS_BY_NAME,
    OfflineJob,
    offline_job,
)
from romp_ros.ros.params import current_values, declare_parameters, make_validation_callback

NODE_NAME = 'offline_node'
STATUS_NAME = 'romp_ros: offline job'
INPUT_DEPTH = 100  # live evaluation must not lose messages while the session scores
JOIN_TIMEOUT_S = 5.0


def _reliable(depth: int, latched: bool = False) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=(DurabilityPolicy.TRANSIENT_LOCAL if latched
                                  else DurabilityPolicy.VOLATILE))


class _Progress:
    """The job's state, written by the job (any thread) and published by a timer."""

    def __init__(self, job: str) -> None:
        self._lock = threading.Lock()
        self.job = job
        self.state = 'running'
        self.done = 0
        self.total = 0
        self.message = ''
        self.values: dict[str, float] = {}

    def update(self, **changes) -> None:
        with self._lock:
            values = changes.pop('values', None)
            for key, value in changes.items():
                setattr(self, key, value)
            if values:
                self.values.update({k: float(v) for k, v in values.items()})

    def message_now(self, stamp) -> JobProgress:
        with self._lock:
            msg = JobProgress(job=self.job, state=self.state, done=int(self.done),
                              total=int(self.total), message=self.message,
                              names=list(self.values),
                              values=[float(v) for v in self.values.values()])
        msg.header.stamp = stamp
        msg.fraction = (min(msg.done / msg.total, 1.0) if msg.total else -1.0)
        return msg


class OfflineNode(WorkingLifecycleNode):
    """Lifecycle node running one offline job (module docstring)."""

    def __init__(self, **kwargs) -> None:
        """Declare the parameters; nothing runs before ``configure`` / ``activate``."""
        super().__init__(NODE_NAME, **kwargs)
        self.add_on_set_parameters_callback(make_validation_callback(
            table=OFFLINE_PARAMETERS_BY_NAME))
        declare_parameters(self, OFFLINE_PARAMETERS)
        self._job: OfflineJob | None = None
        self._progress: _Progress | None = None
        self._pubs: dict = {}
        self._subs: list = []
        self._timer = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._session = None
        self._session_lock = threading.Lock()
        self._last_gt: float | None = None
        self._handler = _ForwardLog(self)
        self._core_logger = logging.getLogger('romp_ros')
        self._core_logger.addHandler(self._handler)
        self._previous_level = self._core_logger.level
        if self._core_logger.getEffectiveLevel() > logging.INFO:
            self._core_logger.setLevel(logging.INFO)

    @property
    def finished(self) -> bool:
        """A batch job ended and the node should exit (``exit_when_done``)."""
        return self._finished.is_set()

    @property
    def failed(self) -> bool:
        """The job ended in failure."""
        return self._progress is not None and self._progress.state == 'failed'

    # -- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the job from the parameters and create the (lifecycle) publishers."""
        try:
            self._job = offline_job(current_values(self, OFFLINE_PARAMETERS))
        except ConfigError as err:
            self.get_logger().error(f'configure failed: {err}')
            return TransitionCallbackReturn.FAILURE
        self._pubs = {
            'progress': self.create_lifecycle_publisher(JobProgress, 'progress',
                                                        _reliable(10, latched=True)),
            '/diagnostics': self.create_lifecycle_publisher(DiagnosticArray, '/diagnostics',
                                                            _reliable(10)),
        }
        self.get_logger().info(f'configured job {self._job.kind!r} -> {self._job.output_dir}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the job: live subscriptions, or the batch job's worker thread."""
        result = super().on_activate(state)  # activates the lifecycle publishers
        job = self._job
        self._progress = _Progress(job.kind)
        self._stop.clear()
        self._finished.clear()
        if job.kind == 'evaluate_live':
            from romp_ros.evaluation.session import EvaluationSession
            self._session = EvaluationSession(job.evaluation, name='live')
            self._last_gt = None
            qos = _reliable(INPUT_DEPTH)
            self._subs = [
                self.create_subscription(PersonMeshArray, 'ground_truth',
                                         self._on_ground_truth, qos),
                self.create_subscription(PersonMeshArray, 'people', self._on_prediction, qos)]
            self.get_logger().info(
                f'live evaluation: {self.resolve_topic_name("people")} against '
                f'{self.resolve_topic_name("ground_truth")}')
        else:
            target = self._run_training if job.kind == 'train' else self._run_evaluation
            self._worker = threading.Thread(target=target, name='offline_job', daemon=True)
            self._worker.start()
        self._timer = self.create_timer(job.progress_period_s, self._tick)
        return result

    def destroy_node(self) -> None:
        """Detach the log forwarding (restoring the library logger) and destroy the node."""
        self._core_logger.removeHandler(self._handler)
        self._core_logger.setLevel(self._previous_level)
        super().destroy_node()

    def _stop_work(self) -> None:
        """Live: write the report. Training: stop after the current step (checkpointed)."""
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._stop.set()
        if self._session is not None:
            self._finish_live('stopped')
        if self._worker is not None:
            # the worker finishes its step / bag on its own; the lifecycle service is not
            # held hostage by a long step
            self._worker.join(JOIN_TIMEOUT_S)
            if self._worker.is_alive():
                self.get_logger().info('the job finishes its current step in the background')
            self._worker = None

    def _release(self) -> None:
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._pubs = {}
        self._job = None

    # -- live evaluation (executor thread) -----------------------------------------------------
    def _on_ground_truth(self, msg: PersonMeshArray) -> None:
        self._last_gt = time.monotonic()
        self._feed(msg, ground_truth=True)

    def _on_prediction(self, msg: PersonMeshArray) -> None:
        self._feed(msg, ground_truth=False)

    def _feed(self, msg: PersonMeshArray, ground_truth: bool) -> None:
        from romp_ros.evaluation.errors import EvaluationInputError
        from romp_ros.evaluation.people import PeopleFormatError, people_from_message, stamp_to_ns
        stamp = stamp_to_ns(msg.header.stamp)
        try:
            people, reason, detail = people_from_message(msg), None, ''
        except PeopleFormatError as err:
            people, reason, detail = None, 'bad_ground_truth' if ground_truth else \
                'inference_error', str(err)
            self.get_logger().warning(f'unusable {"ground truth" if ground_truth else "people"}'
                                      f' message at {stamp} ns: {err}')
        with self._session_lock:
            if self._session is None:
                return
            add = self._session.add_ground_truth if ground_truth else \
                self._session.add_prediction
            try:
                add(stamp, people, reason=reason, detail=detail)
            except EvaluationInputError as err:  # e.g. joints the protocol cannot use
                self.get_logger().warning(
                    f'{"ground truth" if ground_truth else "people"} message at {stamp} ns '
                    f'skipped: {err}')
                add(stamp, None, reason='bad_ground_truth' if ground_truth
                    else 'inference_error', detail=str(err))
            if ground_truth:
                self._progress.update(done=self._progress.done + 1)

    def _finish_live(self, state: str) -> None:
        with self._session_lock:
            session, self._session = self._session, None
        if session is None:
            return
        from romp_ros.evaluation.report import write_report
        try:
            report = session.finish()
            write_report(report, self._job.output_dir, plots=True)
        except Exception as err:  # the node stays up to tell what happened
            self._progress.update(state='failed', message=f'{type(err).__name__}: {err}')
            self.get_logger().error(f'live evaluation failed: {err}')
            return
        values = _headline(report.summary)
        self._progress.update(state=state, values=values,
                              message=f'report written to {self._job.output_dir}')
        self.get_logger().info(f'live evaluation report: {self._job.output_dir} '
                               f'({_describe(values)})')
        self._publish_progress()

    # -- batch jobs (worker thread) --------------------------------------------------------------
    def _run_training(self) -> None:
        from romp_ros.train.loop import train
        job, progress = self._job, self._progress
        total = job.max_steps or job.train_config.optim.max_steps
        progress.update(total=total, message=f'training into {job.output_dir}')

        def on_log(row: dict) -> None:
            numbers = {k: v for k, v in row.items()
                       if isinstance(v, (int, float)) and k != 'step'}
            progress.update(done=int(row['step']), values=numbers)

        try:
            summary = train(job.train_config, job.output_dir, resume=job.resume,
                            max_steps=job.max_steps, progress=False, on_log=on_log,
                            should_stop=self._stop.is_set)
        except Exception as err:  # reported on the progress topic and in the log
            self._job_failed(err)
            return
        stopped = summary.steps < total
        progress.update(done=summary.steps, state='stopped' if stopped else 'finished',
                        message=f'{summary.steps} steps; checkpoint '
                                f'{job.output_dir / "checkpoints" / "last.pth"}')
        self._job_ended()

    def _run_evaluation(self) -> None:
        from romp_ros.evaluation.runner import run_evaluation
        job, progress = self._job, self._progress
        items = len(job.evaluate_job.bags) or 1
        progress.update(total=items, message='evaluating')
        try:
            report = run_evaluation(job.evaluate_job, on_progress=lambda done, total:
                                    progress.update(done=done, total=total))
        except Exception as err:  # reported on the progress topic and in the log
            self._job_failed(err)
            return
        values = _headline(report.summary) if report is not None else {}
        progress.update(state='finished', values=values, done=progress.total,
                        message=f'report written to {job.output_dir}')
        self.get_logger().info(f'evaluation report: {job.output_dir} ({_describe(values)})')
        self._job_ended()

    def _job_failed(self, err: Exception) -> None:
        self._progress.update(state='failed', message=f'{type(err).__name__}: {err}')
        self.get_logger().error(f'{self._job.kind} failed: {err}')
        self._job_ended()

    def _job_ended(self) -> None:
        self._publish_progress()
        if self._job.exit_when_done:
            self._finished.set()

    # -- timer ---------------------------------------------------------------------------------
    def _tick(self) -> None:
        job = self._job
        if job is None:
            return
        if (job.kind == 'evaluate_live' and job.idle_timeout_s > 0 and self._last_gt is not None
                and time.monotonic() - self._last_gt > job.idle_timeout_s):
            self.get_logger().info(f'no ground truth for {job.idle_timeout_s:g} s: finishing')
            self._last_gt = None
            self._finish_live('finished')
            if job.exit_when_done:
                self._finished.set()
            return
        self._publish_progress()

    def _publish_progress(self) -> None:
        if self._progress is None or 'progress' not in self._pubs:
            return
        stamp = self.get_clock().now().to_msg()
        msg = self._progress.message_now(stamp)
        self._pubs['progress'].publish(msg)
        level = {'failed': DiagnosticStatus.ERROR, 'stopped': DiagnosticStatus.WARN}.get(
            msg.state, DiagnosticStatus.OK)
        values = [KeyValue(key='job', value=msg.job), KeyValue(key='state', value=msg.state),
                  KeyValue(key='done', value=str(msg.done)),
                  KeyValue(key='total', value=str(msg.total))]
        values += [KeyValue(key=n, value=f'{v:.6g}') for n, v in zip(msg.names, msg.values,
                                                                     strict=True)]
        status = DiagnosticStatus(level=level, name=STATUS_NAME, message=msg.message or msg.state,
                                  hardware_id=msg.job, values=values)
        array = DiagnosticArray(status=[status])
        array.header.stamp = stamp
        self._pubs['/diagnostics'].publish(array)


class _ForwardLog(logging.Handler):
    """The library's INFO+ log records go to this node's logger."""

    def __init__(self, node: OfflineNode) -> None:
        super().__init__(logging.INFO)
        self._node = node

    def emit(self, record: logging.LogRecord) -> None:
        self._node.log_at(record.levelno, record.getMessage())


_HEADLINE = ('mpjpe_mm', 'pa_mpjpe_mm', 'root_error_mm', 'pck3d_150_matched',
             'pck3d_150_all')


def _headline(summary: dict) -> dict[str, float]:
    """The report.json headline numbers as floats (NaN where null)."""
    values = {k: summary.get(k) for k in _HEADLINE}
    detection = summary.get('detection') or {}
    frames = summary.get('frames') or {}
    values.update({'f1': detection.get('f1'), 'precision': detection.get('precision'),
                   'recall': detection.get('recall'), 'frames_total': frames.get('total'),
                   'frames_scored': frames.get('scored')})
    return {k: (math.nan if v is None else float(v)) for k, v in values.items()}


def _describe(values: dict[str, float]) -> str:
    return ', '.join(f'{k} {v:.4g}' for k, v in values.items() if math.isfinite(v))


def main(args=None) -> int:
    """Run the node until SIGINT/SIGTERM, or until a batch job ends (``exit_when_done``).

    Exit status: 0 when the job finished, 1 when it failed or configure/activate failed, 2 for
    invalid parameters.
    """
    from rclpy.exceptions import InvalidParameterValueException, ParameterException
    return run_node(OfflineNode, NODE_NAME,
                    (InvalidParameterValueException, ParameterException), args)


if __name__ == '__main__':
    raise SystemExit(main())
