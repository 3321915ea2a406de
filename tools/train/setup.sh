#!/bin/sh
# Installs what tools/train needs from Debian: PyTorch (CPU), the
# Fashion-MNIST data set, and OpenBLAS (torch's Linear/matmul use the system
# BLAS; the reference libblas is ~4x slower).
set -e
PKGS="python3-torch python3-numpy python3-pil dataset-fashion-mnist libopenblas0-pthread"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing:$missing"
  $SUDO apt-get install -y $missing || { $SUDO apt-get update && $SUDO apt-get install -y $missing; }
fi
/usr/bin/python3 -c "import torch, numpy" || { echo "tools/train: python3-torch is not importable by /usr/bin/python3" >&2; exit 1; }
dpkg -L dataset-fashion-mnist | grep -q train-images-idx3-ubyte.gz || { echo "tools/train: dataset-fashion-mnist has no IDX files" >&2; exit 1; }
echo "tools/train: ready (torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'))"
