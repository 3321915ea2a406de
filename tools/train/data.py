"""Fashion-MNIST from Debian's dataset-fashion-mnist package (IDX files)."""
import gzip
import os
import subprocess
import sys

import numpy as np

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def data_dir():
    """The folder holding the IDX files: $FASHION_MNIST_DIR, else where
    dpkg says the Debian package put them."""
    d = os.environ.get("FASHION_MNIST_DIR")
    if d:
        return d
    try:
        out = subprocess.run(["dpkg", "-L", "dataset-fashion-mnist"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.endswith(FILES["train"][0]):
                return os.path.dirname(line)
    except (OSError, subprocess.CalledProcessError):
        pass
    return DEFAULT_DIR


def load(split):
    """Returns (images uint8 [N,28,28], labels int64 [N])."""
    d = data_dir()
    imgf, labf = (os.path.join(d, f) for f in FILES[split])
    for f in (imgf, labf):
        if not os.path.exists(f):
            sys.exit(f"fashion-mnist: {f} not found. Install the data with "
                     f"`apt-get install dataset-fashion-mnist` (or run tools/train/setup.sh), "
                     f"or set FASHION_MNIST_DIR to a folder with the four IDX .gz files.")
    with gzip.open(imgf, "rb") as f:
        b = f.read()
    assert int.from_bytes(b[:4], "big") == 2051, imgf
    n, h, w = (int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    x = np.frombuffer(b, np.uint8, offset=16).reshape(n, h, w)
    with gzip.open(labf, "rb") as f:
        b = f.read()
    assert int.from_bytes(b[:4], "big") == 2049, labf
    y = np.frombuffer(b, np.uint8, offset=8).astype(np.int64)
    assert len(y) == n
    return x, y


def to_model_space(x):
    """uint8 [N,28,28] → float32 [N,1,32,32] in [-1,1], padded with -1 (black)."""
    x = x.astype(np.float32) / 127.5 - 1.0
    return np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)[:, None]
