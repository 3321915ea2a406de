"""Train retrace's default model: a small UNet2DConditionModel (pixel space,
1×32×32) as an epsilon-prediction DDPM on Fashion-MNIST, conditioned through
cross-attention on a learned per-class token sequence (ClassPromptEncoder),
with a null class for classifier-free guidance.

  /usr/bin/python3 tools/train/train.py --out tools/train/out [--steps N] [--minutes M] [--resume]

Writes <out>/ckpt.pt every --ckpt-minutes (model, EMA model, optimizer,
step) and <out>/loss.csv. Export with export.py.
"""
import argparse
import copy
import csv
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from unet import ClassPromptEncoder, UNet2DConditionModel, default_config  # noqa: E402

# The model: attention (cross-attention to the class tokens) at the 8×8
# level (down block 2, mid block, up block 0) keeps training fast on CPU.
UNET_CONFIG = default_config(
    block_out_channels=[32, 64, 64],
    down_block_types=["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    layers_per_block=1,
    attention_head_dim=4,
    cross_attention_dim=64,
    norm_num_groups=16,
    in_channels=1,
    out_channels=1,
    sample_size=32,
)
TOKENS = 4
NULL = len(data.CLASSES)
# DDPM schedule (diffusers DDPMScheduler defaults): linear betas.
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear")


def alphas_cumprod():
    s = SCHEDULE
    betas = torch.linspace(s["beta_start"], s["beta_end"], s["num_train_timesteps"], dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0)


def build():
    unet = UNet2DConditionModel(UNET_CONFIG)
    enc = ClassPromptEncoder(len(data.CLASSES), TOKENS, UNET_CONFIG["cross_attention_dim"])
    return unet, enc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tools/train/out")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--minutes", type=float, default=60.0, help="stop (and checkpoint) after this much wall clock")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--decay-start", type=int, default=0,
                    help="from this step on, the learning rate decays linearly to lr/10 at --steps (0: constant)")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--p-uncond", type=float, default=0.12)
    ap.add_argument("--seed", type=int, default=20240609)
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    x, y = data.load("train")
    X = torch.from_numpy(data.to_model_space(x))
    Y = torch.from_numpy(y)
    unet, enc = build()
    params = list(unet.parameters()) + list(enc.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    ema_unet, ema_enc = copy.deepcopy(unet), copy.deepcopy(enc)
    for p in list(ema_unet.parameters()) + list(ema_enc.parameters()):
        p.requires_grad_(False)
    step, elapsed0 = 0, 0.0
    ck = os.path.join(a.out, "ckpt.pt")
    losspath = os.path.join(a.out, "loss.csv")
    if a.resume and os.path.exists(ck):
        s = torch.load(ck)
        unet.load_state_dict(s["unet"]); enc.load_state_dict(s["enc"])
        ema_unet.load_state_dict(s["ema_unet"]); ema_enc.load_state_dict(s["ema_enc"])
        opt.load_state_dict(s["opt"]); step = s["step"]; elapsed0 = s["elapsed"]
        torch.set_rng_state(s["torch_rng"]); rng = s["np_rng"]
        print(f"resumed at step {step}", flush=True)
    else:
        with open(losspath, "w") as f:
            f.write("step,elapsed_s,loss\n")
    ac = alphas_cumprod()
    T = SCHEDULE["num_train_timesteps"]
    t0 = time.time() - elapsed0
    last_ck = time.time()
    run_loss, run_n = 0.0, 0

    def save():
        s = {"unet": unet.state_dict(), "enc": enc.state_dict(), "ema_unet": ema_unet.state_dict(),
             "ema_enc": ema_enc.state_dict(), "opt": opt.state_dict(), "step": step,
             "elapsed": time.time() - t0, "torch_rng": torch.get_rng_state(), "np_rng": rng,
             "args": vars(a), "unet_config": UNET_CONFIG, "tokens": TOKENS, "schedule": SCHEDULE}
        torch.save(s, ck + ".tmp")
        os.replace(ck + ".tmp", ck)
        print(f"checkpoint step {step} ({(time.time() - t0) / 60:.1f} min)", flush=True)

    perm, pos = rng.permutation(len(X)), 0
    while step < a.steps and time.time() - t0 < a.minutes * 60:
        if pos + a.batch > len(perm):
            perm, pos = rng.permutation(len(X)), 0
        idx = torch.from_numpy(perm[pos:pos + a.batch]); pos += a.batch
        x0, lab = X[idx], Y[idx].clone()
        lab[torch.rand(len(lab)) < a.p_uncond] = NULL
        t = torch.randint(0, T, (len(x0),))
        eps = torch.randn_like(x0)
        abar = ac[t].view(-1, 1, 1, 1)
        xt = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
        pred = unet(xt, t, enc(lab))
        loss = F.mse_loss(pred, eps)
        f = min(1.0, (step + 1) / a.warmup)
        if a.decay_start > 0 and step >= a.decay_start:
            f *= 1 - 0.9 * min(1.0, (step - a.decay_start) / max(1, a.steps - a.decay_start))
        for g in opt.param_groups:
            g["lr"] = a.lr * f
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for m, e in ((unet, ema_unet), (enc, ema_enc)):
                for p, q in zip(m.parameters(), e.parameters()):
                    q.mul_(d).add_(p.detach(), alpha=1 - d)
        run_loss += loss.item(); run_n += 1
        if step % 25 == 0:
            el = time.time() - t0
            with open(losspath, "a") as f:
                f.write(f"{step},{el:.1f},{run_loss / run_n:.5f}\n")
            print(f"step {step} loss {run_loss / run_n:.4f} {el / 60:.1f} min", flush=True)
            run_loss, run_n = 0.0, 0
        if time.time() - last_ck > a.ckpt_minutes * 60:
            save(); last_ck = time.time()
    save()
    print(f"done: {step} steps in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
