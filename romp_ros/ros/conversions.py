"""Core results -> ROS messages: PersonMeshArray, TF, RViz markers, BodyModel.

Every 3D output is in the image's optical frame (REP-103: x right, y down, z forward, metres)
and carries the input image's header (stamp and frame_id). Heavy arrays are converted with
numpy and handed to the messages as ``array.array`` (no per-element Python loop), except for
geometry_msgs/Point lists, which rclpy only accepts as message objects.
"""

from __future__ import annotations

import array

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped, Vector3
import numpy as np
from std_msgs.msg import ColorRGBA, Header
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import Marker, MarkerArray

from romp_ros.core.body.joint_names import ROS4HRI_JOINTS, SMPL_PARENTS, SMPL_SKELETON_EDGES
from romp_ros.core.body.kinematic_tree import kinematic_levels
from romp_ros.core.geometry.rotation_numpy import (
    axis_angle_to_quaternion,
    quaternion_multiply,
    standardize_quaternions,
)
from romp_ros.core.results import FrameResult
from romp_ros.msg import BodyModel, PersonMesh, PersonMeshArray
from romp_ros.ros.person_ids import Identities

NUM_SMPL_JOINTS = len(SMPL_PARENTS)
_SMPL_PARENT_INDEX = np.array(SMPL_PARENTS)
_SMPL_LEVELS = kinematic_levels(_SMPL_PARENT_INDEX)
MARKER_NS_MESH = 'mesh'
MARKER_NS_SKELETON = 'skeleton'
MARKER_NS_LABEL = 'label'
SKELETON_WIDTH_M = 0.02
LABEL_HEIGHT_M = 0.12
LABEL_ABOVE_HEAD_M = 0.3
# 12 well-separated colours (RGB 0..1); a person's colour is PALETTE[id % 12].
PALETTE = np.array([
    (0.90, 0.10, 0.29), (0.24, 0.71, 0.29), (1.00, 0.88, 0.10), (0.00, 0.51, 0.78),
    (0.96, 0.51, 0.19), (0.57, 0.12, 0.71), (0.27, 0.94, 0.94), (0.94, 0.20, 0.90),
    (0.82, 0.96, 0.24), (0.98, 0.75, 0.83), (0.00, 0.50, 0.50), (0.67, 0.43, 0.16),
], dtype=np.float32)


def person_color(person_id: int) -> tuple[float, float, float]:
    """RGB (0..1) colour of a person id, the same in markers and the overlay."""
    r, g, b = PALETTE[int(person_id) % len(PALETTE)]
    return float(r), float(g), float(b)


def copy_header(header: Header) -> Header:
    """A copy of an image header (stamp and frame_id)."""
    return Header(stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec),
                  frame_id=header.frame_id)


# -- rotations ----------------------------------------------------------------------------------


def global_orientations(thetas: np.ndarray) -> np.ndarray:
    """(N, 4) xyzw quaternions (w >= 0) of the SMPL global orientations ``thetas[:, :3]``."""
    return standardize_quaternions(axis_angle_to_quaternion(np.asarray(thetas)[:, :3]))


def joint_orientations(thetas: np.ndarray) -> np.ndarray:
    """(N, 24, 4) xyzw quaternions (w >= 0) of each SMPL joint's global rotation.

    Forward kinematics of the axis-angle pose, G_0 = R_0 (the global orientation) and
    G_j = G_parent R_j, as quaternion products, one kinematic level at a time.
    """
    local = axis_angle_to_quaternion(
        np.asarray(thetas).reshape(-1, NUM_SMPL_JOINTS, 3))  # (N, 24, 4)
    world = local.copy()
    for level in _SMPL_LEVELS:
        world[:, level] = quaternion_multiply(world[:, _SMPL_PARENT_INDEX[level]],
                                              local[:, level])
    return standardize_quaternions(world)


def _quaternion(q: np.ndarray) -> Quaternion:
    return Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))


def _points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=x, y=y, z=z) for x, y, z in np.asarray(xyz, dtype=np.float64).tolist()]


def _floats(values: np.ndarray) -> array.array:
    return array.array('f', np.ascontiguousarray(values, dtype=np.float32).tobytes())


# -- PersonMeshArray ----------------------------------------------------------------------------


def keypoint_boxes(pj2d: np.ndarray) -> np.ndarray:
    """(N, 4) [u_min, v_min, u_max, v_max] of each person's projected joints, pixels."""
    if pj2d.shape[0] == 0:
        return np.zeros((0, 4), np.float32)
    return np.concatenate([pj2d.min(axis=1), pj2d.max(axis=1)], axis=1).astype(np.float32)


def person_mesh_array(result: FrameResult, header: Header, identities: Identities, model: str,
                      backbone: str, publish_vertices: bool) -> PersonMeshArray:
    """The PersonMeshArray of one frame, people in ``result``'s order (descending confidence).

    ``root_pose`` is the pelvis (joint 0) in the camera frame with the SMPL global orientation;
    ``joints_3d`` and ``vertices`` are in the camera frame; vertices only when
    ``publish_vertices``. ``translation_from_camera_info`` per person:
    :meth:`FrameResult.translation_from_camera`.
    """
    msg = PersonMeshArray(header=copy_header(header), model=model, backbone=backbone,
                          joint_names=list(result.joint_names),
                          intrinsics_from_camera_info=result.intrinsics.source == 'camera')
    count = result.num_people
    if count == 0:
        return msg
    joints_cam = result.joints_camera()
    quats = global_orientations(result.smpl_thetas)
    boxes = keypoint_boxes(result.pj2d_org)
    verts_cam = result.verts_camera() if publish_vertices else None
    from_camera = result.translation_from_camera()
    velocities = identities.velocities
    for k in range(count):
        person = PersonMesh(id=int(identities.ids[k]), track_state=int(identities.states[k]),
                            track_age=int(identities.ages[k]),
                            confidence=float(result.center_confs[k]))
        pelvis = joints_cam[k, 0]
        person.root_pose = Pose(position=Point(x=float(pelvis[0]), y=float(pelvis[1]),
                                               z=float(pelvis[2])),
                                orientation=_quaternion(quats[k]))
        if velocities is not None:
            vx, vy, vz = (float(v) for v in velocities[k])
            person.root_velocity = Vector3(x=vx, y=vy, z=vz)
            person.has_velocity = True
        person.smpl_pose = np.asarray(result.smpl_thetas[k], dtype=np.float32)
        person.smpl_shape = _floats(result.smpl_betas[k])
        person.weak_perspective_camera = np.asarray(result.cam[k], dtype=np.float32)
        tx, ty, tz = (float(v) for v in result.cam_trans[k])
        person.translation = Vector3(x=tx, y=ty, z=tz)
        person.translation_from_camera_info = bool(from_camera[k])
        person.joints_3d = _points(joints_cam[k])
        person.keypoints_2d = _floats(result.pj2d_org[k].reshape(-1))
        person.bbox = boxes[k]
        if verts_cam is not None:
            person.vertices = _floats(verts_cam[k].reshape(-1))
        msg.people.append(person)
    return msg


# -- TF -----------------------------------------------------------------------------------------


def body_frame(prefix: str, person_id: int) -> str:
    """The ROS4HRI body frame name of a person: '<prefix>body_<id>'."""
    return f'{prefix}body_{int(person_id)}'


def joint_frame(prefix: str, part: str, person_id: int) -> str:
    """A ROS4HRI body-part frame name: '<prefix><part>_<id>', e.g. 'head_3'."""
    return f'{prefix}{part}_{int(person_id)}'


def tf_message(result: FrameResult, header: Header, identities: Identities, prefix: str,
               joint_frames: bool) -> TFMessage:
    """TF of each person, parented to the camera frame ``header.frame_id``.

    ``body_<id>``: at the pelvis, rotated by the SMPL global orientation. With ``joint_frames``
    also the ROS4HRI parts of :data:`ROS4HRI_JOINTS` (``head_<id>``, ``l_wrist_<id>``, ...) at
    their joints, rotated by each joint's global rotation.
    """
    msg = TFMessage()
    count = result.num_people
    if count == 0:
        return msg
    joints_cam = result.joints_camera()
    body_quats = global_orientations(result.smpl_thetas)
    parts: list[tuple[str, int]] = []
    if joint_frames:
        index = {name: i for i, name in enumerate(result.joint_names)}
        parts = [(part, index[joint]) for part, joint in ROS4HRI_JOINTS.items() if joint in index]
        joint_quats = joint_orientations(result.smpl_thetas)
    for k in range(count):
        pid = identities.ids[k]
        msg.transforms.append(_transform(header, body_frame(prefix, pid), joints_cam[k, 0],
                                         body_quats[k]))
        for part, j in parts:
            quat = joint_quats[k, j] if j < NUM_SMPL_JOINTS else body_quats[k]
            msg.transforms.append(_transform(header, joint_frame(prefix, part, pid),
                                             joints_cam[k, j], quat))
    return msg


def coasting_transforms(header: Header, identities: Identities, prefix: str
                        ) -> list[TransformStamped]:
    """``body_<id>`` of tracks unseen in this frame, at their predicted pelvis position.

    Only the body frame: joint positions of an unseen person would be pure invention.
    """
    if not identities.coasting_ids:
        return []
    quats = global_orientations(np.asarray(identities.coasting_thetas))
    return [_transform(header, body_frame(prefix, pid), identities.coasting_roots[k], quats[k])
            for k, pid in enumerate(identities.coasting_ids)]


def _transform(header: Header, child: str, xyz: np.ndarray, quat: np.ndarray) -> TransformStamped:
    out = TransformStamped(header=copy_header(header), child_frame_id=child)
    out.transform.translation = Vector3(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))
    out.transform.rotation = _quaternion(quat)
    return out


# -- markers ------------------------------------------------------------------------------------


class MarkerPublisherState:
    """Builds each frame's MarkerArray and deletes the markers of people who vanished.

    RViz keeps a marker until it is replaced or deleted, so the (namespace, id) pairs sent in
    the previous frame are remembered and those not sent again get a DELETE: no ghost markers.
    """

    def __init__(self) -> None:
        """Nothing published yet."""
        self._previous: set[tuple[str, int]] = set()

    def markers(self, result: FrameResult, header: Header, identities: Identities,
                faces: np.ndarray | None) -> MarkerArray:
        """Mesh (when ``faces`` is given), skeleton and label of every person, plus DELETEs."""
        out = MarkerArray()
        current: set[tuple[str, int]] = set()
        joints_cam = result.joints_camera()
        verts_cam = result.verts_camera() if faces is not None else None
        head = result.joint_names.index('head') if 'head' in result.joint_names else 0
        for k in range(result.num_people):
            pid = int(identities.ids[k])
            rgb = person_color(pid)
            if verts_cam is not None:
                out.markers.append(_mesh_marker(header, pid, rgb, verts_cam[k], faces))
                current.add((MARKER_NS_MESH, pid))
            out.markers.append(_skeleton_marker(header, pid, rgb, joints_cam[k]))
            label_at = joints_cam[k, head] - np.array([0.0, LABEL_ABOVE_HEAD_M, 0.0])
            text = f'{pid} ({float(result.center_confs[k]):.2f})'
            out.markers.append(_label_marker(header, pid, label_at, text))
            current.update({(MARKER_NS_SKELETON, pid), (MARKER_NS_LABEL, pid)})
        for ns, pid in sorted(self._previous - current):
            out.markers.append(Marker(header=copy_header(header), ns=ns, id=pid,
                                      action=Marker.DELETE))
        self._previous = current
        return out

    def clear(self, header: Header) -> MarkerArray:
        """A DELETEALL for every marker of the node (deactivation, shutdown)."""
        self._previous = set()
        return MarkerArray(markers=[Marker(header=copy_header(header), action=Marker.DELETEALL)])


def _base_marker(header: Header, ns: str, pid: int, kind: int) -> Marker:
    marker = Marker(header=copy_header(header), ns=ns, id=pid, type=kind, action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    return marker


def _mesh_marker(header: Header, pid: int, rgb, verts: np.ndarray, faces: np.ndarray) -> Marker:
    marker = _base_marker(header, MARKER_NS_MESH, pid, Marker.TRIANGLE_LIST)
    marker.scale = Vector3(x=1.0, y=1.0, z=1.0)
    marker.color = ColorRGBA(r=rgb[0], g=rgb[1], b=rgb[2], a=0.75)
    marker.points = _points(verts[faces.reshape(-1)])
    return marker


def _skeleton_marker(header: Header, pid: int, rgb, joints: np.ndarray) -> Marker:
    marker = _base_marker(header, MARKER_NS_SKELETON, pid, Marker.LINE_LIST)
    marker.scale.x = SKELETON_WIDTH_M
    marker.color = ColorRGBA(r=min(1.0, rgb[0] + 0.3), g=min(1.0, rgb[1] + 0.3),
                             b=min(1.0, rgb[2] + 0.3), a=1.0)
    edges = np.asarray(SMPL_SKELETON_EDGES, dtype=np.int64).reshape(-1)
    marker.points = _points(joints[edges])
    return marker


def _label_marker(header: Header, pid: int, at: np.ndarray, text: str) -> Marker:
    marker = _base_marker(header, MARKER_NS_LABEL, pid, Marker.TEXT_VIEW_FACING)
    marker.pose.position = Point(x=float(at[0]), y=float(at[1]), z=float(at[2]))
    marker.scale.z = LABEL_HEIGHT_M
    marker.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    marker.text = text
    return marker


# -- BodyModel ----------------------------------------------------------------------------------


def joint_parents(joint_names) -> list[int]:
    """Parent index of each joint: SMPL's tree for the first 24, -1 for the others."""
    return [SMPL_PARENTS[i] if i < NUM_SMPL_JOINTS else -1 for i in range(len(joint_names))]


def body_model_message(model: str, faces: np.ndarray, num_vertices: int, joint_names,
                       stamp: Time) -> BodyModel:
    """The latched BodyModel: mesh topology and joint tree ('smpl' for ROMP, 'smpla' for BEV)."""
    msg = BodyModel(model_type='smpl' if model == 'romp' else 'smpla',
                    num_vertices=int(num_vertices), joint_names=list(joint_names),
                    joint_parents=joint_parents(joint_names))
    msg.header.stamp = stamp
    msg.faces = array.array('I', np.ascontiguousarray(faces, dtype=np.uint32).tobytes())
    return msg
