"""PyTorch eager twins of gpulab's segmentation networks, for the peer benchmarks.

erfnet:         Romera's ERFNet exactly as Eromera/erfnet_pytorch train/erfnet.py
                (DownsamplerBlock, non_bottleneck_1d, UpsamplerBlock, BN eps 1e-3,
                Dropout2d 0.03 / 0.3 in the encoder), module for module and name
                for name as gpulab/models/erfnet.cpp: 2,066,836 parameters for
                20 classes.
deeplabv3plus:  DeepLab v3+ on a dilated ResNet-18 as gpulab/models/deeplabv3plus.cpp
                (MATLAB's deeplabv3plusLayers(..., "resnet18") with torchvision's
                names): output stride 16 (layer4 dilated, ASPP 6/12/18) or 8,
                bias-free convs, bilinear upsampling + centre crop: 16,408,480
                parameters for 11 classes.

Both take [N, 3, H, W] float32 and return [N, classes, H, W] logits;
create(name, num_classes, in_channels, options) builds one.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS_ERFNET = 1e-3


# --- ERFNet (Eromera/erfnet_pytorch train/erfnet.py) -----------------------------
class DownsamplerBlock(nn.Module):
    def __init__(self, ninput, noutput):
        super().__init__()
        self.conv = nn.Conv2d(ninput, noutput - ninput, (3, 3), stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(noutput, eps=BN_EPS_ERFNET)

    def forward(self, input):
        output = torch.cat([self.conv(input), self.pool(input)], 1)
        output = self.bn(output)
        return F.relu(output)


class non_bottleneck_1d(nn.Module):  # noqa: N801 (the reference's name)
    def __init__(self, chann, dropprob, dilated):
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(chann, chann, (3, 1), stride=1, padding=(1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(chann, chann, (1, 3), stride=1, padding=(0, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(chann, eps=BN_EPS_ERFNET)
        self.conv3x1_2 = nn.Conv2d(chann, chann, (3, 1), stride=1, padding=(1 * dilated, 0),
                                   bias=True, dilation=(dilated, 1))
        self.conv1x3_2 = nn.Conv2d(chann, chann, (1, 3), stride=1, padding=(0, 1 * dilated),
                                   bias=True, dilation=(1, dilated))
        self.bn2 = nn.BatchNorm2d(chann, eps=BN_EPS_ERFNET)
        self.dropout = nn.Dropout2d(dropprob)

    def forward(self, input):
        output = self.conv3x1_1(input)
        output = F.relu(output)
        output = self.conv1x3_1(output)
        output = self.bn1(output)
        output = F.relu(output)
        output = self.conv3x1_2(output)
        output = F.relu(output)
        output = self.conv1x3_2(output)
        output = self.bn2(output)
        if self.dropout.p != 0:
            output = self.dropout(output)
        return F.relu(output + input)


class Encoder(nn.Module):
    def __init__(self, num_classes, in_channels=3):
        super().__init__()
        self.initial_block = DownsamplerBlock(in_channels, 16)
        self.layers = nn.ModuleList()
        self.layers.append(DownsamplerBlock(16, 64))
        for _ in range(0, 5):
            self.layers.append(non_bottleneck_1d(64, 0.03, 1))
        self.layers.append(DownsamplerBlock(64, 128))
        for _ in range(0, 2):
            self.layers.append(non_bottleneck_1d(128, 0.3, 2))
            self.layers.append(non_bottleneck_1d(128, 0.3, 4))
            self.layers.append(non_bottleneck_1d(128, 0.3, 8))
            self.layers.append(non_bottleneck_1d(128, 0.3, 16))
        self.output_conv = nn.Conv2d(128, num_classes, 1, stride=1, padding=0, bias=True)

    def forward(self, input, predict=False):
        output = self.initial_block(input)
        for layer in self.layers:
            output = layer(output)
        if predict:
            output = self.output_conv(output)
        return output


class UpsamplerBlock(nn.Module):
    def __init__(self, ninput, noutput):
        super().__init__()
        self.conv = nn.ConvTranspose2d(ninput, noutput, 3, stride=2, padding=1, output_padding=1,
                                       bias=True)
        self.bn = nn.BatchNorm2d(noutput, eps=BN_EPS_ERFNET)

    def forward(self, input):
        output = self.conv(input)
        output = self.bn(output)
        return F.relu(output)


class Decoder(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.layers = nn.ModuleList()
        self.layers.append(UpsamplerBlock(128, 64))
        self.layers.append(non_bottleneck_1d(64, 0, 1))
        self.layers.append(non_bottleneck_1d(64, 0, 1))
        self.layers.append(UpsamplerBlock(64, 16))
        self.layers.append(non_bottleneck_1d(16, 0, 1))
        self.layers.append(non_bottleneck_1d(16, 0, 1))
        self.output_conv = nn.ConvTranspose2d(16, num_classes, 2, stride=2, padding=0,
                                              output_padding=0, bias=True)

    def forward(self, input):
        output = input
        for layer in self.layers:
            output = layer(output)
        return self.output_conv(output)


class ERFNet(nn.Module):
    """The reference's Net; encoder_only: its first training stage (H/8 logits)."""

    def __init__(self, num_classes, in_channels=3, encoder_only=False):
        super().__init__()
        self.encoder_only = encoder_only
        self.encoder = Encoder(num_classes, in_channels)
        self.decoder = Decoder(num_classes)

    def forward(self, input):
        if self.encoder_only:
            return self.encoder.forward(input, predict=True)
        return self.decoder.forward(self.encoder(input))


# --- DeepLab v3+ on ResNet-18 (gpulab/models/deeplabv3plus.cpp) ----------------------
ASPP_CHANNELS = 256
LOW_LEVEL_CHANNELS = 48


def conv(cin, cout, kernel, stride=1, dilation=1):
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=0 if kernel == 1 else dilation,
                     dilation=dilation, bias=False)


def conv_bn_relu(cin, cout, kernel, dilation=1):
    return nn.Sequential(conv(cin, cout, kernel, 1, dilation), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DilatedBasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride, dilation1, dilation2):
        super().__init__()
        self.conv1 = conv(in_planes, planes, 3, stride, dilation1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, 1, dilation2)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(conv(in_planes, planes, 1, stride),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class ResNet18Backbone(nn.Module):
    def __init__(self, in_channels, output_stride):
        super().__init__()
        # (stride, first-block conv1 dilation, dilation of the rest): MATLAB's res5a.
        layer3 = (1, 1, 2) if output_stride == 8 else (2, 1, 1)
        layer4 = (1, 2, 4) if output_stride == 8 else (1, 1, 2)

        def stage(cin, planes, s):
            stride, entry, dil = s
            return nn.Sequential(DilatedBasicBlock(cin, planes, stride, entry, dil),
                                 DilatedBasicBlock(planes, planes, 1, dil, dil))

        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = stage(64, 64, (1, 1, 1))
        self.layer2 = stage(64, 128, (2, 1, 1))
        self.layer3 = stage(128, 256, layer3)
        self.layer4 = stage(256, 512, layer4)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        low = self.layer1(x)
        return low, self.layer4(self.layer3(self.layer2(low)))


class ASPP(nn.Module):
    def __init__(self, in_channels, rates):
        super().__init__()
        self.convs = nn.ModuleList([conv_bn_relu(in_channels, ASPP_CHANNELS, 1)] +
                                   [conv_bn_relu(in_channels, ASPP_CHANNELS, 3, r) for r in rates])
        self.project = conv_bn_relu(ASPP_CHANNELS * len(self.convs), ASPP_CHANNELS, 1)

    def forward(self, x):
        return self.project(torch.cat([c(x) for c in self.convs], 1))


def centre_crop(x, height, width):
    top = (x.shape[2] - height) // 2
    left = (x.shape[3] - width) // 2
    return x[:, :, top:top + height, left:left + width]


def upsample_to(x, factor, height, width):
    up = F.interpolate(x, size=(x.shape[2] * factor, x.shape[3] * factor), mode="bilinear",
                       align_corners=False)
    return centre_crop(up, height, width)


class DeepLabV3Plus(nn.Module):
    def __init__(self, num_classes, in_channels=3, output_stride=16):
        super().__init__()
        if output_stride not in (16, 8):
            raise ValueError(f"output_stride {output_stride}: valid 16, 8")
        self.output_stride = output_stride
        rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        self.backbone = ResNet18Backbone(in_channels, output_stride)
        self.aspp = ASPP(512, rates)
        self.low_level = conv_bn_relu(64, LOW_LEVEL_CHANNELS, 1)
        self.decoder = nn.Sequential(conv(ASPP_CHANNELS + LOW_LEVEL_CHANNELS, 256, 3),
                                     nn.BatchNorm2d(256), nn.ReLU(inplace=True),
                                     conv(256, 256, 3), nn.BatchNorm2d(256),
                                     nn.ReLU(inplace=True))
        self.scorer = conv(256, num_classes, 1)
        # torchvision's ResNet initialisation in the backbone; defaults elsewhere.
        for m in self.backbone.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        height, width = x.shape[2], x.shape[3]
        low_features, high_features = self.backbone(x)
        low = self.low_level(low_features)
        high = upsample_to(self.aspp(high_features), self.output_stride // 4, low.shape[2],
                           low.shape[3])
        logits = self.scorer(self.decoder(torch.cat([high, low], 1)))
        return upsample_to(logits, 4, height, width)


MODELS = {"erfnet": 20, "deeplabv3plus": 11}  # name -> the class count
PARAMETERS = {("erfnet", 20): 2066836, ("deeplabv3plus", 11): 16408480}  # gpulab's


def create(name, num_classes, in_channels=3, options=None):
    options = options or {}
    if name == "erfnet":
        return ERFNet(num_classes, in_channels, bool(options.get("encoder_only", False)))
    if name == "deeplabv3plus":
        return DeepLabV3Plus(num_classes, in_channels, int(options.get("output_stride", 16)))
    raise ValueError(f"unknown segmentation model '{name}'; valid: {', '.join(MODELS)}")


if __name__ == "__main__":
    for name, classes in MODELS.items():
        n = sum(p.numel() for p in create(name, classes).parameters())
        print(f"{name} ({classes} classes): {n:,} parameters; gpulab "
              f"{PARAMETERS[(name, classes)]:,}: {'match' if n == PARAMETERS[(name, classes)] else 'MISMATCH'}")
