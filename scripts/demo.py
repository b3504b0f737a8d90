"""`make demo`: replay the bundled bag through the real romp_node and record what it publishes.

1. Model files: with ``ROMP_ROS_MODELS_DIR`` pointing at a folder prepared from the official
   downloads (``romp-ros prepare-models`` + ``romp-ros download ROMP.pkl``) the real weights are
   used. Otherwise a synthetic SMPL-format body model and seeded random weights are generated
   (the licence-gated files cannot be shipped): the pipeline then runs end to end, but the
   "people" it finds are whatever random weights respond to.
2. The installed ``romp_node`` starts as a separate process on an isolated ROS domain, with
   compressed image transport (what most robot bags store).
3. Every frame of test/data/demo_people.mcap is published with its camera_info; the demo waits
   for the node's PersonMeshArray of that frame before sending the next one.
4. Everything the node publishes is written to demo_output/outputs.mcap (rosbags), the overlay
   images to demo_output/overlay_strip.png, and a summary to the log.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import logging
import os
from pathlib import Path
import subprocess
import sys
import threading
import time

import cv2
import numpy as np

LOG = logging.getLogger('demo')
ROOT = Path(__file__).resolve().parents[1]
BAG = ROOT / 'test' / 'data' / 'demo_people.mcap'
NODE = ROOT / 'install' / 'romp_ros' / 'lib' / 'romp_ros' / 'romp_node'
RECORDED = {  # topic -> ROS type of what romp_node publishes there
    '/people': 'romp_ros/msg/PersonMeshArray',
    '/markers': 'visualization_msgs/msg/MarkerArray',
    '/tf': 'tf2_msgs/msg/TFMessage',
    '/overlay': 'sensor_msgs/msg/Image',
    '/diagnostics': 'diagnostic_msgs/msg/DiagnosticArray',
    '/body_model': 'romp_ros/msg/BodyModel',
}
FRAME_TIMEOUT_S = 120.0


class DemoError(RuntimeError):
    """The demo could not run; the message says why and what to do."""


@dataclass
class Recording:
    """Everything received from the node, in arrival order."""

    raw: list[tuple[str, int, bytes]] = field(default_factory=list)
    people_stamps: dict[int, int] = field(default_factory=dict)  # stamp ns -> people count
    track_ids: set[int] = field(default_factory=set)
    tf_frames: set[str] = field(default_factory=set)
    overlays: list[np.ndarray] = field(default_factory=list)  # RGB
    lock: threading.Lock = field(default_factory=threading.Lock)


def prepare_assets(out: Path) -> tuple[Path, Path, bool]:
    """(models_dir, checkpoint, official?) for the node."""
    official = os.environ.get('ROMP_ROS_MODELS_DIR')
    if official:
        models = Path(official).expanduser()
        checkpoint = models / 'ROMP.pkl'
        if not checkpoint.is_file():
            raise DemoError(f'ROMP_ROS_MODELS_DIR={models} has no ROMP.pkl: run '
                            f'`romp-ros download ROMP.pkl --models-dir {models}`')
        return models, checkpoint, True
    from romp_ros.core.body.prepare import prepare_models
    from romp_ros.synthetic.body_model import write_synthetic_smpl_files
    from romp_ros.testing.seeded_weights import SEEDED_VERSION, write_seeded_checkpoint
    assets = out / 'assets'
    models = assets / 'models'
    checkpoint = assets / f'romp_seeded_v{SEEDED_VERSION}.pth'
    if not (models / 'manifest.json').is_file():
        files = write_synthetic_smpl_files(assets / 'synthetic_smpl')
        prepare_models(smpl=files.smpl_pkl, smil=files.smil_pkl, extra=files.source_dir,
                       models_dir=models, progress=False)
    if not checkpoint.is_file():
        LOG.info('generating seeded ROMP weights (once, ~20 s)')
        write_seeded_checkpoint(checkpoint, 'romp', 'hrnet32', seed=0)
    return models, checkpoint, False


def start_node(models: Path, checkpoint: Path, log_path: Path) -> subprocess.Popen:
    if not NODE.exists():
        raise DemoError(f'{NODE} is missing: run `make setup`')
    cmd = [str(NODE), '--ros-args', '-p', f'models_dir:={models}', '-p',
           f'checkpoint:={checkpoint}', '-p', 'device:=cpu', '-p', 'image_transport:=compressed',
           '-p', 'qos_reliability:=reliable', '-p', 'publish_overlay:=true',
           '-p', 'track_min_hits:=1', '-r', 'image:=/camera/image_raw',
           '-r', 'camera_info:=/camera/camera_info']
    LOG.info('starting %s', ' '.join(cmd))
    return subprocess.Popen(cmd, stdout=log_path.open('w'), stderr=subprocess.STDOUT)


def read_bag() -> list[tuple[str, str, bytes]]:
    """(topic, ROS type, CDR bytes) of the bundled bag, in time order."""
    from rosbags.highlevel import AnyReader
    with AnyReader([BAG]) as reader:
        return [(c.topic, c.msgtype, bytes(raw)) for c, _, raw in reader.messages()]


def run_demo(out: Path) -> Recording:
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from tf2_msgs.msg import TFMessage

    from romp_ros.msg import PersonMeshArray

    models, checkpoint, official = prepare_assets(out)
    LOG.info('weights: %s (%s)', checkpoint,
             'official' if official else 'seeded random weights + synthetic body model')
    node_log = out / 'romp_node.log'
    proc = start_node(models, checkpoint, node_log)
    rec = Recording()
    rclpy.init()
    player = rclpy.create_node('romp_demo_player')
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    img_pub = player.create_publisher(CompressedImage, '/camera/image_raw/compressed', reliable)
    info_pub = player.create_publisher(CameraInfo, '/camera/camera_info', reliable)
    types = {'/people': PersonMeshArray, '/tf': TFMessage, '/overlay': Image}

    def recorder(topic: str):
        def callback(raw: bytes) -> None:
            with rec.lock:
                rec.raw.append((topic, time.time_ns(), raw))
                if topic in types:
                    msg = deserialize_message(raw, types[topic])
                    if topic == '/people':
                        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                        rec.people_stamps[stamp] = len(msg.people)
                        rec.track_ids.update(p.id for p in msg.people)
                    elif topic == '/tf':
                        rec.tf_frames.update(t.child_frame_id for t in msg.transforms)
                    else:
                        pixels = np.frombuffer(bytes(msg.data), np.uint8).reshape(
                            msg.height, msg.step)[:, :msg.width * 3].reshape(
                            msg.height, msg.width, 3)
                        rgb = pixels[:, :, ::-1] if msg.encoding == 'bgr8' else pixels
                        rec.overlays.append(rgb)
        return callback

    from diagnostic_msgs.msg import DiagnosticArray
    from visualization_msgs.msg import MarkerArray

    from romp_ros.msg import BodyModel
    sub_types = {'/people': PersonMeshArray, '/markers': MarkerArray, '/tf': TFMessage,
                 '/overlay': Image, '/diagnostics': DiagnosticArray, '/body_model': BodyModel}
    for topic, msg_type in sub_types.items():
        qos = latched if topic == '/body_model' else reliable
        player.create_subscription(msg_type, topic, recorder(topic), qos, raw=True)

    try:
        deadline = time.monotonic() + FRAME_TIMEOUT_S
        while img_pub.get_subscription_count() == 0:
            rclpy.spin_once(player, timeout_sec=0.2)
            if proc.poll() is not None:
                raise DemoError(f'romp_node exited ({proc.returncode}) during start-up; its '
                                f'log:\n{node_log.read_text()[-2000:]}')
            if time.monotonic() > deadline:
                raise DemoError('romp_node did not subscribe within '
                                f'{FRAME_TIMEOUT_S:.0f} s; see {node_log}')
        frames = [m for m in read_bag() if m[0] == '/camera/image_raw/compressed']
        infos = [m for m in read_bag() if m[0] == '/camera/camera_info']
        for index, ((_, _, img_raw), (_, _, info_raw)) in enumerate(zip(frames, infos,
                                                                         strict=True)):
            image = deserialize_message(img_raw, CompressedImage)
            stamp = image.header.stamp.sec * 10**9 + image.header.stamp.nanosec
            info_pub.publish(deserialize_message(info_raw, CameraInfo))
            time.sleep(0.05)  # camera_info first, as a camera driver does
            img_pub.publish(image)
            deadline = time.monotonic() + FRAME_TIMEOUT_S
            while stamp not in rec.people_stamps:
                rclpy.spin_once(player, timeout_sec=0.1)
                if proc.poll() is not None:
                    raise DemoError(f'romp_node exited ({proc.returncode}); its log:\n'
                                    f'{node_log.read_text()[-2000:]}')
                if time.monotonic() > deadline:
                    raise DemoError(f'no output for frame {index} within '
                                    f'{FRAME_TIMEOUT_S:.0f} s; see {node_log}')
            LOG.info('frame %2d/%d: %d people', index + 1, len(frames),
                     rec.people_stamps[stamp])
        end = time.monotonic() + 3.0  # let the overlay / markers of the last frame arrive
        while time.monotonic() < end:
            rclpy.spin_once(player, timeout_sec=0.1)
    finally:
        player.destroy_node()
        rclpy.try_shutdown()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rec


def write_outputs(rec: Recording, out: Path) -> tuple[Path, Path | None]:
    """The output bag (every message as published) and the overlay strip."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    for name in ('PersonMesh', 'PersonMeshArray', 'BodyModel'):
        types.update(get_types_from_msg((ROOT / 'msg' / f'{name}.msg').read_text(),
                                        f'romp_ros/msg/{name}'))
    store.register(types)
    bag_dir = out / 'outputs'
    if bag_dir.exists():
        for f in bag_dir.iterdir():
            f.unlink()
        bag_dir.rmdir()
    with Writer(bag_dir, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=store)
                 for topic, msgtype in RECORDED.items()}
        for topic, t_ns, raw in rec.raw:
            writer.write(conns[topic], t_ns, raw)
    strip = None
    if rec.overlays:
        picks = rec.overlays[:: max(1, len(rec.overlays) // 4)][:4]
        small = [cv2.resize(im, (320, 240), interpolation=cv2.INTER_AREA)
                 for im in picks]
        strip = out / 'overlay_strip.png'
        cv2.imwrite(str(strip), np.ascontiguousarray(np.hstack(small)[:, :, ::-1]))
    return bag_dir, strip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, default=ROOT / 'demo_output',
                        help='output folder (default: demo_output/)')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='[demo] %(message)s', stream=sys.stderr)
    os.environ.setdefault('ROS_DOMAIN_ID', str(90 + os.getpid() % 10))
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        rec = run_demo(args.out)
        bag, strip = write_outputs(rec, args.out)
    except DemoError as err:
        LOG.error('demo failed: %s', err)
        return 1
    counts = list(rec.people_stamps.values())
    LOG.info('demo finished: %d frames, %s people per frame, track ids %s', len(counts),
             counts, sorted(rec.track_ids))
    LOG.info('TF frames: %s', ', '.join(sorted(rec.tf_frames)[:8]) +
             (' ...' if len(rec.tf_frames) > 8 else ''))
    LOG.info('recorded %d messages -> %s', len(rec.raw), bag)
    if strip:
        LOG.info('overlay strip -> %s', strip)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
