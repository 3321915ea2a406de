"""Quick PyTorch check of a checkpoint (not the shipped samples, which come
from retrace's Go runtime): DDIM (diffusers DDIMScheduler semantics of
export.py's scheduler config: leading spacing, clip_sample, eta 0) with
classifier-free guidance, judged by the classifier, for a few guidance
scales.

  sample_torch.py --ckpt tools/train/out/ckpt.pt --per-class 20 --steps 25 --guidance 1,2,3,4
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from export import load_ckpt  # noqa: E402
from judge import load_judge, predict  # noqa: E402
from train import alphas_cumprod  # noqa: E402


@torch.no_grad()
def ddim(unet, enc, labels, steps, g, gen):
    ac = alphas_cumprod()
    n = len(labels)
    x = torch.randn(n, 1, 32, 32, generator=gen)
    ratio = 1000 // steps
    ctx = torch.cat([enc(torch.full((n,), len(data.CLASSES))), enc(labels)])
    for t in (np.arange(steps) * ratio)[::-1]:
        e = unet(torch.cat([x, x]), torch.full((2 * n,), int(t)), ctx)
        eu, ec = e.chunk(2)
        eps = eu + g * (ec - eu)
        a = ac[t]
        ap = ac[t - ratio] if t - ratio >= 0 else torch.tensor(1.0)
        x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        x = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="tools/train/out/ckpt.pt")
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", default="1,2,3,4")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    unet, enc, s = load_ckpt(a.ckpt)
    judge = load_judge()
    labels = torch.arange(10).repeat_interleave(a.per_class)
    for g in [float(v) for v in a.guidance.split(",")]:
        t0 = time.time()
        x = ddim(unet, enc, labels, a.steps, g, torch.Generator().manual_seed(a.seed))
        img = ((x[:, 0, 2:30, 2:30] + 1) / 2).clamp(0, 1).numpy()
        img = np.round(img * 255) / 255
        pred, _ = predict(judge, img)
        acc = (pred == labels.numpy()).mean()
        per = [(pred[labels.numpy() == c] == c).mean() for c in range(10)]
        print(f"step {s['step']} guidance {g}: agreement {acc:.3f} "
              f"per class {' '.join(f'{p:.2f}' for p in per)} ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
