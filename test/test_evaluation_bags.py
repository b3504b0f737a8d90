"""Evaluation from real rosbag2 bags written here with rosbags: recorded PersonMeshArray topics,
an infer .npz, a model run on image + camera_info topics; every bad-input case."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES
from romp_ros.data.bag_types import CAMERA_INFO, IMAGE, PERSON_MESH_ARRAY, typestore
from romp_ros.evaluation import EvaluationConfig, EvaluationInputError, FramePeople, build_report
from romp_ros.evaluation.bag_io import person_mesh_array_message
from romp_ros.evaluation.people import keypoint_boxes
from romp_ros.evaluation.runner import PredictionSource, evaluate_bag
from romp_ros.evaluation.session import check_pairing
from romp_ros.synthetic import generate_sequence, preset, project_points

GT, PRED = '/ground_truth/people', '/romp/people'
TOPIC_SOURCE = PredictionSource('topic', topic=PRED)


# -- bag writing helpers (also used by test_evaluate_cli and test_evaluation_distributed) ----


def synthetic_people(seconds=2.0, people=3, seed=0, fps=10.0):
    """Ground truth of walking people from the synthetic sequences, one FramePeople a frame."""
    seq = generate_sequence(preset('crossing', num_people=people, duration_s=seconds, fps=fps),
                            seed)
    frames = []
    for frame in seq.frames:
        joints = frame.gt_joints
        kp = project_points(seq.intrinsics, joints)
        frames.append(FramePeople(
            stamp_ns=int(round(frame.stamp_s * 1e9)) + 1_000_000_000, joint_names=SMPL_JOINT_NAMES,
            joints_3d=joints, keypoints_2d=kp, bbox=keypoint_boxes(kp), ids=frame.gt_ids + 1,
            confidences=np.ones(len(frame.gt_ids)), frame_id='camera_optical'))
    return frames


def shifted(frames, offset=None, joint=None, joint_offset=None, stamp_shift_ns=0):
    """Predictions made from ground truth: every joint moved by ``offset`` (m), one joint by
    ``joint_offset``; keypoints and boxes follow the joints' projection."""
    k = np.array([[900.0, 0.0, 640.0], [0.0, 900.0, 360.0], [0.0, 0.0, 1.0]])
    out = []
    for f in frames:
        joints = f.joints_3d.copy()
        if offset is not None:
            joints += offset
        if joint is not None:
            joints[:, SMPL_JOINT_NAMES.index(joint)] += joint_offset
        kp = project_points(k, joints) if (offset is not None or joint is not None) \
            else f.keypoints_2d
        out.append(replace(f, stamp_ns=f.stamp_ns + stamp_shift_ns, joints_3d=joints,
                           keypoints_2d=kp, bbox=keypoint_boxes(kp), ids=f.ids + 100))
    return out


def people_messages(topic, frames, delay_ns=0):
    """(topic, type, log time, CDR bytes) of PersonMeshArray messages."""
    store = typestore()
    return [(topic, PERSON_MESH_ARRAY, f.stamp_ns + delay_ns,
             store.serialize_cdr(person_mesh_array_message(f, store), PERSON_MESH_ARRAY))
            for f in frames]


def write_bag(path, messages, storage='mcap', topics=()):
    """A rosbag2 bag of raw messages (sorted by log time); ``topics``: extra (topic, type)
    connections without messages."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    store = typestore()
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        conns = {}
        for topic, msgtype in list(dict.fromkeys((m[0], m[1]) for m in messages)) + list(topics):
            conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
        for topic, _, log_ns, raw in sorted(messages, key=lambda m: m[2]):
            writer.write(conns[topic], log_ns, raw)
    return path


def image_messages(topic, info_topic, images, stamps_ns, k, frame_id='camera_optical'):
    """sensor_msgs Image + CameraInfo messages (rgb8) at the given stamps."""
    store = typestore()
    t = store.types
    out = []
    for pixels, stamp in zip(images, stamps_ns, strict=True):
        header = t['std_msgs/msg/Header'](
            stamp=t['builtin_interfaces/msg/Time'](sec=stamp // 10**9, nanosec=stamp % 10**9),
            frame_id=frame_id)
        h, w = pixels.shape[:2]
        info = t[CAMERA_INFO](
            header=header, height=h, width=w, distortion_model='plumb_bob', d=np.zeros(5),
            k=np.array([k[0], 0, k[2], 0, k[1], k[3], 0, 0, 1.0]), r=np.eye(3).ravel(),
            p=np.zeros(12), binning_x=0, binning_y=0,
            roi=t['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                      do_rectify=False))
        image = t[IMAGE](header=header, height=h, width=w, encoding='rgb8', is_bigendian=0,
                         step=w * 3, data=np.ascontiguousarray(pixels).reshape(-1))
        out.append((info_topic, CAMERA_INFO, stamp, store.serialize_cdr(info, CAMERA_INFO)))
        out.append((topic, IMAGE, stamp + 1, store.serialize_cdr(image, IMAGE)))
    return out


def damaged(raw):
    """Bytes of a message cut after its header: the stamp reads, the rest does not."""
    return raw[:24]


def _evaluate(path, source=TOPIC_SOURCE, config=None, **kw):
    result = evaluate_bag(path, GT, source, config or EvaluationConfig(), **kw)
    check_pairing(result)
    return result, build_report([result], config or EvaluationConfig())


@pytest.fixture(scope='module')
def truth():
    return synthetic_people()


# -- recorded predictions ---------------------------------------------------------------------


def test_ground_truth_recorded_as_predictions_scores_zero(tmp_path, truth):
    bag = write_bag(tmp_path / 'bag', people_messages(GT, truth)
                    + people_messages(PRED, shifted(truth), delay_ns=30_000_000))
    _, report = _evaluate(bag)
    n = len(truth)
    people = sum(f.num_people for f in truth)
    assert report['frames'] == {'total': n, 'scored': n, 'skipped': {}, 'paired': n,
                                'matched_by_box_iou': 0}
    assert report['people'] == {'ground_truth': people, 'matched': people, 'missed': 0,
                                'false_positives': 0}
    assert report['detection']['f1'] == 1.0
    assert report['mpjpe_mm'] == pytest.approx(0.0, abs=1e-6)
    assert report['pa_mpjpe_mm'] == pytest.approx(0.0, abs=1e-3)
    assert report['tracking']['available'] and report['tracking']['idf1'] == 1.0
    # the ground-truth topic itself as the predictions
    _, same = _evaluate(bag, PredictionSource('topic', topic=GT))
    assert same['people']['matched'] == people and same['root_error_mm'] == 0.0


def test_known_perturbations_give_the_analytic_values(tmp_path, truth):
    offset = write_bag(tmp_path / 'offset.mcap', people_messages(GT, truth) + people_messages(
        PRED, shifted(truth, offset=np.array([0.0, 0.006, 0.008]))))
    _, report = _evaluate(offset)
    assert report['mpjpe_mm'] == pytest.approx(0.0, abs=1e-6)
    assert report['root_error_mm'] == pytest.approx(10.0, abs=1e-6)
    one_joint = write_bag(tmp_path / 'joint.mcap', people_messages(GT, truth) + people_messages(
        PRED, shifted(truth, joint='r_knee', joint_offset=np.array([0.24, 0.0, 0.0]))))
    _, report = _evaluate(one_joint)
    assert report['mpjpe_mm'] == pytest.approx(10.0, abs=1e-6)
    assert report['root_error_mm'] == pytest.approx(0.0, abs=1e-6)


def test_every_frame_is_accounted_for(tmp_path, truth):
    preds = shifted(truth)
    dropped = {3, 4, 9}  # the perception node dropped these frames
    kept = [p for i, p in enumerate(preds) if i not in dropped]
    extra = [replace(preds[0], stamp_ns=preds[-1].stamp_ns + 50_000_000)]  # no ground truth
    messages = people_messages(GT, truth) + people_messages(PRED, kept + extra)
    # frame 6: the ground-truth message is damaged; frame 7: the prediction is damaged
    messages = [(t, ty, ts, damaged(raw) if (t == GT and ts == truth[6].stamp_ns)
                 or (t == PRED and ts == preds[7].stamp_ns) else raw)
                for t, ty, ts, raw in messages]
    # a repeated ground-truth stamp
    messages += people_messages(GT, [truth[2]], delay_ns=1)
    bag = write_bag(tmp_path / 'bag', messages)
    result, report = _evaluate(bag)
    frames = report['frames']
    assert frames['skipped'] == {'no_prediction': 3, 'no_ground_truth': 1, 'decode_error': 1,
                                 'bad_ground_truth': 1, 'duplicate_stamp': 1}
    assert frames['scored'] == len(truth) - 5
    assert frames['total'] == frames['scored'] + 7 == len(result.rows)
    _accounted(result, len(truth) + 1, len(kept) + 1)
    # people of dropped and undecodable frames count as ground truth and as missed; the
    # damaged ground-truth frame's people are unknown and do not count
    missed_frames = dropped | {7}
    expected_gt = sum(f.num_people for i, f in enumerate(truth) if i != 6)
    assert report['people']['ground_truth'] == expected_gt
    assert report['people']['missed'] == sum(truth[i].num_people for i in missed_frames)
    assert report['people']['false_positives'] == 0
    reasons = {r['stamp_ns']: r['reason'] for r in result.rows if r['status'] == 'skipped'}
    assert reasons[truth[3].stamp_ns] == 'no_prediction'
    assert reasons[truth[7].stamp_ns] == 'decode_error'
    assert reasons[truth[6].stamp_ns] == 'bad_ground_truth'
    assert reasons[extra[0].stamp_ns] == 'no_ground_truth'


def test_stamp_tolerance_pairs_the_nearest(tmp_path, truth):
    rng = np.random.default_rng(0)
    jittered = [replace(p, stamp_ns=p.stamp_ns + int(rng.integers(-2_000_000, 2_000_000)))
                for p in shifted(truth)]
    bag = write_bag(tmp_path / 'bag', people_messages(GT, truth) + people_messages(PRED,
                                                                                   jittered))
    with pytest.raises(EvaluationInputError,
                       match=r'no prediction stamp pairs.*--stamp-tolerance'):
        _evaluate(bag)
    config = EvaluationConfig(stamp_tolerance_s=0.005)
    _, report = _evaluate(bag, config=config)
    assert report['pairing'] == 'nearest within 0.005 s'
    assert report['frames']['scored'] == len(truth)
    assert report['mpjpe_mm'] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_a_single_bag_file_or_folder(tmp_path, truth, storage):
    folder = write_bag(tmp_path / 'bag', people_messages(GT, truth[:5])
                       + people_messages(PRED, shifted(truth[:5])), storage=storage)
    single = next(folder.glob('*.mcap' if storage == 'mcap' else '*.db3'))
    for path in (folder, single):
        _, report = _evaluate(path)
        assert report['frames']['scored'] == 5


def test_predictions_from_an_infer_npz(tmp_path, truth):
    """The layout romp_ros/cli/infer_output.py writes: body-frame joints + cam_trans."""
    preds = shifted(truth, offset=np.array([0.0, 0.0, 0.01]))
    frame_index = np.concatenate([np.full(p.num_people, i) for i, p in enumerate(preds)])
    joints = np.concatenate([p.joints_3d for p in preds])
    trans = joints[:, 0].copy()
    npz = tmp_path / 'infer.npz'
    np.savez(npz, frame_index=frame_index, joints=joints - trans[:, None], cam_trans=trans,
             pj2d_org=np.concatenate([p.keypoints_2d for p in preds]),
             center_confs=np.ones(len(frame_index)), joint_names=np.array(SMPL_JOINT_NAMES),
             inputs=np.array([f'bag:/cam#{i}' for i in range(len(preds))]),
             stamps_ns=np.array([p.stamp_ns for p in preds]))
    bag = write_bag(tmp_path / 'bag', people_messages(GT, truth))
    _, report = _evaluate(bag, PredictionSource('npz', npz=npz))
    assert report['frames']['scored'] == len(truth)
    assert report['root_error_mm'] == pytest.approx(10.0, abs=1e-4)
    assert report['mpjpe_mm'] == pytest.approx(0.0, abs=1e-4)
    assert report['tracking']['available'] is False  # no track ids in the file


# -- bad input ----------------------------------------------------------------------------------


def test_bad_input_gives_one_clear_line(tmp_path, truth):
    good = write_bag(tmp_path / 'good', people_messages(GT, truth[:3])
                     + people_messages(PRED, shifted(truth[:3])))
    corrupt = tmp_path / 'corrupt.mcap'
    corrupt.write_bytes(b'\x89MCAP0\r\n' + b'garbage' * 50)
    cases = {
        'no such bag': tmp_path / 'missing',
        'not a readable bag': corrupt,
        'without metadata.yaml': tmp_path,
    }
    for message, path in cases.items():
        with pytest.raises(EvaluationInputError, match=message) as err:
            evaluate_bag(path, GT, TOPIC_SOURCE, EvaluationConfig())
        assert '\n' not in str(err.value)
    with pytest.raises(EvaluationInputError,
                       match=rf'no topic /nope \(--gt-topic\); topics in the bag: {GT} '):
        evaluate_bag(good, '/nope', TOPIC_SOURCE, EvaluationConfig())
    with pytest.raises(EvaluationInputError, match=r'no topic /missing \(--pred-topic\)'):
        evaluate_bag(good, GT, PredictionSource('topic', topic='/missing'), EvaluationConfig())
    images = write_bag(tmp_path / 'images', image_messages(
        '/cam/image', '/cam/info', [np.zeros((8, 8, 3), np.uint8)], [10**9], (5, 5, 4, 4)))
    with pytest.raises(EvaluationInputError, match=r'/cam/image has type sensor_msgs/msg/Image; '
                                                   r'--gt-topic needs romp_ros/msg/PersonMesh'):
        evaluate_bag(images, '/cam/image', TOPIC_SOURCE, EvaluationConfig())
    empty = write_bag(tmp_path / 'empty', [], topics=[(GT, PERSON_MESH_ARRAY)])
    with pytest.raises(EvaluationInputError, match='the bag is empty'):
        evaluate_bag(empty, GT, TOPIC_SOURCE, EvaluationConfig())
    late = write_bag(tmp_path / 'late', people_messages(GT, truth[:3]) + people_messages(
        PRED, shifted(truth[:3], stamp_shift_ns=7_000_000_000)))
    with pytest.raises(EvaluationInputError, match=r'no prediction stamp pairs with a '
                                                   r'ground-truth stamp \(exact\)'):
        _evaluate(late)


def _accounted(result, gt_read, pred_read):
    """Every message read is in exactly one place of the result."""
    gt_rows = [r for r in result.rows if r['has_ground_truth']]
    pred_rows = [r for r in result.rows if r['has_ground_truth'] is False]
    assert len(gt_rows) == gt_read
    assert result.paired + len(pred_rows) == pred_read


def test_a_damaged_bag_is_reported_as_far_as_it_reads(tmp_path):
    frames = synthetic_people(seconds=10.0, people=2)
    folder = write_bag(tmp_path / 'bag', people_messages(GT, frames)
                       + people_messages(PRED, shifted(frames)))
    mcap = next(folder.glob('*.mcap'))
    data = mcap.read_bytes()
    # a clobbered region across chunk headers: nothing reads -> one clear line
    broken = bytearray(data)
    broken[len(data) // 2:len(data) // 2 + 3000] = b'\xab' * 3000
    mcap.write_bytes(bytes(broken))
    with pytest.raises(EvaluationInputError, match='no message could be read, the bag is corrupt'):
        evaluate_bag(folder, GT, TOPIC_SOURCE, EvaluationConfig())
    # one ground-truth message damaged in place: that frame is skipped, the rest scored
    store_raw = people_messages(GT, frames[40:41])[0][3]
    at = data.index(store_raw)
    broken = bytearray(data)
    broken[at + 20:at + 28] = b'\xff' * 8  # the frame_id length: no longer deserialises
    mcap.write_bytes(bytes(broken))
    result = evaluate_bag(folder, GT, TOPIC_SOURCE, EvaluationConfig())
    assert dict(result.skipped) == {'bad_ground_truth': 1}
    assert result.scored == len(frames) - 1
    _accounted(result, len(frames), len(frames))


# -- a model run on the bag's images --------------------------------------------------------------


@pytest.mark.slow
def test_model_run_on_images_and_camera_info(tmp_path, models_dir, seeded_checkpoint):
    import skimage.data

    from romp_ros.core.config import EstimatorConfig
    from romp_ros.evaluation.runner import _ModelPredictor

    image = skimage.data.astronaut()  # 512 x 512 RGB
    stamps = [10**9 + i * 100_000_000 for i in range(3)]
    k = (600.0, 600.0, 256.0, 256.0)
    messages = image_messages('/cam/image_raw', '/cam/camera_info', [image] * 3, stamps, k)
    # the second image is damaged: its data is cut
    store = typestore()
    bad = store.deserialize_cdr(messages[3][3], IMAGE)
    bad.data = bad.data[:100]
    messages[3] = messages[3][:3] + (store.serialize_cdr(bad, IMAGE),)
    gt_joints = np.array([[0.0, 0.0, 3.0]]) + np.zeros((1, 24, 3))
    gt_joints[0, :, 1] = np.linspace(-0.8, 0.8, 24)
    kp = gt_joints[..., :2] / gt_joints[..., 2:] * 600.0 + 256.0
    gt = [FramePeople(s, SMPL_JOINT_NAMES, gt_joints, kp, keypoint_boxes(kp), np.array([1]),
                      np.ones(1)) for s in stamps]
    bag = write_bag(tmp_path / 'bag', messages + people_messages(GT, gt))
    estimator = EstimatorConfig(models_dir=str(models_dir), device='cpu',
                                checkpoint=str(seeded_checkpoint('romp', 'hrnet32')),
                                compute_verts=False, center_thresh=0.05)
    source = PredictionSource('model', estimator=estimator, track=True)
    predictor = _ModelPredictor.build(source, _single())
    result = evaluate_bag(bag, GT, source, EvaluationConfig(), predictor=predictor)
    assert result.scored == 2
    assert dict(result.skipped) == {'decode_error': 1}
    rows = {r['stamp_ns']: r for r in result.rows}
    assert rows[stamps[1]]['reason'] == 'decode_error' and rows[stamps[1]]['missed'] == 1
    assert all(rows[s]['predictions'] >= 0 for s in (stamps[0], stamps[2]))


def _single():
    from romp_ros.evaluation.distributed import DistributedContext
    return DistributedContext()
