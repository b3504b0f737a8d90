"""Evaluation metrics: analytic values through the whole session, crowd sizes of the copied-code
bug, PCK/AUC, distance bins, protocols, and tracking metrics against TrackEval's own pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from romp_ros.core.body.joint_names import ALL_JOINT_NAMES, SMPL_JOINT_NAMES
from romp_ros.evaluation import (
    EvalJointSet,
    EvaluationConfig,
    EvaluationInputError,
    EvaluationSession,
    FramePeople,
    people_from_label,
    validation_scores,
)
from romp_ros.evaluation.matching import box_iou
from romp_ros.evaluation.metrics import pa_mpjpe, pck_counts, precision_recall_f1
from romp_ros.evaluation.people import keypoint_boxes
from romp_ros.evaluation.records import TrackingFrame
from romp_ros.evaluation.scoring import score_frame
from romp_ros.evaluation.tracking_metrics import motmetrics_scores, trackeval_scores

K = np.array([[800.0, 0.0, 640.0], [0.0, 800.0, 360.0], [0.0, 0.0, 1.0]])


def _project(joints):
    uvw = joints @ K.T
    return uvw[..., :2] / uvw[..., 2:]


def _bodies(n, names=SMPL_JOINT_NAMES, seed=0, depth=5.0):
    """n people side by side, 2 m apart, ``depth`` m away; body-sized random joints."""
    rng = np.random.default_rng(seed)
    joints = rng.normal(scale=0.25, size=(n, len(names), 3))
    joints[:, 0] = 0.0  # the pelvis at the body origin
    joints += np.stack([2.0 * np.arange(n) - (n - 1), np.zeros(n), np.full(n, depth)], 1)[:, None]
    return joints


def _people(stamp, joints, names=SMPL_JOINT_NAMES, ids=None, verts=None):
    n = joints.shape[0]
    kp = _project(joints)
    return FramePeople(stamp, tuple(names), joints, kp, keypoint_boxes(kp),
                       np.arange(n) if ids is None else np.asarray(ids), np.ones(n), verts=verts)


def _evaluate(pairs, config=None, gt_only=()):
    """Run a session over (gt joints, pred joints) frames; frames in ``gt_only`` lack a pred."""
    session = EvaluationSession(config or EvaluationConfig())
    for f, (gt, pred) in enumerate(pairs):
        session.add_ground_truth(f, _people(f, gt))
        if f not in gt_only:
            session.add_prediction(f, _people(f, pred))
    return session.finish()


@pytest.mark.parametrize('crowd', [1, 2, 3, 5])
def test_ground_truth_as_predictions_is_perfect(crowd):
    gt = _bodies(crowd, seed=crowd)
    report = _evaluate([(gt, gt), (gt, gt)])
    assert report['mpjpe_mm'] == pytest.approx(0.0, abs=1e-9)
    assert report['pa_mpjpe_mm'] == pytest.approx(0.0, abs=1e-6)
    assert report['root_error_mm'] == pytest.approx(0.0, abs=1e-9)
    assert report['detection'] == {'precision': 1.0, 'recall': 1.0, 'f1': 1.0}
    assert report['people'] == {'ground_truth': 2 * crowd, 'matched': 2 * crowd, 'missed': 0,
                                'false_positives': 0}
    assert report['pck3d_150_matched'] == report['pck3d_150_all'] == 1.0
    assert report['frames'] == {'total': 2, 'scored': 2, 'skipped': {}, 'paired': 2,
                                'matched_by_box_iou': 0}


def test_a_common_offset_is_root_error_only():
    gt = _bodies(3)
    pred = gt + np.array([0.006, 0.0, 0.008])  # the same 10 mm vector on every joint
    report = _evaluate([(gt, pred)])
    assert report['mpjpe_mm'] == pytest.approx(0.0, abs=1e-9)
    assert report['root_error_mm'] == pytest.approx(10.0, abs=1e-9)
    assert report['depth_bias_mm'] == pytest.approx(8.0, abs=1e-9)
    assert report['people']['matched'] == 3


def test_one_joint_moved_240_mm_is_10_mm_over_24_joints():
    gt = _bodies(2)
    pred = gt.copy()
    pred[:, SMPL_JOINT_NAMES.index('l_wrist')] += np.array([0.0, 0.24, 0.0])
    report = _evaluate([(gt, pred)])
    assert report['mpjpe_mm'] == pytest.approx(10.0, abs=1e-9)
    assert report['per_joint_mpjpe_mm']['l_wrist'] == pytest.approx(240.0, abs=1e-9)
    assert report['per_joint_mpjpe_mm']['pelvis'] == pytest.approx(0.0, abs=1e-9)
    # Procrustes minimises squared error and spreads one outlier over all joints: not zero,
    # and not bounded by the MPJPE
    assert report['pa_mpjpe_mm'] > 1.0
    assert report['pck3d_150_matched'] == pytest.approx(23 / 24)


@pytest.mark.parametrize('crowd', [2, 3])
def test_similarity_transform_per_person_gives_zero_pa_mpjpe(crowd):
    """Two and three people: the crowd sizes the copied VIBE code aligns along the wrong axis."""
    gt = _bodies(crowd, seed=7)
    rots = Rotation.random(crowd, random_state=3).as_matrix()
    scales = np.linspace(0.8, 1.3, crowd)
    roots = gt[:, :1]
    pred = scales[:, None, None] * np.einsum('nik,njk->nji', rots, gt - roots) + roots
    report = _evaluate([(gt, pred)])
    assert report['people']['matched'] == crowd  # rotated about the pelvis: still matchable
    assert report['pa_mpjpe_mm'] == pytest.approx(0.0, abs=1e-6)
    assert report['mpjpe_mm'] > 50.0


@pytest.mark.parametrize('crowd', [1, 2, 3, 4])
def test_pa_mpjpe_equals_an_independent_kabsch_per_person(crowd):
    rng = np.random.default_rng(crowd)
    gt = rng.normal(size=(crowd, 24, 3))
    pred = gt + rng.normal(scale=0.1, size=gt.shape)
    expected = []
    for p, g in zip(pred, gt, strict=True):
        p0, g0 = p - p.mean(0), g - g.mean(0)
        rot, _ = Rotation.align_vectors(g0, p0)  # scipy's Kabsch: rot maps p0 onto g0
        rp = rot.apply(p0)
        scale = (g0 * rp).sum() / (p0 ** 2).sum()
        expected.append(np.linalg.norm(scale * rp - g0, axis=1).mean() * 1000.0)
    np.testing.assert_allclose(pa_mpjpe(pred, gt), expected, rtol=1e-9)


def test_missed_and_false_people_are_counted():
    gt = _bodies(3)
    pred = np.concatenate([gt[:2], _bodies(1, depth=9.0) + np.array([6.0, 0.0, 0.0])])
    # frame 0: one person missed and one far-off false positive; frame 1 has no prediction
    report = _evaluate([(gt, pred), (gt, gt)], gt_only=(1,))
    assert report['people'] == {'ground_truth': 6, 'matched': 2, 'missed': 4,
                                'false_positives': 1}
    assert report['frames']['skipped'] == {'no_prediction': 1}
    p, r, f1 = precision_recall_f1(2, 1, 4)
    assert report['detection'] == {'precision': p, 'recall': r, 'f1': f1}
    assert (p, r) == (2 / 3, 2 / 6)
    # PCK over matched people only vs every joint of a missed person counted as wrong
    assert report['pck3d_150_matched'] == 1.0
    assert report['pck3d_150_all'] == pytest.approx(2 / 6)
    assert report['nmje_mm'] == pytest.approx(report['mpjpe_mm'] / f1)


def test_pck_and_auc_on_known_errors():
    errors = np.array([[0.0, 49.0, 100.0, 151.0, np.nan]])  # mm; NaN: unknown joint
    hits, known = pck_counts(errors, [0.0, 50.0, 150.0])
    assert known == 4 and hits.tolist() == [1, 2, 3]
    # through a session: per-joint offsets of 0, 60, 120, 180 mm on 4 joints, root untouched
    names = ('pelvis', 'a', 'b', 'c')
    gt = np.array([[[0, 0, 5.0], [0.3, 0, 5], [0, 0.3, 5], [-0.3, 0, 5]]])
    pred = gt + np.array([[[0, 0, 0], [0.06, 0, 0], [0.12, 0, 0], [0.18, 0, 0]]])
    joint_set = EvalJointSet('toy4', names, ('pelvis',), 'test set')
    score = score_frame(_people(0, gt, names), _people(0, pred, names), joint_set)
    np.testing.assert_allclose(score.joint_errors[0], [0, 60, 120, 180], atol=1e-9)
    thresholds = np.arange(0.0, 151.0, 5.0)
    hits, known = pck_counts(score.joint_errors, thresholds)
    # AUC = mean PCK over 0..150: joint 0 counts at all 31, 60 mm from 60 (19), 120 mm (7)
    assert hits.mean() / known == pytest.approx((31 + 19 + 7 + 0) / (31 * 4))


def test_depth_error_is_binned_by_distance():
    near, far = _bodies(1, depth=3.0), _bodies(1, depth=17.0, seed=1)
    gt = np.concatenate([near, far])
    pred = gt.copy()
    pred[1] += np.array([0.0, 0.0, 0.3])  # 300 mm too far, at 17 m
    report = _evaluate([(gt, pred)])
    bins = {tuple(b['range_m']): b for b in report['by_distance']}
    assert bins[(0.0, 5.0)]['depth_bias_mm'] == pytest.approx(0.0, abs=1e-9)
    assert bins[(15.0, 20.0)]['depth_bias_mm'] == pytest.approx(300.0, abs=1e-6)
    assert bins[(15.0, 20.0)]['root_error_mm'] == pytest.approx(300.0, abs=1e-6)
    assert bins[(50.0, None)]['ground_truth'] == 0 and bins[(50.0, None)]['recall'] is None


def test_people_beyond_20_m_missed_show_in_their_bin():
    gt = np.concatenate([_bodies(1, depth=4.0), _bodies(1, depth=25.0, seed=2)])
    report = _evaluate([(gt, gt[:1])])
    bins = {tuple(b['range_m']): b for b in report['by_distance']}
    assert (bins[(20.0, 30.0)]['missed'], bins[(20.0, 30.0)]['recall']) == (1, 0.0)
    assert (bins[(0.0, 5.0)]['matched'], bins[(0.0, 5.0)]['recall']) == (1, 1.0)


def test_pve_is_root_relative_per_vertex():
    gt = _bodies(2)
    rng = np.random.default_rng(5)
    gt_verts = gt[:, :1] + rng.normal(scale=0.3, size=(2, 50, 3))
    pred_verts = gt_verts + np.array([0.0, 0.02, 0.0])  # moves with the root: no PVE
    pred_verts[:, 7] += np.array([0.5, 0.0, 0.0])  # one vertex of 50 off by 500 mm
    session = EvaluationSession()
    session.add_ground_truth(0, _people(0, gt, verts=gt_verts))
    session.add_prediction(0, _people(0, gt + np.array([0.0, 0.02, 0.0]), verts=pred_verts))
    report = session.finish()
    assert report['pve_mm'] == pytest.approx(10.0, abs=1e-9)  # 500 / 50
    assert report['mpjpe_mm'] == pytest.approx(0.0, abs=1e-9)


def test_3dpw_14_uses_the_h36m_lsp_joints_and_the_hip_midpoint():
    gt = _bodies(2, names=ALL_JOINT_NAMES)
    pred = gt.copy()
    pred[:, ALL_JOINT_NAMES.index('h36m_head_top')] += np.array([0.14, 0.0, 0.0])
    pred[:, ALL_JOINT_NAMES.index('r_wrist')] += 1.0  # not in the 14: ignored
    session = EvaluationSession(EvaluationConfig(protocol='3dpw_14'))
    session.add_ground_truth(0, _people(0, gt, ALL_JOINT_NAMES))
    session.add_prediction(0, _people(0, pred, ALL_JOINT_NAMES))
    report = session.finish()
    assert report['joint_set'] == 'h36m_lsp14' and len(report['joint_names']) == 14
    assert report['mpjpe_mm'] == pytest.approx(10.0, abs=1e-9)  # 140 mm / 14 joints
    # only the hips define the root: moving the pelvis joints changes nothing
    pred2 = gt.copy()
    pred2[:, ALL_JOINT_NAMES.index('h36m_pelvis')] += 0.5
    session = EvaluationSession(EvaluationConfig(protocol='3dpw_14'))
    session.add_ground_truth(0, _people(0, gt, ALL_JOINT_NAMES))
    session.add_prediction(0, _people(0, pred2, ALL_JOINT_NAMES))
    assert session.finish()['root_error_mm'] == pytest.approx(0.0, abs=1e-9)


def test_a_protocol_whose_joints_are_missing_says_so():
    gt = _bodies(1)  # 24 SMPL joints only
    session = EvaluationSession(EvaluationConfig(protocol='mupots'))
    session.add_ground_truth(0, _people(0, gt))
    with pytest.raises(EvaluationInputError, match=r'mupots14 needs joints.*lsp_neck'):
        session.add_prediction(0, _people(0, gt))
        session.finish()


def test_mupots_protocol_reports_pck_on_its_14_joints():
    gt = _bodies(2, names=ALL_JOINT_NAMES)
    pred = gt.copy()
    pred[0, ALL_JOINT_NAMES.index('l_knee')] += np.array([0.0, 0.2, 0.0])  # 200 mm: wrong
    session = EvaluationSession(EvaluationConfig(protocol='mupots'))
    session.add_ground_truth(0, _people(0, gt, ALL_JOINT_NAMES))
    session.add_prediction(0, _people(0, pred[:1], ALL_JOINT_NAMES))  # person 1 missed
    report = session.finish()
    assert report['joint_set'] == 'mupots14'
    assert report['pck3d_150_matched'] == pytest.approx(13 / 14)
    assert report['pck3d_150_all'] == pytest.approx(13 / 28)


def test_pck_per_sequence_and_its_mupots_style_mean():
    """Pooled PCK weighs sequences by their joints; MuPoTS-3D's tables average the sequences'
    PCKs. Sequence A: 2 people, 1 of 14 joints wrong each; B: 1 person, all right, 1 missed."""
    from romp_ros.evaluation.summary import build_report
    config = EvaluationConfig(protocol='mupots')
    knee = ALL_JOINT_NAMES.index('l_knee')
    closed = []
    for name, seed in (('A', 0), ('B', 1)):
        gt = _bodies(2, names=ALL_JOINT_NAMES, seed=seed)
        pred = gt.copy()
        session = EvaluationSession(config, name=name)
        session.add_ground_truth(0, _people(0, gt, ALL_JOINT_NAMES))
        if name == 'A':
            pred[:, knee] += np.array([0.0, 0.2, 0.0])  # 200 mm: wrong, both people
            session.add_prediction(0, _people(0, pred, ALL_JOINT_NAMES))
        else:
            session.add_prediction(0, _people(0, pred[:1], ALL_JOINT_NAMES))  # one missed
        closed.append(session.close())
    report = build_report(closed, config).summary
    a, b = report['per_sequence']
    assert (a['pck3d_150_matched'], a['pck3d_150_all']) == (pytest.approx(13 / 14),
                                                            pytest.approx(13 / 14))
    assert (b['pck3d_150_matched'], b['pck3d_150_all']) == (1.0, pytest.approx(14 / 28))
    assert report['pck3d_150_matched'] == pytest.approx((26 + 14) / 42)  # pooled
    assert report['pck3d_150_matched_sequence_mean'] == pytest.approx((13 / 14 + 1) / 2)
    assert report['pck3d_150_all_sequence_mean'] == pytest.approx((13 / 14 + 0.5) / 2)


def test_validation_scores_for_the_training_loop():
    gt = [_bodies(2), _bodies(3, seed=1)]
    pred = [gt[0] + np.array([0.0, 0.0, 0.01]), gt[1][:2]]
    scores = validation_scores(gt, [_project(g) for g in gt], pred, [_project(p) for p in pred])
    assert (scores.ground_truth, scores.matched, scores.missed, scores.false_positives) == \
        (5, 4, 1, 0)
    assert scores.recall == pytest.approx(0.8) and scores.precision == 1.0
    assert scores.mpjpe_mm == pytest.approx(0.0, abs=1e-9)
    assert scores.pve_mm is None
    assert (scores.frames_scored, scores.frames_skipped) == (2, {})


# -- tracking metrics ----------------------------------------------------------------------------


def _tracking_sequence(seed):
    """Two or three people over 40 frames with an id swap, misses and false positives.

    Returns the frames and, per frame, the (ground truth, prediction) boxes.
    """
    rng = np.random.default_rng(seed)
    frames, all_boxes = [], []
    for t in range(40):
        gt_ids = np.array([0, 1, 2] if 10 <= t < 30 else [0, 1])
        boxes = np.array([[100.0 * i + 2 * t, 50, 100.0 * i + 2 * t + 60, 200]
                          for i in gt_ids])
        pred_ids = gt_ids + 10
        if t >= 20:  # identity swap of the first two people
            pred_ids[:2] = pred_ids[:2][::-1]
        pred_boxes = boxes + rng.normal(scale=3.0, size=boxes.shape)
        keep = rng.random(len(gt_ids)) > 0.1  # ~10% misses
        pred_ids, pred_boxes = pred_ids[keep], pred_boxes[keep]
        if t % 7 == 0:
            pred_ids = np.append(pred_ids, 99)
            pred_boxes = np.vstack([pred_boxes, [900, 50, 960, 200]])
        frames.append(TrackingFrame(t, gt_ids, pred_ids, box_iou(boxes, pred_boxes)))
        all_boxes.append((boxes, pred_boxes))
    return frames, all_boxes


def _write_motchallenge(root, name, frames, all_boxes):
    """The sequence as MOTChallenge files, read by TrackEval's own loader."""
    gt_dir = root / 'gt' / 'MOT17-train' / name
    (gt_dir / 'gt').mkdir(parents=True)
    (gt_dir / 'seqinfo.ini').write_text(
        f'[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={len(frames)}\n'
        'imWidth=1920\nimHeight=1080\nimExt=.jpg\n')
    trk_dir = root / 'trackers' / 'MOT17-train' / 'ours' / 'data'
    trk_dir.mkdir(parents=True, exist_ok=True)
    gt_lines, trk_lines = [], []
    for t, (frame, (boxes, pred_boxes)) in enumerate(zip(frames, all_boxes, strict=True),
                                                     start=1):
        for i, b in zip(frame.gt_ids, boxes, strict=True):
            gt_lines.append(f'{t},{i + 1},{b[0]},{b[1]},{b[2] - b[0]},{b[3] - b[1]},1,1,1')
        for i, b in zip(frame.pred_ids, pred_boxes, strict=True):
            trk_lines.append(f'{t},{i},{b[0]},{b[1]},{b[2] - b[0]},{b[3] - b[1]},1,-1,-1,-1')
    (gt_dir / 'gt' / 'gt.txt').write_text('\n'.join(gt_lines) + '\n')
    (trk_dir / f'{name}.txt').write_text('\n'.join(trk_lines) + '\n')


def test_hota_and_idf1_agree_with_trackeval_on_motchallenge_files(tmp_path):
    trackeval = pytest.importorskip('trackeval')
    made = {'seq-a': _tracking_sequence(0), 'seq-b': _tracking_sequence(1)}
    sequences = {name: frames for name, (frames, _) in made.items()}
    ours = trackeval_scores(sequences)
    for name, (frames, boxes) in made.items():
        _write_motchallenge(tmp_path, name, frames, boxes)
    seqmap = tmp_path / 'seqmap.txt'
    seqmap.write_text('name\n' + '\n'.join(sequences) + '\n')
    dataset = trackeval.datasets.MotChallenge2DBox({
        'GT_FOLDER': str(tmp_path / 'gt'), 'TRACKERS_FOLDER': str(tmp_path / 'trackers'),
        'BENCHMARK': 'MOT17', 'SPLIT_TO_EVAL': 'train', 'TRACKERS_TO_EVAL': ['ours'],
        'SEQMAP_FILE': str(seqmap), 'DO_PREPROC': False, 'PRINT_CONFIG': False})
    evaluator = trackeval.Evaluator({'USE_PARALLEL': False, 'PRINT_RESULTS': False,
                                     'PRINT_CONFIG': False, 'TIME_PROGRESS': False,
                                     'OUTPUT_SUMMARY': False, 'OUTPUT_DETAILED': False,
                                     'PLOT_CURVES': False, 'OUTPUT_EMPTY_CLASSES': False})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({'PRINT_CONFIG': False}),
               trackeval.metrics.Identity({'PRINT_CONFIG': False})]
    results, _ = evaluator.evaluate([dataset], metrics)
    combined = results['MotChallenge2DBox']['ours']['COMBINED_SEQ']['pedestrian']
    assert ours.hota == pytest.approx(np.mean(combined['HOTA']['HOTA']), abs=1e-9)
    assert ours.idf1 == pytest.approx(combined['Identity']['IDF1'], abs=1e-9)
    assert ours.mota == pytest.approx(combined['CLEAR']['MOTA'], abs=1e-9)
    assert ours.id_switches == combined['CLEAR']['IDSW'] >= 2
    assert 0.3 < ours.hota < 0.95


def test_trackeval_and_motmetrics_agree_on_mota_and_idf1():
    sequences = {'a': _tracking_sequence(2)[0], 'b': _tracking_sequence(3)[0]}
    ours = trackeval_scores(sequences)
    mm = motmetrics_scores(sequences)['OVERALL']
    assert ours.mota == pytest.approx(mm.mota, abs=1e-9)
    assert ours.idf1 == pytest.approx(mm.idf1, abs=1e-9)
    assert ours.id_switches == mm.id_switches


def test_tracking_needs_ids_and_says_so():
    gt = _bodies(2)
    session = EvaluationSession()
    session.add_ground_truth(0, _people(0, gt, ids=[-1, -1]))
    session.add_prediction(0, _people(0, gt))
    tracking = session.finish()['tracking']
    assert tracking['available'] is False and 'no id' in tracking['reason']


def test_frames_without_ground_truth_people_count_false_positives():
    session = EvaluationSession()
    session.add_ground_truth(0, FramePeople.empty(0, SMPL_JOINT_NAMES))
    session.add_prediction(0, _people(0, _bodies(2)))
    session.add_ground_truth(1, _people(1, _bodies(1)))
    session.add_prediction(1, FramePeople.empty(1))
    report = session.finish()
    assert report['people'] == {'ground_truth': 1, 'matched': 0, 'missed': 1,
                                'false_positives': 2}
    assert report['frames']['scored'] == 2
    assert report['detection'] == {'precision': 0.0, 'recall': 0.0, 'f1': 0.0}
    assert report['mpjpe_mm'] is None and report['pck3d_150_all'] == 0.0


def test_dataset_labels_become_frame_people():
    from romp_ros.data.dataset_format import FrameLabel, PersonLabel
    kp = np.column_stack([np.arange(24.0) * 10, np.arange(24.0) * 5 + 100, np.full(24, 2.0)])
    kp[3, 2] = 0  # not labelled
    kp[4, 2] = 1  # occluded but labelled
    joints = _bodies(1)[0]
    joints[5] = np.nan
    frame = FrameLabel(index=7, image='x.png', people=(
        PersonLabel(track_id=3, keypoints_2d=kp, joints_3d=joints),))
    people = people_from_label(frame, SMPL_JOINT_NAMES)
    assert people.stamp_ns == 7 and people.ids.tolist() == [3]
    assert np.isnan(people.keypoints_2d[0, 3]).all()
    assert np.isfinite(people.keypoints_2d[0, 4]).all()
    np.testing.assert_allclose(people.bbox[0], [0.0, 100.0, 230.0, 215.0])  # labelled extent
    assert np.isnan(people.joints_3d[0, 5]).all()
    # an unknown joint is left out: the same labels as predictions score zero
    session = EvaluationSession()
    session.add_ground_truth(7, people)
    session.add_prediction(7, people)
    report = session.finish()
    assert report['mpjpe_mm'] == 0.0 and report['per_joint_mpjpe_mm']['r_knee'] is None
    assert report['pck3d_150_matched'] == 1.0
