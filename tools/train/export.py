"""Export a training checkpoint (EMA weights) as
  - a diffusers-layout pipeline folder (default models/fashion):
      model_index.json
      unet/config.json, unet/diffusion_pytorch_model.safetensors   (F16 by default)
      text_encoder/config.json, text_encoder/model.safetensors      (ClassPromptEncoder)
      scheduler/scheduler_config.json                               (DDIMScheduler)
  - golden pairs in the fixture layout (default testdata/golden-fashion/unet:
      config.json, weights.safetensors (F32), io.safetensors, meta.json)
    computed by this PyTorch model, for retrace's TestGoldenFashionUNet.

  /usr/bin/python3 tools/train/export.py --ckpt tools/train/out/ckpt.pt
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import st  # noqa: E402
from unet import ClassPromptEncoder, UNet2DConditionModel  # noqa: E402

SCHEDULER_CONFIG = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.30.3",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "clip_sample": True,
    "clip_sample_range": 1.0,
    "dynamic_thresholding_ratio": 0.995,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "thresholding": False,
    "timestep_spacing": "leading",
    "trained_betas": None,
}


def dump(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def load_ckpt(path, ema=True):
    s = torch.load(path)
    unet = UNet2DConditionModel(s["unet_config"])
    enc = ClassPromptEncoder(len(data.CLASSES), s["tokens"], s["unet_config"]["cross_attention_dim"])
    unet.load_state_dict(s["ema_unet" if ema else "unet"])
    enc.load_state_dict(s["ema_enc" if ema else "enc"])
    unet.eval(); enc.eval()
    return unet, enc, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="tools/train/out/ckpt.pt")
    ap.add_argument("--out", default="models/fashion")
    ap.add_argument("--golden", default="testdata/golden-fashion")
    ap.add_argument("--dtype", default="f16", choices=["f16", "f32"])
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    unet, enc, s = load_ckpt(a.ckpt)
    cfg = s["unet_config"]
    tokens, dim = s["tokens"], cfg["cross_attention_dim"]
    sd = {k: v.detach().float().numpy() for k, v in unet.state_dict().items()}
    wdt = np.float16 if a.dtype == "f16" else np.float32
    meta = {"format": "pt", "trained_steps": s["step"], "source": "retrace tools/train"}

    dump(os.path.join(a.out, "model_index.json"), {
        "_class_name": "RetraceClassPipeline",
        "_diffusers_version": "0.30.3",
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["retrace", "ClassPromptEncoder"],
        "tokenizer": [None, None],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": [None, None],
    })
    dump(os.path.join(a.out, "unet", "config.json"), cfg)
    st.save(os.path.join(a.out, "unet", "diffusion_pytorch_model.safetensors"),
            {k: v.astype(wdt) for k, v in sd.items()}, meta)
    dump(os.path.join(a.out, "text_encoder", "config.json"), {
        "_class_name": "ClassPromptEncoder", "classes": data.CLASSES, "tokens": tokens, "dim": dim,
        "null_class": len(data.CLASSES)})
    st.save(os.path.join(a.out, "text_encoder", "model.safetensors"),
            {"embedding.weight": enc.embedding.weight.detach().float().numpy()}, meta)
    dump(os.path.join(a.out, "scheduler", "scheduler_config.json"), SCHEDULER_CONFIG)

    # Golden pairs: the F32 weights, two samples at two timesteps with two
    # real class conditionings (and the exact same model in PyTorch).
    g = os.path.join(a.golden, "unet")
    dump(os.path.join(g, "config.json"), cfg)
    st.save(os.path.join(g, "weights.safetensors"), sd)
    gen = torch.Generator().manual_seed(a.seed)
    sample = torch.randn(2, cfg["in_channels"], cfg["sample_size"], cfg["sample_size"], generator=gen)
    timestep = torch.tensor([981, 37], dtype=torch.int64)
    with torch.no_grad():
        ctx = enc(torch.tensor([9, len(data.CLASSES)]))  # "ankle boot", null
        out = unet(sample, timestep, ctx)
        out64 = UNet2DConditionModel(cfg).double()
        out64.load_state_dict(unet.state_dict())
        o64 = out64(sample.double(), timestep, ctx.double())
    diff = (out.double() - o64).abs().max().item()
    st.save(os.path.join(g, "io.safetensors"), {
        "in.sample": sample, "in.timestep": timestep, "in.encoder_hidden_states": ctx, "out.sample": out})
    dump(os.path.join(g, "meta.json"), {
        "call": "out.sample = unet(in.sample, in.timestep, encoder_hidden_states=in.encoder_hidden_states).sample",
        "notes": "retrace's default Fashion-MNIST model (tools/train/unet.py, a PyTorch re-implementation of "
                 "diffusers' UNet2DConditionModel with identical state_dict keys), EMA weights after "
                 f"{s['step']} training steps; encoder_hidden_states = text_encoder rows 9 ('ankle boot') and 10 (null)",
        "library_versions": {"torch": torch.__version__},
        "seed": a.seed,
        "tensors": {"out.sample": {"shape": list(out.shape), "max_abs": out.abs().max().item(),
                                   "f32_vs_f64_max_abs_diff": diff, "suggested_atol": 1e-4}},
    })
    print(f"exported step {s['step']} to {a.out} ({a.dtype}) and {g}; f32 vs f64 {diff:.2e}")


if __name__ == "__main__":
    main()
