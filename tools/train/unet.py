"""A minimal re-implementation of diffusers' UNet2DConditionModel (0.30) in
plain PyTorch: same module tree, so state_dict() keys are exactly diffusers'
names and the exported folder loads with
UNet2DConditionModel.from_pretrained (and retrace's nn.LoadUNet2DConditionModel).

Supported subset (the one retrace's loader supports): act_fn silu,
resnet_time_scale_shift default, positional time embedding, block types
CrossAttnDownBlock2D / DownBlock2D / CrossAttnUpBlock2D / UpBlock2D,
mid block UNetMidBlock2DCrossAttn, transformer_layers_per_block 1,
use_linear_projection false, attention_head_dim = number of heads (the
legacy UNet2DConditionModel meaning).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def default_config(**kw):
    cfg = {
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": "0.30.3",
        "act_fn": "silu",
        "addition_embed_type": None,
        "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": None,
        "attention_head_dim": 4,
        "attention_type": "default",
        "block_out_channels": [32, 64, 64],
        "center_input_sample": False,
        "class_embed_type": None,
        "class_embeddings_concat": False,
        "conv_in_kernel": 3,
        "conv_out_kernel": 3,
        "cross_attention_dim": 64,
        "cross_attention_norm": None,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1,
        "dropout": 0.0,
        "dual_cross_attention": False,
        "encoder_hid_dim": None,
        "encoder_hid_dim_type": None,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 1,
        "layers_per_block": 1,
        "mid_block_only_cross_attention": None,
        "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-05,
        "norm_num_groups": 16,
        "num_attention_heads": None,
        "num_class_embeds": None,
        "only_cross_attention": False,
        "out_channels": 1,
        "projection_class_embeddings_input_dim": None,
        "resnet_out_scale_factor": 1.0,
        "resnet_skip_time_act": False,
        "resnet_time_scale_shift": "default",
        "reverse_transformer_layers_per_block": None,
        "sample_size": 32,
        "time_cond_proj_dim": None,
        "time_embedding_act_fn": None,
        "time_embedding_dim": None,
        "time_embedding_type": "positional",
        "timestep_post_act": None,
        "transformer_layers_per_block": 1,
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "upcast_attention": False,
        "use_linear_projection": False,
    }
    cfg.update(kw)
    return cfg


def timestep_sinusoid(t, dim, flip_sin_to_cos=True, shift=0.0, max_period=10000):
    """diffusers get_timestep_embedding."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32) / (half - shift)
    emb = t[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return emb


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps, scale=1.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.scale = scale

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))  # dropout 0
        sc = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return (sc + h) / self.scale


class Attention(nn.Module):
    def __init__(self, qdim, cdim, heads, dhead):
        super().__init__()
        inner = heads * dhead
        self.heads, self.dhead = heads, dhead
        self.to_q = nn.Linear(qdim, inner, bias=False)
        self.to_k = nn.Linear(cdim, inner, bias=False)
        self.to_v = nn.Linear(cdim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, qdim), nn.Dropout(0.0)])

    def forward(self, x, ctx=None):
        ctx = x if ctx is None else ctx
        b, n, _ = x.shape
        m = ctx.shape[1]
        q = self.to_q(x).view(b, n, self.heads, self.dhead).transpose(1, 2)
        k = self.to_k(ctx).view(b, m, self.heads, self.dhead).transpose(1, 2)
        v = self.to_v(ctx).view(b, m, self.heads, self.dhead).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) * (self.dhead ** -0.5), dim=-1)
        o = (a @ v).transpose(1, 2).reshape(b, n, self.heads * self.dhead)
        return self.to_out[0](o)


class GEGLU(nn.Module):
    def __init__(self, din, dout):
        super().__init__()
        self.proj = nn.Linear(din, dout * 2)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * 4), nn.Dropout(0.0), nn.Linear(dim * 4, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, cdim, heads, dhead):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, dim, heads, dhead)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, cdim, heads, dhead)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, ctx):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), ctx) + x
        return self.ff(self.norm3(x)) + x


class Transformer2DModel(nn.Module):
    def __init__(self, ch, cdim, heads, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.proj_in = nn.Conv2d(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(ch, cdim, heads, ch // heads)])
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        r = x
        y = self.proj_in(self.norm(x))
        y = y.permute(0, 2, 3, 1).reshape(b, h * w, c)
        for blk in self.transformer_blocks:
            y = blk(y, ctx)
        y = y.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()
        return self.proj_out(y) + r


class Downsample2D(nn.Module):
    def __init__(self, ch, pad):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=pad)

    def forward(self, x):
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Block(nn.Module):
    """CrossAttnDownBlock2D / DownBlock2D / CrossAttnUpBlock2D / UpBlock2D."""

    def __init__(self):
        super().__init__()
        self.resnets = nn.ModuleList()
        self.attentions = None


class UNetMidBlock2DCrossAttn(nn.Module):
    def __init__(self, ch, temb, cdim, heads, groups, eps, scale):
        super().__init__()
        self.attentions = nn.ModuleList([Transformer2DModel(ch, cdim, heads, groups)])
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, temb, groups, eps, scale) for _ in range(2)])

    def forward(self, h, temb, ctx):
        h = self.resnets[0](h, temb)
        h = self.attentions[0](h, ctx)
        return self.resnets[1](h, temb)


class UNet2DConditionModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        c = config
        boc = c["block_out_channels"]
        nb = len(boc)
        lpb = c["layers_per_block"]
        heads = c["attention_head_dim"]
        cdim = c["cross_attention_dim"]
        g, eps = c["norm_num_groups"], c["norm_eps"]
        tdim = boc[0] * 4
        self.conv_in = nn.Conv2d(c["in_channels"], boc[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(boc[0], tdim)
        self.down_blocks = nn.ModuleList()
        out = boc[0]
        for i, typ in enumerate(c["down_block_types"]):
            cin, out = out, boc[i]
            b = Block()
            attn = typ == "CrossAttnDownBlock2D"
            assert attn or typ == "DownBlock2D", typ
            if attn:
                b.attentions = nn.ModuleList()
            for j in range(lpb):
                b.resnets.append(ResnetBlock2D(cin if j == 0 else out, out, tdim, g, eps))
                if attn:
                    b.attentions.append(Transformer2DModel(out, cdim, heads, g))
            if i < nb - 1:
                b.downsamplers = nn.ModuleList([Downsample2D(out, c["downsample_padding"])])
            else:
                b.downsamplers = None
            self.down_blocks.append(b)
        self.mid_block = UNetMidBlock2DCrossAttn(boc[-1], tdim, cdim, heads, g, eps, c["mid_block_scale_factor"])
        rboc = list(reversed(boc))
        self.up_blocks = nn.ModuleList()
        out = rboc[0]
        for i, typ in enumerate(c["up_block_types"]):
            prev, out = out, rboc[i]
            cin = rboc[min(i + 1, nb - 1)]
            b = Block()
            attn = typ == "CrossAttnUpBlock2D"
            assert attn or typ == "UpBlock2D", typ
            if attn:
                b.attentions = nn.ModuleList()
            for j in range(lpb + 1):
                skip = cin if j == lpb else out
                rin = prev if j == 0 else out
                b.resnets.append(ResnetBlock2D(rin + skip, out, tdim, g, eps))
                if attn:
                    b.attentions.append(Transformer2DModel(out, cdim, heads, g))
            b.upsamplers = nn.ModuleList([Upsample2D(out)]) if i < nb - 1 else None
            self.up_blocks.append(b)
        self.conv_norm_out = nn.GroupNorm(g, boc[0], eps=eps)
        self.conv_out = nn.Conv2d(boc[0], c["out_channels"], 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        c = self.config
        t = timestep
        if not torch.is_tensor(t):
            t = torch.tensor([t])
        if t.dim() == 0:
            t = t[None]
        t = t.expand(sample.shape[0])
        temb = self.time_embedding(timestep_sinusoid(t, c["block_out_channels"][0], c["flip_sin_to_cos"], c["freq_shift"]).to(sample.dtype))
        ctx = encoder_hidden_states
        h = self.conv_in(sample)
        skips = [h]
        for b in self.down_blocks:
            for j, r in enumerate(b.resnets):
                h = r(h, temb)
                if b.attentions is not None:
                    h = b.attentions[j](h, ctx)
                skips.append(h)
            if b.downsamplers is not None:
                h = b.downsamplers[0](h)
                skips.append(h)
        h = self.mid_block(h, temb, ctx)
        for b in self.up_blocks:
            for j, r in enumerate(b.resnets):
                h = torch.cat([h, skips.pop()], dim=1)
                h = r(h, temb)
                if b.attentions is not None:
                    h = b.attentions[j](h, ctx)
            if b.upsamplers is not None:
                h = b.upsamplers[0](h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class ClassPromptEncoder(nn.Module):
    """Learned conditioning: one sequence of `tokens` vectors of width `dim`
    per class, plus the null class (index len(classes)) for classifier-free
    guidance. Exported weight: embedding.weight [classes+1, tokens*dim]."""

    def __init__(self, nclasses, tokens, dim):
        super().__init__()
        self.tokens, self.dim = tokens, dim
        self.embedding = nn.Embedding(nclasses + 1, tokens * dim)
        nn.init.normal_(self.embedding.weight, std=1.0)

    def forward(self, labels):
        return self.embedding(labels).view(-1, self.tokens, self.dim)
