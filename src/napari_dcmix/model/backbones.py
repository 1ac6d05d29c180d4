"""Backbones: ``small_cnn`` (default), ``resnet18``, ``resnet50``.

Every backbone maps (B, in_channels, H, W) -> (B, out_features) and ends with global average
pooling, so any input size works. The ResNets reproduce torchvision's module and parameter
names exactly (``conv1``, ``bn1``, ``layer1..4`` of ``BasicBlock``/``Bottleneck`` with
``conv1/bn1/conv2/bn2[/conv3/bn3]/downsample.0/.1``, ``fc``), so torchvision state dicts and
the ImageNet weight files load with strict key matching; ``fc`` is replaced by an identity
after loading (the classifier has its own head).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from napari_dcmix.errors import CheckpointError, ModelError

NORM = "batch"
BACKBONES = ("small_cnn", "resnet18", "resnet50")

IMAGENET_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
}


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU stages (32-64-128-128), max pooling, global average pooling.

    Training recalibrates the BatchNorm running statistics on the training set at the end
    (small labelled sets and small batches otherwise leave them far from the final weights).
    ``norm="group"`` (GroupNorm) is an option for experiments; checkpoints use BatchNorm."""

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (32, 64, 128, 128),
        norm: str = NORM,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for i, w in enumerate(widths):
            layers += [
                nn.Conv2d(prev, w, 3, padding=1, bias=False),
                nn.GroupNorm(min(8, w), w) if norm == "group" else nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
            ]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            prev = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


def _conv3x3(inp: int, out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inp, out, 3, stride=stride, padding=1, bias=False)


def _conv1x1(inp: int, out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inp, out, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)  # stride on the 3x3 (torchvision v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision-compatible ResNet; returns pooled features once ``fc`` is an Identity."""

    def __init__(
        self, block: type, layers: list[int], in_channels: int = 3, num_classes: int = 1000
    ):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.out_features = 512 * block.expansion
        self.fc: nn.Module = nn.Linear(self.out_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB kernels (O, 3, h, w) -> (O, K, h, w): unchanged for K == 3, else the RGB average
    repeated K times and scaled by 3/K (a grey input then gives the same response)."""
    if weight.shape[1] == in_channels:
        return weight
    mean = weight.float().mean(dim=1, keepdim=True)
    return (mean.repeat(1, in_channels, 1, 1) * (weight.shape[1] / in_channels)).to(weight.dtype)


def _load_imagenet_state(
    name: str, pretrained_path: str | Path | None, download: bool
) -> dict[str, torch.Tensor]:
    if pretrained_path is not None:
        path = Path(pretrained_path)
        if not path.is_file():
            raise CheckpointError(f"pretrained weights {str(path)!r}: file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(
                f"pretrained weights {str(path)!r}: not a readable torch state dict ({exc})"
            ) from exc
    else:
        # Only on explicit request (a user's machine); never used by the tests.
        state = torch.hub.load_state_dict_from_url(
            IMAGENET_URLS[name], map_location="cpu", progress=True
        )
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"pretrained weights for {name}: expected a state dict")
    return state


def _resnet(
    name: str,
    block: type,
    layers: list[int],
    in_channels: int,
    pretrained_path: str | Path | None,
    download: bool,
) -> ResNet:
    net = ResNet(block, layers, in_channels=in_channels)
    if pretrained_path is not None or download:
        state = dict(_load_imagenet_state(name, pretrained_path, download))
        if "conv1.weight" in state:
            state["conv1.weight"] = adapt_first_conv(state["conv1.weight"], in_channels)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"pretrained weights for {name} do not match torchvision's {name}: {exc}"
            ) from exc
    net.fc = nn.Identity()
    return net


_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "small_cnn": lambda c, p, d: SmallCNN(c),
    "resnet18": lambda c, p, d: _resnet("resnet18", BasicBlock, [2, 2, 2, 2], c, p, d),
    "resnet50": lambda c, p, d: _resnet("resnet50", Bottleneck, [3, 4, 6, 3], c, p, d),
}


def build_backbone(
    name: str,
    in_channels: int,
    pretrained_path: str | Path | None = None,
    download: bool = False,
) -> nn.Module:
    """A backbone with ``.out_features``; ImageNet weights only for ResNets and only on request."""
    if name not in _FACTORIES:
        raise ModelError(f"backbone: expected one of {BACKBONES}, found {name!r}")
    if name == "small_cnn" and (pretrained_path is not None or download):
        raise ModelError("backbone 'small_cnn' has no ImageNet weights; use resnet18 or resnet50")
    return _FACTORIES[name](in_channels, pretrained_path, download)
