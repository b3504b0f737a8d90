"""Every loader on small files in its format, written here: COCO-style JSON, 3DPW pickles, the
reference's Human3.6M / MPI-INF-3DHP / MuCo / AGORA npz files, and format detection."""

from __future__ import annotations

import json
import logging
from pathlib import Path
import pickle

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
import torch

from romp_ros.core.body.joint_names import ALL_JOINT_NAMES, SMPL_JOINT_NAMES
from romp_ros.core.body.smpl import BodyModel
from romp_ros.data import reference_layouts as layouts
from romp_ros.data.coco import open_coco
from romp_ros.data.dataset_format import (
    CameraLabel,
    DatasetError,
    DatasetInfo,
    DatasetWriter,
    GenericDataset,
    PersonLabel,
)
from romp_ros.data.joint_sets import COCO_17, CROWDPOSE_14, H36M_32, mapping_for_names
from romp_ros.data.sources import SourceSpec, detect_format, open_source
from romp_ros.data.threedpw import open_3dpw
from romp_ros.synthetic.body_model import dump_official_pickle


def _write_image(path: Path, height: int = 48, width: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(len(str(path))).integers(0, 255, (height, width, 3),
                                                            dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)


def _posed(body: BodyModel, betas: np.ndarray, pose: np.ndarray) -> np.ndarray:
    out = body(torch.tensor(betas, dtype=torch.float32), torch.tensor(pose, dtype=torch.float32))
    return out.joints.numpy().astype(np.float64)


# -- COCO -------------------------------------------------------------------------------------

def _coco_person(image_id, keypoints, bbox=(10, 5, 20, 30), iscrowd=0, ann_id=0):
    return {'id': ann_id, 'image_id': image_id, 'category_id': 1, 'iscrowd': iscrowd,
            'bbox': list(bbox), 'keypoints': keypoints,
            'num_keypoints': sum(1 for v in keypoints[2::3] if v > 0)}


def _write_coco(root: Path, names=COCO_17.names, split='train2017') -> Path:
    count = len(names)
    full = []
    for k in range(count):
        full += [10.0 + k, 20.0 + k, 2 if k % 3 else 1]
    nan_kp = list(full)
    nan_kp[3] = float('nan')
    images = [{'id': i, 'file_name': f'{i:012d}.jpg', 'width': 64, 'height': 48}
              for i in range(1, 6)]
    annotations = [
        _coco_person(1, full, ann_id=1),
        _coco_person(1, [0] * (3 * count), bbox=(30, 10, 8, 16), ann_id=2),  # box only
        _coco_person(2, full, ann_id=3),
        _coco_person(2, [0] * (3 * count), bbox=(0, 0, 60, 40), iscrowd=1, ann_id=4),
        # image 3 has nobody
        _coco_person(4, full[:-3], ann_id=5),  # one keypoint short
        _coco_person(5, nan_kp, ann_id=6),
    ]
    obj = {'images': images, 'annotations': annotations,
           'categories': [{'id': 1, 'name': 'person', 'keypoints': list(names),
                           'skeleton': []}]}
    path = root / 'annotations' / f'person_keypoints_{split}.json'
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(obj))  # json writes NaN as NaN, as Python exports do
    for image in images:
        _write_image(root / split / image['file_name'])
    return path


def test_coco_json_people_crowds_and_bad_rows(tmp_path, caplog):
    path = _write_coco(tmp_path)
    with caplog.at_level(logging.WARNING):
        source = open_coco(path)
    assert len(source) == 1  # image 1 only: 2 has a crowd, 3 nobody, 4 and 5 bad rows
    frame = source[0]
    assert frame.image == '000000000001.jpg' and frame.camera is None
    person, box_only = frame.people
    assert person.keypoints_2d.shape == (17, 3)
    assert np.allclose(person.keypoints_2d[3], [13.0, 23.0, 1.0])  # visibility kept
    assert np.allclose(person.bbox, [10, 5, 30, 35])  # x, y, w, h -> corners
    assert box_only.keypoints_2d is None and np.allclose(box_only.bbox, [30, 10, 38, 26])
    counts = dict(source.skipped.counts)
    assert counts['wrong keypoint count'] == 1
    assert counts['non-finite keypoints'] == 1
    assert sum(v for k, v in counts.items() if k.startswith('image with a crowd')) == 1
    assert sum(v for k, v in counts.items() if k.startswith('image without people')) == 1
    assert 'wrong keypoint count' in caplog.text  # the first of each reason is logged
    assert source.info.joint_names == COCO_17.names
    assert source.load_image(frame).shape == (48, 64, 3)
    assert source.image_path(frame) == tmp_path / 'train2017' / '000000000001.jpg'


def test_coco_options_keep_crowd_and_negatives(tmp_path):
    path = _write_coco(tmp_path)
    source = open_coco(path, keep_crowd=True, keep_empty=True)
    assert [f.image for f in source.frames] == ['000000000001.jpg', '000000000002.jpg',
                                                '000000000003.jpg']
    assert len(source[1].people) == 1  # the crowd region itself is not a person
    assert source[2].people == ()


def test_crowdpose_and_mpii_names_are_recognised(tmp_path):
    crowd = open_coco(_write_coco(tmp_path / 'cp', names=CROWDPOSE_14.names))
    assert mapping_for_names(crowd.info.joint_names).joint_set == 'crowdpose14'
    mpii_names = ['r ankle', 'r knee', 'r hip', 'l hip', 'l knee', 'l ankle', 'pelvis',
                  'thorax', 'upper neck', 'head top', 'r wrist', 'r elbow', 'r shoulder',
                  'l shoulder', 'l elbow', 'l wrist']
    mpii = open_coco(_write_coco(tmp_path / 'mpii', names=mpii_names))
    mapping = mapping_for_names(mpii.info.joint_names)
    assert mapping.joint_set == 'mpii16'
    assert ALL_JOINT_NAMES[mapping.target_index[8]] == 'neck'


def test_coco_errors_are_clear(tmp_path):
    odd = _write_coco(tmp_path / 'odd', names=[f'kp{i}' for i in range(17)])
    with pytest.raises(DatasetError, match='not a known joint set'):
        open_coco(odd)
    assert len(open_coco(odd, joint_set='coco17')) == 1
    path = _write_coco(tmp_path / 'noimg')
    for image in (tmp_path / 'noimg' / 'train2017').iterdir():
        image.unlink()
    (tmp_path / 'noimg' / 'train2017').rmdir()
    with pytest.raises(DatasetError, match='cannot find the images'):
        open_coco(path)
    with pytest.raises(DatasetError, match='images folder does not exist'):
        open_coco(path, images_dir=tmp_path / 'nowhere')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": []')
    with pytest.raises(DatasetError, match='not valid JSON'):
        open_coco(bad)
    bad.write_text('{"images": [], "annotations": []}')
    with pytest.raises(DatasetError, match=r"no \['categories'\]"):
        open_coco(bad)


# -- 3DPW -------------------------------------------------------------------------------------

def _camera_pose(frame: int) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_rotvec([0.1 * frame, 0.3, -0.05]).as_matrix()
    pose[:3, 3] = [0.2, -0.1, 5.0 + 0.1 * frame]
    return pose


def _write_3dpw(root: Path, body: BodyModel, style: str = 'py2', frames: int = 4,
                transpose_2d: bool = False) -> dict:
    """A 3DPW-like sequence of two people; returns the ground truth in the camera frame."""
    rng = np.random.default_rng(4)
    betas = [rng.normal(0, 1, 10), rng.normal(0, 1, 10)]
    poses = [rng.normal(0, 0.3, (frames, 72)), rng.normal(0, 0.3, (frames, 72))]
    trans = [rng.normal(0, 0.5, (frames, 3)), rng.normal(0, 0.5, (frames, 3))]
    joints = [(_posed(body, np.repeat(b[None], frames, 0), p)[:, :24] + t[:, None]).reshape(
        frames, 72) for b, p, t in zip(betas, poses, trans, strict=True)]
    cam_poses = np.stack([_camera_pose(j) for j in range(frames)])
    valid = [np.ones(frames), np.ones(frames)]
    valid[1][2] = 0  # person 1 not valid in frame 2
    poses2d = [rng.uniform(1, 40, (frames, 3, 18)) for _ in range(2)]
    poses2d[0][3] = 0.0  # person 0 undetected in frame 3
    valid[1][3] = 0  # ... and person 1 invalid: frame 3 has nobody
    if transpose_2d:  # (F, 18, 3), as some converters write it
        poses2d = [p.transpose(0, 2, 1) for p in poses2d]
    data = {'sequence': 'courtyard_test_00', 'genders': ['m', 'f'], 'betas': betas,
            'poses': poses, 'trans': trans, 'jointPositions': joints, 'poses2d': poses2d,
            'cam_poses': cam_poses, 'campose_valid': valid,
            'cam_intrinsics': np.array([[60.0, 0, 32.0], [0, 60.0, 24.0], [0, 0, 1]]),
            'img_frame_ids': np.arange(frames) * 2}
    folder = root / 'sequenceFiles' / 'train'
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / 'courtyard_test_00.pkl', 'wb') as fh:
        if style == 'py2':
            dump_official_pickle(data, fh)  # what Python 2 wrote (3DPW's files)
        else:
            pickle.dump(data, fh, protocol=2)  # Python 3 at protocol 2: bytes via _codecs
    for j in range(frames):
        _write_image(root / 'imageFiles' / 'courtyard_test_00' / f'image_{j:05d}.jpg')
    return data


@pytest.mark.parametrize('style', ['py2', 'py3'])
def test_3dpw_world_to_camera_and_smpl_consistency(tmp_path, models_dir, style):
    body = BodyModel.from_models_dir(models_dir)
    data = _write_3dpw(tmp_path, body, style)
    source = open_3dpw(tmp_path, models_dir=models_dir)
    assert len(source) == 3 and source.skipped.counts[
        'frame without a valid person (campose_valid / 2D)'] == 1
    assert [len(f.people) for f in source.frames] == [2, 2, 1]
    assert source.info.joint_names == SMPL_JOINT_NAMES
    frame = source[2]
    assert frame.image == 'courtyard_test_00/image_00002.jpg'
    assert frame.camera.k == (60.0, 60.0, 32.0, 24.0) and frame.camera.width == 64
    person = frame.people[0]
    cam = _camera_pose(2)
    world = data['jointPositions'][0][2].reshape(24, 3)
    expected = world @ cam[:3, :3].T + cam[:3, 3]
    assert np.allclose(person.joints_3d, expected)
    # the neutral body with the camera-frame pose + translation lands on the camera joints
    posed = _posed(body, person.smpl_shape[None], person.smpl_pose[None])[0, :24]
    assert np.abs(posed + person.translation - expected).max() < 1e-4
    # 2D keypoints are the projections of the 3D joints
    uvw = expected @ np.array([[60.0, 0, 32.0], [0, 60.0, 24.0], [0, 0, 1]]).T
    assert np.allclose(person.keypoints_2d[:, :2], uvw[:, :2] / uvw[:, 2:])
    inside = (person.keypoints_2d[:, 0] >= 0) & (person.keypoints_2d[:, 0] <= 64)
    assert ((person.keypoints_2d[:, 2] == 2) <= inside).all()
    assert source.load_image(frame).shape == (48, 64, 3)


def test_3dpw_without_body_model_has_no_translation(tmp_path, models_dir):
    _write_3dpw(tmp_path, BodyModel.from_models_dir(models_dir), transpose_2d=True)
    source = open_3dpw(tmp_path)
    assert [len(f.people) for f in source.frames] == [2, 2, 1]
    assert all(p.translation is None and p.smpl_pose is not None
               for f in source.frames for p in f.people)
    with pytest.raises(DatasetError, match='sequenceFiles/test'):
        open_3dpw(tmp_path, split='test')


class _Exploit:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return exec, (f'open({str(self.target)!r}, "w").close()',)


def test_3dpw_pickle_that_runs_code_is_refused(tmp_path):
    target = tmp_path / 'pwned'
    folder = tmp_path / 'sequenceFiles' / 'train'
    folder.mkdir(parents=True)
    with open(folder / 'evil.pkl', 'wb') as fh:
        pickle.dump({'sequence': _Exploit(target)}, fh, protocol=2)
    with pytest.raises(DatasetError, match='refused.*nothing was executed'):
        open_3dpw(tmp_path)
    assert not target.exists()
    (folder / 'evil.pkl').write_bytes(b'\x80\x02}q\x00')  # truncated
    with pytest.raises(DatasetError, match='corrupt pickle'):
        open_3dpw(tmp_path)


# -- the reference's npz layouts ---------------------------------------------------------------

def test_h36m_reference_annots(tmp_path, caplog):
    rng = np.random.default_rng(5)
    kp3d = rng.normal(0, 0.4, (32, 3)) + [0, 0, 4]
    label = {'kp2d': rng.uniform(100, 900, 64), 'kp3d_mono': kp3d.reshape(-1),
             'poses': rng.normal(0, 0.2, (3, 72)), 'cam': rng.normal(0, 1, (3, 3)),
             'betas': rng.normal(0, 1, 10)}
    names = ['S1_Directions 1_2_0.jpg', 'S1_Directions 1_2_1.jpg']
    mm = dict(label, kp3d_mono=(kp3d * 1000).reshape(-1))
    np.savez(tmp_path / 'annots.npz', annots={names[0]: label, names[1]: mm})
    (tmp_path / 'h36m_train.txt').write_text('\n'.join(names + ['S1_Eating_0_0.jpg']))
    for name in names:
        _write_image(tmp_path / 'images' / name)
    assert detect_format(tmp_path) == 'h36m'
    with caplog.at_level(logging.WARNING):
        source = open_source(tmp_path)
    assert 'millimetres' in caplog.text
    assert len(source) == 2 and source.skipped.counts['listed image without annotation'] == 1
    person = source[0].people[0]
    assert source[0].camera.k[:2] == pytest.approx((1149.1407470703125, 1148.7989501953125))
    assert source[0].camera.distortion_model == 'plumb_bob'
    assert np.allclose(person.smpl_pose[:3], label['cam'][1])  # fit 1, as the reference
    assert np.allclose(person.smpl_pose[3:], label['poses'][1][3:])
    assert np.allclose(source[1].people[0].joints_3d, person.joints_3d)  # mm -> m
    mapping = mapping_for_names(source.info.joint_names)
    assert mapping.joint_set == H36M_32.name
    assert ALL_JOINT_NAMES[mapping.target_index[25]] == 'h36m_r_shoulder'
    assert source.load_image(source[0]).shape == (48, 64, 3)


def test_mpi_inf_3dhp_reference_annots_and_split(tmp_path):
    rng = np.random.default_rng(6)

    def label():
        return {'kp2d': rng.uniform(0, 2048, (28, 2)), 'kp3d': rng.normal(0, 0.4, (28, 3)),
                'intrinsics': np.array([1500.0, 1500.0, 1024.0, 1024.0]),
                'extrinsics': [np.eye(3), np.zeros(3)]}

    names = ['S1_Seq1_video0_F000001.jpg', 'S8_Seq2_video3_F000011.jpg']
    bad = dict(label(), kp3d=np.full((28, 3), np.nan))
    np.savez(tmp_path / 'annots.npz', annots={names[0]: label(), names[1]: label(),
                                              'S2_Seq1_video1_F000021.jpg': bad})
    assert detect_format(tmp_path) == 'mpi_inf_3dhp'
    train = open_source(tmp_path)
    assert [f.image for f in train.frames] == [names[0]]
    assert train.skipped.counts['non-finite kp3d'] == 1
    assert open_source({'path': str(tmp_path), 'split': 'validation'})[0].image == names[1]
    assert train[0].camera.k == (1500.0, 1500.0, 1024.0, 1024.0)
    assert mapping_for_names(train.info.joint_names).joint_set == 'mpi_inf_3dhp28'


def test_muco_reference_annots(tmp_path):
    rng = np.random.default_rng(7)
    kp3d_mm = rng.normal(0, 400, (2, 21, 3)) + [0, 0, 4000]
    label = [rng.uniform(0, 2000, (2, 21, 2)), kp3d_mm,
             np.array([[1500.0, 1490.0], [1024.0, 1000.0]])]
    np.savez(tmp_path / 'annots_augmented.npz', annots={'augmented/0001.jpg': label})
    _write_image(tmp_path / 'augmented_set' / 'augmented' / '0001.jpg')
    assert detect_format(tmp_path) == 'muco'
    source = open_source(tmp_path)
    frame = source[0]
    assert len(frame.people) == 2
    assert np.allclose(frame.people[1].joints_3d, kp3d_mm[1] / 1000)
    assert frame.camera.k == (1500.0, 1490.0, 1024.0, 1000.0)
    assert source.image_path(frame).is_file()  # found under augmented_set/


def test_agora_reference_annots_recover_camera_pose(tmp_path, models_dir):
    body = BodyModel.from_models_dir(models_dir)
    rng = np.random.default_rng(8)
    betas = np.concatenate([rng.normal(0, 1, 10), [0.6]])  # a kid: SMPL-A age offset
    pose = rng.normal(0, 0.3, 72)
    pose[:3] = [2.9, 0.2, -0.1]  # upside-down camera convention, like real data
    translation = np.array([0.3, 0.5, 6.0])
    joints = _posed(body, betas[None, :10], pose[None])[0, :45] + translation
    k_mat = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    uvw = joints @ k_mat.T
    person = {'kp2d': uvw[:, :2] / uvw[:, 2:], 'kp3d': joints, 'body_pose': pose[3:],
              'betas': betas[None], 'camMats': k_mat, 'ID': 7, 'isValid': True}
    np.savez(tmp_path / 'annots_train.npz', annots={
        'ag_trainset_0001.png': [person, dict(person, isValid=False)]})
    _write_image(tmp_path / 'train' / 'ag_trainset_0001.png')
    assert detect_format(tmp_path) == 'agora'
    source = open_source({'path': str(tmp_path), 'models_dir': str(models_dir)})
    label = source[0].people[0]
    assert len(source[0].people) == 1
    assert source.skipped.counts['AGORA person flagged not valid (dropped)'] == 1
    assert np.allclose(label.smpl_shape, betas) and label.track_id == 7
    got = Rotation.from_rotvec(label.smpl_pose[:3]).as_matrix()
    assert np.abs(got - Rotation.from_rotvec(pose[:3]).as_matrix()).max() < 1e-4
    assert np.abs(label.translation - translation).max() < 1e-4
    assert source.image_path(source[0]).is_file()
    plain = open_source(tmp_path)  # no body model: no orientation, pose nor translation
    assert plain[0].people[0].smpl_pose is None and plain[0].people[0].translation is None


def test_npz_with_code_is_refused(tmp_path):
    target = tmp_path / 'pwned'
    np.savez(tmp_path / 'annots.npz', annots={'S1_x_0_0.jpg': _Exploit(target)})
    with pytest.raises(DatasetError, match='refused.*nothing was executed'):
        layouts.open_mpi_inf_3dhp(tmp_path)
    assert not target.exists()
    np.savez(tmp_path / 'other.npz', frames=np.zeros(3))
    with pytest.raises(DatasetError, match="no 'annots' array"):
        layouts.read_object_npz(tmp_path / 'other.npz')
    assert np.array_equal(layouts.read_object_npz(tmp_path / 'other.npz', 'frames'),
                          np.zeros(3))


# -- detection ------------------------------------------------------------------------------

def test_open_source_detects_generic_and_coco_and_explains_unknown(tmp_path):
    generic = tmp_path / 'generic'
    with DatasetWriter(generic, DatasetInfo('g', SMPL_JOINT_NAMES)) as writer:
        writer.add(np.zeros((8, 8, 3), np.uint8),
                   [PersonLabel(keypoints_2d=np.ones((24, 3)))],
                   camera=CameraLabel(8, 8, (8.0, 8.0, 4.0, 4.0)))
    assert isinstance(open_source(generic), GenericDataset)
    coco = _write_coco(tmp_path / 'coco')
    assert detect_format(coco) == 'coco' and len(open_source(str(coco))) == 1
    odd = tmp_path / 'odd'
    odd.mkdir()
    (odd / 'readme.txt').write_text('hi')
    with pytest.raises(DatasetError, match=r'cannot tell the dataset format.*readme\.txt'):
        open_source(odd)
    with pytest.raises(DatasetError, match='no such file or folder'):
        open_source(tmp_path / 'missing')
    with pytest.raises(DatasetError, match='unknown keys'):
        SourceSpec.from_config({'path': 'x', 'wieght': 2})
    with pytest.raises(DatasetError, match='positive'):
        SourceSpec.from_config({'path': 'x', 'weight': 0})
