"""romp_node latency: image received -> PersonMeshArray published, at 30 Hz input.

    python bench/node_latency.py               # table -> docs/performance.md
    python bench/node_latency.py --frames 10 --no-write

The real node (romp_ros.ros.romp_node.RompNode) runs in this process with its own executor, as
`ros2 run` gives it; another process plays the camera driver and RViz: it publishes the oracle
1280x720 frame at 30 Hz and subscribes to the outputs (so the node pays for receiving the images
and publishing to another process, and shares no Python interpreter with the camera).
Per processed frame the node's own clock gives (its NodeStats samples, recorded as they come):

* latency: image callback -> people published (includes waiting for the worker, which at
  30 Hz is most of it on a CPU: newer frames replace the waiting one);
* core: ``Estimator.predict`` alone;
* to people: the node's own time until the PersonMeshArray is published, i.e. the worker's time
  from taking the frame to publishing its people minus ``predict``: decoding, camera lookup,
  tracking and smoothing, the message conversion and publish (issue 10's target: < 2 ms);
* node overhead: the worker's whole time for the frame minus ``predict``: the above plus the
  TF message (16 frames per person) and handing markers over.

Variants: one person without vertices (``max_people: 1``, the target case), with vertices in
the message, and with a markers subscriber (the mesh markers built on the visualisation thread).

A second table times the same per-frame steps alone, in this process on one thread, with no
transport and no other thread: decoding, tracking with smoothing, the people message (built and
serialised) and the TF message. Its figures do not depend on how busy the machine's other core
is, so they show what a change to those steps buys.
"""

from __future__ import annotations

import argparse
import datetime
import logging
from pathlib import Path
import tempfile
import threading
import time

import numpy as np
from runtime_fixtures import (
    PERFORMANCE_DOC,
    SeededSetup,
    frame_1280x720,
    load_average,
)
import torch

from romp_ros.cli.doc_section import write_doc_section

LOG = logging.getLogger('bench.node_latency')
DOC_SECTION, STEPS_DOC_SECTION = 'node-latency', 'node-steps'
INPUT_HZ = 30.0


def _percentiles(values_ms: list[float]) -> str:
    if not values_ms:
        return '- / -'
    return f'{np.percentile(values_ms, 50):.1f} / {np.percentile(values_ms, 99):.1f}'


def _camera_process(stop, markers: bool) -> None:
    """Another process, as a camera driver and RViz are: 1280x720 rgb8 images at 30 Hz,
    stamped with the time of sending, and (``markers``) a subscriber to the markers."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from romp_ros.ros.romp_node import OUTPUT_TOPICS

    rclpy.init()
    peer = rclpy.create_node('latency_camera')
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    peer.create_subscription(OUTPUT_TOPICS['people'], 'people', lambda msg: None, reliable)
    if markers:
        peer.create_subscription(OUTPUT_TOPICS['markers'], 'markers', lambda msg: None,
                                 reliable)
    image_pub = peer.create_publisher(Image, 'image', reliable)
    pixels = frame_1280x720()
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding='rgb8',
                step=pixels.shape[1] * 3, data=pixels.tobytes())
    msg.header.frame_id = 'camera_optical'
    period = 1.0 / INPUT_HZ
    started = next_send = time.monotonic()
    try:
        while not stop.is_set():
            rclpy.spin_once(peer, timeout_sec=0.0)
            now = time.monotonic()
            if now >= next_send:
                next_send = max(next_send, now - period)  # skip ahead, never burst
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(
                    round((1.0 + now - started) * 1e9), 1_000_000_000)
                image_pub.publish(msg)
                next_send += period
            time.sleep(max(0.0, min(next_send - time.monotonic(), 0.005)))
    finally:
        peer.destroy_node()
        rclpy.shutdown()


def measure(setup: SeededSetup, params: dict, frames: int, markers: bool) -> dict[str, list]:
    """Run the node on a 30 Hz stream until ``frames`` frames were processed."""
    import multiprocessing

    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from romp_ros.ros.romp_node import RompNode

    context = Context()
    rclpy.init(context=context)
    overrides = [Parameter(name, value=value) for name, value in params.items()]
    node = RompNode(context=context, parameter_overrides=overrides)
    # the node's own executor, as `ros2 run` gives it (romp_node.main)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    samples: dict[str, list] = {'latency': [], 'processing': [], 'core': [], 'people': [],
                                'to_people': []}
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    spawn = multiprocessing.get_context('spawn')
    stop = spawn.Event()
    camera = spawn.Process(target=_camera_process, args=(stop, markers), daemon=True)
    try:
        if (node.trigger_configure() != TransitionCallbackReturn.SUCCESS
                or node.trigger_activate() != TransitionCallbackReturn.SUCCESS):
            raise RuntimeError('the node did not configure and activate (its log says why)')
        predict = node._estimator.predict  # instrumented: the benchmark reads the node's clock
        frame_done = node._stats.frame_done
        decode = node._decode
        people_pub = node._pubs['people']
        publish_people = people_pub.publish
        core_times, taken, to_people = [], [], []

        def timed_decode(frame):
            taken.append(time.monotonic())  # the worker's first step for a frame
            return decode(frame)

        def timed_publish(msg):
            publish_people(msg)
            to_people.append(time.monotonic() - taken[-1])

        def timed_predict(*args, **kwargs):
            start = time.monotonic()
            out = predict(*args, **kwargs)
            core_times.append(time.monotonic() - start)
            return out

        def recording_frame_done(processing_s, latency_s, people, intrinsics):
            samples['latency'].append(latency_s * 1e3)
            samples['processing'].append(processing_s * 1e3)
            samples['core'].append(core_times[-1] * 1e3 if core_times else float('nan'))
            samples['to_people'].append(to_people[-1] * 1e3 if to_people else float('nan'))
            samples['people'].append(people)
            frame_done(processing_s, latency_s, people, intrinsics)

        node._estimator.predict = timed_predict
        node._stats.frame_done = recording_frame_done
        node._decode = timed_decode
        people_pub.publish = timed_publish
        camera.start()
        warm = 3  # the first frames pay for lazy initialisation
        deadline = time.monotonic() + 600
        while len(samples['latency']) < frames + warm and time.monotonic() < deadline:
            if not camera.is_alive():
                raise RuntimeError('the camera process ended early')
            time.sleep(0.05)
        for key in samples:
            samples[key] = samples[key][warm:]
        samples['overhead'] = [p - c for p, c in zip(samples['processing'], samples['core'],
                                                     strict=True)]
        samples['people_overhead'] = [p - c for p, c in zip(samples['to_people'],
                                                            samples['core'], strict=True)]
    finally:
        stop.set()
        if camera.pid is not None:
            camera.join(30)
        node.trigger_shutdown()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return samples


def measure_steps(params: dict, repeats: int) -> dict[str, list[float]]:
    """The node's per-frame steps after ``predict``, alone on this thread, ms per frame.

    One prediction of the oracle frame is replayed ``repeats`` times with advancing stamps
    and a few millimetres of noise on the translation (so that the filters really filter).
    """
    import dataclasses

    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from romp_ros.core.estimator import Estimator
    from romp_ros.core.image_decoding import decode_raw_image
    from romp_ros.ros import conversions
    from romp_ros.ros.params import node_config
    from romp_ros.ros.person_ids import make_id_source

    config = node_config({name: value for name, value in params.items()
                          if name not in ('autostart', 'qos_reliability')})
    estimator = Estimator(config.estimator)
    pixels = frame_1280x720()
    predicted = estimator.predict([pixels])[0]
    if not config.publish_vertices:
        predicted = dataclasses.replace(predicted, verts=None)
    ids = make_id_source(config, repose=estimator.pose_bodies)
    image = Image(height=pixels.shape[0], width=pixels.shape[1], encoding='rgb8',
                  step=pixels.shape[1] * 3, data=pixels.tobytes())
    image.header.frame_id = 'camera_optical'
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {'decode': [], 'track': [], 'people': [], 'tf': []}
    warm = 20
    for frame in range(warm + repeats):
        image.header.stamp.sec, image.header.stamp.nanosec = divmod(
            round(1e9 + frame * 1e9 / INPUT_HZ), 1_000_000_000)
        stamp_s = image.header.stamp.sec + image.header.stamp.nanosec * 1e-9
        noisy = dataclasses.replace(predicted, cam_trans=(
            predicted.cam_trans + rng.normal(0.0, 0.005, predicted.cam_trans.shape)
        ).astype(np.float32))
        ticks = [time.perf_counter()]
        decode_raw_image(image)
        ticks.append(time.perf_counter())
        result, identities = ids.update(noisy, stamp_s)
        ticks.append(time.perf_counter())
        serialize_message(conversions.person_mesh_array(
            result, image.header, identities, config.estimator.model,
            config.estimator.backbone, config.publish_vertices))
        ticks.append(time.perf_counter())
        serialize_message(conversions.tf_message(result, image.header, identities,
                                                 config.tf_prefix, config.publish_joint_frames))
        ticks.append(time.perf_counter())
        if frame >= warm:
            for key, start, end in zip(times, ticks, ticks[1:], strict=False):
                times[key].append((end - start) * 1e3)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=30, help='processed frames per variant')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch / runtime threads (default 1: the 30 Hz camera process '
                             'needs the other core)')
    parser.add_argument('--runtime', default='torch', help='runtime of the node')
    parser.add_argument('--root', type=Path, default=Path(tempfile.gettempdir()) / 'romp_bench',
                        help='where the synthetic body model and seeded weights are cached')
    parser.add_argument('--steps-repeats', type=int, default=300,
                        help='frames replayed per case for the steps-alone table')
    parser.add_argument('--steps-only', action='store_true',
                        help='only the steps-alone table (no node, no camera process)')
    parser.add_argument('--no-write', action='store_true', help='do not update the docs')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    torch.set_num_threads(args.threads)
    setup = SeededSetup(args.root).prepare()
    base = {'model': 'romp', 'backbone': 'hrnet32', 'device': 'cpu',
            'checkpoint': str(setup.checkpoint('romp')), 'models_dir': str(setup.models_dir),
            'autostart': False, 'max_people': 1, 'runtime': args.runtime,
            'publish_vertices': False, 'publish_overlay': False, 'publish_birds_eye': False,
            # the seeded weights score people ~0.3-0.8, and a CPU processes a frame a second:
            # low tracking thresholds and long coasting so that the person is confirmed and
            # published every frame (tracking stays in the measured path)
            'track_low_conf': 0.1, 'track_high_conf': 0.2, 'track_new_conf': 0.2,
            'track_min_hits': 1, 'track_tentative_max_coast_s': 5.0,
            # 2.7 MB images between processes: best effort loses most of them here (one lost
            # UDP fragment drops the message); a robot would use shared-memory transport
            'qos_reliability': 'reliable'}
    variants = (('1 person, no vertices', base, False),
                ('1 person, no vertices, smoothing off', {**base, 'smoothing': 'off'}, False),
                ('1 person, no vertices, tracking off', {**base, 'tracking': False}, False),
                ('1 person, vertices', {**base, 'publish_vertices': True}, False),
                ('1 person, markers subscribed', base, True))
    steps_rows = ['| case | decode | track and smooth | people message | to people, all | '
                  'TF message |', '|---|---|---|---|---|---|']
    for label, params, _ in variants[:3]:
        t = measure_steps(params, args.steps_repeats)
        to_people = [a + b + c for a, b, c in zip(t['decode'], t['track'], t['people'],
                                                   strict=True)]
        steps_rows.append(f'| {label} | ' + ' | '.join(
            f'{np.percentile(v, 50):.2f}' for v in (t['decode'], t['track'], t['people'],
                                                   to_people, t['tf'])) + ' |')
        LOG.info(steps_rows[-1])
    steps_text = '\n'.join([
        f'{datetime.date.today().isoformat()}, CPU, one thread, p50 ms per frame over '
        f'{args.steps_repeats} frames, ROMP-HRNet-32 seeded weights, one person; 1-minute '
        f'load average {load_average()}.', '', *steps_rows])
    LOG.info('%s', steps_text)
    if not args.no_write:
        write_doc_section(PERFORMANCE_DOC, steps_text, name=STEPS_DOC_SECTION)
    if args.steps_only:
        return 0
    rows = ['| case | frames | people | latency p50 / p99 ms | core predict p50 / p99 ms '
            '| to people published, over predict, p50 / p99 ms '
            '| whole node overhead p50 / p99 ms |', '|---|---|---|---|---|---|---|']
    load_before = load_average()
    for label, params, markers in variants:
        s = measure(setup, params, args.frames, markers)
        rows.append(f'| {label} | {len(s["latency"])} | {np.mean(s["people"]):.1f} | '
                    f'{_percentiles(s["latency"])} | {_percentiles(s["core"])} | '
                    f'{_percentiles(s["people_overhead"])} | {_percentiles(s["overhead"])} |')
        LOG.info(rows[-1])
    text = '\n'.join([
        f'{datetime.date.today().isoformat()}, CPU (2 cores), {args.threads} threads, runtime '
        f'{args.runtime}, ROMP-HRNet-32 seeded weights, 1280x720 rgb8 images at '
        f'{INPUT_HZ:.0f} Hz; 1-minute load average {load_before} before / {load_average()} '
        'after.', '', *rows])
    LOG.info('%s', text)
    if not args.no_write:
        write_doc_section(PERFORMANCE_DOC, text, name=DOC_SECTION)
        LOG.info('updated %s', PERFORMANCE_DOC)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
