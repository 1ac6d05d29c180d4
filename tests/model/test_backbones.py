from __future__ import annotations

from pathlib import Path

import pytest
import torch

from napari_dcmix.errors import CheckpointError, ModelError
from napari_dcmix.model import build_backbone, build_model
from napari_dcmix.model.backbones import BasicBlock, Bottleneck, ResNet, adapt_first_conv

# Key names and counts of torchvision's resnet18 / resnet50 state dicts (incl. fc, BN buffers).
TORCHVISION_KEYS = {
    "resnet18": (
        122,
        [
            "conv1.weight", "bn1.running_mean", "layer1.0.conv2.weight",
            "layer2.0.downsample.0.weight", "layer2.0.downsample.1.num_batches_tracked",
            "layer4.1.bn2.bias", "fc.weight", "fc.bias",
        ],
    ),
    "resnet50": (
        320,
        [
            "layer1.0.conv3.weight", "layer1.0.bn3.running_var", "layer1.0.downsample.0.weight",
            "layer3.5.conv2.weight", "layer4.2.bn3.weight", "fc.weight",
        ],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_state_dict_names_match_torchvision(name: str) -> None:
    block, layers = (BasicBlock, [2, 2, 2, 2]) if name == "resnet18" else (Bottleneck, [3, 4, 6, 3])
    keys = list(ResNet(block, layers).state_dict())
    count, some = TORCHVISION_KEYS[name]
    assert len(keys) == count
    assert set(some) <= set(keys)


def test_pretrained_file_loads_strictly_and_adapts_first_conv(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rgb = ResNet(BasicBlock, [2, 2, 2, 2])  # an "ImageNet" file: 3 input channels, fc 1000
    path = tmp_path / "resnet18.pth"
    torch.save(rgb.state_dict(), path)
    net = build_backbone("resnet18", in_channels=5, pretrained_path=path)
    expected = adapt_first_conv(rgb.conv1.weight.detach(), 5)
    assert torch.equal(net.conv1.weight.detach(), expected)
    assert torch.allclose(expected.sum(1), rgb.conv1.weight.detach().sum(1), atol=1e-5)
    assert torch.equal(net.layer3[1].conv2.weight, rgb.layer3[1].conv2.weight)
    same = build_backbone("resnet18", in_channels=3, pretrained_path=path)
    assert torch.equal(same.conv1.weight, rgb.conv1.weight)
    assert net(torch.zeros(1, 5, 40, 40)).shape == (1, 512)


def test_pretrained_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        build_backbone("resnet18", 3, pretrained_path=tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, bad)
    with pytest.raises(CheckpointError, match="do not match"):
        build_backbone("resnet18", 3, pretrained_path=bad)
    with pytest.raises(ModelError, match="no ImageNet weights"):
        build_backbone("small_cnn", 3, pretrained_path=bad)


@pytest.mark.parametrize("backbone", ["small_cnn", "resnet18"])
@pytest.mark.parametrize("size", [32, 57])
def test_classifier_any_input_size(backbone: str, size: int) -> None:
    model = build_model(["a", "b", "c", "d"], ["x", "y", "z"], backbone=backbone, k=1).eval()
    assert model(torch.zeros(2, 4, size, size)).shape == (2, 3)


def test_build_model_is_seeded_and_leaves_global_rng() -> None:
    state = torch.random.get_rng_state()
    a = build_model(["a", "b"], ["x", "y"], seed=3)
    b = build_model(["a", "b"], ["x", "y"], seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_build_model_errors() -> None:
    with pytest.raises(ModelError, match="at least 2"):
        build_model(["a"], ["only"])
    with pytest.raises(ModelError, match="duplicates"):
        build_model(["a", "a"], ["x", "y"])
    with pytest.raises(ModelError, match="backbone"):
        build_model(["a"], ["x", "y"], backbone="vgg")


def test_adapted_keeps_backbone_fresh_mixing_and_head() -> None:
    model = build_model(["a", "b", "c"], ["x", "y"], input_size=16)
    new = model.adapted(["p", "q", "r", "s"], class_names=["u", "v", "w"])
    assert new.channel_names == ["p", "q", "r", "s"] and new.class_names == ["u", "v", "w"]
    assert new.mixing.n_channels == 4 and new.k == model.k
    for (k, v), v2 in zip(model.backbone.state_dict().items(), new.backbone.state_dict().values(),
                          strict=True):  # fmt: skip
        assert torch.equal(v, v2), k
    assert new.backbone is not model.backbone
    assert new.eval()(torch.zeros(1, 4, 16, 16)).shape == (1, 3)
    assert model.channel_names == ["a", "b", "c"]
