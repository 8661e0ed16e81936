"""What every PyTorch peer records beside its timings, and its JSON writer
(the same fields as gpulab's bench/bench_env.h)."""
import json
import os
import platform
import subprocess


def host_name():
    return platform.node()


def cpu_model():
    """/proc/cpuinfo's first "model name", or "unknown"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def git_commit():
    """Short commit of the checkout holding the peers, or "unknown"."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def write_json_atomic(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def imagenet_train_transform(size):
    """torchvision's ImageNet training augmentation, as gpulab's loader
    benchmark applies it: RandomResizedCrop(size), RandomHorizontalFlip,
    ToTensor, Normalize(ImageNet mean and std)."""
    from torchvision import transforms  # only the peers that decode images need it
    return transforms.Compose([
        transforms.RandomResizedCrop(size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
