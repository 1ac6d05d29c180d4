from __future__ import annotations

import pytest
import torch

from napari_dcmix.errors import ModelError
from napari_dcmix.model import ChannelMixing, build_model


@pytest.mark.parametrize("mode", ["softmax", "over"])
@pytest.mark.parametrize("k", [1, 3])
def test_shapes_and_normalised_weights(mode: str, k: int) -> None:
    torch.manual_seed(0)
    mix = ChannelMixing(5, k=k, mode=mode, temperature=0.7)
    with torch.no_grad():
        mix.logits.normal_()
    x = torch.randn(2, 5, 16, 12)
    assert mix(x).shape == (2, k, 16, 12)
    w = mix.weights()
    assert w.shape == (k, 5)
    assert (w >= 0).all()
    if mode == "softmax":
        assert torch.allclose(w.sum(1), torch.ones(k))
    else:
        assert (w.sum(1) <= 1 + 1e-6).all()
    imp = mix.importance()
    assert imp.shape == (5,) and (imp >= 0).all()
    assert imp.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_initial_weights_are_uniform() -> None:
    for mode in ("softmax", "over"):
        imp = ChannelMixing(4, mode=mode).importance()
        # "over": the first opacity is capped at 0.95 (1.0 would be an infinite logit)
        assert torch.allclose(imp, torch.full((4,), 0.25), atol=1e-5 if mode == "softmax" else 0.02)


def test_over_effective_weights_reproduce_compositing() -> None:
    torch.manual_seed(1)
    mix = ChannelMixing(4, k=2, mode="over", temperature=1.3)
    with torch.no_grad():
        mix.logits.normal_()
    x = torch.randn(3, 4, 8, 8)
    a = mix.raw_weights()  # (K, C) opacities
    expected = []
    for k in range(2):
        out = torch.zeros(3, 8, 8)
        for c in range(4):  # O_c = a_c x_c + (1 - a_c) O_{c-1}
            out = a[k, c] * x[:, c] + (1 - a[k, c]) * out
        expected.append(out)
    assert torch.allclose(mix(x), torch.stack(expected, 1), atol=1e-5)


def test_permuting_channels_permutes_importance() -> None:
    torch.manual_seed(2)
    mix = ChannelMixing(5, k=3)
    with torch.no_grad():
        mix.logits.normal_()
    perm = torch.tensor([3, 0, 4, 1, 2])
    x = torch.randn(2, 5, 6, 6)
    permuted = ChannelMixing(5, k=3)
    with torch.no_grad():
        permuted.logits.copy_(mix.logits[:, perm])
    assert torch.allclose(permuted.importance(), mix.importance()[perm], atol=1e-6)
    assert torch.allclose(permuted(x[:, perm]), mix(x), atol=1e-5)


def test_classifier_importance_follows_channel_order() -> None:
    model = build_model(["a", "b", "c"], ["x", "y"], input_size=16)
    with torch.no_grad():
        model.mixing.logits.copy_(torch.tensor([[0.0, 2.0, -1.0]] * 3))
    imp = model.channel_importance()
    assert list(imp) == ["a", "b", "c"]
    assert max(imp, key=imp.get) == "b"
    assert sum(imp.values()) == pytest.approx(1.0)


def test_bad_arguments() -> None:
    with pytest.raises(ModelError, match="mode"):
        ChannelMixing(3, mode="plus")
    with pytest.raises(ModelError, match="temperature"):
        ChannelMixing(3, temperature=0)
    with pytest.raises(ModelError, match="expected input"):
        ChannelMixing(3)(torch.zeros(1, 4, 5, 5))
