"""The reference's (simple-romp's) pipelines, for ``romp-ros bench --compare-reference`` only.

simple-romp is never a dependency of this package: it is looked up when the comparison is
asked for, and a clear error says how to install it otherwise. Its ``romp`` / ``bev`` package
``__init__`` modules build settings at import time (they pip-install packages and download
checkpoints), so the packages are registered as empty modules pointing at the installed
folders and only the submodules with the model, post-processing and SMPL code are imported.

The steps of ``romp.main.ROMP.forward`` (torch and its ``--onnx`` path) and of
``bev.main.BEV.process_normal_image`` are replayed call for call, rendering and tracking off.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
import sys
import tempfile
import types

import numpy as np
import torch

# the reference's own export settings for ROMP.onnx (romp/model.py): opset 12, input 'image'
REFERENCE_ONNX_OPSET = 12


class ReferenceNotInstalledError(RuntimeError):
    """simple-romp (the reference) is not installed, or not the expected version."""


def reference_module(qualname: str) -> types.ModuleType:
    """Import e.g. ``romp.model`` without running the ``romp`` package's import side effects."""
    for package in ('romp', 'bev'):
        existing = sys.modules.get(package)
        if existing is not None and getattr(existing, '__romp_ros_reference__', False):
            continue
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ReferenceNotInstalledError(
                'the reference implementation is not installed: pip install simple-romp==1.1.4 '
                '(it builds Cython code: install cython and numpy first, then use '
                '--no-build-isolation), or run without --compare-reference')
        module = types.ModuleType(package)
        module.__path__ = list(spec.submodule_search_locations)
        module.__romp_ros_reference__ = True
        sys.modules[package] = module
    return importlib.import_module(qualname)


def write_reference_body_files(models_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Our prepared body models in the reference's packed .pth format (SMPL, SMPL-A, SMIL)."""
    from romp_ros.core.body.model_files import load_body_model_arrays

    out_dir = Path(out_dir)
    paths = {}
    for kind, name in (('smpl', 'SMPL_NEUTRAL.pth'), ('smpla', 'SMPLA_NEUTRAL.pth'),
                       ('smil', 'smil_packed_info.pth')):
        arrays = load_body_model_arrays(models_dir, kind)
        packed = {key: torch.from_numpy(np.array(value)) for key, value in (
            ('v_template', arrays.v_template), ('shapedirs', arrays.shapedirs[:, :, :10]),
            ('posedirs', arrays.posedirs), ('J_regressor', arrays.j_regressor),
            ('weights', arrays.lbs_weights), ('kintree_table', arrays.parents),
            ('f', arrays.faces), ('extra_joints_index', arrays.extra_joints_index),
            ('J_regressor_extra9', arrays.j_regressor_extra9),
            ('J_regressor_h36m17', arrays.j_regressor_h36m17))}
        if kind == 'smpla':
            packed['smpla_shapedirs'] = torch.from_numpy(np.array(arrays.shapedirs))
        paths[kind] = out_dir / name
        torch.save(packed, paths[kind])
    return paths


class ReferenceRomp:
    """``ROMP.forward`` of simple-romp: torch (``onnx=False``) or its ONNX Runtime path."""

    def __init__(self, checkpoint: str | Path, smpl_pth: Path, onnx: bool = False,
                 center_thresh: float = 0.25, threads: int | None = None,
                 device: str | torch.device = 'cpu') -> None:
        self.post = reference_module('romp.post_parser')
        self.utils = reference_module('romp.utils')
        model = reference_module('romp.model').ROMPv1().eval()
        model.load_state_dict(torch.load(checkpoint, map_location='cpu', weights_only=True))
        self.parser = self.post.CenterMap(conf_thresh=center_thresh)
        self.device = torch.device(device)
        self.smpl = self.post.SMPL_parser(str(smpl_pth)).to(self.device)
        self.model, self.session = model.to(self.device), None
        if onnx:
            self.session = _reference_onnx_session(model.cpu(), threads)
            self.model = None  # the reference holds the session only

    @torch.no_grad()
    def __call__(self, image_bgr: np.ndarray) -> dict | None:
        """One BGR frame -> the reference's outputs (None when it finds nobody)."""
        input_image, pad_info = self.utils.img_preprocess(image_bgr)
        if self.session is not None:  # as the reference: NumPy in, NumPy out, to the device
            center_maps, params_maps = (torch.from_numpy(a).to(self.device)
                                        for a in self.session.run(
                                            None, {'image': input_image.numpy().astype(
                                                np.float32)}))
        else:
            center_maps, params_maps = self.model(input_image.to(self.device))
        params_maps[:, 0] = torch.pow(1.1, params_maps[:, 0])
        out = self.post.parsing_outputs(center_maps, params_maps, self.parser)
        if out is None:
            return None
        out['cam_trans'] = self.utils.convert_cam_to_3d_trans(out['cam'])
        out = self.smpl(out, root_align=False)
        out.update(self.post.body_mesh_projection2image(
            out['joints'], out['cam'], vertices=out['verts'], input2org_offsets=pad_info))
        return out


class ReferenceBev:
    """``BEV.process_normal_image`` of simple-romp (torch; the reference has no BEV ONNX)."""

    def __init__(self, checkpoint: str | Path, smpla_pth: Path, smil_pth: Path,
                 center_thresh: float = 0.08, nms_thresh: float = 20,
                 relative_scale_thresh: float = 1.6, device: str | torch.device = 'cpu') -> None:
        self.post = reference_module('bev.post_parser')
        self.utils = reference_module('romp.utils')
        self.model = reference_module('bev.model').BEVv1(center_thresh=center_thresh).eval()
        self.model.load_state_dict(torch.load(checkpoint, map_location='cpu',
                                              weights_only=True), strict=False)
        self.device = torch.device(device)
        self.model = self.model.to(self.device)
        self.smpl = self.post.SMPLA_parser(str(smpla_pth), str(smil_pth)).to(self.device)
        self.nms_thresh, self.relative_scale_thresh = nms_thresh, relative_scale_thresh

    @torch.no_grad()
    def __call__(self, image_bgr: np.ndarray) -> dict | None:
        """One BGR frame -> the reference's outputs (None when it finds nobody)."""
        input_image, pad_info = self.utils.img_preprocess(image_bgr)
        out = self.model(input_image.to(self.device))
        if out is None:
            return None
        out.update(self.post.pack_params_dict(out['params_pred']))
        out['cam_trans'] = self.post.denormalize_cam_params_to_trans(out['cam'])
        keep = ('smpl_thetas', 'smpl_betas', 'cam', 'cam_trans', 'params_pred', 'center_confs',
                'pred_batch_ids')
        out = {k: out[k] for k in keep}
        verts, joints, _ = self.smpl(out['smpl_betas'], out['smpl_thetas'])
        out.update({'verts': verts, 'joints': joints})
        out.update(self.post.body_mesh_projection2image(out['joints'], out['cam'],
                                                        input2org_offsets=pad_info))
        out = self.post.suppressing_redundant_prediction_via_projection(
            out, image_bgr.shape, thresh=self.nms_thresh)
        return self.post.remove_outlier(out, relative_scale_thresh=self.relative_scale_thresh)


def _reference_onnx_session(model: torch.nn.Module, threads: int | None):
    """Export ROMPv1 as the reference does and open it in ONNX Runtime with its providers."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ReferenceNotInstalledError(
            "the reference's ONNX path needs onnxruntime: pip install onnxruntime") from err
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'ROMP.onnx'
        torch.onnx.export(model, (torch.rand(1, 512, 512, 3),), str(path),
                          input_names=['image'], output_names=['center_maps', 'params_maps'],
                          export_params=True, opset_version=REFERENCE_ONNX_OPSET,
                          do_constant_folding=True, dynamo=False)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        wanted = ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
        available = ort.get_available_providers()
        return ort.InferenceSession(str(path), options,
                                    providers=[p for p in wanted if p in available])
