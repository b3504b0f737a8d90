"""The batched inference pipeline: images in, typed per-image results out.

Stages, all batched over every person of every image on the model's device:

1. pad to a centred square and resize to 512 (``preprocess``),
2. the network (ROMP maps, or BEV maps + per-person parameter regression),
3. center NMS and parameter sampling, 6D -> axis-angle (``postprocess``),
4. the SMPL body model for all people at once (``body``),
5. projection to the original image and the translation solve, with the image's real camera
   when given: K, and the lens for raw images of a distorted camera (``geometry``),
6. one packed copy to the host, and a split into one :class:`FrameResult` per image.

No per-person Python loop runs in this path. People travel through it in one of two layouts
(``EstimatorConfig.postprocess``): 'compact', only the people found, which reads the people
count back from the device after the center search; or 'padded', ``max_people`` slots per
image and a mask, which reads nothing back until the copy in step 6, so that on a GPU the host
can queue the next batch meanwhile (:meth:`Estimator.submit`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from romp_ros.core.body.joint_poser import JointPoser, JointPoserWithInfants
from romp_ros.core.body.model_files import ModelFilesError, load_body_model_arrays
from romp_ros.core.body.smpl import BodyModel, SMPLAWithInfants
from romp_ros.core.config import EstimatorConfig
from romp_ros.core.geometry.camera_model import CameraModel
from romp_ros.core.geometry.intrinsics import (
    IntrinsicsError,
    default_intrinsics,
    validate_intrinsics,
)
from romp_ros.core.geometry.projection import (
    normalised_to_original,
    project_perspective,
    project_weak,
)
from romp_ros.core.geometry.translation import (
    bev_translation,
    romp_reference_translation,
    solve_translation_with_camera,
    solve_translation_with_intrinsics,
)
from romp_ros.core.nets.checkpoint import load_into, read_checkpoint
from romp_ros.core.nets.factory import build_model, model_spec
from romp_ros.core.nets.inference_opt import optimize_for_inference
from romp_ros.core.pinned_upload import PinnedUploader
from romp_ros.core.postprocess.bev_filtering import bev_keep_mask, bev_keep_slots
from romp_ros.core.postprocess.center_parsing import (
    parse_center_map_2d,
    parse_center_map_3d,
    sample_params,
)
from romp_ros.core.postprocess.params import apply_cam_scale, unpack_params
from romp_ros.core.preprocess import DEFAULT_INPUT_SIZE, check_images, prepare_batch
from romp_ros.core.results import CameraIntrinsics, FrameResult
from romp_ros.core.runtime import RuntimeSetupError, build_runner
from romp_ros.core.runtime.onnx_graphs import OnnxGraphs, load_graphs
from romp_ros.core.tiling import Window, merge_windows, plan_windows

LOG = logging.getLogger(__name__)

IntrinsicsLike = CameraIntrinsics | CameraModel | Sequence[float] | None
NUM_SMPL_JOINTS = 24
REFERENCE_FOV_DEG = 60.0
# BEV's reference centres bodies on the mid-point of these two joints (hips of the 2D datasets)
BEV_ROOT_JOINTS = (45, 46)


class EstimatorError(RuntimeError):
    """The estimator could not be built (missing files, bad checkpoint, bad device)."""


@dataclasses.dataclass(frozen=True)
class _Detections:
    """Per-person tensors for the whole batch, before the split per image.

    In the padded layout the rows are ``max_people`` slots per image, image-major, and
    ``valid`` marks the people; in the compact layout every row is one and ``valid`` is None.
    """

    batch_ids: torch.Tensor  # (N,) int64, sorted
    confs: torch.Tensor  # (N,)
    cam: torch.Tensor  # (N, 3)
    thetas: torch.Tensor  # (N, 72)
    betas: torch.Tensor  # (N, 10 | 11)
    valid: torch.Tensor | None = None  # (N,) bool, padded layout only
    non_finite: torch.Tensor | None = None  # (N,) bool: people dropped for NaN/inf (padded)

    def select(self, keep: torch.Tensor) -> '_Detections':
        """The rows of a boolean mask (compact layout)."""
        # (not dataclasses.astuple: it deep-copies every tensor)
        return _Detections(*(None if value is None else value[keep]
                             for value in (getattr(self, f.name)
                                           for f in dataclasses.fields(self))))


@dataclasses.dataclass(frozen=True)
class _PeopleOnDevice:
    """Everything :meth:`Estimator._copy_back` copies back, still on the device (N rows)."""

    det: _Detections
    joints: torch.Tensor  # (N, J, 3) metres, body frame
    verts: torch.Tensor | None  # (N, V, 3) metres, body frame
    pj2d_org: torch.Tensor  # (N, J, 2) original-image pixels
    trans: torch.Tensor  # (N, 3) metres, camera frame
    solved: torch.Tensor  # (N,) bool
    infant: torch.Tensor | None  # (N,) bool, BEV only
    body_kind: str


@dataclasses.dataclass(frozen=True)
class _CopyBack:
    """The people of a batch on their way to the host (see ``Estimator._copy_back``)."""

    packed: torch.Tensor  # (N, C) float32 host tensor: every per-person column side by side
    verts: torch.Tensor | None  # (N, V, 3) float32 host tensor, or None
    widths: tuple[int, ...]  # the columns' widths, in packing order
    num_joints: int
    body_kind: str
    padded: bool
    ready: 'torch.cuda.Event | None'  # recorded after the copies (CUDA only)


class PendingPrediction:
    """A batch started by :meth:`Estimator.submit`; :meth:`result` waits for and returns it."""

    def __init__(self, finish) -> None:
        """``finish``: a callable that waits for the batch and returns its results."""
        self._finish = finish
        self._results: list[FrameResult] | None = None

    def result(self) -> list[FrameResult]:
        """One :class:`FrameResult` per image, as :meth:`Estimator.predict` returns them."""
        if self._results is None:
            self._results = self._finish()
            self._finish = None
        return self._results


@dataclasses.dataclass(frozen=True)
class _ImageTable:
    """Per-image numbers post-processing needs on the device, uploaded before the network.

    Uploading them later would make the host wait for the network first (a copy from
    pageable memory waits for the stream); uploaded up front, they are in place when needed.
    """

    k_reference: torch.Tensor  # (B, 3, 3) the reference's 60-degree camera
    k_solve: torch.Tensor  # (B, 3, 3) the camera translations are solved with
    keep_reference: torch.Tensor  # (B,) bool: the reference's translation is kept
    sides: torch.Tensor  # (B,) longer side of each image, pixels
    keep_reference_host: tuple[bool, ...]


def resolve_device(device: str) -> torch.device:
    """'auto' -> the first CUDA device if one is usable, else the CPU; validates 'cuda:N'."""
    if device == 'auto':
        return torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')
    dev = torch.device(device)
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise EstimatorError(
                f"device='{device}' was requested but CUDA is not available here; "
                "use device='cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise EstimatorError(
                f"device='{device}' does not exist: {torch.cuda.device_count()} CUDA device(s)")
    return dev


def default_checkpoint_path(config: EstimatorConfig) -> Path:
    """The checkpoint a config points at: ``checkpoint`` or the model's default file name."""
    if config.checkpoint:
        return Path(config.checkpoint).expanduser()
    spec = model_spec(config.model, config.backbone)
    return Path(config.models_dir or '.').expanduser() / spec.checkpoint_file


class Estimator:
    """ROMP / BEV multi-person mesh estimation on batches of images.

    Example::

        est = Estimator(EstimatorConfig(model='romp', models_dir='~/romp_models'))
        results = est.predict([image_rgb], intrinsics=[(fx, fy, cx, cy)])
        results[0].cam_trans  # (N, 3) metres, camera optical frame
        # a raw image of a distorted lens: the whole camera
        cam = CameraModel(w, h, (fx, fy, cx, cy), 'plumb_bob', (k1, k2, p1, p2, k3))
        results = est.predict([raw_image], intrinsics=cam)
    """

    def __init__(self, config: EstimatorConfig, *, model: torch.nn.Module | None = None) -> None:
        """Build the network, load the checkpoint and the body model.

        Args:
            config: the validated configuration.
            model: an already built and loaded network (tests, benchmarks); skips the
                checkpoint.

        Raises:
            ModelFilesError: the models directory or a body-model file is missing/invalid.
            EstimatorError: no checkpoint, a bad checkpoint, or an unusable device.
        """
        self.config = config
        self.device = resolve_device(config.device)
        self.spec = model_spec(config.model, config.backbone)
        self.body_model, self._joint_poser = self._load_body_model(config)
        self.input_size = config.input_size or DEFAULT_INPUT_SIZE
        graphs = None
        if model is None and config.checkpoint.lower().endswith('.onnx'):
            graphs = self._load_graphs(config)  # no torch network at all
            self.model = None
        else:
            if model is None:
                model = self._load_network(config)
            model = model.to(self.device).eval()
            self.model = optimize_for_inference(model) if config.optimize else model
        try:
            # the network call only: pre- and post-processing are the same for every runtime
            self.runner = build_runner(config.runtime, model_name=config.model,
                                       device=self.device, precision=config.precision,
                                       model=self.model, graphs=graphs,
                                       backbone=config.backbone, input_size=self.input_size,
                                       compile_mode=config.compile,
                                       compile_cache_dir=config.compile_cache_dir)
        except RuntimeSetupError as err:
            raise EstimatorError(str(err)) from err
        if config.compile != 'off':
            # compile now, while loading, not on the first frame a robot sees
            LOG.info('compiling the network (torch.compile mode %s; minutes the first time, '
                     'cached after)', config.compile)
            LOG.info('compiled in %.1f s', self.runner.warm_up(self.input_size))
        if config.runtime != 'torch' or config.compile != 'off':
            LOG.info('network runtime: %s', self.runner.describe())
        self.joint_names = tuple(self.body_model.joint_names)
        # BEV's [s, ty, tx] -> [s, tx, ty], as an index kept on the device (not re-uploaded)
        self._bev_cam_order = torch.tensor([0, 2, 1], device=self.device)
        self.faces = self.body_model.faces.cpu().numpy()
        # CUDA: frames go up through one reused page-locked buffer (asynchronous copies), and
        # the per-image tables through another (so they do not wait for the frames' copies)
        cuda = self.device.type == 'cuda'
        self._uploader = PinnedUploader(self.device) if cuda else None
        self._table_uploader = PinnedUploader(self.device) if cuda else None

    # -- construction ------------------------------------------------------------------------
    def _load_body_model(self, config: EstimatorConfig
                         ) -> tuple[torch.nn.Module, JointPoser | JointPoserWithInfants]:
        """The body model on the device, and its joints-only poser on the host."""
        models_dir = Path(config.models_dir).expanduser() if config.models_dir else None
        if models_dir is None:
            raise ModelFilesError(
                'no models directory configured: set models_dir to the folder written by '
                '`romp-ros prepare-models --smpl <SMPL_NEUTRAL.pkl> --models-dir DIR`')
        if config.model == 'romp':
            arrays = load_body_model_arrays(models_dir, 'smpl')
            body, poser = BodyModel(arrays), JointPoser(arrays)
        else:
            smil = None
            if config.use_smil:
                try:
                    smil = load_body_model_arrays(models_dir, 'smil')
                except ModelFilesError as err:
                    LOG.info('SMIL infant model not available (%s); BEV uses SMPL-A for '
                             'everyone', err)
            smpla = load_body_model_arrays(models_dir, 'smpla')
            body = SMPLAWithInfants(smpla, smil, age_thresh=config.smil_age_thresh)
            poser = JointPoserWithInfants(smpla, smil, age_thresh=config.smil_age_thresh)
        return body.to(self.device).eval(), poser

    def _load_network(self, config: EstimatorConfig) -> torch.nn.Module:
        path = default_checkpoint_path(config)
        if not path.is_file():
            raise EstimatorError(
                f'checkpoint not found: {path}. Download the official weights with '
                f'`romp-ros download {self.spec.checkpoint_file} --models-dir '
                f'{path.parent}` (or pass --checkpoint PATH)')
        state, info = read_checkpoint(path)
        if info.input_size is not None and config.input_size is None:
            self.input_size = info.input_size
        elif info.input_size is not None and info.input_size != config.input_size:
            LOG.warning('%s was trained at %d px but input_size=%d is configured; results '
                        'are usually worse away from the training size', path,
                        info.input_size, config.input_size)
        model = build_model(config.model, config.backbone, input_size=self.input_size)
        load_into(model, state)
        LOG.info('loaded %s/%s weights from %s (input %d px)', config.model, config.backbone,
                 path, self.input_size)
        return model

    def _load_graphs(self, config: EstimatorConfig) -> OnnxGraphs:
        """The ONNX graphs of an ``.onnx`` checkpoint, checked against the configuration."""
        try:
            graphs = load_graphs(config.checkpoint)
        except RuntimeSetupError as err:
            raise EstimatorError(str(err)) from err
        info = graphs.info
        if (info.model, info.backbone) != (config.model, config.backbone):
            raise EstimatorError(
                f'{config.checkpoint} was exported from {info.model}/{info.backbone} but '
                f'{config.model}/{config.backbone} is configured; set model and backbone to '
                'match the file')
        if config.input_size is not None and config.input_size != info.input_size:
            raise EstimatorError(
                f'{config.checkpoint} was exported for {info.input_size} px inputs but '
                f'input_size={config.input_size}; export again with --input-size or unset it')
        self.input_size = info.input_size
        LOG.info('loaded %s/%s ONNX graph from %s (input %d px, %s)', info.model,
                 info.backbone, config.checkpoint, info.input_size, info.precision)
        return graphs

    # -- body model --------------------------------------------------------------------------
    @torch.inference_mode()
    def pose_bodies(self, betas: np.ndarray, thetas: np.ndarray, with_verts: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Run the body model on given parameters (e.g. a tracker's smoothed ones).

        Args:
            betas: (N, 10) SMPL or (N, 11) SMPL-A shape.
            thetas: (N, 72) axis-angle pose, radians.
            with_verts: also pose the mesh (when ``compute_verts``); False poses only what
                the joints are read from, ~10x cheaper.

        Returns:
            joints (N, J, 3) and verts (N, V, 3) (None unless ``with_verts`` and
            ``compute_verts``), metres, in the same body frame as :meth:`predict`'s results
            (BEV: centred between the hips).
        """
        if not (with_verts and self.config.compute_verts):
            # on the host in NumPy: a few people, no device round trip, no torch dispatch
            joints, _ = self._body_frame(self._joint_poser(betas, thetas), None)  # (N, J, 3)
            return joints, None
        betas_t = torch.as_tensor(betas, dtype=torch.float32, device=self.device)
        thetas_t = torch.as_tensor(thetas, dtype=torch.float32, device=self.device)
        body = self.body_model(betas_t, thetas_t)
        joints, verts = self._body_frame(body.joints, body.verts)
        return joints.float().cpu().numpy(), verts.float().cpu().numpy()

    def _body_frame(self, joints, verts):
        """BEV's reference centres bodies between the hips of the 2D datasets; ROMP does not.

        Takes and returns torch tensors or NumPy arrays alike: (N, J, 3) joints and (N, V, 3)
        verts or None.
        """
        if self.config.model == 'bev' and joints.shape[1] > max(BEV_ROOT_JOINTS):
            left, right = BEV_ROOT_JOINTS  # plain indices: a list would be uploaded
            root = ((joints[:, left] + joints[:, right]) / 2)[:, None]  # (N, 1, 3)
            return joints - root, None if verts is None else verts - root
        return joints, verts

    # -- inference ---------------------------------------------------------------------------
    def predict(self, images: Sequence[np.ndarray],
                intrinsics: IntrinsicsLike | Sequence[IntrinsicsLike] = None
                ) -> list[FrameResult]:
        """Estimate every person in each image.

        Args:
            images: B uint8 arrays (H, W, 3) in ``config.color_order``; sizes may differ.
            intrinsics: None (assume ``config.fov_deg``), one camera for all images, or one
                entry per image (None entries fall back to the field of view). A camera is a
                :class:`CameraModel` (K and lens, of the image's size: raw images of a
                distorted lens), a :class:`CameraIntrinsics` (its lens fields may be set
                too), or ``(fx, fy, cx, cy)`` pixels (a pinhole: undistorted or rectified
                images).

        Returns:
            One :class:`FrameResult` per image, in input order. ``pj2d_org`` stays in the
            pixels of the given image (distorted for a raw image); ``cam_trans`` is solved
            through the lens (docs/geometry.md).

        Raises:
            ImageInputError: empty batch, wrong dtype/shape, empty or oversized image.
            IntrinsicsError: an invalid camera (zero/negative/NaN focal length, an unknown
                distortion model, a CameraModel of another image size).
        """
        return self.submit(images, intrinsics).result()

    @torch.inference_mode()
    def submit(self, images: Sequence[np.ndarray],
               intrinsics: IntrinsicsLike | Sequence[IntrinsicsLike] = None
               ) -> 'PendingPrediction':
        """Start :meth:`predict` on a batch; ``.result()`` of the returned object finishes it.

        On a CUDA device with ``postprocess='padded'`` this returns once the batch's work is
        queued on the GPU (its results are copied back asynchronously), so the caller can
        prepare the next batch, or handle the previous one's results, meanwhile. Elsewhere the
        work is done before it returns. The arguments and errors are :meth:`predict`'s.
        """
        images = list(images)
        if not self.config.wide_tiling:
            return self._submit_batch(images, intrinsics)
        checked = check_images(images)
        sizes = [image.shape[:2] for image in checked]
        per_image_k = self._resolve_intrinsics(intrinsics, sizes)
        plans = [plan_windows(h, w, self.config.wide_min_aspect, self.config.wide_overlap)
                 for h, w in sizes]
        # every window is solved with the full image's camera (see core/tiling.py)
        full_k = [k if k is not None or not windows
                  else default_intrinsics(h, w, self.config.fov_deg)
                  for k, (h, w), windows in zip(per_image_k, sizes, plans, strict=True)]
        inputs: list[np.ndarray] = []
        input_k: list[CameraIntrinsics | None] = []
        for image, k, windows in zip(checked, full_k, plans, strict=True):
            if not windows:
                inputs.append(image)
                input_k.append(k)
            for win in windows:
                inputs.append(image[win.top:win.top + win.side, win.left:win.left + win.side])
                input_k.append(_window_camera(k, win))
        windowed = self._submit_batch(inputs, input_k, validated_k=True)

        def merge(window_results: list[FrameResult]) -> list[FrameResult]:
            outputs = iter(window_results)
            results = []
            for size, k, windows in zip(sizes, full_k, plans, strict=True):
                if not windows:
                    results.append(next(outputs))
                else:
                    parts = [next(outputs) for _ in windows]
                    results.append(_merge_windows(parts, windows, size, k))
            return results
        return PendingPrediction(lambda: merge(windowed.result()))

    def _submit_batch(self, images: list[np.ndarray], intrinsics,
                      validated_k: bool = False) -> 'PendingPrediction':
        """:meth:`submit` without tiling; ``validated_k``: one checked K (or None) per image."""
        batch = prepare_batch(images, color_order=self.config.color_order,
                              device=self.device, input_size=self.input_size,
                              uploader=self._uploader)
        sizes = list(batch.image_sizes)  # from the host: no wait for the device
        per_image_k = (list(intrinsics) if validated_k
                       else self._resolve_intrinsics(intrinsics, sizes))
        copy = self._copy_back(self._infer(batch, sizes, per_image_k))
        return PendingPrediction(lambda: self._split(copy, sizes, per_image_k))

    def _infer(self, batch, sizes, per_image_k) -> _PeopleOnDevice:
        """All the device work of a batch: network, centers, body model, projection, solve.

        In the padded layout nothing here reads a value back from the device.
        """
        table = self._image_table(sizes, per_image_k)
        det = self._detect(batch.tensor, self.config.postprocess == 'padded')
        det = self._drop_non_finite(det)
        body = self._pose(det)
        joints, verts = self._body_frame(body.joints, body.verts)  # (N, J, 3), (N, V, 3)
        infant = body.infant_mask  # (N,) or None

        pad = batch.pad_info[det.batch_ids]  # (N, 6)
        if self.config.model == 'romp':
            pj2d_org = normalised_to_original(project_weak(joints, det.cam), pad)
            trans = romp_reference_translation(joints[:, :NUM_SMPL_JOINTS], det.cam)
        else:
            trans = bev_translation(det.cam, fov_deg=REFERENCE_FOV_DEG)
            pj2d_org = project_perspective(joints + trans[:, None],
                                           table.k_reference[det.batch_ids])
            det, joints, verts, pj2d_org, trans, infant = self._bev_filters(
                det, table, sizes, joints, verts, pj2d_org, trans, infant)
            # BEV predicts [s, ty, tx]; results use ROMP's [s, tx, ty] for both models
            det = dataclasses.replace(det, cam=det.cam.index_select(1, self._bev_cam_order))

        trans, solved = self._resolve_translation(joints, pj2d_org, trans, det.batch_ids,
                                                  table, per_image_k, sizes)
        return _PeopleOnDevice(det=det, joints=joints, verts=verts, pj2d_org=pj2d_org,
                               trans=trans, solved=solved, infant=infant, body_kind=body.kind)

    def _image_table(self, sizes, per_image_k) -> _ImageTable:
        """The per-image numbers, computed on the host and uploaded in one copy."""
        fov_default = abs(self.config.fov_deg - REFERENCE_FOV_DEG) < 1e-9
        rows = np.zeros((len(sizes), 20), np.float32)
        for row, ((h, w), k) in enumerate(zip(sizes, per_image_k, strict=True)):
            ref = default_intrinsics(h, w, REFERENCE_FOV_DEG)
            solve = k if k is not None else default_intrinsics(h, w, self.config.fov_deg)
            rows[row, :9] = ref.as_matrix().ravel()
            rows[row, 9:18] = solve.as_matrix().ravel()
            rows[row, 18] = fov_default and k is None
            rows[row, 19] = max(h, w)
        if self._table_uploader is not None:
            (table,) = self._table_uploader.upload([rows])
        else:
            table = torch.from_numpy(rows).to(self.device)
        return _ImageTable(k_reference=table[:, :9].view(-1, 3, 3),
                           k_solve=table[:, 9:18].view(-1, 3, 3),
                           keep_reference=table[:, 18] > 0.5, sides=table[:, 19],
                           keep_reference_host=tuple(bool(v) for v in rows[:, 18]))

    def _detect(self, tensor: torch.Tensor, padded: bool) -> _Detections:
        thresh = self.config.effective_center_thresh
        if self.config.model == 'romp':
            maps = self.runner.maps(tensor)
            centers = parse_center_map_2d(maps.center_maps.float(), thresh,
                                          self.config.max_people, padded=padded)
            params = sample_params(maps.params_maps.float(), centers.batch_ids,
                                   centers.flat_inds)  # (N, 145)
            params = apply_cam_scale(params)
        else:
            maps = self.runner.maps(tensor)
            centers = parse_center_map_3d(maps.center_maps_3d.float(), thresh,
                                          self.config.max_people, padded=padded)
            cz, cy, cx = centers.czyx.unbind(dim=1)
            cams = maps.cam_maps_3d[centers.batch_ids, cz, cy, cx].float()  # (N, 3)
            params = self.runner.regress_params(maps.param_features, cams,
                                                centers.batch_ids).float()  # (N, 146)
        smpl = unpack_params(params.float())
        return _Detections(batch_ids=centers.batch_ids, confs=centers.confs.float(),
                           cam=smpl.cam, thetas=smpl.smpl_thetas, betas=smpl.smpl_betas,
                           valid=centers.valid)

    def _drop_non_finite(self, det: _Detections) -> _Detections:
        finite = (torch.isfinite(det.cam).all(1) & torch.isfinite(det.thetas).all(1)
                  & torch.isfinite(det.betas).all(1) & torch.isfinite(det.confs))  # (N,)
        if det.valid is not None:
            # padded: unmark them, and zero them so that no NaN reaches the pairwise filters;
            # the warning waits for the results on the host (_split)
            def zeroed(values: torch.Tensor) -> torch.Tensor:
                keep = finite.view(-1, *([1] * (values.dim() - 1)))
                return torch.where(keep, values, torch.zeros_like(values))
            return dataclasses.replace(
                det, cam=zeroed(det.cam), thetas=zeroed(det.thetas), betas=zeroed(det.betas),
                confs=zeroed(det.confs), valid=det.valid & finite,
                non_finite=det.valid & ~finite)
        if bool(finite.all()):
            return det
        _warn_non_finite(int((~finite).sum()))
        return det.select(finite)

    def _pose(self, det: _Detections):
        """The body model on every row; BEV's infants without a data-dependent split if padded."""
        if det.valid is not None and isinstance(self.body_model, SMPLAWithInfants):
            return self.body_model(det.betas, det.thetas, dense=True)
        return self.body_model(det.betas, det.thetas)

    def _bev_filters(self, det, table, sizes, joints, verts, pj2d_org, trans, infant):
        """BEV's duplicate and outlier filters: rows dropped (compact) or unmarked (padded)."""
        options = {'nms_thresh': self.config.bev_nms_thresh,
                   'relative_scale_thresh': self.config.bev_relative_scale_thresh}
        if det.valid is None:
            keep = bev_keep_mask(pj2d_org, det.cam, trans, det.confs, det.batch_ids, sizes,
                                 **options)
            det = det.select(keep)
            return (det, joints[keep], None if verts is None else verts[keep], pj2d_org[keep],
                    trans[keep], None if infant is None else infant[keep])
        images = len(sizes)
        slots = det.batch_ids.shape[0] // images  # max_people (or fewer map cells)
        keep = bev_keep_slots(pj2d_org.view(images, slots, *pj2d_org.shape[1:]),
                              det.cam.view(images, slots, 3), trans.view(images, slots, 3),
                              det.confs.view(images, slots), det.valid.view(images, slots),
                              table.sides, **options)  # (B, K)
        return (dataclasses.replace(det, valid=keep.flatten()), joints, verts, pj2d_org, trans,
                infant)

    def _resolve_intrinsics(self, intrinsics, sizes) -> list[CameraIntrinsics | None]:
        count = len(sizes)
        if intrinsics is None or isinstance(intrinsics, (CameraIntrinsics, CameraModel)) or (
                len(intrinsics) == 4 and all(np.isscalar(v) for v in intrinsics)):
            entries = [intrinsics] * count
        else:
            entries = list(intrinsics)
            if len(entries) != count:
                raise ValueError(f'{len(entries)} intrinsics given for {count} images')
        out: list[CameraIntrinsics | None] = []
        for entry, (h, w) in zip(entries, sizes, strict=True):
            if entry is None:
                out.append(None)
            elif isinstance(entry, CameraModel):
                if (entry.height, entry.width) != (h, w):
                    raise IntrinsicsError(
                        f'the camera model is for {entry.width}x{entry.height} images but the '
                        f'image is {w}x{h}; rescale it to the image '
                        '(romp_ros.core.geometry.calibration.fit_to_image)')
                out.append(validate_intrinsics(*entry.k, image_size=(h, w),
                                               distortion_model=entry.distortion_model,
                                               d=entry.d))
            elif isinstance(entry, CameraIntrinsics):
                out.append(validate_intrinsics(entry.fx, entry.fy, entry.cx, entry.cy,
                                               image_size=(h, w),
                                               distortion_model=entry.distortion_model,
                                               d=entry.d))
            else:
                out.append(validate_intrinsics(*entry, image_size=(h, w)))
        return out

    def _resolve_translation(self, joints, pj2d_org, trans_ref, batch_ids,
                             table: _ImageTable, per_image_k, sizes
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-solve translations against each image's camera where the reference's is not used.

        With no camera and the reference's 60 degrees the reference's own translation is kept
        (bit-for-bit comparable with simple-romp); otherwise the 2D keypoints are explained
        with the real (or FOV-derived) camera: K alone for a pinhole, through the lens for a
        distorted one (the keypoints are in the raw image's pixels).

        Returns:
            (N, 3) translations and (N,) bool: which were solved (False: the reference's
            translation kept, because no camera applies or the solve failed).
        """
        if joints.shape[0] == 0 or all(table.keep_reference_host):
            return trans_ref, torch.zeros_like(batch_ids, dtype=torch.bool)
        solution = solve_translation_with_intrinsics(
            joints[:, :NUM_SMPL_JOINTS], pj2d_org[:, :NUM_SMPL_JOINTS],
            table.k_solve[batch_ids])
        trans_solved, valid = solution.trans, solution.valid
        cameras = [k if k is not None else default_intrinsics(h, w, self.config.fov_deg)
                   for k, (h, w) in zip(per_image_k, sizes, strict=True)]
        distorted = [i for i, c in enumerate(cameras) if c.is_distorted]
        if distorted:
            trans_solved, valid = self._solve_through_lenses(
                joints, pj2d_org, batch_ids, cameras, sizes, distorted, trans_solved, valid)
        # keep the reference's translation where the solve failed (degenerate input), and
        # for the images it applies to whatever else shares the batch
        use_solution = valid & ~table.keep_reference[batch_ids]
        return torch.where(use_solution[:, None], trans_solved, trans_ref), use_solution

    def _solve_through_lenses(self, joints, pj2d_org, batch_ids, cameras, sizes, distorted,
                              trans_solved, valid) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace the pinhole solutions of the people of ``distorted`` images by lens ones."""
        lookup = torch.full((len(cameras),), -1, dtype=torch.long, device=self.device)
        lookup[torch.tensor(distorted, device=self.device)] = torch.arange(
            len(distorted), device=self.device)
        camera_index = lookup[batch_ids]  # (N,), -1 for pinhole images
        rows = torch.nonzero(camera_index >= 0).squeeze(1)
        if rows.numel() == 0:
            return trans_solved, valid
        lenses = [cameras[i].lens(sizes[i]) for i in distorted]
        lens_solution = solve_translation_with_camera(
            joints[rows, :NUM_SMPL_JOINTS], pj2d_org[rows, :NUM_SMPL_JOINTS], lenses,
            camera_index[rows])
        trans_solved = trans_solved.index_put((rows,), lens_solution.trans.to(trans_solved.dtype))
        valid = valid.index_put((rows,), lens_solution.valid)
        return trans_solved, valid

    def _copy_back(self, people: _PeopleOnDevice) -> _CopyBack:
        """Start copying the people to the host: one packed table, and the vertices.

        On a CUDA device the copies are queued behind the batch's work into page-locked
        memory, with an event to wait on; nothing here waits for the device.
        """
        det = people.det
        flags = [people.solved, det.batch_ids]
        flags.append(det.valid if det.valid is not None else torch.ones_like(people.solved))
        flags.append(det.non_finite if det.non_finite is not None
                     else torch.zeros_like(people.solved))
        flags.append(people.infant if people.infant is not None
                     else torch.zeros_like(people.solved))
        columns = [det.cam, det.thetas, det.betas, people.trans, people.joints.flatten(1),
                   people.pj2d_org.flatten(1), det.confs[:, None]]
        columns += [flag[:, None] for flag in flags]
        tensors = [torch.cat([c.float() for c in columns], dim=1)]  # (N, C)
        if self.config.compute_verts:
            tensors.append(people.verts.float())  # (N, V, 3)
        ready = None
        if self.device.type == 'cuda':
            hosts = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in tensors]
            for host, tensor in zip(hosts, tensors, strict=True):
                host.copy_(tensor, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record(torch.cuda.current_stream(self.device))
            tensors = hosts
        return _CopyBack(packed=tensors[0], verts=tensors[1] if len(tensors) > 1 else None,
                         widths=tuple(c.shape[1] for c in columns),
                         num_joints=people.joints.shape[1], body_kind=people.body_kind,
                         padded=det.valid is not None, ready=ready)

    def _split(self, copy: _CopyBack, sizes, per_image_k) -> list[FrameResult]:
        """Wait for the copy back, then split the people per image (host only).

        This is where the padded layout first waits for the device; its empty slots are
        dropped here.
        """
        if copy.ready is not None:
            copy.ready.synchronize()
        packed = copy.packed.numpy()
        verts_host = None if copy.verts is None else copy.verts.numpy()
        num_joints, body_kind, want_verts = copy.num_joints, copy.body_kind, copy.verts is not None
        parts = np.split(packed, np.cumsum(copy.widths)[:-1], axis=1)
        cam, thetas, betas, cam_trans, joints_h, pj2d_h, confs = parts[:7]
        solved_h, batch_h, valid_h, non_finite_h, infant_h = (p[:, 0] for p in parts[7:])
        if non_finite_h.any():
            _warn_non_finite(int(non_finite_h.sum()))
        if isinstance(self.body_model, SMPLAWithInfants) and copy.padded:
            self.body_model.note_infants(bool(
                (valid_h > 0.5)[betas[:, 10] > self.body_model.age_thresh].any()))
        rows = valid_h > 0.5  # all rows in the compact layout
        keep = np.flatnonzero(rows)
        counts = np.bincount(batch_h[keep].astype(np.int64), minlength=len(sizes))
        bounds = np.cumsum(np.concatenate(([0], counts)))
        model_types = np.where(infant_h[keep] > 0.5, 'smil', body_kind)
        results = []
        for index, (h, w) in enumerate(sizes):
            take = keep[bounds[index]:bounds[index + 1]]
            k_used = per_image_k[index] or default_intrinsics(h, w, self.config.fov_deg)
            results.append(FrameResult(
                cam=cam[take], smpl_thetas=thetas[take], smpl_betas=betas[take],
                cam_trans=cam_trans[take],
                joints=joints_h[take].reshape(-1, num_joints, 3),
                verts=verts_host[take] if want_verts else None,
                pj2d_org=pj2d_h[take].reshape(-1, num_joints, 2), center_confs=confs[take, 0],
                joint_names=self.joint_names, image_size=(h, w), intrinsics=k_used,
                model_type=tuple(model_types[bounds[index]:bounds[index + 1]].tolist()),
                translation_solved=solved_h[take] > 0.5))
        return results


def _warn_non_finite(count: int) -> None:
    LOG.warning('the network produced NaN/inf parameters for %d detection(s); they were '
                'dropped. Check the checkpoint (corrupt or mismatched weights) and the '
                'precision setting', count)


def _window_camera(camera: CameraIntrinsics, window: Window) -> CameraIntrinsics:
    """The full image's camera seen through a window.

    The principal point moves by the window's offset; the lens, defined around the principal
    point, stays.
    """
    return dataclasses.replace(camera, cx=camera.cx - window.left, cy=camera.cy - window.top)


def _merge_windows(parts: list[FrameResult], windows: list[Window], size: tuple[int, int],
                   camera: CameraIntrinsics) -> FrameResult:
    """:func:`merge_windows`, carrying ``translation_solved`` along.

    ``merge_windows`` only selects and reorders the windows' people; each person is found
    again by its pose parameters and score, which it copies unchanged.
    """
    key = {}
    for part in parts:
        for row in range(part.num_people):
            key[(part.smpl_thetas[row].tobytes(), float(part.center_confs[row]))] = bool(
                part.translation_solved[row])
    stripped = [dataclasses.replace(part, translation_solved=None) for part in parts]
    merged = merge_windows(stripped, windows, size, camera)
    solved = np.array([key[(merged.smpl_thetas[row].tobytes(), float(merged.center_confs[row]))]
                       for row in range(merged.num_people)], dtype=bool)
    return dataclasses.replace(merged, translation_solved=solved)
