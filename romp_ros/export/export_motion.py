"""``export_motion``: a results file of ``romp-ros infer`` -> glTF, BVH, OBJ / PLY or JSON.

The one entry point of the export package (the ``romp-ros export-motion`` command calls it).
The results file is streamed: only a few numbers per person and per frame are held in memory,
never the poses, joints or vertices of all frames (see :mod:`romp_ros.export.motion_source`).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from pathlib import Path

from romp_ros.export.body_skin import BodyModels
from romp_ros.export.bvh_export import write_bvh
from romp_ros.export.errors import MotionExportError
from romp_ros.export.gltf_export import write_glb
from romp_ros.export.json_export import write_json
from romp_ros.export.mesh_export import write_meshes
from romp_ros.export.motion_source import DEFAULT_BLOCK_ROWS, MotionSource
from romp_ros.export.skeleton import AXES
from romp_ros.export.track_summary import select_tracks, summarise_tracks

LOG = logging.getLogger(__name__)
FORMATS = ('glb', 'bvh', 'obj', 'ply', 'json')
_NEEDS_MODELS = ('glb', 'obj', 'ply')


@dataclass(frozen=True)
class ExportOptions:
    """How to export.

    Attributes:
        fmt: 'glb', 'bvh', 'obj', 'ply' or 'json'.
        track: export only this track id; None for every track.
        fps: frame rate of the output; None: the stamps of the file (glb, json) or their
            median rate (bvh), 30 when the file has none.
        models_dir: the prepared body models (``romp-ros prepare-models``); needed for glb
            (skin) and obj / ply (faces).
        axes: obj / ply vertices in 'yup' (x, -y, -z of the camera frame) or 'camera'.
        block_rows: people read per block (memory vs. speed).
    """

    fmt: str
    track: int | None = None
    fps: float | None = None
    models_dir: Path | None = None
    axes: str = 'yup'
    block_rows: int = DEFAULT_BLOCK_ROWS

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise MotionExportError(f'unknown format {self.fmt!r}; choose one of '
                                    f'{", ".join(FORMATS)}')
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise MotionExportError(f'--fps must be a positive number, got {self.fps}')
        if self.axes not in AXES:
            raise MotionExportError(f'axes must be one of {AXES}, got {self.axes!r}')
        if self.fmt in _NEEDS_MODELS and self.models_dir is None:
            part = 'skin' if self.fmt == 'glb' else 'faces'
            raise MotionExportError(
                f'{self.fmt} export needs the body model ({part}): pass --models-dir DIR, the '
                'folder written by `romp-ros prepare-models`')
        if self.block_rows < 1:
            raise MotionExportError(f'block_rows must be >= 1, got {self.block_rows}')


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote.

    Attributes:
        paths: the files (glb, json, bvh) or folders (obj, ply) written.
        tracks: ids of the exported tracks (empty for untracked json / obj / ply).
        frames: frames in the results file.
        skipped_people: detections left out for NaN / inf values.
    """

    paths: tuple[Path, ...]
    tracks: tuple[int, ...]
    frames: int
    skipped_people: int


def export_motion(results: str | Path, out: str | Path, options: ExportOptions) -> ExportSummary:
    """Export ``results`` (an ``infer`` .npz) to ``out`` in ``options.fmt``.

    Raises:
        FileNotFoundError: ``results`` does not exist.
        MotionExportError: an unusable file or option (the message names the fix).
        ModelFilesError: the models directory lacks a needed body model.
    """
    out = Path(out).expanduser()
    with MotionSource(results, block_rows=options.block_rows) as source:
        models = BodyModels(options.models_dir) if options.models_dir else None
        fps = options.fps or source.frame_rate()
        times = source.frame_times(options.fps)
        fmt = options.fmt
        track_ids = None
        if fmt in ('glb', 'bvh') or source.has_tracks:
            track_ids = select_tracks(source, fmt, options.track)
        elif options.track is not None:
            source.require_tracks('--track')
        if track_ids is not None and track_ids.size == 0:
            LOG.warning('%s holds no (valid) tracked person: %s', source.path,
                        'writing an empty scene' if fmt in ('glb', 'json') else
                        'nothing to write')
        if fmt == 'glb':
            tracks = summarise_tracks(source, track_ids)
            paths = [write_glb(source, tracks, models, _with_suffix(out, '.glb'), times)]
        elif fmt == 'bvh':
            tracks = summarise_tracks(source, track_ids)
            paths = write_bvh(source, tracks, _with_suffix(out, '.bvh'), fps)
        elif fmt == 'json':
            paths = [write_json(source, _with_suffix(out, '.json'), times, fps, track_ids)]
        else:
            paths = write_meshes(source, models, out, fmt, track_ids, options.axes)
        return ExportSummary(paths=tuple(paths),
                             tracks=() if track_ids is None else tuple(int(t) for t in track_ids),
                             frames=source.num_frames, skipped_people=source.invalid_rows)


def _with_suffix(path: Path, suffix: str) -> Path:
    return path if path.suffix.lower() == suffix else path.with_suffix(suffix)
