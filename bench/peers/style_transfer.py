#!/usr/bin/env python3
# PyTorch eager peer of bench_style_throughput: pytorch/examples'
# fast_neural_style (neural_style/transformer_net.py, vgg.py, utils.py and the
# training loop of neural_style.py) on the same fixed random batch, with the
# same modes, validation and timing, and the same JSON.
"""Fast neural style transfer images/s in PyTorch eager mode: the training
step and inference of pytorch/examples' fast_neural_style.

Usage: /usr/bin/python3 bench/peers/style_transfer.py [--modes forward,train]
           [--batch-size 4] [--size 256 | --height H --width W] [--style-size 256]
           [--threads 2] [--iters 10] [--warmup 2] [--seed 0]
           [--loss-network-weights FILE] [--device cpu|cuda[:N]]
           [--precisions fp32,bf16] [--memory-format contiguous|channels_last]
           [--json FILE]
       /usr/bin/python3 bench/peers/style_transfer.py --write-loss-network FILE [--seed 0]

forward: TransformerNet in eval mode under torch.no_grad(), time
         transformer(x) (the reference's stylize() minus image I/O).
train:   the reference's step: optimizer.zero_grad() (set_to_none, PyTorch
         2's default), y = transformer(x), normalize_batch(y),
         normalize_batch(x), vgg(y), vgg(x), content_weight * mse(relu2_2),
         style_weight * sum of mse(gram(F(y)), gram_style[:n]), backward,
         Adam(lr 1e-3).step(), content_loss.item() and style_loss.item(); at
         least 2 warm-up steps, and the loss on the fixed batch must fall from
         step 1 to step 2 (recorded only under bf16). normalize_batch divides
         its argument by 255 in place, so the step normalises a copy of the
         fixed batch (in the reference each step's batch is a fresh tensor).
Vgg16: torchvision's vgg16().features[:23] (to relu4_3), frozen
         (requires_grad False: the reference's Vgg16(requires_grad=False)), from
         --loss-network-weights or torchvision's initialisation seeded with
         --seed (no download); --write-loss-network FILE saves that seeded
         torchvision VGG-16's features.* state dict for both programs and exits.
x:       [N, 3, H, W] float32 pixels 0..255, torch.rand from a generator of
         its own seeded with --seed, then the [1, 3, S, S] style image from it:
         the same tensors bench_style_throughput draws.
bf16:    torch.autocast("cuda", dtype=torch.bfloat16) around forward and loss.
On a GPU each timed iteration ends synchronised (training reads its losses).
images_per_second = batch / mean iteration time; ms_per_iter is that mean.
"""
import argparse
import contextlib
import statistics
import sys
import time
from collections import namedtuple

import torch
import torchvision

from peer_env import cpu_model, git_commit, host_name, write_json_atomic

LEARN_RATE = 1e-3
CONTENT_WEIGHT = 1e5
STYLE_WEIGHT = 1e10
MIN_TRAIN_WARMUP = 2
# Forward GFLOP per megapixel, as bench_style_throughput's (2 x the convs'
# multiply-adds, counted by count_gflop_per_megapixel below).
TRANSFORMER_GFLOP_PER_MP = 307.584
VGG_GFLOP_PER_MP = 556.416


# --- pytorch/examples fast_neural_style/neural_style/transformer_net.py ------------
class TransformerNet(torch.nn.Module):
    def __init__(self):
        super(TransformerNet, self).__init__()
        # Initial convolution layers
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = torch.nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = torch.nn.InstanceNorm2d(128, affine=True)
        # Residual layers
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        # Upsampling Layers
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = torch.nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = torch.nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
        # Non-linearities
        self.relu = torch.nn.ReLU()

    def forward(self, X):
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res1(y)
        y = self.res2(y)
        y = self.res3(y)
        y = self.res4(y)
        y = self.res5(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        y = self.deconv3(y)
        return y


class ConvLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super(ConvLayer, self).__init__()
        reflection_padding = kernel_size // 2
        self.reflection_pad = torch.nn.ReflectionPad2d(reflection_padding)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        out = self.reflection_pad(x)
        out = self.conv2d(out)
        return out


class ResidualBlock(torch.nn.Module):
    def __init__(self, channels):
        super(ResidualBlock, self).__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        out = out + residual
        return out


class UpsampleConvLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, upsample=None):
        super(UpsampleConvLayer, self).__init__()
        self.upsample = upsample
        reflection_padding = kernel_size // 2
        self.reflection_pad = torch.nn.ReflectionPad2d(reflection_padding)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        x_in = x
        if self.upsample:
            x_in = torch.nn.functional.interpolate(x_in, mode='nearest', scale_factor=self.upsample)
        out = self.reflection_pad(x_in)
        out = self.conv2d(out)
        return out


# --- pytorch/examples fast_neural_style/neural_style/vgg.py -------------------------
class Vgg16(torch.nn.Module):
    """The reference's, given torchvision's features instead of downloading them."""

    def __init__(self, vgg_features, requires_grad=False):
        super(Vgg16, self).__init__()
        self.slice1 = torch.nn.Sequential()
        self.slice2 = torch.nn.Sequential()
        self.slice3 = torch.nn.Sequential()
        self.slice4 = torch.nn.Sequential()
        for x in range(4):
            self.slice1.add_module(str(x), vgg_features[x])
        for x in range(4, 9):
            self.slice2.add_module(str(x), vgg_features[x])
        for x in range(9, 16):
            self.slice3.add_module(str(x), vgg_features[x])
        for x in range(16, 23):
            self.slice4.add_module(str(x), vgg_features[x])
        if not requires_grad:
            for param in self.parameters():
                param.requires_grad = False

    def forward(self, X):
        h = self.slice1(X)
        h_relu1_2 = h
        h = self.slice2(h)
        h_relu2_2 = h
        h = self.slice3(h)
        h_relu3_3 = h
        h = self.slice4(h)
        h_relu4_3 = h
        vgg_outputs = namedtuple("VggOutputs", ['relu1_2', 'relu2_2', 'relu3_3', 'relu4_3'])
        out = vgg_outputs(h_relu1_2, h_relu2_2, h_relu3_3, h_relu4_3)
        return out


# --- pytorch/examples fast_neural_style/neural_style/utils.py -----------------------
def gram_matrix(y):
    (b, ch, h, w) = y.size()
    features = y.view(b, ch, w * h)
    features_t = features.transpose(1, 2)
    gram = features.bmm(features_t) / (ch * h * w)
    return gram


def normalize_batch(batch):
    # normalize using imagenet mean and std
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    batch = batch.div_(255.0)
    return (batch - mean) / std


# --- the benchmark -------------------------------------------------------------------
def seeded_vgg16_features(seed):
    """torchvision's VGG-16 features with its own initialisation, seeded (no download)."""
    torch.manual_seed(seed)
    return torchvision.models.vgg16().features


def load_vgg16_features(path):
    features = torchvision.models.vgg16().features
    state = torch.load(path, map_location="cpu")
    state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    features.load_state_dict(state)
    return features


def count_gflop_per_megapixel(model, size=256):
    """2 x the convs' multiply-adds of one forward, per megapixel of input."""
    total = [0]

    def hook(m, _, out):
        total[0] += 2 * out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.rand(1, 3, size, size))
    for h in hooks:
        h.remove()
    return total[0] / 1e9 / (size * size / 1e6)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(bf16):
    return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def time_forward(model, x, args, device, bf16):
    model.eval()
    r = {"iter_ms": []}
    with torch.no_grad():
        for i in range(max(args.warmup, 1)):
            with autocast(bf16):
                y = model(x)
            if i == 0:  # validate once: RGB at 4 ceil(H / 4) x 4 ceil(W / 4), finite
                shape = (args.batch_size, 3, (x.shape[2] + 3) // 4 * 4, (x.shape[3] + 3) // 4 * 4)
                if tuple(y.shape) != shape:
                    sys.exit(f"error: forward: expected an output {list(shape)}, got {list(y.shape)}")
                if not torch.isfinite(y).all().item():
                    sys.exit("error: forward: the output is not all finite")
                r["validation"] = {"output_finite": True, "output_mean": y.float().mean().item()}
        for _ in range(args.iters):
            sync(device)
            t0 = time.perf_counter()
            with autocast(bf16):
                y = model(x)
            sync(device)
            r["iter_ms"].append(1e3 * (time.perf_counter() - t0))
    return r


def time_train(transformer, vgg, gram_style, x, args, bf16):
    transformer.train()
    optimizer = torch.optim.Adam(transformer.parameters(), LEARN_RATE)
    mse_loss = torch.nn.MSELoss()
    warmup = max(args.warmup, MIN_TRAIN_WARMUP)
    losses, first, iter_ms, fwd_ms, loss_ms, bwd_ms, step_ms = [], {}, [], [], [], [], []
    for i in range(warmup + args.iters):
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        t_zero = time.perf_counter()
        # The reference's step from here to optimizer.step(); its batch is a
        # fresh tensor each step, which normalize_batch divides in place.
        n_batch = len(x)
        content = x.clone()
        with autocast(bf16):
            y = transformer(content)
            t_fwd = time.perf_counter()

            y = normalize_batch(y)
            content = normalize_batch(content)

            features_y = vgg(y)
            features_x = vgg(content)

            content_loss = CONTENT_WEIGHT * mse_loss(features_y.relu2_2, features_x.relu2_2)

            style_loss = 0.
            for ft_y, gm_s in zip(features_y, gram_style):
                gm_y = gram_matrix(ft_y)
                style_loss += mse_loss(gm_y, gm_s[:n_batch, :, :])
            style_loss *= STYLE_WEIGHT

            total_loss = content_loss + style_loss
        t_loss = time.perf_counter()
        total_loss.backward()
        t_bwd = time.perf_counter()
        optimizer.step()
        content_value = content_loss.item()
        style_value = style_loss.item()
        t_end = time.perf_counter()
        value = content_value + style_value
        if value != value or value in (float("inf"), float("-inf")):
            sys.exit(f"error: train: the loss is {value} at step {i + 1}")
        if i == 0:
            first = {"content_loss_step1": content_value, "style_loss_step1": style_value}
        if i < warmup:
            losses.append(value)
            continue
        iter_ms.append(1e3 * (t_end - t0))
        fwd_ms.append(1e3 * (t_fwd - t_zero))
        loss_ms.append(1e3 * (t_loss - t_fwd))
        bwd_ms.append(1e3 * (t_bwd - t_loss))
        step_ms.append(1e3 * ((t_end - t_bwd) + (t_zero - t0)))
    # Validate once: one Adam step on the batch must lower its loss.
    fell = losses[1] < losses[0]
    if not fell and not bf16:
        sys.exit(f"error: train: the loss on the fixed batch did not fall from step 1 to 2 "
                 f"({losses[0]} -> {losses[1]})")
    return {
        "iter_ms": iter_ms,
        "validation": {"loss_step1": losses[0], "loss_step2": losses[1], "loss_fell": fell,
                       **first},
        "phase_ms_median": {"forward": statistics.median(fwd_ms),
                            "loss": statistics.median(loss_ms),
                            "backward": statistics.median(bwd_ms),
                            "step": statistics.median(step_ms)},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default="forward,train", help="forward and/or train")
    ap.add_argument("--batch-size", type=int, default=4, help="images per iteration (default 4)")
    ap.add_argument("--size", type=int, default=256,
                    help="content height = width, at least 16 (default 256)")
    ap.add_argument("--height", type=int, default=0, help="content height (default --size)")
    ap.add_argument("--width", type=int, default=0, help="content width (default --size)")
    ap.add_argument("--style-size", type=int, default=256,
                    help="the random style image's side in pixels (default 256)")
    ap.add_argument("--threads", type=int, default=2,
                    help="intra-op threads; inter-op is 1 (default 2)")
    ap.add_argument("--iters", type=int, default=10, help="timed iterations (default 10)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed iterations first; training does at least 2 (default 2)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seeds TransformerNet's weights, the batch, the style image and the "
                         "VGG when no --loss-network-weights (default 0)")
    ap.add_argument("--loss-network-weights", help="VGG-16 state dict (torch.save) to load")
    ap.add_argument("--write-loss-network", metavar="FILE",
                    help="save the seeded torchvision VGG-16's features.* state dict and exit")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    ap.add_argument("--precisions", default="fp32",
                    help="fp32 and/or bf16 (CUDA autocast) (default fp32)")
    ap.add_argument("--memory-format", default="contiguous",
                    choices=("contiguous", "channels_last"),
                    help="layout of both networks and the batch (default contiguous)")
    ap.add_argument("--cudnn-benchmark", type=int, default=0, choices=(0, 1),
                    help="1: torch.backends.cudnn.benchmark on (default 0, PyTorch's default)")
    ap.add_argument("--peak-tflops", type=float, default=990.0,
                    help="device peak for model-FLOPs utilisation (default 990, H200 bf16)")
    ap.add_argument("--count-flops", action="store_true",
                    help="print both networks' forward GFLOP per megapixel and exit")
    ap.add_argument("--json", help="write the results as JSON to FILE")
    args = ap.parse_args()

    if args.write_loss_network:
        features = seeded_vgg16_features(args.seed)
        torch.save({f"features.{k}": v for k, v in features.state_dict().items()},
                   args.write_loss_network)
        print(f"wrote {args.write_loss_network}: torchvision vgg16 features, seed {args.seed}")
        return
    if args.count_flops:
        print(f"transformer_net {count_gflop_per_megapixel(TransformerNet()):.3f} GFLOP/MP, "
              f"vgg16 to relu4_3 {count_gflop_per_megapixel(Vgg16(seeded_vgg16_features(0))):.3f}"
              " GFLOP/MP")
        return

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: PyTorch sees no GPU")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for p in precisions:
        if p not in ("fp32", "bf16"):
            ap.error(f"--precisions: unknown precision '{p}'; valid: fp32, bf16")
        if p == "bf16" and device.type != "cuda":
            ap.error("--precisions bf16 is CUDA autocast: it needs --device cuda")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("forward", "train"):
            ap.error(f"--modes: unknown mode '{m}'; valid: forward, train")
    height, width = args.height or args.size, args.width or args.size
    if min(height, width, args.style_size) < 16:
        ap.error("--size, --height, --width and --style-size must be >= 16")
    if args.batch_size < 1 or args.threads < 1 or args.iters < 1 or args.warmup < 0:
        ap.error("--batch-size, --threads and --iters must be >= 1, --warmup >= 0")
    channels_last = args.memory_format == "channels_last"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    torch.backends.cudnn.benchmark = bool(args.cudnn_benchmark)
    torch.set_num_interop_threads(1)  # before any inter-op work, as the C++ side
    torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()

    # The batch, then the style image: the generator and order bench_style_throughput uses.
    gen = torch.Generator().manual_seed(args.seed)
    x = (torch.rand(args.batch_size, 3, height, width, generator=gen) * 255).to(device)
    style = (torch.rand(1, 3, args.style_size, args.style_size, generator=gen) * 255).to(device)
    x = x.contiguous(memory_format=memory_format)
    style = style.contiguous(memory_format=memory_format)

    if args.loss_network_weights:
        vgg_features = load_vgg16_features(args.loss_network_weights)
        vgg_weights = args.loss_network_weights
    else:
        vgg_features = seeded_vgg16_features(args.seed)
        vgg_weights = "torchvision initialisation, seeded"
    vgg = Vgg16(vgg_features, requires_grad=False).to(device)
    vgg.to(memory_format=memory_format)
    vgg_parameters = sum(p.numel() for p in vgg.parameters())
    # The reference's style Grams: the style image repeated over the batch, once.
    with torch.no_grad():
        features_style = vgg(normalize_batch(style.repeat(args.batch_size, 1, 1, 1)))
        gram_style = [gram_matrix(y) for y in features_style]

    megapixels = height * width / 1e6
    machine, cpu, commit = host_name(), cpu_model(), git_commit()
    results = []
    for precision in precisions:
        bf16 = precision == "bf16"
        # A fresh network per precision, each from the same seeded weights.
        torch.manual_seed(args.seed)
        transformer = TransformerNet().to(device)
        transformer.to(memory_format=memory_format)
        parameters = sum(p.numel() for p in transformer.parameters())
        for mode in modes:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            r = time_forward(transformer, x, args, device, bf16) if mode == "forward" else \
                time_train(transformer, vgg, gram_style, x, args, bf16)
            mean_ms = sum(r["iter_ms"]) / len(r["iter_ms"])
            median_ms = statistics.median(r["iter_ms"])
            ips = 1e3 * args.batch_size / mean_ms
            gflop = (TRANSFORMER_GFLOP_PER_MP if mode == "forward"
                     else 3 * (TRANSFORMER_GFLOP_PER_MP + VGG_GFLOP_PER_MP)) * megapixels
            tflops = ips * gflop / 1e3
            line = (f"pytorch transformer_net {mode:7s} {precision:4s} {device} batch "
                    f"{args.batch_size} size {width}x{height} threads {torch.get_num_threads()}: "
                    f"{ips:8.3f} images/s, {mean_ms:9.2f} ms/iter (median {median_ms:.2f})")
            entry = {
                "model": "transformer_net",
                "mode": mode,
                "implementation": "pytorch-eager",
                "images_per_second": ips,
                "ms_per_iter": mean_ms,
                "ms_per_iter_median": median_ms,
                "images_per_second_at_median": 1e3 * args.batch_size / median_ms,
                "iter_ms": r["iter_ms"],
                "iters": args.iters,
                "warmup": max(args.warmup, MIN_TRAIN_WARMUP) if mode == "train" else args.warmup,
                "batch_size": args.batch_size,
                "threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(),
                "height": height,
                "width": width,
                "style_size": args.style_size,
                "num_classes": 3,
                "parameters": parameters,
                "loss_network": "vgg16 features to relu4_3, frozen",
                "loss_network_parameters": vgg_parameters,
                "loss_network_weights": vgg_weights,
                "precision": precision,
                "dtype": "bfloat16 autocast (float32 weights)" if bf16 else "float32",
                "gflop_per_image": gflop,
                "model_tflops": tflops,
                "peak_tflops": args.peak_tflops,
                "mfu": tflops / args.peak_tflops,
                "device": str(device),
                "device_name": device_name,
                "memory_format": "channels_last (NHWC)" if channels_last else "contiguous (NCHW)",
                "machine": machine,
                "cpu_model": cpu,
                "torch_version": torch.__version__,
                "torchvision_version": torchvision.__version__,
                "git_commit": commit,
                "validation": r["validation"],
            }
            if "phase_ms_median" in r:
                entry["phase_ms_median"] = r["phase_ms_median"]
            if device.type == "cuda":
                entry["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
                entry["cudnn_benchmark"] = torch.backends.cudnn.benchmark
                line += (f", peak {entry['peak_memory_bytes'] / 2**30:.2f} GiB, "
                         f"MFU {100 * tflops / args.peak_tflops:.1f}%")
            print(line, flush=True)
            results.append(entry)

    if args.json:
        write_json_atomic(args.json, {
            "benchmark": "style_throughput",
            "implementation": "pytorch-eager",
            "statistic": "images_per_second = batch / mean iteration time over the timed "
                         "iterations; ms_per_iter is that mean, ms_per_iter_median the median",
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "height": height,
            "width": width,
            "precisions": precisions,
            "device": str(device),
            "device_name": device_name,
            "memory_format": results[0]["memory_format"] if results else None,
            "machine": machine,
            "cpu_model": cpu,
            "torch_version": torch.__version__,
            "torchvision_version": torchvision.__version__,
            "git_commit": commit,
            "results": results,
        })


if __name__ == "__main__":
    main()
