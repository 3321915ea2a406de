#!/bin/sh
# FashionEdit (docs/EDITING.md): edit Fashion-MNIST test images with every
# inversion method in retrace's Go runtime, then judge them with the
# PyTorch classifier (tools/train/judge.py) and write the per-method table.
#
#   tools/train/fashionedit.sh [OUT] [retrace bench-edit flags...]
#
# OUT defaults to bench/fashionedit. Examples:
#   tools/train/fashionedit.sh                                # 200 images, the documented settings
#   tools/train/fashionedit.sh /tmp/fe --n 20                 # a quick run
#   tools/train/fashionedit.sh bench/fashionedit --resume     # continue an interrupted run
#   tools/train/fashionedit.sh bench/fashionedit --report     # judge + table of what is done
set -e
cd "$(dirname "$0")/../.."
OUT=${1:-bench/fashionedit}
[ $# -gt 0 ] && shift
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
GOEXPERIMENT=simd go build -o /tmp/retrace-fashionedit ./tools/retrace
exec /tmp/retrace-fashionedit bench-edit --model models/fashion --backend cpu --out "$OUT" \
	--python /usr/bin/python3 --judge tools/train/judge.py "$@"
