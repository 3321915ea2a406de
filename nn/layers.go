package nn

import "math"

// Linear is torch.nn.Linear: y = x·Wᵀ + b.
type Linear struct {
	Weight, Bias *Tensor
}

// LoadLinear loads <name>.weight [out,in] and, if bias, <name>.bias [out].
func LoadLinear(s Scope, name string, in, out int, bias bool) *Linear {
	l := &Linear{Weight: s.Tensor(name+".weight", out, in)}
	if bias {
		l.Bias = s.Tensor(name+".bias", out)
	}
	return l
}

// Forward applies the layer to x [..., in].
func (l *Linear) Forward(be Backend, x *Tensor) *Tensor { return be.Linear(x, l.Weight, l.Bias) }

// Conv2d is torch.nn.Conv2d (NCHW).
type Conv2d struct {
	Weight, Bias *Tensor
	P            Conv2dParams
}

// LoadConv2d loads <name>.weight [out,in,k,k] and <name>.bias [out] with
// stride and symmetric padding.
func LoadConv2d(s Scope, name string, in, out, k, stride, pad int, bias bool) *Conv2d {
	c := &Conv2d{Weight: s.Tensor(name+".weight", out, in, k, k), P: Conv2dSame(stride, pad)}
	if bias {
		c.Bias = s.Tensor(name+".bias", out)
	}
	return c
}

// Forward convolves x.
func (c *Conv2d) Forward(be Backend, x *Tensor) *Tensor { return be.Conv2d(x, c.Weight, c.Bias, c.P) }

// GroupNorm is torch.nn.GroupNorm (affine).
type GroupNorm struct {
	Weight, Bias *Tensor
	Groups       int
	Eps          float32
}

// LoadGroupNorm loads <name>.weight and <name>.bias [channels].
func LoadGroupNorm(s Scope, name string, groups, channels int, eps float32) *GroupNorm {
	return &GroupNorm{Weight: s.Tensor(name+".weight", channels), Bias: s.Tensor(name+".bias", channels), Groups: groups, Eps: eps}
}

// Forward normalises x; silu fuses the activation that usually follows.
func (g *GroupNorm) Forward(be Backend, x *Tensor, silu bool) *Tensor {
	return be.GroupNorm(x, g.Weight, g.Bias, g.Groups, g.Eps, silu)
}

// LayerNorm is torch.nn.LayerNorm over the last axis.
type LayerNorm struct {
	Weight, Bias *Tensor
	Eps          float32
}

// LoadLayerNorm loads <name>.weight and <name>.bias [dim].
func LoadLayerNorm(s Scope, name string, dim int, eps float32) *LayerNorm {
	return &LayerNorm{Weight: s.Tensor(name+".weight", dim), Bias: s.Tensor(name+".bias", dim), Eps: eps}
}

// Forward normalises x.
func (l *LayerNorm) Forward(be Backend, x *Tensor) *Tensor {
	return be.LayerNorm(x, l.Weight, l.Bias, l.Eps)
}

// ResnetBlock2D is diffusers' ResnetBlock2D with the "default" time scale
// shift: out = (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) +
// proj(silu(temb)))))) / outputScale.
type ResnetBlock2D struct {
	Norm1, Norm2 *GroupNorm
	Conv1, Conv2 *Conv2d
	TimeEmbProj  *Linear // nil without a time embedding (VAE)
	ConvShortcut *Conv2d // 1×1, when in ≠ out
	OutputScale  float32
}

// LoadResnetBlock2D loads a resnet with in→out channels; tembDim 0 means no
// time embedding.
func LoadResnetBlock2D(s Scope, in, out, tembDim, groups int, eps, outputScale float32) *ResnetBlock2D {
	r := &ResnetBlock2D{
		Norm1:       LoadGroupNorm(s, "norm1", groups, in, eps),
		Conv1:       LoadConv2d(s, "conv1", in, out, 3, 1, 1, true),
		Norm2:       LoadGroupNorm(s, "norm2", groups, out, eps),
		Conv2:       LoadConv2d(s, "conv2", out, out, 3, 1, 1, true),
		OutputScale: outputScale,
	}
	if tembDim > 0 {
		r.TimeEmbProj = LoadLinear(s, "time_emb_proj", tembDim, out, true)
	}
	if in != out {
		r.ConvShortcut = LoadConv2d(s, "conv_shortcut", in, out, 1, 1, 0, true)
	}
	return r
}

// Forward runs the block; temb [B, tembDim] may be nil when the block has no
// projection.
func (r *ResnetBlock2D) Forward(be Backend, x, temb *Tensor) *Tensor {
	h := r.Norm1.Forward(be, x, true)
	h2 := r.Conv1.Forward(be, h)
	Free(h)
	if r.TimeEmbProj != nil && temb != nil {
		st := be.Unary(SiLU, temb)
		t := r.TimeEmbProj.Forward(be, st)
		Free(st)
		if t != nil {
			t4 := Reshape(t, t.Dim(0), t.Dim(1), 1, 1)
			h3 := be.Binary(Add, h2, t4)
			Free(t, t4, h2)
			h2 = h3
		}
	}
	h = r.Norm2.Forward(be, h2, true)
	Free(h2)
	h2 = r.Conv2.Forward(be, h)
	Free(h)
	sc := x
	if r.ConvShortcut != nil {
		sc = r.ConvShortcut.Forward(be, x)
	}
	var out *Tensor
	if r.OutputScale == 1 || r.OutputScale == 0 {
		out = be.Binary(Add, sc, h2)
	} else {
		out = be.Axpby(1/r.OutputScale, sc, 1/r.OutputScale, h2)
	}
	if sc != x {
		Free(sc)
	}
	Free(h2)
	return out
}

// AttentionHook lets a caller observe or replace the attention of every
// transformer block (prompt-to-prompt, Direct Inversion): it receives the
// projected q [B, Lq, H·D], k, v [B, Lk, H·D] and returns the attention
// output [B, Lq, H·D]. Name is the module's weight prefix
// ("down_blocks.0.attentions.1.transformer_blocks.0.attn2"). Returning nil
// falls back to the fused kernel.
type AttentionHook func(be Backend, name string, q, k, v *Tensor, heads int, scale float32) *Tensor

// Attention is diffusers' Attention processor for the UNet and VAE:
// q, k, v projections, multi-head scaled-dot-product attention and the
// output projection. Spatial inputs [B, C, H, W] (UNet2DModel / VAE attention
// blocks) get the optional group norm, residual and rescale.
type Attention struct {
	Name                 string
	Heads                int
	DimHead              int
	GroupNorm            *GroupNorm // spatial blocks only
	ToQ, ToK, ToV, ToOut *Linear
	Residual             bool
	RescaleOutput        float32
	Hook                 *AttentionHook
}

// LegacyAttentionAliases maps current diffusers attention names to the
// legacy names (query/key/value/proj_attn) of google/ddpm-* and SD-1.x VAE
// checkpoints.
func LegacyAttentionAliases(name string) []string {
	for cur, old := range map[string]string{".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."} {
		if i := lastIndex(name, cur); i >= 0 {
			return []string{name[:i] + old + name[i+len(cur):]}
		}
	}
	return nil
}

func lastIndex(s, sub string) int {
	for i := len(s) - len(sub); i >= 0; i-- {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// LoadAttention loads a diffusers Attention of queryDim channels attending
// over crossDim-wide context (crossDim = queryDim for self-attention).
// qkvBias: whether to_q/to_k/to_v have biases (UNet transformer blocks:
// no; UNet2DModel / VAE spatial attention: yes).
func LoadAttention(s Scope, queryDim, crossDim, heads, dimHead int, qkvBias bool) *Attention {
	inner := heads * dimHead
	return &Attention{
		Name:          s.Prefix,
		Heads:         heads,
		DimHead:       dimHead,
		ToQ:           LoadLinear(s, "to_q", queryDim, inner, qkvBias),
		ToK:           LoadLinear(s, "to_k", crossDim, inner, qkvBias),
		ToV:           LoadLinear(s, "to_v", crossDim, inner, qkvBias),
		ToOut:         LoadLinear(s, "to_out.0", inner, queryDim, true),
		RescaleOutput: 1,
	}
}

// Forward attends x [B, L, C] over ctx [B, Lk, Cctx] (nil: self-attention).
func (a *Attention) Forward(be Backend, x, ctx *Tensor) *Tensor {
	if ctx == nil {
		ctx = x
	}
	q := a.ToQ.Forward(be, x)
	k := a.ToK.Forward(be, ctx)
	v := a.ToV.Forward(be, ctx)
	scale := float32(1 / math.Sqrt(float64(a.DimHead)))
	var o *Tensor
	if a.Hook != nil && *a.Hook != nil && q != nil && k != nil && v != nil {
		o = (*a.Hook)(be, a.Name, q, k, v, a.Heads, scale)
	}
	if o == nil {
		if a.DimHead > MaxFusedHeadDim {
			o = AttentionExplicit(be, q, k, v, a.Heads, scale)
		} else {
			o = be.Attention(q, k, v, a.Heads, scale, false)
		}
	}
	Free(q, k, v)
	out := a.ToOut.Forward(be, o)
	Free(o)
	return out
}

// ForwardSpatial runs the attention block on x [B, C, H, W] as UNet2DModel
// and the VAE mid-block do: group norm, attention over the H·W positions,
// residual and rescale.
func (a *Attention) ForwardSpatial(be Backend, x *Tensor) *Tensor {
	if x == nil {
		return nil
	}
	b, c, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	hs := x
	if a.GroupNorm != nil {
		hs = a.GroupNorm.Forward(be, x, false)
	}
	flat := Reshape(hs, b, c, h*w)
	seq := be.Permute(flat, 0, 2, 1) // [B, HW, C]
	Free(flat)
	if hs != x {
		Free(hs)
	}
	o := a.Forward(be, seq, nil)
	Free(seq)
	back := be.Permute(o, 0, 2, 1) // [B, C, HW]
	Free(o)
	o4 := Reshape(back, b, c, h, w)
	Free(back)
	if a.Residual {
		r := be.Binary(Add, o4, x)
		Free(o4)
		o4 = r
	}
	if a.RescaleOutput != 1 && a.RescaleOutput != 0 {
		r := be.Affine(o4, 1/a.RescaleOutput, 0)
		Free(o4)
		o4 = r
	}
	return o4
}

// FeedForward is diffusers' FeedForward with GEGLU: net.0.proj (dim → 2·inner),
// h·GELU(gate), net.2 (inner → dim).
type FeedForward struct {
	Proj, Out *Linear
}

// LoadFeedForward loads ff.net.0.proj and ff.net.2.
func LoadFeedForward(s Scope, dim, inner int) *FeedForward {
	return &FeedForward{Proj: LoadLinear(s, "net.0.proj", dim, 2*inner, true), Out: LoadLinear(s, "net.2", inner, dim, true)}
}

// Forward applies the feed-forward network to x [..., dim].
func (f *FeedForward) Forward(be Backend, x *Tensor) *Tensor {
	h := f.Proj.Forward(be, x)
	g := be.GEGLU(h)
	Free(h)
	o := f.Out.Forward(be, g)
	Free(g)
	return o
}

// BasicTransformerBlock is diffusers' BasicTransformerBlock with layer norms:
// self-attention, cross-attention and a GEGLU feed-forward, each with a
// residual.
type BasicTransformerBlock struct {
	Norm1, Norm2, Norm3 *LayerNorm
	Attn1, Attn2        *Attention
	FF                  *FeedForward
}

// LoadBasicTransformerBlock loads one block of dim channels.
func LoadBasicTransformerBlock(s Scope, dim, crossDim, heads, dimHead int) *BasicTransformerBlock {
	return &BasicTransformerBlock{
		Norm1: LoadLayerNorm(s, "norm1", dim, 1e-5),
		Attn1: LoadAttention(s.Sub("attn1"), dim, dim, heads, dimHead, false),
		Norm2: LoadLayerNorm(s, "norm2", dim, 1e-5),
		Attn2: LoadAttention(s.Sub("attn2"), dim, crossDim, heads, dimHead, false),
		Norm3: LoadLayerNorm(s, "norm3", dim, 1e-5),
		FF:    LoadFeedForward(s.Sub("ff"), dim, 4*dim),
	}
}

// Forward runs the block on x [B, L, dim] with context ctx [B, Lk, crossDim].
func (t *BasicTransformerBlock) Forward(be Backend, x, ctx *Tensor) *Tensor {
	step := func(h *Tensor, norm *LayerNorm, f func(*Tensor) *Tensor) *Tensor {
		n := norm.Forward(be, h)
		o := f(n)
		Free(n)
		r := be.Binary(Add, o, h)
		Free(o)
		return r
	}
	h1 := step(x, t.Norm1, func(n *Tensor) *Tensor { return t.Attn1.Forward(be, n, nil) })
	h2 := step(h1, t.Norm2, func(n *Tensor) *Tensor { return t.Attn2.Forward(be, n, ctx) })
	Free(h1)
	h3 := step(h2, t.Norm3, func(n *Tensor) *Tensor { return t.FF.Forward(be, n) })
	Free(h2)
	return h3
}

// Transformer2DModel is diffusers' Transformer2DModel for continuous inputs:
// group norm, proj_in (1×1 conv or linear), transformer blocks, proj_out,
// residual.
type Transformer2DModel struct {
	Norm            *GroupNorm
	ProjIn, ProjOut *Linear // use_linear_projection
	ConvIn, ConvOut *Conv2d // 1×1 convolutions otherwise
	Blocks          []*BasicTransformerBlock
}

// LoadTransformer2DModel loads a transformer of `channels` channels.
func LoadTransformer2DModel(s Scope, channels, crossDim, heads, dimHead, layers, groups int, linearProj bool) *Transformer2DModel {
	t := &Transformer2DModel{Norm: LoadGroupNorm(s, "norm", groups, channels, 1e-6)}
	inner := heads * dimHead
	if linearProj {
		t.ProjIn = LoadLinear(s, "proj_in", channels, inner, true)
		t.ProjOut = LoadLinear(s, "proj_out", inner, channels, true)
	} else {
		t.ConvIn = LoadConv2d(s, "proj_in", channels, inner, 1, 1, 0, true)
		t.ConvOut = LoadConv2d(s, "proj_out", inner, channels, 1, 1, 0, true)
	}
	for i := 0; i < layers; i++ {
		t.Blocks = append(t.Blocks, LoadBasicTransformerBlock(s.Sub("transformer_blocks", i), inner, crossDim, heads, dimHead))
	}
	return t
}

// SetHook routes every block's attention through hook.
func (t *Transformer2DModel) SetHook(hook *AttentionHook) {
	for _, b := range t.Blocks {
		b.Attn1.Hook, b.Attn2.Hook = hook, hook
	}
}

// Forward runs x [B, C, H, W] with context ctx [B, Lk, crossDim].
func (t *Transformer2DModel) Forward(be Backend, x, ctx *Tensor) *Tensor {
	if x == nil {
		return nil
	}
	b, c, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	n := t.Norm.Forward(be, x, false)
	var seq *Tensor
	toSeq := func(y *Tensor) *Tensor {
		if y == nil {
			return nil
		}
		ch := y.Dim(1)
		f := Reshape(y, b, ch, h*w)
		s := be.Permute(f, 0, 2, 1)
		Free(f)
		return s
	}
	fromSeq := func(y *Tensor) *Tensor {
		if y == nil {
			return nil
		}
		ch := y.Dim(2)
		p := be.Permute(y, 0, 2, 1)
		o := Reshape(p, b, ch, h, w)
		Free(p)
		return o
	}
	if t.ConvIn != nil {
		p := t.ConvIn.Forward(be, n)
		seq = toSeq(p)
		Free(p)
	} else {
		s := toSeq(n)
		seq = t.ProjIn.Forward(be, s)
		Free(s)
	}
	Free(n)
	for _, blk := range t.Blocks {
		nx := blk.Forward(be, seq, ctx)
		Free(seq)
		seq = nx
	}
	var out *Tensor
	if t.ConvOut != nil {
		sp := fromSeq(seq)
		out = t.ConvOut.Forward(be, sp)
		Free(sp)
	} else {
		o := t.ProjOut.Forward(be, seq)
		out = fromSeq(o)
		Free(o)
	}
	Free(seq)
	r := be.Binary(Add, out, x)
	Free(out)
	_ = c
	return r
}

// Downsample2D is a stride-2 3×3 convolution ("conv" downsampling); pad is
// the config's downsample_padding: 1 in UNets, 0 in the VAE encoder, which
// then pads (0,1,0,1) asymmetrically.
type Downsample2D struct{ Conv *Conv2d }

// LoadDownsample2D loads <prefix>.conv.
func LoadDownsample2D(s Scope, channels, pad int) *Downsample2D {
	c := LoadConv2d(s, "conv", channels, channels, 3, 2, pad, true)
	if pad == 0 {
		c.P = Conv2dParams{StrideH: 2, StrideW: 2, PadBottom: 1, PadRight: 1}
	}
	return &Downsample2D{Conv: c}
}

// Forward halves the resolution.
func (d *Downsample2D) Forward(be Backend, x *Tensor) *Tensor { return d.Conv.Forward(be, x) }

// Upsample2D is nearest 2× upsampling followed by a 3×3 convolution.
type Upsample2D struct{ Conv *Conv2d }

// LoadUpsample2D loads <prefix>.conv.
func LoadUpsample2D(s Scope, channels int) *Upsample2D {
	return &Upsample2D{Conv: LoadConv2d(s, "conv", channels, channels, 3, 1, 1, true)}
}

// Forward doubles the resolution.
func (u *Upsample2D) Forward(be Backend, x *Tensor) *Tensor {
	up := be.Upsample2x(x)
	o := u.Conv.Forward(be, up)
	Free(up)
	return o
}

// TimestepEmbedding is diffusers' TimestepEmbedding: linear_1, SiLU, linear_2.
type TimestepEmbedding struct{ L1, L2 *Linear }

// LoadTimestepEmbedding loads linear_1 (in→dim) and linear_2 (dim→dim).
func LoadTimestepEmbedding(s Scope, in, dim int) *TimestepEmbedding {
	return &TimestepEmbedding{L1: LoadLinear(s, "linear_1", in, dim, true), L2: LoadLinear(s, "linear_2", dim, dim, true)}
}

// Forward embeds the sinusoidal projection t [B, in].
func (e *TimestepEmbedding) Forward(be Backend, t *Tensor) *Tensor {
	h := e.L1.Forward(be, t)
	s := be.Unary(SiLU, h)
	Free(h)
	o := e.L2.Forward(be, s)
	Free(s)
	return o
}

// MaxFusedHeadDim is the largest head size sent to the fused (flash)
// attention kernel; larger heads (the SD VAE's single 512-wide head) use
// AttentionExplicit.
const MaxFusedHeadDim = 160

// AttentionProbs returns softmax(q·kᵀ·scale) per head, [B, H, Lq, Lk], for
// q [B, Lq, H·D] and k [B, Lk, H·D]. Attention hooks use it to read or
// edit attention maps (prompt-to-prompt).
func AttentionProbs(be Backend, q, k *Tensor, heads int, scale float32) *Tensor {
	if q == nil || k == nil {
		return nil
	}
	b, lq, lk, d := q.Dim(0), q.Dim(1), k.Dim(1), q.Dim(2)/heads
	q4 := Reshape(q, b, lq, heads, d)
	k4 := Reshape(k, b, lk, heads, d)
	qh := be.Permute(q4, 0, 2, 1, 3) // [B, H, Lq, D]
	kh := be.Permute(k4, 0, 2, 1, 3) // [B, H, Lk, D]
	Free(q4, k4)
	s := be.MatMul(qh, kh, false, true) // [B, H, Lq, Lk]
	Free(qh, kh)
	ss := be.Affine(s, scale, 0)
	Free(s)
	p := be.Softmax(ss)
	Free(ss)
	return p
}

// AttentionApply multiplies probabilities [B, H, Lq, Lk] with v [B, Lk, H·D]
// and returns [B, Lq, H·D].
func AttentionApply(be Backend, probs, v *Tensor) *Tensor {
	if probs == nil || v == nil {
		return nil
	}
	b, heads, lq, lk := probs.Dim(0), probs.Dim(1), probs.Dim(2), probs.Dim(3)
	d := v.Dim(2) / heads
	v4 := Reshape(v, b, lk, heads, d)
	vh := be.Permute(v4, 0, 2, 1, 3) // [B, H, Lk, D]
	Free(v4)
	o := be.MatMul(probs, vh, false, false) // [B, H, Lq, D]
	Free(vh)
	ot := be.Permute(o, 0, 2, 1, 3) // [B, Lq, H, D]
	Free(o)
	r := Reshape(ot, b, lq, heads*d)
	Free(ot)
	return r
}

// AttentionExplicit computes attention with the full score matrix (for
// head sizes beyond the fused kernel, and for hooks that need the maps).
func AttentionExplicit(be Backend, q, k, v *Tensor, heads int, scale float32) *Tensor {
	p := AttentionProbs(be, q, k, heads, scale)
	o := AttentionApply(be, p, v)
	Free(p)
	return o
}
