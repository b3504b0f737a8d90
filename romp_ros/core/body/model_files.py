"""The models directory: body-model arrays written by ``romp-ros prepare-models``.

Layout of ``models_dir``::

    smpl_neutral.npz    SMPL (neutral), for ROMP
    smpla_neutral.npz   SMPL-A (SMPL + the age-offset shape direction), for BEV
    smil.npz            SMIL infant model (optional, BEV)
    manifest.json       format version, source-file SHA-256s, vertex and joint counts

Every ``.npz`` is read with ``allow_pickle=False``: it holds plain arrays only, never objects.
Keys (V vertices, F faces, B shape directions; float32 unless stated)::

    format_version      ()            int64, FORMAT_VERSION
    kind                ()            str: 'smpl', 'smpla' or 'smil'
    v_template          (V, 3)        rest-pose vertices, metres, y up
    shapedirs           (V, 3, B)     shape blend shapes (B = 10; SMPL-A: 11)
    posedirs            (207, 3V)     pose blend shapes (23 joints x 9 rotation entries)
    j_regressor         (24, V)       SMPL joints from vertices
    lbs_weights         (V, 24)       skinning weights
    parents             (24,)         int64, parent joint (-1 for the root)
    faces               (F, 3)        int64, triangle vertex indices
  only when the extra regressor files were prepared (71 joints instead of 24):
    extra_joints_index  (21,)         int64, vertex ids of nose, eyes, ears, toes, fingers
    j_regressor_extra9  (9, V)        LSP / MPII / H36M joints from vertices
    j_regressor_h36m17  (17, V)       H36M joints from vertices (reference order)
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
import zipfile

import numpy as np

from romp_ros.core.body.joint_names import NUM_ALL_JOINTS, NUM_SMPL_JOINTS, joint_names

FORMAT_VERSION = 1
MANIFEST_NAME = 'manifest.json'
MODEL_KINDS: tuple[str, ...] = ('smpl', 'smpla', 'smil')
MODEL_FILE_NAMES: Mapping[str, str] = MappingProxyType({
    'smpl': 'smpl_neutral.npz', 'smpla': 'smpla_neutral.npz', 'smil': 'smil.npz'})
NUM_SHAPE_DIRS: Mapping[str, int] = MappingProxyType({'smpl': 10, 'smpla': 11, 'smil': 10})
NUM_POSE_FEATURES = 207  # 23 non-root joints x 9 entries of (R - I)
NUM_VERTEX_PICKS = 21
NUM_EXTRA_REGRESSED = 9
NUM_H36M_JOINTS = 17
EXTRA_KEYS: tuple[str, ...] = ('extra_joints_index', 'j_regressor_extra9', 'j_regressor_h36m17')

SMPL_URL = 'https://smpl.is.tue.mpg.de'
SMIL_URL = ('https://www.iosb.fraunhofer.de/en/competences/image-exploitation/'
            'object-recognition/sensor-networks/motion-analysis.html')
ROMP_MODEL_DATA_URL = 'https://github.com/Arthur151/ROMP/releases/download/V2.0/smpl_model_data.zip'
PREPARE_COMMAND = ('romp-ros prepare-models --smpl <SMPL_NEUTRAL.pkl or zip> '
                   '[--smil smil_web.pkl] [--extra DIR] --models-dir {models_dir}')

# Where each prepared file comes from, for the error message of a missing file.
_ORIGINS: Mapping[str, str] = MappingProxyType({
    'smpl': (f'it is converted from the SMPL model (SMPL v1.1.0 for Python, neutral: '
             f'SMPL_NEUTRAL.pkl, or the SMPL_python_v.1.1.0 zip) from {SMPL_URL} '
             '(free registration, licence-gated)'),
    'smpla': (f'it is converted from the SMPL model (SMPL v1.1.0, neutral) from {SMPL_URL} '
              'plus smpl_kid_template.npy from the ROMP model data release '
              f'({ROMP_MODEL_DATA_URL}) passed with --extra'),
    'smil': (f'it is converted from the SMIL infant model (smil_web.pkl) from {SMIL_URL} '
             '(licence-gated) passed with --smil'),
})


class ModelFilesError(RuntimeError):
    """A body-model file is missing, corrupt or malformed; the message says what to do."""


@dataclass(frozen=True)
class BodyModelArrays:
    """The arrays of one prepared body model (V vertices, F faces, B shape directions).

    Attributes:
        kind: 'smpl', 'smpla' or 'smil'.
        v_template: (V, 3) float32 rest-pose vertices, metres.
        shapedirs: (V, 3, B) float32 shape blend shapes (B = 10, SMPL-A 11).
        posedirs: (207, 3V) float32 pose blend shapes.
        j_regressor: (24, V) float32.
        lbs_weights: (V, 24) float32 skinning weights.
        parents: (24,) int64 parent of each joint, -1 for the root.
        faces: (F, 3) int64.
        extra_joints_index: (21,) int64 vertex ids, or None (24-joint model).
        j_regressor_extra9: (9, V) float32, or None.
        j_regressor_h36m17: (17, V) float32, or None.
    """

    kind: str
    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    j_regressor: np.ndarray
    lbs_weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray
    extra_joints_index: np.ndarray | None = None
    j_regressor_extra9: np.ndarray | None = None
    j_regressor_h36m17: np.ndarray | None = None

    def __post_init__(self) -> None:
        problem = validate_arrays(self.kind, self.as_dict())
        if problem:
            raise ModelFilesError(f'invalid {self.kind} body-model arrays: {problem}')

    @property
    def num_vertices(self) -> int:
        """V."""
        return int(self.v_template.shape[0])

    @property
    def num_betas(self) -> int:
        """B, the number of shape parameters."""
        return int(self.shapedirs.shape[2])

    @property
    def has_extra_joints(self) -> bool:
        """Whether the 47 extra joints (71 in all) are available."""
        return self.extra_joints_index is not None

    @property
    def num_joints(self) -> int:
        """71 with the extra regressors, else 24."""
        return NUM_ALL_JOINTS if self.has_extra_joints else NUM_SMPL_JOINTS

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Names of the output joints, in order."""
        return joint_names(self.num_joints)

    def as_dict(self) -> dict[str, np.ndarray]:
        """The arrays under their npz keys (absent optional arrays left out)."""
        out = {
            'v_template': self.v_template, 'shapedirs': self.shapedirs,
            'posedirs': self.posedirs, 'j_regressor': self.j_regressor,
            'lbs_weights': self.lbs_weights, 'parents': self.parents, 'faces': self.faces,
        }
        for key in EXTRA_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def validate_arrays(kind: str, arrays: Mapping[str, np.ndarray]) -> str:
    """Check keys, shapes, dtypes and values; return '' or a description of the first problem."""
    if kind not in MODEL_KINDS:
        return f'unknown kind {kind!r} (expected one of {list(MODEL_KINDS)})'
    required = ('v_template', 'shapedirs', 'posedirs', 'j_regressor', 'lbs_weights', 'parents',
                'faces')
    missing = [k for k in required if k not in arrays]
    if missing:
        return f'missing arrays {missing}'
    present_extra = [k for k in EXTRA_KEYS if arrays.get(k) is not None]
    if present_extra and len(present_extra) != len(EXTRA_KEYS):
        return f'extra-joint arrays must come together: only {present_extra} present'

    v_template = arrays['v_template']
    if v_template.ndim != 2 or v_template.shape[1] != 3 or v_template.shape[0] < 1:
        return f'v_template has shape {v_template.shape}, expected (V, 3)'
    num_verts = v_template.shape[0]
    num_betas = NUM_SHAPE_DIRS[kind]
    expected = {
        'shapedirs': (num_verts, 3, num_betas),
        'posedirs': (NUM_POSE_FEATURES, 3 * num_verts),
        'j_regressor': (NUM_SMPL_JOINTS, num_verts),
        'lbs_weights': (num_verts, NUM_SMPL_JOINTS),
        'parents': (NUM_SMPL_JOINTS,),
    }
    if present_extra:
        expected.update({
            'extra_joints_index': (NUM_VERTEX_PICKS,),
            'j_regressor_extra9': (NUM_EXTRA_REGRESSED, num_verts),
            'j_regressor_h36m17': (NUM_H36M_JOINTS, num_verts),
        })
    for key, shape in expected.items():
        if tuple(arrays[key].shape) != shape:
            return f'{key} has shape {tuple(arrays[key].shape)}, expected {shape}'
    faces = arrays['faces']
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] < 1:
        return f'faces has shape {faces.shape}, expected (F, 3)'

    for key in ('parents', 'faces', 'extra_joints_index'):
        if key in arrays and arrays[key] is not None and arrays[key].dtype.kind not in 'iu':
            return f'{key} has dtype {arrays[key].dtype}, expected integers'
    for key, value in arrays.items():
        if value is not None and value.dtype.kind == 'f' and not np.isfinite(value).all():
            return f'{key} contains NaN or infinite values'
    if faces.min() < 0 or faces.max() >= num_verts:
        return f'faces index vertices outside [0, {num_verts})'
    parents = arrays['parents']
    if parents[0] != -1 or any(not 0 <= parents[i] < i for i in range(1, len(parents))):
        return f'parents {parents.tolist()} is not a kinematic tree with the root first'
    if present_extra:
        picks = arrays['extra_joints_index']
        if picks.min() < 0 or picks.max() >= num_verts:
            return f'extra_joints_index has vertex ids outside [0, {num_verts})'
    return ''


def missing_file_message(models_dir: Path, kind: str) -> str:
    """The one message for a missing body-model file: which file, its origin, the command."""
    path = Path(models_dir) / MODEL_FILE_NAMES[kind]
    where = ('the models directory does not exist' if not Path(models_dir).is_dir()
             else 'the file does not exist')
    return (f'body model file {path} not found ({where}); {_ORIGINS[kind]}. Prepare it with: '
            + PREPARE_COMMAND.format(models_dir=models_dir))


def load_body_model_arrays(models_dir: str | Path, kind: str) -> BodyModelArrays:
    """Read one prepared body model from ``models_dir``.

    Args:
        models_dir: the directory written by ``romp-ros prepare-models``.
        kind: 'smpl' (ROMP), 'smpla' (BEV) or 'smil' (BEV infants).

    Raises:
        ModelFilesError: unknown kind, missing directory or file (the message names the file,
            where the original comes from and the command to run), or a corrupt file.
    """
    if kind not in MODEL_KINDS:
        raise ModelFilesError(f'unknown body model {kind!r}; choose one of {list(MODEL_KINDS)}')
    models_dir = Path(models_dir).expanduser()
    path = models_dir / MODEL_FILE_NAMES[kind]
    if not path.is_file():
        raise ModelFilesError(missing_file_message(models_dir, kind))
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ModelFilesError(
            f'body model file {path} is corrupt or not an npz file ({err}); re-create it with: '
            + PREPARE_COMMAND.format(models_dir=models_dir)) from err
    version = raw.pop('format_version', None)
    stored_kind = raw.pop('kind', None)
    if version is None or int(version) != FORMAT_VERSION:
        raise ModelFilesError(
            f'body model file {path} has format version {version}, this romp_ros reads '
            f'version {FORMAT_VERSION}; re-create it with: '
            + PREPARE_COMMAND.format(models_dir=models_dir))
    if stored_kind is None or str(stored_kind) != kind:
        raise ModelFilesError(f'body model file {path} holds {stored_kind!s} arrays, not {kind}')
    problem = validate_arrays(kind, raw)
    if problem:
        raise ModelFilesError(
            f'body model file {path} is malformed: {problem}; re-create it with: '
            + PREPARE_COMMAND.format(models_dir=models_dir))
    # the arrays were just read from disk, nobody else holds them: no need to copy
    return _arrays_from_mapping(kind, raw, copy=False)


def _arrays_from_mapping(kind: str, raw: Mapping[str, np.ndarray],
                         copy: bool = True) -> BodyModelArrays:
    def floats(key: str) -> np.ndarray | None:
        value = raw.get(key)
        return None if value is None else _frozen(value, np.float32, copy)

    def ints(key: str) -> np.ndarray | None:
        value = raw.get(key)
        return None if value is None else _frozen(value, np.int64, copy)

    return BodyModelArrays(
        kind=kind, v_template=floats('v_template'), shapedirs=floats('shapedirs'),
        posedirs=floats('posedirs'), j_regressor=floats('j_regressor'),
        lbs_weights=floats('lbs_weights'), parents=ints('parents'), faces=ints('faces'),
        extra_joints_index=ints('extra_joints_index'),
        j_regressor_extra9=floats('j_regressor_extra9'),
        j_regressor_h36m17=floats('j_regressor_h36m17'))


def _frozen(value: np.ndarray, dtype: type, copy: bool) -> np.ndarray:
    # Read-only so that a shared BodyModelArrays cannot be changed behind a model's back.
    out = np.ascontiguousarray(value, dtype=dtype)
    if copy and np.may_share_memory(out, value):
        out = out.copy()
    out.flags.writeable = False
    return out


def make_body_model_arrays(kind: str, arrays: Mapping[str, np.ndarray]) -> BodyModelArrays:
    """Build validated, read-only :class:`BodyModelArrays` from npz-keyed arrays."""
    return _arrays_from_mapping(kind, arrays)


def read_manifest(models_dir: str | Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a models directory ({} when there is none).

    Raises:
        ModelFilesError: the manifest exists but is not valid JSON.
    """
    path = Path(models_dir).expanduser() / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFilesError(f'{path} is not valid JSON ({err}); re-run prepare-models') from err
    if not isinstance(data, dict):
        raise ModelFilesError(f'{path} is not a JSON object; re-run prepare-models')
    return data


def available_kinds(models_dir: str | Path) -> tuple[str, ...]:
    """The body models present in ``models_dir`` (by file name; contents not checked)."""
    root = Path(models_dir).expanduser()
    return tuple(k for k in MODEL_KINDS if (root / MODEL_FILE_NAMES[k]).is_file())
