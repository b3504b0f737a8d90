"""ResNet-50 and EfficientNetV2-S backbones: shapes, checkpoint layout, numerics, loading."""

from __future__ import annotations

import pytest
import torch
import torchvision

from romp_ros.core.nets.efficientnet import EfficientNetV2SBackbone
from romp_ros.core.nets.resnet import ImageNetNormalize, ResNet50Backbone

# Published counts (ROMP backbone table of the EfficientNet fork) and this project's design.
RESNET50_PARAMS = 32_552_896
EFFNET_V2_S_FEATURE_PARAMS = 20_177_488  # torchvision efficientnet_v2_s().features
EFFNET_BACKBONE_PARAMS = 22_210_512  # features + 1x1 projection + 3 deconvolutions
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

BACKBONES = {'resnet50': ResNet50Backbone, 'efficientnet_v2_s': EfficientNetV2SBackbone}


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _pixels(seed: int, size: int, batch: int = 1) -> torch.Tensor:
    """Random 8-bit RGB images (B, 3, S, S) as float 0..255."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, size, size), generator=gen).float()


def _signed(pixels: torch.Tensor) -> torch.Tensor:
    """What the ROMP wrapper hands the backbone: x / 255 * 2 - 1."""
    return pixels / 255.0 * 2.0 - 1.0


def _randomise_bn_stats(module: torch.nn.Module, seed: int) -> None:
    """Give BatchNorm non-trivial running statistics so that buffers influence the output."""
    gen = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            n = bn.num_features
            bn.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
            bn.running_var.copy_(0.5 + torch.rand(n, generator=gen))


@pytest.fixture(scope='module')
def built():
    """One seeded instance of each backbone in eval mode (construction is the slow part)."""
    torch.manual_seed(0)
    return {name: cls().eval() for name, cls in BACKBONES.items()}


@pytest.mark.parametrize('name', list(BACKBONES))
def test_output_shape_at_512_and_256(built, name):
    net = built[name]
    assert net.out_channels == 64
    with torch.no_grad():
        out_512 = net(_signed(_pixels(0, 512)))
        out_256 = net(_signed(_pixels(1, 256, batch=2)))
    assert out_512.shape == (1, 64, 128, 128)
    assert out_256.shape == (2, 64, 64, 64)
    assert torch.isfinite(out_512).all() and torch.isfinite(out_256).all()


@pytest.mark.parametrize('name', list(BACKBONES))
def test_rejects_inputs_that_cannot_give_a_quarter_size_map(built, name):
    net = built[name]
    with pytest.raises(ValueError, match='multiples of 32'):
        net(torch.zeros(1, 3, 100, 96))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        net(torch.zeros(1, 4, 64, 64))


def _official_resnet50_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the reference ResNet_50 state dict, written from ROMP's source.

    Stem conv1 7x7 + bn1; layer1..4 with (3, 4, 6, 3) Bottlenecks of width (64, 128, 256, 512),
    expansion 4, a downsample (1x1 conv, BN) on the first block of each stage; deconv_layers is
    a Sequential of (ConvTranspose 4x4 no bias, BN, ReLU) x 3, 2048 -> 256 -> 128 -> 64.
    """
    layout: dict[str, tuple[int, ...]] = {}

    def conv(name, c_out, c_in, k):
        layout[f'{name}.weight'] = (c_out, c_in, k, k)

    def bn(name, c):
        for field in ('weight', 'bias', 'running_mean', 'running_var'):
            layout[f'{name}.{field}'] = (c,)
        layout[f'{name}.num_batches_tracked'] = ()

    conv('conv1', 64, 3, 7)
    bn('bn1', 64)
    inplanes = 64
    stages = zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)
    for stage, (blocks, width) in enumerate(stages, start=1):
        for block in range(blocks):
            prefix = f'layer{stage}.{block}'
            conv(f'{prefix}.conv1', width, inplanes, 1)
            bn(f'{prefix}.bn1', width)
            conv(f'{prefix}.conv2', width, width, 3)
            bn(f'{prefix}.bn2', width)
            conv(f'{prefix}.conv3', width * 4, width, 1)
            bn(f'{prefix}.bn3', width * 4)
            if block == 0:
                conv(f'{prefix}.downsample.0', width * 4, inplanes, 1)
                bn(f'{prefix}.downsample.1', width * 4)
            inplanes = width * 4
    for index, (c_in, c_out) in zip((0, 3, 6), ((2048, 256), (256, 128), (128, 64)), strict=True):
        layout[f'deconv_layers.{index}.weight'] = (c_in, c_out, 4, 4)  # ConvTranspose: in, out
        bn(f'deconv_layers.{index + 1}', c_out)
    return layout


def test_resnet_state_dict_equals_official_checkpoint_layout(built):
    net = built['resnet50']
    state = net.state_dict()
    expected = _official_resnet50_layout()
    assert sorted(state) == sorted(expected)
    assert {key: tuple(value.shape) for key, value in state.items()} == expected
    assert len(state) == 336
    assert list(state)[:3] == ['conv1.weight', 'bn1.weight', 'bn1.bias']
    assert _n_params(net) == RESNET50_PARAMS


def test_resnet_body_keys_match_torchvision_resnet50(built):
    # Independent oracle: ROMP's body uses torchvision's ResNet-50 names and shapes.
    body = {k: tuple(v.shape) for k, v in built['resnet50'].state_dict().items()
            if not k.startswith('deconv_layers.')}
    tv = {k: tuple(v.shape) for k, v in torchvision.models.resnet50(weights=None)
          .state_dict().items() if not k.startswith('fc.')}
    assert body == tv


def test_imagenet_normalize_matches_reference_preprocessing():
    pixels = _pixels(3, 8, batch=2)
    expected = (pixels / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    got = ImageNetNormalize()(_signed(pixels))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert len(ImageNetNormalize().state_dict()) == 0  # no extra checkpoint keys


def test_resnet_forward_is_torchvision_body_on_imagenet_input_then_deconvs():
    torch.manual_seed(1)
    net = ResNet50Backbone()
    with torch.no_grad():
        _randomise_bn_stats(net, seed=2)
    net.eval()
    tv = torchvision.models.resnet50(weights=None).eval()
    body_state = {k: v for k, v in net.state_dict().items() if not k.startswith('deconv')}
    result = tv.load_state_dict(body_state, strict=False)
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight']
    pixels = _pixels(4, 64, batch=2)
    with torch.no_grad():
        x = (pixels / 255.0 - IMAGENET_MEAN) / IMAGENET_STD  # reference preprocessing
        x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        x = tv.layer4(tv.layer3(tv.layer2(tv.layer1(x))))
        expected = net.deconv_layers(x)
        got = net(_signed(pixels))
    assert got.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_effnet_parameter_count_is_below_resnet(built):
    net = built['efficientnet_v2_s']
    assert _n_params(net.features) == EFFNET_V2_S_FEATURE_PARAMS
    assert _n_params(net) == EFFNET_BACKBONE_PARAMS
    assert _n_params(net) < _n_params(built['resnet50']) == RESNET50_PARAMS


def test_effnet_features_depend_on_input_and_are_finite(built):
    net = built['efficientnet_v2_s']
    with torch.no_grad():
        a = net(_signed(_pixels(5, 64)))
        b = net(_signed(_pixels(6, 64)))
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    assert a.abs().max() > 0
    assert (a - b).abs().max() > 1e-3 * a.abs().max()


def test_effnet_init_is_deterministic_under_manual_seed():
    torch.manual_seed(7)
    first = EfficientNetV2SBackbone().eval()
    torch.manual_seed(7)
    second = EfficientNetV2SBackbone().eval()
    torch.manual_seed(8)
    other = EfficientNetV2SBackbone().eval()
    s1, s2 = first.state_dict(), second.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not torch.equal(s1['deconv_layers.0.weight'], other.state_dict()[
        'deconv_layers.0.weight'])
    x = _signed(_pixels(9, 64))
    with torch.no_grad():
        assert torch.equal(first(x), second(x))


@pytest.mark.parametrize('name', list(BACKBONES))
def test_state_dict_round_trip_gives_identical_outputs(tmp_path, name):
    cls = BACKBONES[name]
    torch.manual_seed(10)
    source = cls()
    with torch.no_grad():
        _randomise_bn_stats(source, seed=11)
    source.eval()
    path = tmp_path / f'{name}.pt'
    torch.save(source.state_dict(), path)

    torch.manual_seed(12)
    target = cls().eval()
    x = _signed(_pixels(13, 64))
    with torch.no_grad():
        expected = source(x)
        assert not torch.equal(target(x), expected)  # different weights before loading
        target.load_state_dict(torch.load(path, weights_only=True), strict=True)
        assert torch.equal(target(x), expected)


def test_effnet_loads_local_torchvision_imagenet_file(tmp_path):
    torch.manual_seed(20)
    classifier = torchvision.models.efficientnet_v2_s(weights=None)
    path = tmp_path / 'efficientnet_v2_s.pth'
    torch.save(classifier.state_dict(), path)  # full model, as torchvision publishes it
    torch.manual_seed(21)
    net = EfficientNetV2SBackbone(pretrained_path=str(path))
    source = classifier.features.state_dict()
    loaded = net.features.state_dict()
    assert all(torch.equal(source[k], loaded[k]) for k in source)


def test_effnet_rejects_a_foreign_checkpoint_without_touching_weights(tmp_path):
    path = tmp_path / 'resnet.pth'
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    torch.manual_seed(22)
    net = EfficientNetV2SBackbone()
    before = {k: v.clone() for k, v in net.features.state_dict().items()}
    with pytest.raises(ValueError, match='not an EfficientNetV2-S checkpoint'):
        net.load_imagenet_features(path)
    after = net.features.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
