"""The Safe-SD-style QR watermark of retrace: a trained injector that hides a
QR code (version 1, 21×21 modules) in a 32×32 grayscale image of the default
model, and a detector that reconstructs the module matrix from a possibly
attacked image. retrace decodes the reconstructed matrix with the QR code's
own Reed–Solomon error correction (samplers/watermark/qr).

  safesd.py train [--steps 3000] [--minutes 25]   → models/fashion/safesd/{model.safetensors,config.json}, tools/train/safesd_loss.csv
  safesd.py test                                   bit accuracy per attack on test images
  safesd.py golden                                 PyTorch outputs for the Go golden test

Design (docs/WATERMARK.md has the whole story):
- message plane: the 21×21 modules as ±1 (dark = +1), nearest-resampled to
  32×32 (module i covers pixels y with ⌊21·y/32⌋ = i);
- injector(x, M): 4 conv 3×3 layers (2→C→C→C→1, SiLU) → tanh → × strength:
  a residual r; marked = clamp(x + r, −1, 1), 8-bit rounded (straight-through);
- detector(y): 4 conv 3×3 layers (1→D→D→D→1, SiLU) → a 32×32 logit map;
  module logits are its mean over each module's pixels;
- loss: BCE(module logits, modules) + λ·mean(r²); attacks of the
  benchmark's set are applied between them (real JPEG through PIL with a
  straight-through gradient, noise, blur, brightness; --train-attacks),
  after a warm-up without attacks;
- training messages are QR-shaped: the function patterns of a version-1
  symbol (finders, separators, timing, dark module) are fixed, every other
  module (format and codeword area) is a fair coin;
- images: Fashion-MNIST training images (the default model's data), padded
  to 32×32 in [−1, 1] like the diffusion model's samples.
"""
import argparse
import io
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
import st  # noqa: E402

OUT_DIR = os.path.join(HERE, "..", "..", "models", "fashion", "safesd")
N = 21  # modules of a version-1 QR code
S = 32  # image size


def function_template():
    """(mask, value) [21,21] bool: the version-1 function modules and their
    colours (True = dark). Format-information modules are not function
    modules here (they carry bits)."""
    mask = np.zeros((N, N), bool)
    val = np.zeros((N, N), bool)
    for r0, c0 in ((0, 0), (0, N - 7), (N - 7, 0)):
        for r in range(-1, 8):
            for c in range(-1, 8):
                rr, cc = r0 + r, c0 + c
                if 0 <= rr < N and 0 <= cc < N:
                    mask[rr, cc] = True
                    ring = max(abs(r - 3), abs(c - 3))
                    val[rr, cc] = ring != 2 and ring != 4  # 7×7 finder: dark 3×3 core, light ring, dark ring; separator light
    for i in range(8, N - 8):
        mask[6, i] = mask[i, 6] = True
        val[6, i] = val[i, 6] = i % 2 == 0
    mask[N - 8, 8] = True  # the dark module (4·v + 9, 8)
    val[N - 8, 8] = True
    return mask, val


def module_index():
    """[32] the module row/column of each pixel row/column."""
    return np.array([(N * y) // S for y in range(S)])


class Injector(nn.Module):
    def __init__(self, ch, strength):
        super().__init__()
        self.conv1 = nn.Conv2d(2, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv3 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv4 = nn.Conv2d(ch, 1, 3, padding=1)
        self.strength = strength

    def forward(self, x, m):
        h = F.silu(self.conv1(torch.cat([x, m], 1)))
        h = F.silu(self.conv2(h))
        h = F.silu(self.conv3(h))
        return self.strength * torch.tanh(self.conv4(h))


class Detector(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(1, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv3 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv4 = nn.Conv2d(ch, 1, 3, padding=1)

    def forward(self, y):
        h = F.silu(self.conv1(y))
        h = F.silu(self.conv2(h))
        h = F.silu(self.conv3(h))
        return self.conv4(h)


def pool_matrix():
    """[441, 1024]: module logit = mean of the logit map over its pixels."""
    idx = module_index()
    p = np.zeros((N * N, S * S), np.float32)
    for y in range(S):
        for x in range(S):
            p[idx[y] * N + idx[x], y * S + x] = 1
    p /= p.sum(1, keepdims=True)
    return torch.from_numpy(p)


def plane(modules):
    """modules [B,21,21] in {0,1} → message plane [B,1,32,32] of ±1."""
    idx = torch.from_numpy(module_index())
    m = modules[:, idx][:, :, idx]
    return (2 * m - 1).unsqueeze(1).float()


def random_modules(b, gen, fmask, fval):
    m = torch.randint(0, 2, (b, N, N), generator=gen).bool()
    m[:, fmask] = fval[fmask]
    return m.float()


def quantize(y):
    """8-bit rounding of [-1,1] images with a straight-through gradient."""
    q = torch.round((y + 1) * 127.5) / 127.5 - 1
    return y + (q - y).detach()


def jpeg(y, quality):
    from PIL import Image
    out = torch.empty_like(y)
    u8 = torch.round((y.detach() + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    for i in range(y.shape[0]):
        buf = io.BytesIO()
        Image.fromarray(u8[i, 0]).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        out[i, 0] = torch.from_numpy(np.asarray(Image.open(buf).convert("L"), np.float32) / 127.5 - 1)
    return y + (out - y).detach()


def gauss_kernel(sigma):
    r = int(math.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma * sigma))
    return k / k.sum(), r


def blur(y, sigma):
    k, r = gauss_kernel(sigma)
    yp = F.pad(y, (r, r, r, r), mode="replicate")
    yp = F.conv2d(yp, k.view(1, 1, 1, -1))
    return F.conv2d(yp, k.view(1, 1, -1, 1))


def affine(y, scale, deg):
    """Rotation by deg and zoom by 1/scale about the centre (crop + resize
    for scale < 1), bilinear, black (−1) outside."""
    b = y.shape[0]
    th = deg.float() * math.pi / 180
    c, s = torch.cos(th), torch.sin(th)
    mat = torch.stack([torch.stack([c * scale, -s * scale, torch.zeros(b)], 1),
                       torch.stack([s * scale, c * scale, torch.zeros(b)], 1)], 1)
    grid = F.affine_grid(mat, y.shape, align_corners=False)
    return F.grid_sample(y + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


ATTACKS = ["none", "jpeg75", "crop90", "blur1", "noise005", "bright20", "rot10"]


def attack(y, name, gen, train):
    b = y.shape[0]
    if name == "none":
        return y
    if name == "jpeg75":
        return jpeg(y, int(torch.randint(60, 91, (1,), generator=gen)) if train else 75)
    if name == "crop90":
        sc = torch.empty(b).uniform_(0.85, 1.0, generator=gen) if train else torch.full((b,), 0.9)
        return affine(y, sc, torch.zeros(b))
    if name == "blur1":
        return blur(y, float(torch.empty(1).uniform_(0.5, 1.2, generator=gen)) if train else 1.0)
    if name == "noise005":
        sd = float(torch.empty(1).uniform_(0.0, 0.07, generator=gen)) if train else 0.05
        return y + 2 * sd * torch.randn(y.shape, generator=gen)
    if name == "bright20":
        f = torch.empty(b, 1, 1, 1).uniform_(0.75, 1.25, generator=gen) if train else \
            torch.where(torch.arange(b) % 2 == 0, 1.2, 0.8).view(b, 1, 1, 1)
        return ((y + 1) * f).clamp(0, 2) - 1
    if name == "rot10":
        deg = torch.empty(b).uniform_(-12, 12, generator=gen) if train else torch.full((b,), 10.0)
        return affine(y, torch.ones(b), deg)
    raise ValueError(name)


def psnr(a, b):
    mse = ((a - b) / 2).pow(2).mean((1, 2, 3))
    return (10 * torch.log10(1 / mse.clamp_min(1e-12))).mean().item()


def load_images(split):
    x, _ = data.load(split)
    return torch.from_numpy(data.to_model_space(x))


def train(a):
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    xs = load_images("train")
    fmask, fval = (torch.from_numpy(v) for v in function_template())
    inj, det = Injector(a.inj_ch, a.strength), Detector(a.det_ch)
    params = list(inj.parameters()) + list(det.parameters())
    opt = torch.optim.Adam(params, lr=a.lr)
    pool = pool_matrix()
    train_attacks = a.train_attacks.split(",")
    for n in train_attacks:
        if n not in ATTACKS:
            sys.exit(f"--train-attacks: unknown attack {n!r} (want some of {','.join(ATTACKS)})")
    t0, log = time.time(), []
    step = 0
    for step in range(1, a.steps + 1):
        if time.time() - t0 > a.minutes * 60:
            print(f"stopping at step {step}: --minutes {a.minutes} reached", flush=True)
            break
        lr = a.lr * min(1.0, step / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = xs[torch.randint(0, len(xs), (a.batch,), generator=gen)]
        m = random_modules(a.batch, gen, fmask, fval)
        r = inj(x, plane(m))
        y = quantize((x + r).clamp(-1, 1))
        if step > a.warmup:
            # a quarter of every batch stays unattacked; the rest gets one attack
            name = train_attacks[int(torch.randint(0, len(train_attacks), (1,), generator=gen))]
            k = a.batch // 4
            y = torch.cat([y[:k], quantize(attack(y[k:], name, gen, True).clamp(-1, 1))])
        logits = (det(y).flatten(1) @ pool.T)
        bce = F.binary_cross_entropy_with_logits(logits, m.flatten(1))
        img = (((x + r).clamp(-1, 1) - x) / 2).pow(2).mean()
        loss = bce + a.lam * img / 1e-3
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 25 == 0:
            acc = ((logits > 0).float() == m.flatten(1)).float().mean().item()
            p = 10 * math.log10(1 / max(img.item(), 1e-12))
            log.append((step, round(time.time() - t0, 1), round(bce.item(), 4), round(acc, 4), round(p, 2)))
            print(f"step {step} {time.time() - t0:.0f}s bce {bce.item():.4f} bit acc {acc:.4f} psnr {p:.2f} lr {lr:.2e}", flush=True)
    os.makedirs(a.out, exist_ok=True)
    tensors = {f"injector.{k}": v for k, v in inj.state_dict().items()}
    tensors.update({f"detector.{k}": v for k, v in det.state_dict().items()})
    st.save(os.path.join(a.out, "model.safetensors"), {k: v.float() for k, v in tensors.items()})
    cfg = {"_class_name": "SafeSDWatermark", "modules": N, "image_size": S, "channels": 1,
           "injector_channels": a.inj_ch, "detector_channels": a.det_ch, "strength": a.strength,
           "layers": 4, "activation": "silu", "version": 1,
           "train": {"steps": step, "seconds": round(time.time() - t0, 1), "batch": a.batch, "lr": a.lr,
                     "lambda": a.lam, "warmup": a.warmup, "seed": a.seed, "attacks": train_attacks}}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(a.loss, "w") as f:
        f.write("step,seconds,bce,bit_acc,psnr\n")
        for row in log:
            f.write(",".join(str(v) for v in row) + "\n")
    print(f"wrote {a.out}", flush=True)


def load(out):
    cfg = json.load(open(os.path.join(out, "config.json")))
    w = st.load(os.path.join(out, "model.safetensors"))
    inj, det = Injector(cfg["injector_channels"], cfg["strength"]), Detector(cfg["detector_channels"])
    inj.load_state_dict({k[9:]: torch.from_numpy(v) for k, v in w.items() if k.startswith("injector.")})
    det.load_state_dict({k[9:]: torch.from_numpy(v) for k, v in w.items() if k.startswith("detector.")})
    return inj.eval(), det.eval()


@torch.no_grad()
def test(a):
    inj, det = load(a.out)
    xs = load_images("test")[: a.n]
    gen = torch.Generator().manual_seed(1)
    fmask, fval = (torch.from_numpy(v) for v in function_template())
    m = random_modules(len(xs), gen, fmask, fval)
    y = quantize((xs + inj(xs, plane(m))).clamp(-1, 1))
    pool = pool_matrix()
    print(f"{len(xs)} test images, PSNR marked vs original {psnr(y, xs):.2f} dB")
    for name in ATTACKS:
        ya = quantize(attack(y, name, gen, False).clamp(-1, 1))
        lg = det(ya).flatten(1) @ pool.T
        acc = ((lg > 0).float() == m.flatten(1)).float()
        free = ~fmask.flatten()
        print(f"{name:9s} bit acc {acc.mean():.4f}  (non-function modules {acc[:, free].mean():.4f}, "
              f"worst image {acc[:, free].mean(1).min():.4f})")
    lg = det(xs).flatten(1) @ pool.T
    print(f"clean images: mean |p − 0.5| {(torch.sigmoid(lg) - 0.5).abs().mean():.3f}")


GOLDEN_DIR = os.path.join(HERE, "..", "..", "testdata", "golden-fashion", "safesd")


@torch.no_grad()
def golden(a):
    """PyTorch's outputs of the shipped networks on 4 test images and
    QR-shaped messages (testdata/golden-fashion/safesd/io.safetensors):
    TestGoldenFashionSafeSD checks retrace reproduces them."""
    inj, det = load(a.out)
    x = load_images("test")[:4]
    gen = torch.Generator().manual_seed(3)
    fmask, fval = (torch.from_numpy(v) for v in function_template())
    m = random_modules(4, gen, fmask, fval)
    marked = (x + inj(x, plane(m))).clamp(-1, 1)
    os.makedirs(a.golden, exist_ok=True)
    st.save(os.path.join(a.golden, "io.safetensors"), {
        "in.x": x, "in.modules": m.flatten(1), "out.marked": marked, "out.logits": det(marked)})
    print(f"wrote {a.golden}/io.safetensors")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["train", "test", "golden"])
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lam", type=float, default=0.05, help="weight of the image MSE (per 1e-3, i.e. 30 dB)")
    ap.add_argument("--strength", type=float, default=0.25, help="max |residual| in [-1,1] units")
    ap.add_argument("--inj-ch", type=int, default=24)
    ap.add_argument("--det-ch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=600, help="steps without attacks")
    ap.add_argument("--train-attacks", default="jpeg75,blur1,noise005,bright20",
                    help="attacks simulated in training (crop and rotation move modules across pixels, which the "
                         "pixel-aligned design cannot follow; training on them only cost accuracy elsewhere)")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--loss", default=os.path.join(HERE, "safesd_loss.csv"), help="where the loss curve goes")
    ap.add_argument("--n", type=int, default=1000, help="test images")
    ap.add_argument("--golden", default=GOLDEN_DIR)
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    {"train": train, "test": test, "golden": golden}[a.cmd](a)


if __name__ == "__main__":
    main()
