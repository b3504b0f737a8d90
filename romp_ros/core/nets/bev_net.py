"""BEV network: HRNet-W32 features -> 3D (depth, y, x) center and camera maps + regressor.

The forward pass is split so that the estimator can parse the 3D center map in between:

1. :meth:`BEVNet.forward_maps` computes every dense map (:class:`BEVMaps`).
2. The caller finds people in ``center_maps_3d`` (NMS + top-K, see
   ``romp_ros.core.postprocess``) and samples ``cam_maps_3d`` at their (z, y, x) cells.
3. :meth:`BEVNet.regress_params` turns each person's camera into SMPL-A parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from romp_ros.core.nets.blocks import BN_MOMENTUM, BasicBlock, BasicBlock1D, BasicBlock3D
from romp_ros.core.nets.coordmaps import cam3d_anchors, coord_maps_3d
from romp_ros.core.nets.romp_net import first_conv_weight, images_to_input

MAP_SIZE = 128  # at the official 512 input; an S x S input gives S / 4
DEPTH_BINS = MAP_SIZE // 2  # 64 depth levels of the 3D maps (map size / 2)
OFFICIAL_INPUT_SIZE = 512
BEV_FOV_DEG = 60.0  # field of view the depth anchors were designed for
BEV_POSE_DIM = 22 * 6
BEV_BETAS_DIM = 11  # 10 SMPL betas + the SMPL-A age offset
BEV_CAM_DIM = 3
BEV_PARAMS_DIM = BEV_CAM_DIM + BEV_POSE_DIM + BEV_BETAS_DIM  # 146
_HEAD_CHANNELS = 128
_BV_CHANNELS = 16  # image-feature channels squeezed into the bird's-eye view
_BV_HIDDEN = 512
_MLP_HIDDEN = 512
_DROPOUT = 0.2  # inactive at inference; kept so the layer indices match the checkpoints


@dataclass(frozen=True)
class BEVMaps:
    """Dense outputs of :meth:`BEVNet.forward_maps`.

    Attributes:
        center_maps_3d: (B, 64, 128, 128) body-center score per (depth bin, y, x); the
            reference detects people at 5x5x5 local maxima above 0.1.
        cam_maps_3d: (B, 64, 128, 128, 3) camera per cell: [scale, y, x] in the normalised
            [-1, 1] frame, the scale being absolute (no ``1.1 **`` as in ROMP).
        center_maps_fv: (B, 1, 128, 128) front-view (image plane) center score.
        param_features: (B, 128, 128, 128) features that :meth:`BEVNet.regress_params`
            samples at each person's (y, x).
    """

    center_maps_3d: Tensor
    cam_maps_3d: Tensor
    center_maps_fv: Tensor
    param_features: Tensor


def _bev_head(in_channels: int, out_channels: int | None) -> nn.Sequential:
    """One BasicBlock widened to 128 channels (1x1 conv shortcut), then a 1x1 conv if any."""
    projection = nn.Conv2d(in_channels, _HEAD_CHANNELS, 1)
    layers: list[nn.Module] = [
        nn.Sequential(BasicBlock(in_channels, _HEAD_CHANNELS, downsample=projection))]
    if out_channels is not None:
        layers.append(nn.Conv2d(_HEAD_CHANNELS, out_channels, 1))
    return nn.Sequential(*layers)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
            nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True)]


def cams_to_czyx(cams: Tensor, anchors: Tensor, size: int = MAP_SIZE) -> Tensor:
    """Return the (N, 3) long (z, y, x) cells of the 3D maps that cameras (N, 3) point at.

    z is the depth bin whose anchor scale is closest to the camera scale; y and x come from
    the camera's normalised translation. Like the reference, each coordinate goes through
    the [-1, 1] frame and back to cells clamped to [1, size - 1] (so bin 0 becomes 1).
    """
    cams = cams.float()
    normalised = cams.clone()  # (N, 3): [z, y, x] in [-1, 1]
    if cams.shape[0] > 0:
        anchors = anchors.to(device=cams.device, dtype=torch.float32)
        distance = (cams[:, :1] - anchors.view(1, -1)).abs()  # (N, D)
        normalised[:, 0] = distance.argmin(dim=1).float() / size * 2.0 - 1.0
    cells = (normalised + 1.0) / 2.0 * size
    return cells.clamp(1, size - 1).long()  # (N, 3)


class BEVNet(nn.Module):
    """BEV (Bird's-Eye-View) multi-person regressor; module names follow ``BEVv1``.

    Unlike ROMP, BEV is built for one input size: its bird's-eye branch folds the image rows
    into channels, so the layer widths depend on the map size (S / 4). The official weights
    are for 512; other sizes (e.g. 256 for CPU training) need weights trained at that size.
    """

    def __init__(self, backbone: nn.Module, input_size: int = OFFICIAL_INPUT_SIZE) -> None:
        super().__init__()
        if input_size % 32 or input_size < 128:
            raise ValueError(f'BEV input_size={input_size} must be a multiple of 32, >= 128')
        self.backbone = backbone
        self.input_size = int(input_size)
        self.map_size = self.input_size // 4  # 128 at 512
        self.depth_bins = self.map_size // 2  # 64 at 512
        feat = int(backbone.out_channels)
        anchors = cam3d_anchors(BEV_FOV_DEG, self.map_size)  # (D,)
        # Constant but persistent: official BEV.pth files contain it (see checkpoint.py).
        self.register_buffer('coordmap_3d', coord_maps_3d(anchors, self.map_size))
        # A plain CPU float32 attribute, not a buffer: .half() / .to(dtype) must not round it,
        # since cameras are compared with it through an argmin.
        self.cam3d_anchors = anchors

        # Depth bin -> embedding added to the sampled features; bin 0 is never sampled.
        self.position_embeddings = nn.Embedding(self.map_size, _HEAD_CHANNELS, padding_idx=0)
        self.transformer = nn.Sequential(
            nn.Linear(_HEAD_CHANNELS, _MLP_HIDDEN), nn.ReLU(inplace=True), nn.Dropout(_DROPOUT),
            nn.Linear(_MLP_HIDDEN, _MLP_HIDDEN), nn.ReLU(inplace=True), nn.Dropout(_DROPOUT),
            nn.Linear(_MLP_HIDDEN, BEV_PARAMS_DIM - BEV_CAM_DIM))
        self.det_head = _bev_head(feat, 1 + BEV_CAM_DIM)  # front-view center + cam offsets
        self.param_head = _bev_head(feat, None)
        self.bv_pre_layers = nn.Sequential(
            *_conv_bn_relu(feat, _BV_CHANNELS, 1),
            *_conv_bn_relu(_BV_CHANNELS, _BV_CHANNELS, 3),
            *_conv_bn_relu(_BV_CHANNELS, _BV_CHANNELS, 1))
        # Each image column becomes a 1D sequence over x whose channels are (feature, row).
        bv_in = (_BV_CHANNELS + 1 + BEV_CAM_DIM) * self.map_size
        self.bv_out_layers = nn.Sequential(
            BasicBlock1D(bv_in, _BV_HIDDEN),
            BasicBlock1D(_BV_HIDDEN, _BV_HIDDEN),
            BasicBlock1D(_BV_HIDDEN, self.depth_bins * 2))  # depth scores + cam offsets
        self.center_map_refiner = nn.Sequential(BasicBlock3D(1))
        self.cam_map_refiner = nn.Sequential(BasicBlock3D(BEV_CAM_DIM))

    def forward(self, images: Tensor) -> BEVMaps:
        """Alias of :meth:`forward_maps`."""
        return self.forward_maps(images)

    def forward_maps(self, images: Tensor) -> BEVMaps:
        """Run on (B, S, S, 3) float RGB 0..255 images (S = ``input_size``); dense maps."""
        x = images_to_input(images, first_conv_weight(self.backbone))  # (B, 3, S, S)
        if x.shape[2] != self.input_size or x.shape[3] != self.input_size:
            raise ValueError(f'this BEV was built for {self.input_size}x{self.input_size} '
                             f'inputs, got {tuple(x.shape[2:])}')
        features = self.backbone(x)  # (B, 32, H, W), H = W = S / 4
        batch = features.shape[0]

        maps_fv = self.det_head(features)  # (B, 4, 128, 128)
        center_fv = maps_fv[:, :1]  # (B, 1, 128, 128)
        cam_offsets = maps_fv[:, 1:]  # (B, 3, 128, 128)

        # Bird's-eye view: fold the image rows into channels and convolve along x.
        img_feats = self.bv_pre_layers(features)  # (B, 16, 128, 128)
        columns = torch.cat([center_fv, cam_offsets, img_feats], dim=1)  # (B, 20, H, W)
        columns = columns.reshape(batch, -1, self.map_size)  # (B, 20 * H, W)
        bv = self.bv_out_layers(columns)  # (B, 128, W), >= 0
        center_bv = bv[:, :self.depth_bins]  # (B, D, W)
        depth_offsets_bv = bv[:, self.depth_bins:]  # (B, D, W)

        # A 3D center is strong where both the image-plane and the depth scores are.
        center_3d = center_fv * center_bv.unsqueeze(2)  # (B, D, H, W)
        center_3d = self.center_map_refiner(center_3d.unsqueeze(1)).squeeze(1)  # (B, D, H, W)

        cam_3d = self.coordmap_3d + cam_offsets.permute(0, 2, 3, 1).unsqueeze(1)  # (B,D,H,W,3)
        # The depth branch corrects the third component only (as in the official weights).
        depth_fix = torch.zeros_like(cam_3d)
        depth_fix[..., 2] = depth_offsets_bv.unsqueeze(2)  # broadcast over rows
        cam_3d = self.cam_map_refiner((cam_3d + depth_fix).permute(0, 4, 1, 2, 3))  # (B,3,D,H,W)

        return BEVMaps(
            center_maps_3d=center_3d,
            cam_maps_3d=cam_3d.permute(0, 2, 3, 4, 1),  # (B, D, H, W, 3)
            center_maps_fv=center_fv,
            param_features=self.param_head(features))  # (B, 128, 128, 128)

    def regress_params(self, param_features: Tensor, cams: Tensor, batch_ids: Tensor) -> Tensor:
        """Regress (N, 146) parameters [cam (3), 22 x 6D pose, 11 betas] for N people.

        Args:
            param_features: (B, 128, 128, 128) from :attr:`BEVMaps.param_features`.
            cams: (N, 3) cameras sampled from ``cam_maps_3d`` at each person's center.
            batch_ids: (N,) long, the image of each person.

        The features are read at the cell the camera points at (not at the detected center),
        plus the embedding of the camera's depth bin; all people are processed at once.
        """
        czyx = cams_to_czyx(cams, self.cam3d_anchors, self.map_size)  # (N, 3)
        sampled = param_features[batch_ids, :, czyx[:, 1], czyx[:, 2]]  # (N, 128)
        tokens = sampled + self.position_embeddings(czyx[:, 0]).to(sampled.dtype)  # (N, 128)
        params = self.transformer(tokens)  # (N, 143)
        return torch.cat([cams.to(params.dtype), params], dim=1)  # (N, 146)
