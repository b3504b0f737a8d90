"""Rendered synthetic scenes with ground truth.

People of the body model on a ground plane, seen by a known camera (optionally with lens
distortion), over varied backgrounds.

One frame is made like this:

1. **Camera**: a pinhole of random horizontal field of view, with probability
   ``distortion_prob`` a plumb_bob, rational_polynomial or equidistant (fisheye) lens whose
   coefficients are checked to be one-to-one over the image; mounted ``camera_height_m``
   above a flat ground, pitched and rolled a little (:class:`CameraMount`).
2. **People**: 1..N on the ground 1.5-20 m away (log-uniform, so every distance octave gets
   as many people), inside the field of view or straddling its edges, some placed behind
   others so that they occlude each other. Each has SMPL betas, for children (with SMPL-A)
   BEV's age offset, a walking gait plus random joint rotations within joint limits
   (:mod:`romp_ros.synthetic.poses`), and clothes: per-vertex colours by body part, some with
   stripes. Their lowest vertex touches the ground.
3. **Render** with the core renderer (z-buffer, smooth shading, 2x2 supersampled edges) on a
   pinhole *canvas* that covers everything the lens sees, over a background (a scikit-image
   photograph or a procedural texture, often with a perspective ground below the horizon),
   then warp canvas, depth and person maps through the lens (``cv2.remap``), then exposure /
   colour variation, focus or motion blur and sensor noise.
4. **Ground truth** per person (:class:`ScenePerson`): SMPL pose (global orientation in the
   camera frame) and shape, translation, 3D joints in the camera frame, 2D keypoints projected
   through the full camera model with visibility, the box of the projected body, the track id.

With ``sequence=True`` consecutive frames share the camera, background and light, and the
people walk consistently at ``fps`` (smoothly turning, keeping apart, entering and leaving the
view); track ids stay constant. Every random draw comes from generators seeded by
(seed, sequence, frame), so a (spec, seed) pair always gives identical frames.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from typing import Iterator

import cv2
import numpy as np
import torch

from romp_ros.core.body.smpl import BodyModel
from romp_ros.core.geometry.camera_model import CameraModel
from romp_ros.core.render import (
    VISIBILITY_TOL_M,
    LightSpec,
    points_visible,
    render_meshes,
)
from romp_ros.data.dataset_format import (
    VIS_ABSENT,
    VIS_OCCLUDED,
    VIS_VISIBLE,
    CameraLabel,
    PersonLabel,
)
from romp_ros.synthetic import backgrounds, poses
from romp_ros.synthetic.appearance import BodyParts, sample_clothes, sample_light
from romp_ros.synthetic.scene_camera import (
    CameraMount,
    LensWarp,
    half_fov,
    in_view,
    sample_camera,
    sample_mount,
)
from romp_ros.synthetic.scene_spec import SceneSpec, SceneSpecError

LOG = logging.getLogger(__name__)

MAX_AGE_OFFSET = 0.8  # above it BEV switches to the SMIL infant model; children stay below
_MIN_SEPARATION_M = 0.7  # between two people's pelvises on the ground






@dataclass(frozen=True)
class ScenePerson:
    """Ground truth of one labelled person (J joints, B shape parameters).

    Attributes:
        track_id: identity, constant over a sequence.
        smpl_pose: (72,) axis-angle, radians; joint 0 is the global orientation in the camera
            frame.
        smpl_shape: (B,) 10 SMPL betas, or 11 with SMPL-A (the 11th: age offset, 0 adults).
        translation: (3,) metres: camera point = body-model point + translation.
        joints_3d: (J, 3) metres, camera frame.
        keypoints_2d: (J, 3) pixels (u, v) and visibility 0 / 1 / 2 (outside the image or not
            projectable / hidden by another person or by the own body / visible); points the
            lens cannot image (behind the camera, beyond its valid field) are (0, 0, 0).
        bbox: (4,) (u_min, v_min, u_max, v_max) of the projected mesh vertices, clipped to
            the image (the whole body, occluded parts included).
        age_offset: 0 for adults, 0.3-0.8 for children.
        visible_pixels: pixels where this person is the nearest surface.
    """

    track_id: int
    smpl_pose: np.ndarray
    smpl_shape: np.ndarray
    translation: np.ndarray
    joints_3d: np.ndarray
    keypoints_2d: np.ndarray
    bbox: np.ndarray
    age_offset: float
    visible_pixels: int

    def label(self) -> PersonLabel:
        """The person as a dataset label."""
        return PersonLabel(track_id=self.track_id, bbox=self.bbox,
                           keypoints_2d=self.keypoints_2d, joints_3d=self.joints_3d,
                           smpl_pose=self.smpl_pose, smpl_shape=self.smpl_shape,
                           translation=self.translation)


@dataclass(frozen=True)
class SceneFrame:
    """One rendered frame and its ground truth.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        camera: the camera model (K and lens) the image was taken with.
        mount: the camera's height, pitch and roll over the ground.
        people: the labelled people.
        person_index: (H, W) int16: index into ``people`` of the nearest surface at each
            pixel, -1 for background (and for people too little visible to be labelled).
        depth: (H, W) float32 z of the nearest person surface, metres (inf: background).
        index: frame number in the dataset.
        sequence: sequence name ('' for independent frames).
        stamp_ns: capture time (sequences), else None.
    """

    image: np.ndarray
    camera: CameraModel
    mount: CameraMount
    people: tuple[ScenePerson, ...]
    person_index: np.ndarray
    depth: np.ndarray
    index: int
    sequence: str = ''
    stamp_ns: int | None = None

    def camera_label(self) -> CameraLabel:
        """The camera as a dataset label."""
        cam = self.camera
        return CameraLabel(width=cam.width, height=cam.height, k=cam.k,
                           distortion_model=cam.distortion_model, d=cam.d)




@dataclass
class _Walker:
    """One person of a scene and how it moves (mutable: sequences step it)."""

    track_id: int
    betas: np.ndarray  # (B,)
    age: float
    colours: np.ndarray  # (V, 3)
    noise: poses.PoseNoise  # one person
    phase0: float
    speed: float  # m/s, 0 standing
    x: float  # level frame, metres
    z: float
    direction: float  # walking direction: velocity (sin, cos) * speed
    facing: float  # heading of standing people
    lean: float
    turn_rate: float = 0.0

    def heading(self) -> float:
        if self.speed > 0.0:
            return float(poses.heading_from_velocity(math.sin(self.direction),
                                                     math.cos(self.direction)))
        return self.facing

    def phase(self, t: float) -> float:
        cadence = 0.55 + 0.25 * self.speed if self.speed > 0 else 0.0  # strides per second
        return self.phase0 + 2 * math.pi * cadence * t


class SceneGenerator:
    """Makes :class:`SceneFrame` s for a :class:`SceneSpec` with one body model.

    Example::

        gen = SceneGenerator(SceneSpec(width=256, height=256), BodyModel.from_models_dir(d))
        for frame in gen.frames(10, seed=0): ...
    """

    def __init__(self, spec: SceneSpec, body: BodyModel,
                 photos: backgrounds.PhotoLibrary | None = None,
                 device: str | torch.device = 'cpu') -> None:
        """Prepare the body model's parts, faces and which body parts may cover each joint.

        ``device``: where the body model and the renderer run ('cuda' renders on the GPU;
        frames are identical for a seed on one device, not across devices).
        """
        self.spec = spec
        self.device = torch_device(device)
        self.body = body.eval().to(self.device)
        self.photos = photos or backgrounds.PhotoLibrary()
        self.num_betas = int(body.num_betas)
        self.has_age = self.num_betas == 11
        self.joint_names = tuple(body.joint_names)
        self.faces = body.faces.cpu().numpy()
        self.parts = BodyParts.of(body)
        self.num_joints = len(self.joint_names)
        self._vertex_part, self._allowed_parts, self._on_surface = self._joint_parts()
        if spec.child_prob > 0 and not self.has_age:
            LOG.info('the body model is %s (no age offset): no children are generated; '
                     "prepare SMPL-A ('smpla', prepare-models --extra) for children",
                     body.kind)

    def _joint_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which body parts may cover each joint without hiding it.

        Returns:
            vertex_part (V,) int: the SMPL joint dominating each vertex's skinning weights;
            allowed (J, 24) bool: the parts around joint j (its home part, that part's parent
            and children), whose skin lies over the joint;
            on_surface (J,) bool: joints that are mesh vertices (face, toes, finger tips),
            which any nearer surface of their own body hides.
        """
        body = self.body
        weights = body.lbs_weights.cpu().numpy()  # (V, 24)
        rows = [body.j_regressor.cpu().numpy()]  # (24, V): each joint as vertex weights
        if self.num_joints > 24:
            picks = np.zeros((len(body.extra_joints_index), weights.shape[0]))
            picks[np.arange(len(picks)), body.extra_joints_index.cpu().numpy()] = 1.0
            rows += [picks, body.j_regressor_extra.cpu().numpy()]
        joint_weights = np.concatenate(rows)  # (J, V)
        home = (joint_weights @ weights).argmax(axis=1)  # (J,)
        parents = body.parents.cpu().numpy()
        allowed = np.zeros((len(home), 24), bool)
        for j, part in enumerate(home):
            allowed[j, part] = True
            if parents[part] >= 0:
                allowed[j, parents[part]] = True
            allowed[j, parents == part] = True
        # the vertex picks are surface points; every other joint lies inside the body
        on_surface = np.zeros(len(home), bool)
        on_surface[24:24 + (len(body.extra_joints_index) if self.num_joints > 24 else 0)] = True
        return weights.argmax(axis=1), allowed, on_surface

    # -------------------------------------------------------------------------- frames

    def frames(self, count: int, seed: int) -> Iterator[SceneFrame]:
        """Yield ``count`` frames made from ``seed`` (identical for identical arguments)."""
        spec = self.spec
        if count < 0:
            raise SceneSpecError(f'frame count {count} must be >= 0')
        if seed < 0:
            raise SceneSpecError(f'seed {seed} must be >= 0')
        length = (spec.sequence_length or max(count, 1)) if spec.sequence else 1
        index = 0
        seq = 0
        while index < count:
            n = min(length, count - index)
            yield from self._sequence(seed, seq, index, n)
            index += n
            seq += 1

    def _sequence(self, seed: int, seq: int, first_index: int,
                  count: int) -> Iterator[SceneFrame]:
        spec = self.spec
        rng = np.random.default_rng([seed, seq, 0])
        camera = sample_camera(rng, spec)
        mount = sample_mount(rng, spec)
        lens = LensWarp.for_camera(camera)
        cam_from_level = mount.cam_from_level()
        rays_level = lens.canvas_rays() @ cam_from_level
        background = backgrounds.make_background(
            rng, lens.canvas_size[0], lens.canvas_size[1], self.photos,
            photo_prob=spec.photo_prob, ground_prob=spec.ground_prob, rays_level=rays_level,
            camera_height=mount.height_m, pixel_angle=1.0 / lens.canvas_k[0])
        light = sample_light(rng)
        look_seed = int(rng.integers(2 ** 31))
        blur_sigma = (rng.uniform(0.3, spec.max_blur_px)
                      if spec.max_blur_px > 0.3 and rng.random() < spec.blur_prob else 0.0)
        target = int(rng.integers(spec.people[0], spec.people[1] + 1))
        walkers = self._place(rng, lens, mount, target, next_id=0)
        next_id = len(walkers)
        name = f'seq{seq:05d}' if spec.sequence else ''
        dt = 1.0 / spec.fps
        for f in range(count):
            frame_rng = np.random.default_rng([seed, seq, f + 1])
            if f > 0:
                next_id = self._step(frame_rng, walkers, lens, mount, target, next_id, dt)
            stamp = (round((first_index + f) * 1e9 / spec.fps) if spec.sequence else None)
            yield self._render(frame_rng, walkers, f * dt, camera, mount, lens, background,
                               light, look_seed, blur_sigma, first_index + f, name, stamp)

    # ----------------------------------------------------------------------- placement

    def _new_walker(self, rng: np.random.Generator, track_id: int, x: float,
                    z: float) -> _Walker:
        spec = self.spec
        child = self.has_age and rng.random() < spec.child_prob
        betas = np.zeros(self.num_betas)
        betas[:10] = np.clip(rng.normal(0.0, 0.6 if child else 0.9, 10), -2.5, 2.5)
        age = float(rng.uniform(0.3, MAX_AGE_OFFSET)) if child else 0.0
        if self.has_age:
            betas[10] = age
        walking = rng.random() < spec.walking_prob
        speed = float(rng.uniform(*spec.speed_m_s)) if walking else 0.0
        if child:
            speed *= 0.7
        strength = rng.uniform(*spec.pose_noise)
        noise = poses.sample_pose_noise(rng, 1, strength)
        # walkers mostly cross the view; standing people mostly face the camera
        direction = float(rng.uniform(-math.pi, math.pi))
        facing = float(rng.normal(0.0, 1.0))
        return _Walker(track_id=track_id, betas=betas, age=age,
                       colours=sample_clothes(rng, self.parts, spec.pattern_prob),
                       noise=noise, phase0=float(rng.uniform(0, 2 * math.pi)), speed=speed,
                       x=x, z=z, direction=direction, facing=facing,
                       lean=float(rng.normal(0.03, 0.03)))

    def _place(self, rng: np.random.Generator, lens: LensWarp, mount: CameraMount,
               count: int, next_id: int) -> list[_Walker]:
        """``count`` people on the ground, in view (or straddling its edges), kept apart.

        About a third are placed behind someone already there (occlusions).
        """
        spec = self.spec
        lo, hi = spec.distance_m
        fov_half = half_fov(lens)
        walkers: list[_Walker] = []
        for _ in range(count):
            for _attempt in range(60):
                if walkers and rng.random() < 0.35:
                    front = walkers[int(rng.integers(len(walkers)))]
                    bearing = math.atan2(front.x, front.z) + rng.normal(0.0, 0.04)
                    dist = math.hypot(front.x, front.z) + rng.uniform(0.8, 4.0)
                else:
                    bearing = rng.uniform(-1.1, 1.1) * fov_half
                    dist = math.exp(rng.uniform(math.log(lo), math.log(hi)))
                if not lo <= dist <= hi:
                    continue
                x, z = dist * math.sin(bearing), dist * math.cos(bearing)
                # the first person well inside the image, the others may straddle its edges
                if not in_view(lens, mount, x, z, margin=0.1 if walkers else -0.1):
                    continue
                if any(math.hypot(x - w.x, z - w.z) < _MIN_SEPARATION_M for w in walkers):
                    continue
                walkers.append(self._new_walker(rng, next_id + len(walkers), x, z))
                break
        return walkers

    def _step(self, rng: np.random.Generator, walkers: list[_Walker], lens: LensWarp,
              mount: CameraMount, target: int, next_id: int, dt: float) -> int:
        """Move everyone by one frame; remove people who left, add people who enter."""
        spec = self.spec
        lo, hi = spec.distance_m
        fov_half = half_fov(lens)
        for w in walkers:
            # Ornstein-Uhlenbeck turn rate: smooth paths with bounded curvature
            w.turn_rate += -w.turn_rate * dt / 1.5 + rng.normal(0.0, 0.5) * math.sqrt(dt)
            if w.speed <= 0.0:
                continue
            dist = math.hypot(w.x, w.z)
            radial = (w.x * math.sin(w.direction) + w.z * math.cos(w.direction)) / dist
            if (dist < lo + 0.3 and radial < 0) or (dist > hi - 0.3 and radial > 0):
                w.direction += math.pi * dt  # turn away from the distance limits
            w.direction += w.turn_rate * dt
            w.x += w.speed * math.sin(w.direction) * dt
            w.z += w.speed * math.cos(w.direction) * dt
        _keep_apart(walkers)
        # people well outside the view (30 % of the image size beyond its edges) have left
        walkers[:] = [w for w in walkers if in_view(lens, mount, w.x, w.z, margin=0.3)]
        if len(walkers) < target and rng.random() < 0.8 * dt:
            side = 1.0 if rng.random() < 0.5 else -1.0
            bearing = side * (fov_half + 0.15)
            dist = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            new = self._new_walker(rng, next_id, dist * math.sin(bearing),
                                   dist * math.cos(bearing))
            if new.speed == 0.0:
                new.speed = float(rng.uniform(*spec.speed_m_s)) or 1.0
            # walk in, towards the other side of the view
            new.direction = -side * (math.pi / 2 + rng.uniform(-0.4, 0.4))
            if all(math.hypot(new.x - w.x, new.z - w.z) >= _MIN_SEPARATION_M for w in walkers):
                walkers.append(new)
                next_id += 1
        return next_id

    # ------------------------------------------------------------------------- rendering

    def pose_people(self, walkers: list[_Walker], t: float,
                    mount: CameraMount) -> tuple[np.ndarray, ...]:
        """Body-model parameters and camera-frame geometry of ``walkers`` at time ``t``.

        Returns:
            betas (N, B), thetas (N, 72), translation (N, 3), verts (N, V, 3) and
            joints (N, J, 3) in the camera frame, float64.
        """
        num = len(walkers)
        cam_from_level = mount.cam_from_level()
        betas = np.stack([w.betas for w in walkers]) if num else np.zeros((0, self.num_betas))
        thetas = np.zeros((num, 72))
        if num:
            heading = np.array([w.heading() for w in walkers])
            lean = np.array([w.lean for w in walkers])
            thetas[:, :3] = poses.global_orientation(heading, lean, cam_from_level)
            noise = np.concatenate([w.noise.at(t) for w in walkers])  # (N, 23, 3)
            thetas[:, 3:] = poses.body_pose(np.array([w.phase(t) for w in walkers]),
                                            np.array([w.speed for w in walkers]), noise)
        with torch.no_grad():
            out = self.body(torch.as_tensor(betas, dtype=torch.float32, device=self.device),
                            torch.as_tensor(thetas, dtype=torch.float32, device=self.device))
        verts = out.verts.double().cpu().numpy()  # (N, V, 3) body-model frame
        joints = out.joints.double().cpu().numpy()  # (N, J, 3)
        # In the level frame (y down): lift the lowest vertex onto the ground and put the
        # pelvis over the person's ground position; then express that shift in the camera.
        verts_level = verts @ cam_from_level  # rows: v_level = R^T v_cam
        pelvis_level = joints[:, 0] @ cam_from_level  # (N, 3)
        shift_level = np.zeros((num, 3))
        shift_level[:, 0] = np.array([w.x for w in walkers]) - pelvis_level[:, 0]
        shift_level[:, 2] = np.array([w.z for w in walkers]) - pelvis_level[:, 2]
        shift_level[:, 1] = mount.height_m - verts_level[..., 1].max(axis=1) if num else 0.0
        translation = shift_level @ cam_from_level.T  # (N, 3) camera frame
        return (betas, thetas, translation, verts + translation[:, None],
                joints + translation[:, None])

    def _render(self, rng: np.random.Generator, walkers: list[_Walker], t: float,
                camera: CameraModel, mount: CameraMount, lens: LensWarp,
                background: np.ndarray, light: LightSpec, look_seed: int, blur_sigma: float,
                index: int, sequence: str, stamp: int | None) -> SceneFrame:
        spec = self.spec
        betas, thetas, translation, verts, joints = self.pose_people(walkers, t, mount)
        num = len(walkers)
        colours = (np.stack([w.colours for w in walkers]) if num
                   else np.zeros((0, self.parts.height.shape[0], 3)))
        render = render_meshes(torch.as_tensor(verts, dtype=torch.float32, device=self.device),
                               self.faces, lens.canvas_k,
                               lens.canvas_size, colors=colours, background=background,
                               light=light, supersample=spec.supersample)
        image = lens.warp(render.image, cv2.INTER_LINEAR)
        person = lens.warp(render.person_index.astype(np.float32),
                           cv2.INTER_NEAREST).astype(np.int16)
        depth = lens.warp(np.where(np.isfinite(render.depth), render.depth, -1.0)
                          .astype(np.float32), cv2.INTER_NEAREST)
        depth = np.where(depth > 0, depth, np.inf).astype(np.float32)
        image = self._photometric(rng, image, look_seed, blur_sigma)

        # ground truth
        w, h = camera.width, camera.height
        imageable = lens.imageable(joints)  # (N, J)
        with np.errstate(invalid='ignore'):
            uv = camera.project(joints)  # (N, J, 2)
        uv = np.where(imageable[..., None] & np.isfinite(uv), uv, 0.0)
        imageable &= np.isfinite(uv).all(-1)
        inside = imageable & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (
            uv[..., 1] < h)
        unhidden = points_visible(joints, None, render, lens.canvas_k)  # other people
        own_hidden = self._self_occluded(joints, verts, render, lens.canvas_k)
        vis = np.where(inside, np.where(unhidden & ~own_hidden, VIS_VISIBLE, VIS_OCCLUDED),
                       VIS_ABSENT).astype(np.float64)
        keypoints = np.concatenate([uv, vis[..., None]], axis=-1)  # (N, J, 3)

        counts = np.bincount(person[person >= 0].ravel(), minlength=num)[:num]
        labelled = [n for n in range(num) if counts[n] >= spec.min_visible_pixels]
        remap = np.full(num + 1, -1, np.int16)  # index -1 maps through the last entry
        people = []
        for new_index, n in enumerate(labelled):
            remap[n] = new_index
            bbox = self._bbox(verts[n], lens)
            people.append(ScenePerson(
                track_id=walkers[n].track_id, smpl_pose=thetas[n].copy(),
                smpl_shape=betas[n].copy(), translation=translation[n].copy(),
                joints_3d=joints[n].copy(), keypoints_2d=keypoints[n], bbox=bbox,
                age_offset=walkers[n].age, visible_pixels=int(counts[n])))
        person_index = remap[person]  # -1 stays -1 (last entry)
        return SceneFrame(image=image, camera=camera, mount=mount, people=tuple(people),
                          person_index=person_index, depth=depth, index=index,
                          sequence=sequence, stamp_ns=stamp)

    def _self_occluded(self, joints: np.ndarray, verts: np.ndarray, render,
                       k: tuple[float, float, float, float]) -> np.ndarray:
        """(N, J) bool: joints hidden by their own body, from the render's z-buffer.

        At the joint's canvas pixel the z-buffer holds the nearest surface. The joint is
        self-occluded when that surface is its own body's, lies more than
        ``VISIBILITY_TOL_M`` in front of it, and either the joint is a surface point (the
        nose of a person facing away) or the surface belongs to a body part not around the
        joint (an arm in front of the pelvis, the near leg in front of the far knee). The
        part is that of the own mesh vertex nearest to the surface point.
        """
        fx, fy, cx, cy = k
        height, width = render.depth.shape
        num, num_joints = joints.shape[:2]
        x, y, z = joints[..., 0], joints[..., 1], joints[..., 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            u, v = fx * x / z + cx, fy * y / z + cy
        ok = np.isfinite(u) & np.isfinite(v) & (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (
            v < height)
        col = np.where(ok, u, 0).astype(np.int64)
        row = np.where(ok, v, 0).astype(np.int64)
        surface = render.depth[row, col].astype(np.float64)  # (N, J)
        own = render.person_index[row, col] == np.arange(num)[:, None]
        in_front = ok & own & (surface < z - VISIBILITY_TOL_M)
        hidden = np.zeros((num, num_joints), bool)
        for n in np.flatnonzero(in_front.any(axis=1)):
            idx = np.flatnonzero(in_front[n])
            points = joints[n, idx] * (surface[n, idx] / z[n, idx])[:, None]  # on the surface
            # squared distances |p|^2 - 2 p.v + |v|^2, one matrix product
            dist2 = (points ** 2).sum(1)[:, None] - 2.0 * points @ verts[n].T + (
                verts[n] ** 2).sum(1)[None]  # (K, V)
            nearest = dist2.argmin(axis=1)
            part = self._vertex_part[nearest]
            foreign = ~self._allowed_parts[idx, part]
            hidden[n, idx] = self._on_surface[idx] | foreign
        return hidden

    @staticmethod
    def _bbox(verts: np.ndarray, lens: LensWarp) -> np.ndarray:
        """Box of the imageable projected vertices, clipped to the image."""
        cam = lens.camera
        ok = lens.imageable(verts)
        uv = cam.project(verts[ok])
        uv = uv[np.isfinite(uv).all(axis=1)]
        if not len(uv):
            return np.zeros(4)
        lo = np.clip(uv.min(axis=0), 0.0, [cam.width, cam.height])
        hi = np.clip(uv.max(axis=0), 0.0, [cam.width, cam.height])
        return np.concatenate([lo, hi])

    def _photometric(self, rng: np.random.Generator, image: np.ndarray, look_seed: int,
                     blur_sigma: float) -> np.ndarray:
        """Exposure and colour (fixed per sequence), focus and motion blur, sensor noise."""
        spec = self.spec
        if spec.lighting_strength > 0:
            image = backgrounds.lighting_variation(np.random.default_rng(look_seed), image,
                                                   spec.lighting_strength)
        if blur_sigma > 0:
            image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
        if rng.random() < spec.motion_blur_prob:
            length = int(rng.integers(3, 10))
            angle = rng.uniform(0.0, math.pi)
            kernel = np.zeros((length, length), np.float32)
            c = (length - 1) / 2.0
            for s in np.linspace(-c, c, 4 * length):
                row, col = round(c + s * math.sin(angle)), round(c + s * math.cos(angle))
                kernel[int(row), int(col)] = 1.0
            image = cv2.filter2D(image, -1, kernel / kernel.sum())
        sigma = rng.uniform(0.0, spec.noise_sigma)
        if sigma > 0:
            noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape)
            image = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
        return image


def torch_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device (SceneSpecError when unknown or unavailable)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise SceneSpecError(f'device {device!r} is not a torch device (e.g. cpu, cuda, '
                             'cuda:1)') from err
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise SceneSpecError(f'device {device!r}: CUDA is not available here; use cpu')
    return dev




def _keep_apart(walkers: list[_Walker]) -> None:
    """Push pairs closer than the minimum separation apart along their connecting line."""
    for i in range(len(walkers)):
        for j in range(i + 1, len(walkers)):
            a, b = walkers[i], walkers[j]
            dx, dz = b.x - a.x, b.z - a.z
            dist = math.hypot(dx, dz)
            if dist >= _MIN_SEPARATION_M:
                continue
            if dist < 1e-6:
                dx, dz, dist = 1.0, 0.0, 1.0
            push = (_MIN_SEPARATION_M - dist) / 2.0
            a.x -= dx / dist * push
            a.z -= dz / dist * push
            b.x += dx / dist * push
            b.z += dz / dist * push


def body_model_for_scenes(models_dir) -> BodyModel:
    """SMPL-A of a models directory when it has one (children: age offset), else SMPL."""
    from romp_ros.core.body.model_files import available_kinds
    kinds = available_kinds(models_dir)
    return BodyModel.from_models_dir(models_dir, 'smpla' if 'smpla' in kinds else 'smpl')
