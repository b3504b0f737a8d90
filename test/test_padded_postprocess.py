"""The padded post-processing: the compact path's results, without reading the device.

``postprocess='padded'`` keeps ``max_people`` slots per image through the body model, BEV's
filters and the translation solve, so that on a GPU nothing waits for the device until the
results are copied back. What runs on the CPU here:

* the same people, joints, vertices and translations as the compact path, for ROMP and BEV,
  on a batch of different-sized images, with a pinhole camera for one of them, an empty
  image, and fewer slots than people;
* the proof that nothing between the network and the copy back reads a value: the whole
  device half runs on PyTorch's ``meta`` device, where any such read (``nonzero``, boolean
  indexing, ``item``, ``bool``) raises. The compact path, which does read, fails there.

On a CUDA device the same is checked with ``torch.cuda.set_sync_debug_mode('error')``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import skimage.data
import torch

from romp_ros.core import Estimator, EstimatorConfig
from romp_ros.core.config import ConfigError
from romp_ros.core.preprocess import prepare_batch

pytestmark = pytest.mark.slow
ATOL_M = 1e-5  # the body model runs on other batch sizes: rounding only


def _images():
    import cv2
    canvas = np.zeros((720, 1280, 3), np.uint8)
    canvas[:, :640] = cv2.resize(skimage.data.astronaut(), (640, 720))
    canvas[104:616, 640:] = cv2.resize(skimage.data.coffee(), (640, 512))
    return [skimage.data.astronaut(), canvas, np.zeros((96, 160, 3), np.uint8)]


@pytest.fixture(scope='module')
def images():
    return _images()


def _config(model, models_dir, seeded_checkpoint, **changes):
    return EstimatorConfig(model=model, models_dir=str(models_dir), device='cpu',
                           checkpoint=str(seeded_checkpoint(model, 'hrnet32')), **changes)


def _assert_same(got, want):
    assert got.num_people == want.num_people
    assert got.model_type == want.model_type
    np.testing.assert_array_equal(got.translation_solved, want.translation_solved)
    np.testing.assert_allclose(got.center_confs, want.center_confs, rtol=0, atol=0)
    np.testing.assert_allclose(got.smpl_thetas, want.smpl_thetas, rtol=0, atol=0)
    np.testing.assert_allclose(got.cam, want.cam, rtol=0, atol=0)
    np.testing.assert_allclose(got.joints, want.joints, atol=ATOL_M)
    np.testing.assert_allclose(got.verts, want.verts, atol=ATOL_M)
    np.testing.assert_allclose(got.cam_trans, want.cam_trans, atol=ATOL_M, rtol=1e-5)
    np.testing.assert_allclose(got.pj2d_org, want.pj2d_org, atol=1e-3)


def test_the_layout_is_validated():
    assert EstimatorConfig().postprocess == 'compact'
    with pytest.raises(ConfigError, match=r"postprocess='sparse'.*'padded'"):
        EstimatorConfig(postprocess='sparse')


@pytest.mark.parametrize('model', ['romp', 'bev'])
def test_padded_results_equal_the_compact_ones(models_dir, seeded_checkpoint, images, model):
    compact = Estimator(_config(model, models_dir, seeded_checkpoint))
    padded = Estimator(_config(model, models_dir, seeded_checkpoint, postprocess='padded'),
                       model=compact.model)
    cameras = [None, (900.0, 900.0, 640.0, 360.0), None]  # one image's real pinhole
    want = compact.predict(images, intrinsics=cameras)
    got = padded.predict(images, intrinsics=cameras)
    assert [r.num_people for r in want][0] >= 2 and want[2].num_people == 0
    assert want[1].translation_solved.any() and not want[0].translation_solved.any()
    for result_got, result_want in zip(got, want, strict=True):
        _assert_same(result_got, result_want)
    # fewer slots than people: the best ones, as in the compact layout
    few = dataclasses.replace(compact.config, max_people=2)
    compact_few = Estimator(few, model=compact.model)
    padded_few = Estimator(few.replace(postprocess='padded'), model=compact.model)
    for result_got, result_want in zip(padded_few.predict(images[:2]),
                                       compact_few.predict(images[:2]), strict=True):
        assert result_want.num_people <= 2
        _assert_same(result_got, result_want)


def _meta_batch(estimator, images):
    """The preprocessed batch, moved (with the network and body model) to the meta device."""
    batch = prepare_batch(images, device='cpu', input_size=estimator.input_size)
    meta = torch.device('meta')
    estimator.model.to(meta)
    estimator.body_model.to(meta)
    estimator.device = meta
    estimator._bev_cam_order = estimator._bev_cam_order.to(meta)
    return dataclasses.replace(batch, tensor=batch.tensor.to(meta),
                               pad_info=batch.pad_info.to(meta))


@pytest.mark.parametrize('model', ['romp', 'bev'])
def test_the_padded_device_work_never_reads_a_value(models_dir, seeded_checkpoint, images,
                                                    model):
    images = images[:2]
    cameras = [None, (900.0, 900.0, 640.0, 360.0)]
    sizes = [image.shape[:2] for image in images]
    padded = Estimator(_config(model, models_dir, seeded_checkpoint, postprocess='padded'))
    batch = _meta_batch(padded, images)
    people = padded._infer(batch, sizes, padded._resolve_intrinsics(cameras, sizes))
    slots = len(images) * padded.config.max_people
    assert people.joints.device.type == 'meta'
    assert people.joints.shape == (slots, len(padded.joint_names), 3)
    assert people.trans.shape == (slots, 3) and people.det.valid.shape == (slots,)
    copy = padded._copy_back(people)  # packing for the copy back reads nothing either
    assert copy.packed.device.type == 'meta' and copy.packed.shape[0] == slots
    assert copy.verts.shape == (slots, 6890, 3)
    # the check can fail: the compact layout reads the people count back
    compact = Estimator(_config(model, models_dir, seeded_checkpoint))
    batch = _meta_batch(compact, images)
    with pytest.raises((NotImplementedError, RuntimeError)):
        compact._infer(batch, sizes, compact._resolve_intrinsics(cameras, sizes))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
@pytest.mark.parametrize('model', ['romp', 'bev'])
def test_on_cuda_the_padded_device_work_does_not_synchronize(models_dir, seeded_checkpoint,
                                                              images, model):
    padded = Estimator(dataclasses.replace(
        _config(model, models_dir, seeded_checkpoint, postprocess='padded'), device='cuda:0'))
    sizes = [image.shape[:2] for image in images]
    cameras = padded._resolve_intrinsics([None, (900.0, 900.0, 640.0, 360.0), None], sizes)
    batch = prepare_batch(images, device=padded.device, input_size=padded.input_size,
                          uploader=padded._uploader)
    padded._copy_back(padded._infer(batch, sizes, cameras))  # warm-up: lazy initialisation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        copy = padded._copy_back(padded._infer(batch, sizes, cameras))
    finally:
        torch.cuda.set_sync_debug_mode('default')
    results = padded._split(copy, sizes, cameras)
    want = padded.predict(images, intrinsics=cameras)
    for got, expected in zip(results, want, strict=True):
        np.testing.assert_array_equal(got.joints, expected.joints)
    assert results[0].num_people >= 1
