"""``romp-ros prepare-models``: convert the licence-gated body-model downloads.

Inputs (all read-only, never executed):

* ``--smpl``: ``SMPL_NEUTRAL.pkl`` or the official ``SMPL_python_v.1.1.0.zip`` (the neutral
  model is found inside; nothing is extracted to disk);
* ``--smil`` (optional): ``smil_web.pkl`` or a zip holding it, the infant model used by BEV;
* ``--extra`` (optional): a folder or zip (ROMP's ``smpl_model_data``) with
  ``J_regressor_extra.npy`` and ``J_regressor_h36m.npy`` (47 more joints, 71 in all) and
  ``smpl_kid_template.npy`` (SMPL-A, needed by BEV).

Output: the models directory described in :mod:`romp_ros.core.body.model_files`. Files are
written atomically (temporary file + rename) and a re-run with the same inputs rewrites
nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import hashlib
import io
import json
import logging
import os
from pathlib import Path
import pickle
import tempfile
from typing import Any, BinaryIO, Callable, Iterator
import zipfile

import numpy as np
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS
from tqdm import tqdm

from romp_ros import __version__
from romp_ros.core.body.joint_names import (
    H36M_TO_J17,
    NUM_ALL_JOINTS,
    NUM_SMPL_JOINTS,
    VERTEX_PICK_SMPLX_KEYS,
)
from romp_ros.core.body.model_files import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    MODEL_FILE_NAMES,
    MODEL_KINDS,
    NUM_POSE_FEATURES,
    ModelFilesError,
    read_manifest,
    validate_arrays,
)
from romp_ros.core.body.restricted_pickle import restricted_load, to_plain

LOG = logging.getLogger(__name__)

EXTRA_FILES = ('J_regressor_extra.npy', 'J_regressor_h36m.npy', 'smpl_kid_template.npy')
MAX_MEMBER_BYTES = 2 << 30  # refuse absurd zip members (zip bombs); the real ones are ~40 MB
NUM_BETAS = 10


@dataclass(frozen=True)
class PrepareReport:
    """What :func:`prepare_models` did.

    Attributes:
        models_dir: the output directory.
        kinds: the body models now available ('smpl', 'smpla', 'smil').
        written: files (re)written by this run (empty when already up to date).
        removed: stale body-model files removed (kinds not produced by this run).
        num_vertices: V of the body models.
        num_joints: 71 with the extra regressors, else 24.
        up_to_date: True when the directory already matched the inputs.
        notes: what is missing and its consequence (e.g. 24 joints without --extra).
    """

    models_dir: Path
    kinds: tuple[str, ...]
    written: tuple[Path, ...]
    removed: tuple[Path, ...]
    num_vertices: int
    num_joints: int
    up_to_date: bool
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Source:
    """One input file: a plain file or a member of a zip archive."""

    path: Path
    member: str | None = None

    @property
    def label(self) -> str:
        return f'{self.path}:{self.member}' if self.member else str(self.path)

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The file, or the zip member streamed (never extracted to disk)."""
        if self.member is None:
            with open(self.path, 'rb') as fh:
                yield fh
        else:
            with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as fh:
                yield fh

    def read_bytes(self) -> bytes:
        with self.open() as fh:
            return fh.read()


def prepare_models(smpl: str | Path, models_dir: str | Path, smil: str | Path | None = None,
                   extra: str | Path | None = None, *, progress: bool = True) -> PrepareReport:
    """Convert the official body-model files into a models directory.

    Args:
        smpl: SMPL_NEUTRAL.pkl (SMPL v1.1.0 neutral) or the official SMPL Python zip.
        models_dir: output directory (created if needed).
        smil: optional smil_web.pkl (or a zip holding it).
        extra: optional folder or zip with J_regressor_extra.npy, J_regressor_h36m.npy and
            smpl_kid_template.npy (ROMP's smpl_model_data release).
        progress: show a tqdm progress bar.

    Returns:
        A :class:`PrepareReport`.

    Raises:
        ModelFilesError: a missing, unsafe, corrupt or malformed input; nothing is written.
    """
    out_dir = Path(models_dir).expanduser()
    smpl_src = _find_in_input(Path(smpl).expanduser(), 'SMPL', _pick_smpl_member)
    smil_src = (_find_in_input(Path(smil).expanduser(), 'SMIL', _pick_smil_member)
                if smil is not None else None)
    extra_srcs = _find_extra(Path(extra).expanduser()) if extra is not None else {}

    steps = ['hash inputs', 'SMPL', 'SMPL-A', 'SMIL', 'write']
    with tqdm(total=len(steps), desc='prepare-models', unit='step', disable=not progress,
              leave=False) as bar:
        advance = _stepper(bar)
        advance('hashing inputs')
        sources = {'smpl': _describe(smpl_src)}
        if smil_src is not None:
            sources['smil'] = _describe(smil_src)
        for name, src in sorted(extra_srcs.items()):
            sources[name] = _describe(src)
        up_to_date = _check_up_to_date(out_dir, sources)
        if up_to_date is not None:
            bar.update(len(steps) - 1)
            LOG.info('models directory %s is already up to date', out_dir)
            return up_to_date

        advance('converting SMPL')
        smpl_arrays = _convert_official(smpl_src, 'SMPL')
        num_verts = smpl_arrays['v_template'].shape[0]
        extras = _load_extra_regressors(extra_srcs, num_verts)
        outputs = {'smpl': {'kind': 'smpl', **smpl_arrays, **extras}}
        notes = []
        if not extras:
            notes.append('no extra regressors (J_regressor_extra.npy, J_regressor_h36m.npy): '
                         f'the body model has {NUM_SMPL_JOINTS} joints instead of '
                         f'{NUM_ALL_JOINTS} (no face, feet, finger or H36M joints)')

        advance('building SMPL-A')
        if 'smpl_kid_template.npy' in extra_srcs:
            kid_dir = _kid_direction(extra_srcs['smpl_kid_template.npy'],
                                     smpl_arrays['v_template'])
            smpla = dict(outputs['smpl'], kind='smpla')
            smpla['shapedirs'] = np.concatenate([smpl_arrays['shapedirs'], kid_dir[:, :, None]],
                                                axis=2)  # (V, 3, 11)
            outputs['smpla'] = smpla
        else:
            notes.append('no smpl_kid_template.npy (--extra): SMPL-A is not prepared, so BEV '
                         'cannot run')

        advance('converting SMIL')
        if smil_src is not None:
            smil_arrays = _convert_official(smil_src, 'SMIL')
            if extras and smil_arrays['v_template'].shape[0] != num_verts:
                raise ModelFilesError(
                    f'{smil_src.label}: SMIL has {smil_arrays["v_template"].shape[0]} vertices, '
                    f'SMPL {num_verts}; they must share the topology')
            outputs['smil'] = {'kind': 'smil', **smil_arrays, **extras}
        else:
            notes.append('no SMIL (--smil): BEV poses infants with SMPL-A')

        for kind, arrays in outputs.items():
            problem = validate_arrays(kind, {k: v for k, v in arrays.items() if k != 'kind'})
            if problem:  # a bug or an input the checks above missed: refuse to write it
                raise ModelFilesError(f'the converted {kind} model is invalid: {problem}')

        advance('writing')
        out_dir.mkdir(parents=True, exist_ok=True)
        written, models = [], {}
        for kind, arrays in outputs.items():
            path = out_dir / MODEL_FILE_NAMES[kind]
            digest = _atomic_write(path, lambda fh, a=arrays: _save_npz(fh, a))
            written.append(path)
            models[kind] = {'file': path.name, 'sha256': digest,
                            'num_betas': int(arrays['shapedirs'].shape[2])}
        removed = []
        for kind, name in MODEL_FILE_NAMES.items():
            stale = out_dir / name
            if kind not in outputs and stale.exists():
                stale.unlink()
                removed.append(stale)
                LOG.warning('removed %s: this run did not produce a %s model', stale, kind)
        num_joints = NUM_ALL_JOINTS if extras else NUM_SMPL_JOINTS
        manifest = {
            'format_version': FORMAT_VERSION,
            'generator': f'romp_ros {__version__} prepare-models',
            'sources': sources,
            'models': models,
            'num_vertices': int(num_verts),
            'num_faces': int(smpl_arrays['faces'].shape[0]),
            'num_joints': num_joints,
            'joint_set': ('smpl24 + vertex picks 21 + extra 9 + h36m 17' if extras
                          else 'smpl24 (no extra regressor files)'),
            'notes': notes,
        }
        text = json.dumps(manifest, indent=2, sort_keys=True) + '\n'
        manifest_path = out_dir / MANIFEST_NAME
        _atomic_write(manifest_path, lambda fh: fh.write(text.encode('utf-8')))
        written.append(manifest_path)
        bar.update(1)
    for note in notes:
        LOG.info('prepare-models: %s', note)
    LOG.info('wrote %s body models to %s', ', '.join(outputs), out_dir)
    return PrepareReport(out_dir, tuple(outputs), tuple(written), tuple(removed),
                         int(num_verts), num_joints, False, tuple(notes))


def _stepper(bar: tqdm) -> Callable[[str], None]:
    first = [True]

    def advance(label: str) -> None:
        if not first[0]:
            bar.update(1)
        first[0] = False
        bar.set_postfix_str(label)
        LOG.debug('prepare-models: %s', label)

    return advance


# -- inputs -----------------------------------------------------------------------------------
def _find_in_input(path: Path, what: str,
                   pick: Callable[[list[zipfile.ZipInfo], Path], zipfile.ZipInfo]) -> _Source:
    if not path.is_file():
        raise ModelFilesError(f'{what} input {path} does not exist or is not a file')
    if not zipfile.is_zipfile(path):
        return _Source(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist()
                       if not m.is_dir() and not m.filename.startswith('__MACOSX/')]
    except (zipfile.BadZipFile, OSError) as err:
        raise ModelFilesError(f'{what} input {path} is a corrupt zip file ({err})') from err
    member = pick(members, path)
    if member.file_size > MAX_MEMBER_BYTES:
        raise ModelFilesError(f'{path}:{member.filename} is {member.file_size} bytes; refusing')
    return _Source(path, member.filename)


def _pick_smpl_member(members: list[zipfile.ZipInfo], path: Path) -> zipfile.ZipInfo:
    pickles = [m for m in members if m.filename.lower().endswith('.pkl')]
    neutral = [m for m in pickles if 'neutral' in Path(m.filename).name.lower()]
    if not neutral:
        found = ', '.join(m.filename for m in pickles) or 'no .pkl files'
        raise ModelFilesError(
            f'{path} has no neutral SMPL model (found: {found}). ROMP and BEV use the neutral '
            'model: download "SMPL for Python, v1.1.0" from https://smpl.is.tue.mpg.de, whose '
            'zip holds SMPL_python_v.1.1.0/smpl/models/'
            'basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl')
    # prefer v1.1.0 (the reference's choice), then the shortest / first name for determinism
    neutral.sort(key=lambda m: ('v1.1.0' not in m.filename, len(m.filename), m.filename))
    return neutral[0]


def _pick_smil_member(members: list[zipfile.ZipInfo], path: Path) -> zipfile.ZipInfo:
    found = [m for m in members if Path(m.filename).name == 'smil_web.pkl']
    if not found:
        raise ModelFilesError(f'{path} does not contain smil_web.pkl (the SMIL model)')
    return sorted(found, key=lambda m: m.filename)[0]


def _find_extra(path: Path) -> dict[str, _Source]:
    found: dict[str, _Source] = {}
    if path.is_dir():
        for name in EXTRA_FILES:
            hits = sorted(path.rglob(name))
            if hits:
                found[name] = _Source(hits[0])
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in EXTRA_FILES:
                hits = sorted(m.filename for m in archive.infolist()
                              if Path(m.filename).name == name
                              and not m.filename.startswith('__MACOSX/'))
                if hits:
                    found[name] = _Source(path, hits[0])
    else:
        raise ModelFilesError(f'--extra {path} is neither a folder nor a zip file')
    if not found:
        raise ModelFilesError(
            f'--extra {path} holds none of {list(EXTRA_FILES)} (ROMP model data: '
            'https://github.com/Arthur151/ROMP/releases/download/V2.0/smpl_model_data.zip)')
    pair = ('J_regressor_extra.npy', 'J_regressor_h36m.npy')
    if (pair[0] in found) != (pair[1] in found):
        missing = pair[0] if pair[0] not in found else pair[1]
        raise ModelFilesError(f'--extra {path} lacks {missing}; the two regressors go together')
    return found


def _describe(src: _Source) -> dict[str, Any]:
    return {'file': src.path.name, 'member': src.member, 'sha256': _sha256_file(src.path)}


# -- conversion -------------------------------------------------------------------------------
def _convert_official(src: _Source, what: str) -> dict[str, np.ndarray]:
    """Read an official SMPL/SMIL pickle into npz-keyed float32 / int64 arrays."""
    try:
        with src.open() as fh:
            data = restricted_load(fh, src.label)
    except pickle.UnpicklingError as err:  # includes UnsafePickleError
        raise ModelFilesError(f'cannot load the {what} model {src.label}: {err}') from err
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OSError, zipfile.BadZipFile) as err:
        raise ModelFilesError(
            f'the {what} model {src.label} is truncated or not a pickle ({err!r})') from err
    if not isinstance(data, dict):
        raise ModelFilesError(f'the {what} model {src.label} holds a {type(data).__name__}, '
                              'not the dict of an SMPL-family model')
    needed = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'kintree_table',
              'f')
    missing = [k for k in needed if k not in data]
    if missing:
        raise ModelFilesError(f'the {what} model {src.label} lacks {missing}')
    try:
        raw = {k: np.asarray(to_plain(data[k])) for k in needed}
    except ValueError as err:
        raise ModelFilesError(f'the {what} model {src.label}: {err}') from err

    def fail(text: str) -> ModelFilesError:
        return ModelFilesError(f'the {what} model {src.label} is malformed: {text}')

    v_template = raw['v_template']
    if v_template.ndim != 2 or v_template.shape[1] != 3:
        raise fail(f'v_template has shape {v_template.shape}, expected (V, 3)')
    num = v_template.shape[0]
    shapedirs, posedirs = raw['shapedirs'], raw['posedirs']
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (num, 3) or shapedirs.shape[2] < NUM_BETAS:
        raise fail(f'shapedirs has shape {shapedirs.shape}, expected ({num}, 3, >={NUM_BETAS})')
    if posedirs.shape != (num, 3, NUM_POSE_FEATURES):
        raise fail(f'posedirs has shape {posedirs.shape}, expected ({num}, 3, 207)')
    expected = {'J_regressor': (NUM_SMPL_JOINTS, num), 'weights': (num, NUM_SMPL_JOINTS),
                'kintree_table': (2, NUM_SMPL_JOINTS)}
    for key, shape in expected.items():
        if raw[key].shape != shape:
            raise fail(f'{key} has shape {raw[key].shape}, expected {shape}')
    faces = raw['f']
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in 'iu':
        raise fail(f'f has shape {faces.shape} and dtype {faces.dtype}, expected (F, 3) ints')
    parents = raw['kintree_table'][0].astype(np.int64)
    parents[0] = -1  # stored as uint32 -1 (4294967295) in the official files
    return {
        'v_template': v_template.astype(np.float32),
        'shapedirs': shapedirs[:, :, :NUM_BETAS].astype(np.float32),  # (V, 3, 10)
        # (V, 3, 207) -> (207, 3V): one matmul with the pose feature gives the offsets
        'posedirs': posedirs.reshape(-1, NUM_POSE_FEATURES).T.astype(np.float32),
        'j_regressor': raw['J_regressor'].astype(np.float32),
        'lbs_weights': raw['weights'].astype(np.float32),
        'parents': parents,
        'faces': faces.astype(np.int64),
    }


def _load_npy(src: _Source) -> np.ndarray:
    try:
        return np.load(io.BytesIO(src.read_bytes()), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ModelFilesError(f'{src.label} is not a plain .npy array ({err})') from err


def _load_extra_regressors(found: dict[str, _Source], num_verts: int) -> dict[str, np.ndarray]:
    if 'J_regressor_extra.npy' not in found:
        return {}
    extra9 = _load_npy(found['J_regressor_extra.npy'])
    h36m = _load_npy(found['J_regressor_h36m.npy'])
    if extra9.shape != (9, num_verts):
        raise ModelFilesError(f'{found["J_regressor_extra.npy"].label} has shape '
                              f'{extra9.shape}, expected (9, {num_verts})')
    if h36m.shape != (17, num_verts):
        raise ModelFilesError(f'{found["J_regressor_h36m.npy"].label} has shape {h36m.shape}, '
                              f'expected (17, {num_verts})')
    picks = np.array([SMPLX_VERTEX_IDS['smplh'][k] for k in VERTEX_PICK_SMPLX_KEYS], np.int64)
    if picks.max() >= num_verts:
        raise ModelFilesError(f'the SMPL model has {num_verts} vertices, fewer than the extra '
                              'joints need (is it SMPL?)')
    return {
        'extra_joints_index': picks,  # (21,)
        'j_regressor_extra9': extra9.astype(np.float32),  # (9, V)
        'j_regressor_h36m17': h36m[list(H36M_TO_J17)].astype(np.float32),  # (17, V)
    }


def _kid_direction(src: _Source, v_template: np.ndarray) -> np.ndarray:
    """(V, 3) SMPL-A's age direction: centred kid template minus the adult template."""
    kid = _load_npy(src)
    if kid.shape != v_template.shape:
        raise ModelFilesError(f'{src.label} has shape {kid.shape}, expected {v_template.shape}')
    kid = kid.astype(np.float64)
    centred = kid - kid.mean(axis=0)  # the reference centres the kid template, not the adult
    return (centred - v_template.astype(np.float64)).astype(np.float32)


# -- output -----------------------------------------------------------------------------------
def _save_npz(fh: BinaryIO, arrays: dict[str, Any]) -> None:
    """Write an .npz (a zip of .npy members) with fixed member dates.

    The same arrays give the same bytes (and manifest hashes) whenever they are written,
    unlike ``np.savez``, whose members carry the current time.
    """
    payload = {'format_version': np.int64(FORMAT_VERSION), 'kind': np.str_(arrays['kind']),
               **{k: v for k, v in arrays.items() if k != 'kind'}}
    with zipfile.ZipFile(fh, 'w', zipfile.ZIP_STORED) as archive:
        for key, value in payload.items():
            info = zipfile.ZipInfo(f'{key}.npy', date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, 'w', force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def _atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> str:
    """Write via a temporary file in the same directory + os.replace; return the SHA-256."""
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, 'wb') as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        digest = _sha256_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as fh:
        for chunk in _chunks(fh):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(fh: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    return iter(lambda: fh.read(size), b'')


def _check_up_to_date(out_dir: Path, sources: dict[str, Any]) -> PrepareReport | None:
    """A report if the directory already holds exactly what these inputs give, else None."""
    try:
        manifest = read_manifest(out_dir)
    except ModelFilesError:
        return None
    if (manifest.get('format_version') != FORMAT_VERSION or manifest.get('sources') != sources
            or not isinstance(manifest.get('models'), dict)):
        return None
    for kind, entry in manifest['models'].items():
        path = out_dir / MODEL_FILE_NAMES.get(kind, '?')
        if not path.is_file() or _sha256_file(path) != entry.get('sha256'):
            return None
    kinds = tuple(k for k in MODEL_KINDS if k in manifest['models'])
    return PrepareReport(out_dir, kinds, (), (),
                         int(manifest.get('num_vertices', 0)),
                         int(manifest.get('num_joints', 0)), True,
                         tuple(manifest.get('notes', ())))
