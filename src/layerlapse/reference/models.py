"""The reference network of the article: a small CNN whose `hidden` layer is mapped every epoch."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class SameConv2d(nn.Conv2d):
    """Conv2d with Keras' "same" padding, which for an even kernel pads the extra row and column at the end."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=0)
        total = kernel_size - 1
        before, after = total // 2, total - total // 2
        self._pad = (before, after, before, after)  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return super().forward(F.pad(x, self._pad))
        # no gradient to keep (a snapshot's probe pass, an evaluation): pad by writing the input and then zeros only
        # around it. F.pad first fills the whole padded tensor with zeros, an extra pass over the largest tensors of
        # this network: 6-17 % of a snapshot's CPU time in torch.profiler (more while other processes load the
        # memory), ~1 % this way. The padded tensor is the same, bit for bit, so hooks see the same inputs and
        # outputs; training keeps F.pad, whose backward autograd knows.
        return self._conv_forward(pad_border(x, self._pad), self.weight, self.bias)


def pad_border(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """F.pad(x, pad) with zeros, for (N, C, H, W) tensors, as F.pad lays it out, without zeroing the interior first."""
    if x.dim() != 4:
        return F.pad(x, pad)
    left, right, top, bottom = pad
    n, c, h, w = x.shape
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format
    out = torch.empty((n, c, top + h + bottom, left + w + right), dtype=x.dtype, device=x.device, memory_format=layout)
    out[:, :, top:top + h, left:left + w] = x
    out[:, :, :top].zero_()
    out[:, :, top + h:].zero_()
    out[:, :, top:top + h, :left].zero_()
    out[:, :, top:top + h, left + w:].zero_()
    return out


class FastDropout(nn.Dropout):
    """nn.Dropout with a cheaper mask on the CPU: 16 random bits per element from a quarter as many 64-bit draws,
    about 2.5× faster than bernoulli_ there. Drops with probability round(p·65536)/65536 (0.2 → 0.199997) and
    scales the kept values by the exact inverse of the keep rate. Elsewhere (CUDA) it is plain nn.Dropout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1).view(torch.int16)[:n]
        dropped = round(self.p * 65536)
        keep = (bits >= dropped - 32768).view(x.shape).to(x.dtype).mul_(65536 / (65536 - dropped))
        return x * keep


class ReferenceCNN(nn.Sequential):
    """The article's network, layer for layer, with the same names.

    Outputs logits from `end`; the softmax of the article is applied by the loss and by `probabilities`.
    Works for any input size divisible by 4 (28×28 MNIST, 8×8 digits). Its layers, in order: conv2D_1, conv2D_2,
    acti1, pool1, drop1, conv2D_3, conv2D_4, acti2, pool2, drop2, flat1, hidden (512 units, the layer the article
    maps), acti3, end. The 2×2 convolutions pad as Keras' "same" does, and the weights start as Keras' would.

    Parameters
    ----------
    image_size : tuple of int, default (28, 28)
        The input images' (height, width), each divisible by 4; the input is (N, 1, height, width).
    n_classes : int, default 10
        The number of classes: `end`'s width.
    channels : int, default 32
        The channels of each convolution.

    Raises
    ------
    ValueError
        The image size is not divisible by 4.

    Examples
    --------
    >>> import torch
    >>> from layerlapse import ReferenceCNN
    >>> model = ReferenceCNN(image_size=(8, 8))
    >>> model(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    >>> model.hidden
    Linear(in_features=128, out_features=512, bias=True)
    """

    def __init__(self, image_size: tuple[int, int] = (28, 28), n_classes: int = 10, channels: int = 32) -> None:
        height, width = image_size
        if height % 4 or width % 4:
            raise ValueError(f"image size {image_size} must be divisible by 4 (two 2×2 poolings)")
        flat = channels * (height // 4) * (width // 4)
        super().__init__()
        self.add_module("conv2D_1", SameConv2d(1, channels))
        self.add_module("conv2D_2", SameConv2d(channels, channels))
        self.add_module("acti1", nn.ReLU())
        self.add_module("pool1", nn.MaxPool2d(2))
        self.add_module("drop1", FastDropout(0.2))
        self.add_module("conv2D_3", SameConv2d(channels, channels))
        self.add_module("conv2D_4", SameConv2d(channels, channels))
        self.add_module("acti2", nn.ReLU())
        self.add_module("pool2", nn.MaxPool2d(2))
        self.add_module("drop2", FastDropout(0.2))
        self.add_module("flat1", nn.Flatten())
        self.add_module("hidden", nn.Linear(flat, 512))
        self.add_module("acti3", nn.ReLU())
        self.add_module("end", nn.Linear(512, n_classes))
        self.image_size = (height, width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras' initialisers: He-normal for the convolutions, Glorot-uniform (Keras' default) for the dense layers."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                _keras_he_normal_(module.weight)
            elif isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
            else:
                continue
            nn.init.zeros_(module.bias)

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, n_classes), float32: the softmax of the logits, without a gradient.

        Parameters
        ----------
        x : torch.Tensor
            Images (N, 1, height, width), floats in 0..1 as the built-in loop feeds them.
        """
        return torch.softmax(self(x).float(), dim=1)


def _keras_he_normal_(weight: torch.Tensor) -> None:
    # Keras draws from a normal truncated at two standard deviations, widened so the truncated std is sqrt(2/fan_in)
    fan_in = weight[0].numel()
    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


def build_model(image_size: tuple[int, int], n_classes: int) -> ReferenceCNN:
    return ReferenceCNN(image_size=image_size, n_classes=n_classes)
