"""The 2D views: mesh overlay, bird's-eye view and network-map colourings, checked by pixel.

People are posed with the real body model of a prepared models directory and placed at known
camera-frame positions; expected pixels come from the pinhole projection written out here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from romp_ros.core.body.model_files import load_body_model_arrays
from romp_ros.core.body.smpl import BodyModel
from romp_ros.core.render import (
    BirdsEyeConfig,
    BirdsEyePeople,
    OverlayStyle,
    TrailConfig,
    TrailKeeper,
    birds_eye_pixel,
    draw_birds_eye,
    draw_people_overlay,
    id_colors,
    render_meshes,
)
from romp_ros.core.results import CameraIntrinsics, FrameResult
from romp_ros.synthetic import poses

pytest.importorskip('cv2')
K = CameraIntrinsics(500.0, 500.0, 320.0, 240.0)
SIZE = (480, 640)
GREY = 90


@pytest.fixture(scope='module')
def body(models_dir):
    return BodyModel(load_body_model_arrays(models_dir, 'smpl')).eval()


def people(body, pelvis_xyz, headings=None) -> FrameResult:
    """Upright people with their pelvis at the given camera-frame positions (metres)."""
    pelvis_xyz = np.asarray(pelvis_xyz, np.float64).reshape(-1, 3)
    count = len(pelvis_xyz)
    headings = np.zeros(count) if headings is None else np.asarray(headings, np.float64)
    thetas = np.zeros((count, 72))
    thetas[:, :3] = poses.global_orientation(headings, 0.0, np.eye(3))
    thetas[:, 3:] = poses.body_pose(np.linspace(0, 3, count), np.full(count, 0.6))
    with torch.inference_mode():
        out = body(torch.zeros(count, 10), torch.as_tensor(thetas, dtype=torch.float32))
    joints, verts = out.joints.numpy(), out.verts.numpy()
    trans = (pelvis_xyz - joints[:, 0]).astype(np.float32)
    return FrameResult(
        cam=np.zeros((count, 3), np.float32), smpl_thetas=thetas.astype(np.float32),
        smpl_betas=np.zeros((count, 10), np.float32), cam_trans=trans, joints=joints,
        verts=verts, pj2d_org=np.zeros((count, joints.shape[1], 2), np.float32),
        center_confs=np.ones(count, np.float32), joint_names=body.joint_names,
        image_size=SIZE, intrinsics=K)


def grey_image() -> np.ndarray:
    return np.full((*SIZE, 3), GREY, np.uint8)


def projected(points: np.ndarray) -> np.ndarray:
    """(..., 2) pinhole pixels of camera-frame points."""
    return np.stack([K.fx * points[..., 0] / points[..., 2] + K.cx,
                     K.fy * points[..., 1] / points[..., 2] + K.cy], axis=-1)


# -- overlay ------------------------------------------------------------------------------------

def test_overlay_draws_a_person_where_the_projection_says(body):
    result = people(body, [(0.4, 0.1, 3.0)])
    image = grey_image()
    out = draw_people_overlay(image, result, body.faces.numpy(), ids=[4])
    assert (image == GREY).all()  # the input is untouched
    verts = result.verts_camera()[0]
    uv = projected(verts)
    left, top = np.floor(uv.min(0)).astype(int)
    right, bottom = np.ceil(uv.max(0)).astype(int)
    changed = (out != GREY).any(axis=2)
    # everything drawn lies within the mesh's projected box (the id label sits above it)
    rows, cols = np.nonzero(changed)
    assert cols.min() >= left - 2 and cols.max() <= right + 2 and rows.max() <= bottom + 2
    # the torso (pelvis .. neck, projected) is painted in the id's colour
    for joint in (0, 3, 6, 9):
        u, v = projected(result.joints_camera()[0, joint]).astype(int)
        pixel = out[v, u].astype(int)
        hue = id_colors([4])[0]
        assert changed[v, u] and np.argmax(pixel) == np.argmax(hue), (joint, pixel)
    # nothing to the left of the person, where nothing projects
    assert not changed[:, :max(left - 3, 0)].any()


@pytest.mark.parametrize('near_id', [0, 1])
def test_overlay_nearer_person_hides_the_farther_one(body, near_id):
    """Id 0 is red and id 1 green; whichever stands nearer owns the pixels they share."""
    positions = [(0.0, 0.0, 2.5), (0.15, 0.0, 4.5)]
    result = people(body, positions if near_id == 0 else positions[::-1])
    ids = [0, 1]
    faces = body.faces.numpy()
    alone = [render_meshes(result.verts_camera()[n:n + 1], faces, (K.fx, K.fy, K.cx, K.cy),
                           SIZE).person_index >= 0 for n in range(2)]
    both = alone[0] & alone[1]
    assert both.sum() > 500  # they do overlap in the image
    out = draw_people_overlay(grey_image(), result, faces, ids=ids).astype(int)
    red, green = out[..., 0][both], out[..., 1][both]
    if near_id == 0:
        assert np.mean(red > green) > 0.97
    else:
        assert np.mean(green > red) > 0.97


def test_overlay_skips_hidden_skeleton_bones_and_accepts_bgr(body):
    result = people(body, [(0.0, 0.0, 2.5), (0.2, 0.0, 5.0)])
    faces = body.faces.numpy()
    bones = OverlayStyle(labels=False, line_px=3)
    plain = dataclasses.replace(bones, skeleton=False)

    def draw(res, style, **kw):
        return draw_people_overlay(grey_image(), res, faces, ids=[0, 1][:res.num_people],
                                   style=style, **kw)

    near = result.select(np.array([0]))
    near_mask = render_meshes(near.verts_camera(), faces, (K.fx, K.fy, K.cx, K.cy),
                              SIZE).person_index >= 0
    own_bones = (draw(near, bones) != draw(near, plain)).any(axis=2)
    far_uv = projected(result.joints_camera()[1, :24])
    hidden = [j for j in range(24) if near_mask[int(far_uv[j, 1]), int(far_uv[j, 0])]]
    assert len(hidden) >= 3  # part of the far person stands behind the near one
    # over the near person, apart from its own bones, the skeleton layer adds nothing
    added = (draw(result, bones) != draw(result, plain)).any(axis=2)
    assert not (added & near_mask & ~own_bones).any()
    assert (added & ~near_mask).any()  # the far person's visible bones are drawn
    np.testing.assert_array_equal(draw(result, bones, color_order='bgr')[..., ::-1],
                                  draw(result, bones))


def test_overlay_follows_a_distorted_lens(body):
    """With barrel distortion the person is drawn where the lens, not the pinhole, puts it."""
    lens = dataclasses.replace(K, distortion_model='plumb_bob', d=(-0.3, 0.1, 0.0, 0.0, 0.0))
    result = dataclasses.replace(people(body, [(1.6, 0.0, 3.0)]), intrinsics=lens)
    out = draw_people_overlay(grey_image(), result, body.faces.numpy(), ids=[1],
                              style=OverlayStyle(labels=False, skeleton=False))
    changed = (out != GREY).any(axis=2)
    lens_uv = lens.project(result.verts_camera()[0])
    pin_uv = projected(result.verts_camera()[0])
    assert pin_uv[:, 0].max() - lens_uv[:, 0].max() > 20  # barrel: the edge moves inwards
    cols = np.nonzero(changed)[1]
    assert abs(cols.max() - lens_uv[:, 0].max()) < 3 and abs(cols.min() - lens_uv[:, 0].min()) < 3
    assert not changed[:, int(lens_uv[:, 0].max()) + 4:].any()


def test_overlay_without_meshes_and_bad_input(body):
    result = people(body, [(0.0, 0.0, 3.0)])
    out = draw_people_overlay(grey_image(), result, None, ids=[2])
    assert (out != GREY).any()  # skeleton and label only
    empty = dataclasses.replace(result.select(np.array([], np.int64)))
    np.testing.assert_array_equal(draw_people_overlay(grey_image(), empty, None), grey_image())
    nan = dataclasses.replace(result, verts=np.full_like(result.verts, np.nan))
    draw_people_overlay(grey_image(), nan, body.faces.numpy())  # NaN meshes are not drawn
    with pytest.raises(ValueError, match='uint8'):
        draw_people_overlay(grey_image().astype(np.float32), result, None)
    with pytest.raises(ValueError, match='2 ids for 1 people'):
        draw_people_overlay(grey_image(), result, None, ids=[1, 2])
    with pytest.raises(ValueError, match='alpha'):
        OverlayStyle(alpha=2.0)


# -- bird's-eye view ---------------------------------------------------------------------------

def test_birds_eye_puts_a_person_at_its_ground_position():
    config = BirdsEyeConfig(size=(400, 300), depth_range_m=10.0, camera_margin_px=20)
    # 38 px per metre, the camera at (150, 380): (x, z) = (2, 5) is at (226, 190)
    view = BirdsEyePeople(ids=np.array([5]), positions=np.array([[2.0, 0.3, 5.0]]))
    picture = draw_birds_eye(view, config)
    np.testing.assert_allclose(birds_eye_pixel(2.0, 5.0, config), (226.0, 190.0))
    color = np.round(255 * id_colors([5])[0]).astype(int)
    assert np.abs(picture[190, 226].astype(int) - color).max() <= 2
    assert np.abs(picture[190 + 3, 226 - 3].astype(int) - color).max() <= 2
    # a metre away the disc (25 cm radius) has ended
    assert np.abs(picture[190, 226 + 38].astype(int) - color).max() > 40


def test_birds_eye_draws_the_field_of_view_and_trails():
    config = BirdsEyeConfig(size=(400, 400), depth_range_m=10.0, camera_margin_px=20)
    empty = BirdsEyePeople(ids=np.zeros(0, np.int64), positions=np.zeros((0, 3)))
    narrow = CameraIntrinsics(800.0, 800.0, 320.0, 240.0)  # +-21.8 deg: x/z within +-0.4
    picture = draw_birds_eye(empty, config, intrinsics=narrow, image_width=640).astype(int)
    # at z = 5.5 m (v = 171) the wedge spans x within +-2.2 m (u 116..284); off grid lines
    inside, outside = picture[171, 214], picture[171, 334]
    assert np.abs(inside - outside).max() > 5
    assert np.abs(picture[171, 310] - outside).max() == 0  # 0.6 x z outside: background
    keeper = TrailKeeper(TrailConfig(max_age_s=1.0, forget_after_s=0.5))
    for step in range(20):
        t = step * 0.1
        keeper.update([3], np.array([[-2.0 + 0.2 * step, 0.0, 4.0]]), t)
        if step < 5:
            keeper.update([3, 8], np.array([[-2.0 + 0.2 * step, 0.0, 4.0], [1.0, 0, 2.0]]), t)
    trails = keeper.trails()
    assert set(trails) == {3}  # id 8 was forgotten after 0.5 s unseen
    assert trails[3][0, 0] >= 1.9 - 1.0 - 1e-9  # only the last second is kept
    picture = draw_birds_eye(empty, config, trails=trails).astype(int)
    u, v = birds_eye_pixel(trails[3][-3, 1], 4.0, config).astype(int)
    assert (picture[v - 1:v + 2, u] != picture[v - 12, u]).any()
    keeper.update([3], np.array([[0.0, 0.0, 1.0]]), 0.0)  # time went back: a new stream
    assert len(keeper.trails()[3]) == 1


def test_birds_eye_field_of_view_follows_the_lens():
    from romp_ros.core.render.birds_eye import edge_slopes

    pinhole = CameraIntrinsics(300.0, 300.0, 320.0, 240.0)
    fisheye = dataclasses.replace(pinhole, distortion_model='equidistant',
                                  d=(0.0, 0.0, 0.0, 0.0))
    assert edge_slopes(pinhole, 640) == pytest.approx((-320 / 300, 320 / 300))
    # equidistant: the edge pixel sits at angle r / f = 1.067 rad, tan = 1.82
    assert edge_slopes(fisheye, 640) == pytest.approx((-np.tan(320 / 300), np.tan(320 / 300)),
                                                      rel=1e-3)


def test_birds_eye_people_from_a_result_face_their_heading(body):
    result = people(body, [(1.0, 0.0, 4.0)], headings=[np.pi / 2])
    view = BirdsEyePeople.from_result(result, ids=[9])
    np.testing.assert_allclose(view.positions[0], (1.0, 0.0, 4.0), atol=1e-5)
    # heading pi/2 faces (-sin h, 0, -cos h) in the level frame, y down: -x in the camera
    np.testing.assert_allclose(view.headings[0], (-1.0, 0.0), atol=1e-6)


# -- heatmaps ----------------------------------------------------------------------------------

def test_center_map_overlay_lands_on_the_image_region_of_the_peak():
    from romp_ros.core.render.heatmaps import center_map_overlay, colorize

    image = np.full((200, 400, 3), 40, np.uint8)  # padded to 400 x 400: 100 rows above
    center = np.zeros((64, 64), np.float32)
    center[32, 48] = 1.0  # cell centre (48.5, 32.5) / 64 * 400 = (303, 203) in the square
    out = center_map_overlay(torch.as_tensor(center), image, [100, 300, 0, 400, 200, 400])
    change = np.abs(out.astype(int) - image).sum(axis=2)
    v, u = np.unravel_index(np.argmax(change), change.shape)
    assert abs(u - 303) <= 4 and abs(v - (203 - 100)) <= 4
    ramp = colorize(np.linspace(0, 1, 256, dtype=np.float32)[None].repeat(4, 0))
    assert ramp.shape == (4, 256, 3) and ramp[0, 0].sum() < ramp[0, -1].sum()
    with pytest.raises(ValueError, match='colormap'):
        colorize(center, colormap='rainbowish')


def test_birds_eye_depth_map_keeps_each_bin_and_column_and_puts_near_at_the_bottom():
    from romp_ros.core.render.heatmaps import birds_eye_depth_image, birds_eye_depth_map

    volume = np.zeros((64, 128, 128), np.float32)
    volume[5, 70, 30] = 0.9  # a near person (bin 5) at column 30
    volume[50, 20, 100] = 0.5
    depth_map = birds_eye_depth_map(volume)
    assert depth_map.shape == (64, 128)
    assert depth_map[5, 30] == pytest.approx(0.9) and depth_map[50, 100] == pytest.approx(0.5)
    picture = birds_eye_depth_image(depth_map, size=(256, 256))
    brightness = picture.astype(int).sum(axis=2)
    v, u = np.unravel_index(np.argmax(brightness), brightness.shape)
    assert v > 256 * 0.85 and abs(u - 30 * 2) <= 2  # bin 5 of 64, from the bottom
    labelled = birds_eye_depth_image(depth_map, np.linspace(0.5, 20, 64), size=(256, 256))
    assert (labelled != picture).any()


# -- `infer --render` writer -------------------------------------------------------------------

def test_render_writer_writes_images_videos_and_a_contact_sheet(body, tmp_path):
    import cv2

    from romp_ros.cli.input_sources import Frame
    from romp_ros.cli.render_output import RenderOptions, RenderWriter

    faces = body.faces.numpy()
    writer = RenderWriter(RenderOptions(tmp_path / 'render', sheet_size=4, fps=10.0), faces)
    for i in range(2):
        frame = Frame(pixels=grey_image(), color_order='rgb', source=f'/data/img_{i}.png')
        writer.add(frame, people(body, [(0.2 * i, 0.0, 3.0)]))
    for i in range(5):  # a video stream: tracked, with stamps
        frame = Frame(pixels=grey_image()[..., ::-1].copy(), color_order='bgr',
                      source=f'/data/clip.mp4#{i}', stamp_ns=i * 100_000_000,
                      stream='/data/clip.mp4')
        writer.add(frame, people(body, [(-1.0 + 0.2 * i, 0.0, 4.0), (1.0, 0.0, 6.0)]),
                   track_ids=[5, 9])
    written = writer.close()
    root = tmp_path / 'render'
    names = sorted(str(p.relative_to(root)) for p in written)
    assert names == ['birds_eye/000000_img_0.png', 'birds_eye/000001_img_1.png',
                     'birds_eye_clip.mp4', 'contact_sheet.jpg', 'overlay/000000_img_0.jpg',
                     'overlay/000001_img_1.jpg', 'overlay_clip.mp4']
    video = cv2.VideoCapture(str(root / 'overlay_clip.mp4'))
    count = 0
    while True:
        ok, image = video.read()
        if not ok:
            break
        count += 1
        assert image.shape == (*SIZE, 3)
    assert count == 5
    # the overlay image shows the person where the projection says (jpeg: tolerant)
    overlay = cv2.imread(str(root / 'overlay' / '000000_img_0.jpg'))[..., ::-1].astype(int)
    u, v = projected(np.array([0.0, -0.2, 3.0])).astype(int)
    assert np.abs(overlay[v, u] - GREY).max() > 30 and np.abs(overlay[5, 5] - GREY).max() < 8
    sheet = cv2.imread(str(root / 'contact_sheet.jpg'))
    assert sheet.shape[1] == 4 * 320


@pytest.mark.slow
@pytest.mark.parametrize('name', ['romp', 'bev'])
def test_render_writer_maps_run_the_network(models_dir, tmp_path, name):
    import cv2

    from romp_ros.cli.input_sources import Frame
    from romp_ros.cli.render_output import RenderOptions, RenderWriter, network_maps
    from romp_ros.core.config import EstimatorConfig
    from romp_ros.core.estimator import Estimator
    from romp_ros.core.nets.factory import build_model

    torch.manual_seed(0)
    size = 128  # small random networks: the maps' plumbing only
    estimator = Estimator(EstimatorConfig(model=name, models_dir=str(models_dir), device='cpu',
                                          input_size=size),
                          model=build_model(name, 'resnet50' if name == 'romp' else 'hrnet32',
                                            input_size=size).eval())
    image = grey_image()
    image[100:380, 200:440] = (180, 120, 60)
    maps = network_maps(estimator, image)
    assert maps.center.shape == ((size // 8,) * 2 if name == 'romp' else (size // 4,) * 2)
    if name == 'bev':
        assert maps.birds_eye.shape == (size // 8, size // 4)
        assert np.all(np.diff(maps.bin_depths_m) > 0)  # bins run from near to far
    writer = RenderWriter(RenderOptions(tmp_path, maps=True, sheet_size=0), estimator.faces,
                          estimator)
    writer.add(Frame(pixels=image, color_order='rgb', source='x.png'),
               estimator.predict([image])[0])
    written = {p.name for p in writer.close()}
    assert '000000_center.png' in written
    assert ('000000_bev_depth.png' in written) == (name == 'bev')
    assert cv2.imread(str(tmp_path / 'maps' / '000000_center.png')).shape == (*SIZE, 3)


def test_node_worker_publishes_the_birds_eye_view(body):
    from conftest import require_ros

    require_ros()
    import threading

    from std_msgs.msg import Header

    from romp_ros.ros.person_ids import Identities
    from romp_ros.ros.visualization import VisualizationJob, VisualizationWorker

    class Sink:  # stands in for an rclpy publisher: keeps what is published
        def __init__(self):
            self.messages, self.event = [], threading.Event()

        def publish(self, msg):
            self.messages.append(msg)
            self.event.set()

    birds_eye = Sink()
    config = BirdsEyeConfig(size=(400, 300), depth_range_m=10.0, camera_margin_px=20)
    worker = VisualizationWorker(Sink(), Sink(), body.faces.numpy(), lambda *a: None,
                                 birds_eye_pub=birds_eye, birds_eye_config=config)
    try:
        result = people(body, [(2.0, 0.0, 5.0)])
        worker.submit(VisualizationJob(result=result, identities=Identities(
            ids=(5,), states=('confirmed',), ages=(3,)), header=Header(frame_id='cam'),
            pixels=None, color_order='rgb', markers=False, mesh=False, birds_eye=True))
        assert birds_eye.event.wait(30)
    finally:
        worker.stop(5.0, clear_markers=False)
    msg = birds_eye.messages[0]
    assert (msg.encoding, msg.height, msg.width, msg.header.frame_id) == ('rgb8', 400, 300,
                                                                         'cam')
    picture = np.frombuffer(bytes(msg.data), np.uint8).reshape(400, 300, 3).astype(int)
    color = np.round(255 * id_colors([5])[0]).astype(int)
    # (x, z) = (2, 5) at (226, 190); probed above the heading tick (facing the camera)
    assert np.abs(picture[190 - 4, 226] - color).max() <= 2


def test_a_worker_stopped_mid_frame_publishes_nothing_and_can_be_waited_for(body):
    """The node waits at shutdown for a visualization worker that did not stop in time (a
    mesh marker takes long): a thread still inside rclpy when the process exits can abort
    it. Stopped mid-frame, the worker finishes the frame without publishing, and ``join``
    returns once it has ended."""
    from conftest import require_ros

    require_ros()
    import threading

    from std_msgs.msg import Header

    from romp_ros.ros.person_ids import Identities
    from romp_ros.ros.visualization import VisualizationJob, VisualizationWorker

    started, release = threading.Event(), threading.Event()

    class Sink:  # stands in for an rclpy publisher: keeps what is published
        def __init__(self):
            self.messages = []

        def publish(self, msg):
            self.messages.append(msg)

    markers, overlay, birds_eye = Sink(), Sink(), Sink()
    worker = VisualizationWorker(markers, overlay, body.faces.numpy(), lambda *a: None,
                                 birds_eye_pub=birds_eye)
    build_markers = worker._state.markers

    def long_mesh_markers(*args):  # the long step of a frame, held until released
        started.set()
        release.wait(30)
        return build_markers(*args)

    worker._state.markers = long_mesh_markers
    worker.submit(VisualizationJob(result=people(body, [(0.0, 0.0, 4.0)]), identities=Identities(
        ids=(1,), states=('confirmed',), ages=(1,)), header=Header(frame_id='cam'),
        pixels=np.zeros((480, 640, 3), np.uint8), color_order='rgb', markers=True, mesh=True,
        birds_eye=True))
    assert started.wait(30)
    assert not worker.stop(0.05, clear_markers=False)  # busy: not stopped in time
    assert not worker.join(0.05)
    release.set()
    assert worker.join(30)  # the frame ended, and with it the thread
    assert markers.messages == overlay.messages == birds_eye.messages == []
