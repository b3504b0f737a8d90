"""The reference's full ROMP / BEV image pipelines, assembled from simple-romp's own functions.

simple-romp's ``ROMP`` / ``BEV`` classes cannot be imported without their download side
effects (their modules build settings at import time), so the steps of ``ROMP.forward`` and
``BEV.process_normal_image`` are replayed here call for call, with rendering and tracking off.
Test-only.
"""

from __future__ import annotations

import numpy as np
from reference_oracle import reference_module
import torch


def write_reference_body_files(models_dir, out_dir):
    """Write our prepared body models in the reference's packed .pth format."""
    from romp_ros.core.body.model_files import load_body_model_arrays

    paths = {}
    for kind, name in (('smpl', 'SMPL_NEUTRAL.pth'), ('smpla', 'SMPLA_NEUTRAL.pth'),
                       ('smil', 'smil_packed_info.pth')):
        arrays = load_body_model_arrays(models_dir, kind)
        info = {
            'v_template': torch.from_numpy(arrays.v_template.copy()),
            'shapedirs': torch.from_numpy(arrays.shapedirs[:, :, :10].copy()),
            'posedirs': torch.from_numpy(arrays.posedirs.copy()),
            'J_regressor': torch.from_numpy(arrays.j_regressor.copy()),
            'weights': torch.from_numpy(arrays.lbs_weights.copy()),
            'kintree_table': torch.from_numpy(arrays.parents.copy()),
            'f': torch.from_numpy(arrays.faces.copy()),
            'extra_joints_index': torch.from_numpy(arrays.extra_joints_index.copy()),
            'J_regressor_extra9': torch.from_numpy(arrays.j_regressor_extra9.copy()),
            'J_regressor_h36m17': torch.from_numpy(arrays.j_regressor_h36m17.copy()),
        }
        if kind == 'smpla':
            info['smpla_shapedirs'] = torch.from_numpy(arrays.shapedirs.copy())
        path = out_dir / name
        torch.save(info, path)
        paths[kind] = path
    return paths


class ReferenceROMP:
    """``romp.main.ROMP.forward`` with calc_smpl on, rendering and temporal filtering off."""

    def __init__(self, checkpoint, smpl_pth, center_thresh=0.25):
        model_mod = reference_module('romp.model')
        self.post = reference_module('romp.post_parser')
        self.utils = reference_module('romp.utils')
        self.model = model_mod.ROMPv1().eval()
        self.model.load_state_dict(torch.load(checkpoint, map_location='cpu'))
        self.parser = self.post.CenterMap(conf_thresh=center_thresh)
        self.smpl = self.post.SMPL_parser(str(smpl_pth))

    @torch.no_grad()
    def __call__(self, image_bgr: np.ndarray) -> dict | None:
        input_image, pad_info = self.utils.img_preprocess(image_bgr)
        center_maps, params_maps = self.model(input_image)
        params_maps[:, 0] = torch.pow(1.1, params_maps[:, 0])
        out = self.post.parsing_outputs(center_maps, params_maps, self.parser)
        if out is None:
            return None
        out['cam_trans'] = self.utils.convert_cam_to_3d_trans(out['cam'])
        out = self.smpl(out, root_align=False)
        out.update(self.post.body_mesh_projection2image(
            out['joints'], out['cam'], vertices=out['verts'], input2org_offsets=pad_info))
        return {k: v.numpy() if torch.is_tensor(v) else v for k, v in out.items()}


class ReferenceBEV:
    """``bev.main.BEV.process_normal_image`` with calc_smpl on, rendering/tracking off."""

    # 0.08: simple-romp's effective default (its `--crowd` is `store_false`: crowd mode is on
    # unless turned off, and crowd mode sets 0.08), which is the package's default too
    def __init__(self, checkpoint, smpla_pth, smil_pth, center_thresh=0.08, nms_thresh=20,
                 relative_scale_thresh=1.6):
        model_mod = reference_module('bev.model')
        self.post = reference_module('bev.post_parser')
        self.utils = reference_module('romp.utils')
        self.model = model_mod.BEVv1(center_thresh=center_thresh).eval()
        self.model.load_state_dict(torch.load(checkpoint, map_location='cpu'), strict=False)
        self.smpl = self.post.SMPLA_parser(str(smpla_pth), str(smil_pth))
        self.nms_thresh = nms_thresh
        self.relative_scale_thresh = relative_scale_thresh

    @torch.no_grad()
    def __call__(self, image_bgr: np.ndarray) -> dict | None:
        input_image, pad_info = self.utils.img_preprocess(image_bgr)
        out = self.model(input_image)
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
        out = self.post.remove_outlier(out, relative_scale_thresh=self.relative_scale_thresh)
        return {k: v.numpy() if torch.is_tensor(v) else v for k, v in out.items()}
