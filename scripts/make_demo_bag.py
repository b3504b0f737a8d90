"""Write the small bundled demo bag (test/data/demo_people.mcap), deterministically.

Twelve 640x480 JPEG frames (sensor_msgs/CompressedImage, the form most robot bags store)
at 10 Hz with a calibrated sensor_msgs/CameraInfo, made from the photographs that ship with
scikit-image: the astronaut walks across a street-like backdrop. Re-run only to change the
demo input; `make demo` reads the committed file.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
import skimage.data

LOG = logging.getLogger('make_demo_bag')
DEFAULT_OUT = Path(__file__).resolve().parents[1] / 'test' / 'data' / 'demo_people.mcap'
WIDTH, HEIGHT, FRAMES, RATE_HZ = 640, 480, 12, 10.0
FRAME_ID = 'camera_optical_frame'
K = (520.0, 520.0, 320.0, 240.0)


def render_frames() -> list[np.ndarray]:
    """RGB frames: a backdrop with the astronaut photo sliding across it."""
    backdrop = cv2.resize(skimage.data.coffee(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    backdrop = (backdrop * 0.6).astype(np.uint8)
    person = cv2.resize(skimage.data.astronaut(), (300, 300), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(FRAMES):
        frame = backdrop.copy()
        x = 20 + i * (WIDTH - 340) // (FRAMES - 1)
        frame[150:450, x:x + 300] = person
        frames.append(frame)
    return frames


def write_bag(out: Path) -> Path:
    """Write the bag (overwrites); returns its path."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    comp_t = store.types['sensor_msgs/msg/CompressedImage']
    info_t = store.types['sensor_msgs/msg/CameraInfo']
    header_t = store.types['std_msgs/msg/Header']
    time_t = store.types['builtin_interfaces/msg/Time']
    roi_t = store.types['sensor_msgs/msg/RegionOfInterest']
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out.with_suffix('')
    if out.exists():
        out.unlink()
    with Writer(tmp_dir, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        img_conn = writer.add_connection('/camera/image_raw/compressed', comp_t.__msgtype__,
                                         typestore=store)
        info_conn = writer.add_connection('/camera/camera_info', info_t.__msgtype__,
                                          typestore=store)
        for i, frame in enumerate(render_frames()):
            t_ns = 1_700_000_000 * 10**9 + int(i * 1e9 / RATE_HZ)
            header = header_t(stamp=time_t(sec=t_ns // 10**9, nanosec=t_ns % 10**9),
                              frame_id=FRAME_ID)
            info = info_t(
                header=header, height=HEIGHT, width=WIDTH, distortion_model='plumb_bob',
                d=np.zeros(5), k=np.array([K[0], 0, K[2], 0, K[1], K[3], 0, 0, 1.0]),
                r=np.eye(3).ravel(),
                p=np.array([K[0], 0, K[2], 0, 0, K[1], K[3], 0, 0, 0, 1.0, 0]),
                binning_x=0, binning_y=0,
                roi=roi_t(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            ok, jpeg = cv2.imencode('.jpg', frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
            if not ok:
                raise RuntimeError('JPEG encoding failed')
            msg = comp_t(header=header, format='jpeg', data=jpeg.reshape(-1))
            writer.write(info_conn, t_ns, store.serialize_cdr(info, info_t.__msgtype__))
            writer.write(img_conn, t_ns, store.serialize_cdr(msg, comp_t.__msgtype__))
    # rosbags writes a folder (metadata.yaml + .mcap); keep the single self-describing file
    mcap = next(tmp_dir.glob('*.mcap'))
    mcap.replace(out)
    for leftover in tmp_dir.iterdir():
        leftover.unlink()
    tmp_dir.rmdir()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='output .mcap file')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    path = write_bag(args.out)
    LOG.info('wrote %s (%d bytes)', path, path.stat().st_size)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
