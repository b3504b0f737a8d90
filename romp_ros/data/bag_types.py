"""Message types for reading and writing ROS 2 bags without a ROS runtime (``rosbags``).

The standard types (sensor_msgs, geometry_msgs, std_msgs, ...) come with rosbags; this
package's own (``romp_ros/msg/PersonMesh`` ...) are registered from their ``.msg`` text, which
is found wherever the package was installed from:

1. next to the source tree (a checkout, ``pip install -e``, colcon's ``--symlink-install``);
2. in the ament index (``share/romp_ros/msg`` of a colcon install, via ``AMENT_PREFIX_PATH``);
3. inside the Python package (``romp_ros/msg_definitions``, copied there by a pip build).

The bytes rosbags writes with these types are the ones rclpy reads, and back
(``test/test_messages.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = 'romp_ros'
MESSAGE_NAMES = ('PersonMesh', 'PersonMeshArray', 'BodyModel', 'JobProgress')
PERSON_MESH_ARRAY = f'{PACKAGE}/msg/PersonMeshArray'
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
_PACKAGED_DIR = 'msg_definitions'


class MessageDefinitionsError(RuntimeError):
    """The package's .msg files cannot be found (a broken install)."""


def message_definitions_dir() -> Path:
    """The folder holding PersonMesh.msg and its siblings (see the module docstring)."""
    here = Path(__file__).resolve().parent  # romp_ros/data
    candidates = [here.parent.parent / 'msg']
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / 'share' / PACKAGE / 'msg')
    candidates.append(here.parent / _PACKAGED_DIR)
    for folder in candidates:
        if all((folder / f'{name}.msg').is_file() for name in MESSAGE_NAMES):
            return folder
    raise MessageDefinitionsError(
        f'the {PACKAGE} message definitions ({", ".join(MESSAGE_NAMES)}.msg) were not found in '
        f'{[str(c) for c in candidates]}; reinstall the package (pip install . or colcon build)')


def typestore():
    """A rosbags Typestore with the ROS 2 standard types and this package's messages."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    store = get_typestore(Stores.ROS2_HUMBLE)
    folder = message_definitions_dir()
    types: dict = {}
    for name in MESSAGE_NAMES:
        text = (folder / f'{name}.msg').read_text(encoding='utf-8')
        types.update(get_types_from_msg(text, f'{PACKAGE}/msg/{name}'))
    store.register(types)
    return store
