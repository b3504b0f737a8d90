"""`romp-ros infer --render DIR`: pictures of what the estimator saw, written frame by frame.

Into ``DIR``:

===========================  ==================================================================
``overlay/<k>_<name>.jpg``   image inputs: the mesh overlay of frame k (``draw_people_overlay``)
``birds_eye/<k>_<name>.png`` image inputs: the bird's-eye view of frame k
``overlay_<stream>.mp4``     video and bag inputs: the overlay as a video, one per stream
``birds_eye_<stream>.mp4``   video and bag inputs: the bird's-eye view as a video
``maps/<k>_center.png``      with ``--render-maps``: the center map over the image
``maps/<k>_bev_depth.png``   with ``--render-maps`` and BEV: the bird's-eye depth map
``contact_sheet.jpg``        up to 16 overlays spread over the whole run, in a grid
===========================  ==================================================================

k is the frame's index in the ``infer`` output (the .npz ``frame_index``). Trails in the
bird's-eye view need ``--track`` (they follow track ids). Memory stays bounded: frames are
written as they come and the contact sheet keeps a thinned set of thumbnails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import math
from pathlib import Path
import re

import numpy as np

from romp_ros.core.render import (
    BirdsEyeConfig,
    BirdsEyePeople,
    OverlayStyle,
    TrailKeeper,
    draw_birds_eye,
    draw_people_overlay,
)
from romp_ros.core.render.heatmaps import (
    birds_eye_depth_image,
    birds_eye_depth_map,
    center_map_overlay,
)
from romp_ros.core.results import FrameResult

LOG = logging.getLogger(__name__)
THUMB_WIDTH = 320
SHEET_COLUMNS = 4
VIDEO_CODEC = 'mp4v'


@dataclass(frozen=True)
class RenderOptions:
    """What ``--render`` writes.

    Attributes:
        out_dir: the folder.
        maps: also the network's maps (one more network pass per frame).
        sheet_size: thumbnails on the contact sheet (0: no sheet).
        fps: frame rate of the videos of streams without stamps.
        birds_eye: size and scale of the bird's-eye view.
        style: the overlay's look.
    """

    out_dir: Path
    maps: bool = False
    sheet_size: int = 16
    fps: float = 30.0
    birds_eye: BirdsEyeConfig = field(default_factory=BirdsEyeConfig)
    style: OverlayStyle = field(default_factory=OverlayStyle)

    def __post_init__(self) -> None:
        if self.sheet_size < 0:
            raise ValueError(f'sheet_size must be >= 0, got {self.sheet_size}')
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f'fps must be > 0, got {self.fps}')


@dataclass(frozen=True)
class NetworkMaps:
    """The maps of one image (see romp_ros.core.render.heatmaps).

    Attributes:
        center: (M, M) center scores over the padded square input.
        pad_info: (6,) where the image sits in that square (``PreparedBatch.pad_info``).
        birds_eye: (D, W) BEV's bird's-eye depth map, None for ROMP.
        bin_depths_m: (D,) the distance of each depth bin, None for ROMP.
    """

    center: np.ndarray
    pad_info: np.ndarray
    birds_eye: np.ndarray | None = None
    bin_depths_m: np.ndarray | None = None


def network_maps(estimator, image_rgb: np.ndarray) -> NetworkMaps:
    """Run the estimator's network once more on one RGB image and keep its dense maps."""
    import torch

    from romp_ros.core.preprocess import prepare_batch

    batch = prepare_batch([image_rgb], color_order='rgb', device=estimator.device,
                          input_size=estimator.input_size)
    pad = batch.pad_info[0].cpu().numpy()
    with torch.inference_mode():
        if estimator.config.model == 'romp':
            maps = estimator.model(batch.tensor)
            return NetworkMaps(center=maps.center_maps[0, 0].float().cpu().numpy(), pad_info=pad)
        maps = estimator.model.forward_maps(batch.tensor)
        fov = math.radians(60.0)  # BEV's anchors were designed for 60 degrees
        anchors = estimator.model.cam3d_anchors.double().cpu().numpy()  # (D,) scales
        return NetworkMaps(center=maps.center_maps_fv[0, 0].float().cpu().numpy(),
                           pad_info=pad,
                           birds_eye=birds_eye_depth_map(maps.center_maps_3d[0]),
                           bin_depths_m=1.0 / (math.tan(fov / 2) * anchors))


@dataclass
class _Stream:
    """Per input stream: videos being written, trails, timing."""

    name: str
    is_video: bool
    trails: TrailKeeper = field(default_factory=TrailKeeper)
    writers: dict = field(default_factory=dict)  # kind -> cv2.VideoWriter
    sizes: dict = field(default_factory=dict)  # kind -> (width, height) of its frames
    count: int = 0
    first_stamp_ns: int | None = None


class RenderWriter:
    """Writes the pictures of each frame as it comes (see the module docstring)."""

    def __init__(self, options: RenderOptions, faces: np.ndarray | None,
                 estimator=None) -> None:
        """Prepare ``options.out_dir``.

        Args: the options, the mesh faces (None: skeletons only), and the estimator (needed
        for ``options.maps``).
        """
        import cv2

        if options.maps and estimator is None:
            raise ValueError('rendering the network maps needs the estimator')
        self._cv2 = cv2
        self.options = options
        self._faces = faces
        self._estimator = estimator
        self._streams: dict[str, _Stream] = {}
        self._index = 0
        self._thumbs: list[tuple[int, np.ndarray]] = []
        self._thumb_stride = 1
        self.written: list[Path] = []
        options.out_dir.mkdir(parents=True, exist_ok=True)

    def add(self, frame, result: FrameResult, track_ids=None) -> None:
        """Render one frame (an ``input_sources.Frame``) and its result.

        ``track_ids``: (N,) ids of a tracked frame (colours, labels, trails); None numbers
        the people by rank.
        """
        index = self._index
        self._index += 1
        rgb = np.ascontiguousarray(frame.pixels[..., ::-1] if frame.color_order == 'bgr'
                                   else frame.pixels)
        stream = self._stream(frame)
        ids = (np.arange(result.num_people) if track_ids is None
               else np.asarray(track_ids, np.int64))
        overlay = draw_people_overlay(rgb, result, self._faces, ids, style=self.options.style)
        people = BirdsEyePeople.from_result(result, ids)
        trails = None
        if track_ids is not None:
            stamp_s = self._stamp_s(stream, frame)
            stream.trails.update(ids, people.positions, stamp_s)
            trails = stream.trails.trails()
        view = draw_birds_eye(people, self.options.birds_eye, intrinsics=result.intrinsics,
                              image_width=result.image_size[1], trails=trails)
        label = f'{index:06d}_{_safe(Path(frame.source.split("#")[0]).stem)}'
        if stream.is_video:
            self._video(stream, 'overlay', overlay)
            self._video(stream, 'birds_eye', view)
        else:
            self._image(Path('overlay') / f'{label}.jpg', overlay)
            self._image(Path('birds_eye') / f'{label}.png', view)
        if self.options.maps:
            self._maps(index, rgb)
        stream.count += 1
        self._keep_thumbnail(index, overlay)

    def close(self) -> list[Path]:
        """Finish the videos and write the contact sheet; returns every file written."""
        for stream in self._streams.values():
            for writer in stream.writers.values():
                writer.release()
        if self.options.sheet_size and self._thumbs:
            self._image(Path('contact_sheet.jpg'), self._sheet())
        LOG.info('render: %d frame(s) -> %s', self._index, self.options.out_dir)
        return self.written

    # -- pieces ------------------------------------------------------------------------------
    def _stream(self, frame) -> _Stream:
        key = frame.stream
        if key not in self._streams:
            is_video = key != 'images'
            name = _safe(Path(key.split(':')[0]).stem + (
                '_' + key.split(':', 1)[1] if ':' in key else ''))
            self._streams[key] = _Stream(name=name, is_video=is_video)
        return self._streams[key]

    def _stamp_s(self, stream: _Stream, frame) -> float:
        if frame.stamp_ns is None:
            return stream.count / self.options.fps
        if stream.first_stamp_ns is None:
            stream.first_stamp_ns = frame.stamp_ns
        return (frame.stamp_ns - stream.first_stamp_ns) * 1e-9

    def _video(self, stream: _Stream, kind: str, rgb: np.ndarray) -> None:
        cv2 = self._cv2
        writer = stream.writers.get(kind)
        height, width = rgb.shape[:2]
        if writer is None:
            path = self.options.out_dir / f'{kind}_{stream.name}.mp4'
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_CODEC),
                                     self.options.fps, (width, height))
            if not writer.isOpened():
                raise OSError(f'OpenCV cannot write {path} (codec {VIDEO_CODEC})')
            stream.writers[kind] = writer
            stream.sizes[kind] = (width, height)
            self.written.append(path)
        if (width, height) != stream.sizes[kind]:  # a stream whose image size changes
            rgb = cv2.resize(rgb, stream.sizes[kind], interpolation=cv2.INTER_AREA)
        writer.write(np.ascontiguousarray(rgb[..., ::-1]))

    def _image(self, relative: Path, rgb: np.ndarray) -> None:
        path = self.options.out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self._cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
            raise OSError(f'could not write {path}')
        self.written.append(path)

    def _maps(self, index: int, rgb: np.ndarray) -> None:
        maps = network_maps(self._estimator, rgb)
        self._image(Path('maps') / f'{index:06d}_center.png',
                    center_map_overlay(maps.center, rgb, maps.pad_info))
        if maps.birds_eye is not None:
            self._image(Path('maps') / f'{index:06d}_bev_depth.png',
                        birds_eye_depth_image(maps.birds_eye, maps.bin_depths_m))

    def _keep_thumbnail(self, index: int, rgb: np.ndarray) -> None:
        """Keep every stride-th frame; when twice the sheet is held, halve them."""
        if not self.options.sheet_size or index % self._thumb_stride:
            return
        height, width = rgb.shape[:2]
        size = (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width)))
        thumb = self._cv2.resize(rgb, size, interpolation=self._cv2.INTER_AREA)
        self._thumbs.append((index, thumb))
        if len(self._thumbs) >= 2 * self.options.sheet_size:
            self._thumb_stride *= 2
            self._thumbs = [t for t in self._thumbs if t[0] % self._thumb_stride == 0]

    def _sheet(self) -> np.ndarray:
        cv2 = self._cv2
        count = self.options.sheet_size
        picks = np.unique(np.linspace(0, len(self._thumbs) - 1, count).round().astype(int))
        thumbs = [self._thumbs[i] for i in picks]
        height = max(t.shape[0] for _, t in thumbs)
        columns = min(SHEET_COLUMNS, len(thumbs))
        rows = math.ceil(len(thumbs) / columns)
        sheet = np.zeros((rows * height, columns * THUMB_WIDTH, 3), np.uint8)
        for slot, (index, thumb) in enumerate(thumbs):
            r, c = divmod(slot, columns)
            tile = sheet[r * height:r * height + thumb.shape[0],
                         c * THUMB_WIDTH:(c + 1) * THUMB_WIDTH]
            tile[:] = thumb
            cv2.putText(tile, f'#{index}', (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 255, 255), 1, cv2.LINE_AA)
        return sheet


def _safe(name: str) -> str:
    """A file-name-safe version of ``name``."""
    return re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_') or 'input'
