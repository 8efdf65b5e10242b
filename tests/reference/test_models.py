import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from layerlapse.reference.models import ReferenceCNN, SameConv2d, build_model, pad_border

LAYER_NAMES = ["conv2D_1", "conv2D_2", "acti1", "pool1", "drop1", "conv2D_3", "conv2D_4", "acti2", "pool2", "drop2",
               "flat1", "hidden", "acti3", "end"]
# std of a unit normal truncated at ±2: Keras divides by it so that the truncated draw has the intended std
TRUNCATED_STD = 0.87962566103423978


def output_shapes(model: nn.Sequential, image_size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    x = torch.zeros(2, 1, *image_size)
    shapes = {}
    with torch.no_grad():
        for name, layer in model.named_children():
            x = layer(x)
            shapes[name] = tuple(x.shape[1:])
    return shapes


def test_layer_names_are_the_article_s_in_order() -> None:
    model = ReferenceCNN((8, 8))
    assert [name for name, _ in model.named_children()] == LAYER_NAMES


def test_layer_kinds_and_settings() -> None:
    model = ReferenceCNN((8, 8))
    for name in ("conv2D_1", "conv2D_2", "conv2D_3", "conv2D_4"):
        conv = getattr(model, name)
        assert isinstance(conv, SameConv2d) and conv.kernel_size == (2, 2) and conv.out_channels == 32
    assert model.conv2D_1.in_channels == 1
    assert all(isinstance(getattr(model, name), nn.ReLU) for name in ("acti1", "acti2", "acti3"))
    assert all(getattr(model, name).kernel_size == 2 for name in ("pool1", "pool2"))
    assert model.drop1.p == model.drop2.p == 0.2
    assert model.hidden.out_features == 512 and model.end.in_features == 512


def test_output_shapes_for_28_by_28() -> None:
    shapes = output_shapes(ReferenceCNN((28, 28)), (28, 28))
    assert shapes["conv2D_1"] == shapes["conv2D_2"] == shapes["acti1"] == (32, 28, 28)
    assert shapes["pool1"] == shapes["drop1"] == shapes["conv2D_3"] == shapes["conv2D_4"] == (32, 14, 14)
    assert shapes["pool2"] == shapes["drop2"] == (32, 7, 7)
    assert shapes["flat1"] == (32 * 7 * 7,)
    assert shapes["hidden"] == shapes["acti3"] == (512,)
    assert shapes["end"] == (10,)


def test_output_shapes_for_8_by_8() -> None:
    shapes = output_shapes(ReferenceCNN((8, 8)), (8, 8))
    assert shapes["conv2D_2"] == (32, 8, 8)
    assert shapes["pool1"] == (32, 4, 4)
    assert shapes["pool2"] == (32, 2, 2)
    assert shapes["flat1"] == (128,)
    assert shapes["end"] == (10,)


def test_image_size_classes_and_channels_reach_the_layers() -> None:
    model = build_model((12, 16), 7)
    assert model.image_size == (12, 16)
    assert model.hidden.in_features == 32 * 3 * 4
    assert model.end.out_features == 7
    assert model(torch.zeros(3, 1, 12, 16)).shape == (3, 7)
    wide = ReferenceCNN((8, 8), channels=8)
    assert wide.conv2D_4.out_channels == 8 and wide.hidden.in_features == 8 * 2 * 2


@pytest.mark.parametrize("size", [(30, 28), (28, 30), (6, 8)])
def test_a_size_not_divisible_by_4_is_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=rf"image size \({size[0]}, {size[1]}\) must be divisible by 4"):
        ReferenceCNN(size)


def test_same_conv_with_a_2x2_kernel_pads_only_bottom_and_right_as_keras_does() -> None:
    torch.manual_seed(0)
    conv = SameConv2d(3, 4, kernel_size=2)
    x = torch.randn(2, 3, 5, 6)
    with torch.no_grad():
        out = conv(x)
        expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias)
    assert out.shape == (2, 4, 5, 6)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    w, b = conv.weight.detach(), conv.bias.detach()
    # top-left output sees the 2×2 window at rows 0-1, columns 0-1 of the input, no padding
    top_left = b[1] + sum(w[1, c, i, j] * x[0, c, i, j] for c in range(3) for i in range(2) for j in range(2))
    torch.testing.assert_close(out[0, 1, 0, 0], top_left, rtol=1e-5, atol=1e-5)
    # bottom-right output sees only the last input pixel; its right and lower neighbours are zero padding
    bottom_right = b[2] + sum(w[2, c, 0, 0] * x[1, c, 4, 5] for c in range(3))
    torch.testing.assert_close(out[1, 2, 4, 5], bottom_right, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("kernel_size", [2, 3, 4])
def test_same_conv_matches_torch_same_padding(kernel_size: int) -> None:
    # torch's padding="same" also puts the extra row and column of an even kernel at the end, as Keras does
    torch.manual_seed(1)
    conv = SameConv2d(2, 3, kernel_size=kernel_size)
    oracle = nn.Conv2d(2, 3, kernel_size, padding="same")
    oracle.load_state_dict(conv.state_dict())
    x = torch.randn(1, 2, 7, 9)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), oracle(x), rtol=1e-6, atol=1e-6)


def conv_weights(model: ReferenceCNN, names: list[str]) -> torch.Tensor:
    return torch.cat([getattr(model, name).weight.detach().flatten() for name in names])


def test_convolutions_are_he_normal_truncated_at_two_standard_deviations() -> None:
    torch.manual_seed(0)
    model = ReferenceCNN((8, 8))
    weights = conv_weights(model, ["conv2D_2", "conv2D_3", "conv2D_4"])  # 3 × 4096 weights, fan_in 32·2·2
    target = math.sqrt(2.0 / 128)
    assert weights.mean().abs().item() < 0.04 * target  # about 4 standard errors
    # the untruncated std would be 13.7 % higher, sampling error here is about 0.5 %
    assert weights.std().item() == pytest.approx(target, rel=0.03)
    bound = 2 * target / TRUNCATED_STD
    assert weights.abs().max().item() <= bound * (1 + 1e-6)
    assert weights.abs().max().item() > 0.95 * bound  # truncated at 2 std of the widened normal, not narrower


def test_he_normal_uses_each_layer_s_own_fan_in() -> None:
    torch.manual_seed(0)
    model = ReferenceCNN((8, 8), channels=256)
    first = model.conv2D_1.weight.detach()  # 1024 weights, fan_in 1·2·2
    assert first.std().item() == pytest.approx(math.sqrt(2.0 / 4), rel=0.08)
    assert first.abs().max().item() <= 2 * math.sqrt(2.0 / 4) / TRUNCATED_STD * (1 + 1e-6)
    second = model.conv2D_2.weight.detach()  # fan_in 256·2·2
    assert second.std().item() == pytest.approx(math.sqrt(2.0 / 1024), rel=0.01)


def test_dense_layers_are_glorot_uniform() -> None:
    torch.manual_seed(0)
    model = ReferenceCNN((8, 8))
    for layer in (model.hidden, model.end):
        weight = layer.weight.detach()
        bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
        assert weight.abs().max().item() <= bound
        assert weight.abs().max().item() > 0.99 * bound
        assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_biases_start_at_zero() -> None:
    model = ReferenceCNN((8, 8))
    biases = [module.bias for module in model.modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    assert len(biases) == 6
    assert all(torch.count_nonzero(bias).item() == 0 for bias in biases)


def test_reset_parameters_draws_again_from_the_torch_seed() -> None:
    torch.manual_seed(3)
    first = ReferenceCNN((8, 8))
    torch.manual_seed(3)
    second = ReferenceCNN((8, 8))
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        first.conv2D_1.bias.fill_(1.0)
    first.reset_parameters()
    assert torch.count_nonzero(first.conv2D_1.bias).item() == 0
    assert not torch.equal(first.conv2D_1.weight, second.conv2D_1.weight)


def test_probabilities_are_the_softmax_of_the_logits() -> None:
    torch.manual_seed(0)
    model = ReferenceCNN((8, 8)).eval()
    x = torch.rand(5, 1, 8, 8)
    probabilities = model.probabilities(x)
    assert probabilities.shape == (5, 10) and not probabilities.requires_grad
    torch.testing.assert_close(probabilities.sum(1), torch.ones(5))
    with torch.no_grad():
        torch.testing.assert_close(probabilities, torch.softmax(model(x), dim=1))


def test_fast_dropout_drops_at_the_rate_and_keeps_the_expectation() -> None:
    from layerlapse.reference.models import FastDropout

    torch.manual_seed(0)
    out = FastDropout(0.2)(torch.ones(2000, 1000))
    assert abs((out == 0).float().mean().item() - 0.2) < 0.002  # 2e6 draws: the std of the rate is 0.0003
    assert abs(out.mean().item() - 1.0) < 0.003
    values = torch.unique(out).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(65536 / (65536 - 13107))


def test_fast_dropout_is_seeded_identity_in_eval_and_passes_gradients_through_the_mask() -> None:
    from layerlapse.reference.models import FastDropout

    layer = FastDropout(0.2)
    x = torch.rand(64, 32, requires_grad=True)
    torch.manual_seed(3)
    first = layer(x)
    torch.manual_seed(3)
    assert torch.equal(first, layer(x))
    first.sum().backward()
    torch.testing.assert_close(x.grad, first.detach() / x.detach())  # d(x·mask)/dx = mask
    layer.eval()
    assert torch.equal(layer(x), x)


# ---- the net pads only its border when no gradient is kept (a snapshot, an evaluation) -----------------------------
@pytest.mark.parametrize("pad", [(0, 1, 0, 1), (1, 1, 1, 1), (1, 2, 1, 2), (0, 0, 0, 0), (2, 0, 1, 3)])
@pytest.mark.parametrize("shape", [(3, 32, 7, 5), (3, 1, 6, 6), (1, 4, 2, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_padding_only_the_border_is_f_pad_bit_for_bit(pad, shape, channels_last: bool) -> None:
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected, padded = F.pad(x, pad), pad_border(x, pad)
    assert torch.equal(padded, expected) and padded.stride() == expected.stride()


def test_padding_only_the_border_passes_other_inputs_to_f_pad() -> None:
    x = torch.randn(2, 5, 5)  # an unbatched image
    assert torch.equal(pad_border(x, (0, 1, 0, 1)), F.pad(x, (0, 1, 0, 1)))


def test_same_conv2d_pads_its_border_itself_without_gradients_and_with_f_pad_when_training() -> None:
    torch.manual_seed(0)
    conv = SameConv2d(3, 4, kernel_size=2)
    x = torch.randn(2, 3, 7, 7)
    reference = F.conv2d(F.pad(x, conv._pad), conv.weight, conv.bias)
    with torch.no_grad():
        assert torch.equal(conv(x), reference)
    trained = conv(x)  # gradients on: F.pad, whose backward autograd knows
    trained.sum().backward()
    assert torch.equal(trained.detach(), reference) and conv.weight.grad is not None
