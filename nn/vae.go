package nn

import (
	"fmt"
	"path/filepath"
)

// AutoencoderKLConfig is the config.json of diffusers' AutoencoderKL.
type AutoencoderKLConfig struct {
	ClassName            string   `json:"_class_name"`
	InChannels           int      `json:"in_channels"`
	OutChannels          int      `json:"out_channels"`
	DownBlockTypes       []string `json:"down_block_types"`
	UpBlockTypes         []string `json:"up_block_types"`
	BlockOutChannels     []int    `json:"block_out_channels"`
	LayersPerBlock       int      `json:"layers_per_block"`
	ActFn                string   `json:"act_fn"`
	LatentChannels       int      `json:"latent_channels"`
	NormNumGroups        int      `json:"norm_num_groups"`
	SampleSize           any      `json:"sample_size"`
	ScalingFactor        float32  `json:"scaling_factor"`
	ShiftFactor          *float32 `json:"shift_factor"`
	UseQuantConv         *bool    `json:"use_quant_conv"`
	UsePostQuantConv     *bool    `json:"use_post_quant_conv"`
	MidBlockAddAttention *bool    `json:"mid_block_add_attention"`
	ForceUpcast          bool     `json:"force_upcast"`
	LatentsMean          any      `json:"latents_mean"`
	LatentsStd           any      `json:"latents_std"`
}

// vaeCoder is the Encoder or the Decoder of an AutoencoderKL.
type vaeCoder struct {
	ConvIn      *Conv2d
	Blocks      []*unetBlock
	Mid         *midBlock
	ConvNormOut *GroupNorm
	ConvOut     *Conv2d
}

// AutoencoderKL is diffusers' AutoencoderKL (the Stable Diffusion VAE).
type AutoencoderKL struct {
	Config        AutoencoderKLConfig
	Encoder       *vaeCoder
	Decoder       *vaeCoder
	QuantConv     *Conv2d
	PostQuantConv *Conv2d
	weights       []*Tensor
}

// LatentDist is the encoder's diagonal Gaussian: mean and logvar (clamped
// to [−30, 20]) [B, latent, H/f, W/f].
type LatentDist struct {
	Mean, LogVar *Tensor
}

// Std returns exp(logvar/2).
func (d LatentDist) Std(be Backend) *Tensor {
	h := be.Affine(d.LogVar, 0.5, 0)
	s := be.Unary(Exp, h)
	Free(h)
	return s
}

// Free releases both tensors.
func (d LatentDist) Free() { Free(d.Mean, d.LogVar) }

func loadVAEMid(s Scope, ch, groups int) *midBlock {
	m := &midBlock{}
	for j := 0; j < 2; j++ {
		m.Resnets = append(m.Resnets, LoadResnetBlock2D(s.Sub("resnets", j), ch, ch, 0, groups, 1e-6, 1))
	}
	return m
}

// LoadAutoencoderKL builds the VAE from its config and weights; legacy
// attention names (query/key/value/proj_attn) of SD-1.x checkpoints are
// accepted.
func LoadAutoencoderKL(cfg AutoencoderKLConfig, w *Weights) (*AutoencoderKL, error) {
	t := true
	if cfg.UseQuantConv == nil {
		cfg.UseQuantConv = &t
	}
	if cfg.UsePostQuantConv == nil {
		cfg.UsePostQuantConv = &t
	}
	if cfg.MidBlockAddAttention == nil {
		cfg.MidBlockAddAttention = &t
	}
	if cfg.ActFn == "" {
		cfg.ActFn = "silu"
	}
	if cfg.NormNumGroups == 0 {
		cfg.NormNumGroups = 32
	}
	if cfg.LayersPerBlock == 0 {
		cfg.LayersPerBlock = 1
	}
	if cfg.LatentChannels == 0 {
		cfg.LatentChannels = 4
	}
	if cfg.ScalingFactor == 0 {
		cfg.ScalingFactor = 0.18215
	}
	boc := cfg.BlockOutChannels
	nb := len(boc)
	switch {
	case nb == 0 || len(cfg.DownBlockTypes) != nb || len(cfg.UpBlockTypes) != nb:
		return nil, fmt.Errorf("vae: config needs matching block_out_channels, down_block_types and up_block_types")
	case cfg.ActFn != "silu":
		return nil, fmt.Errorf("vae: act_fn %q is not supported", cfg.ActFn)
	case cfg.InChannels <= 0 || cfg.OutChannels <= 0:
		return nil, fmt.Errorf("vae: config needs in_channels and out_channels")
	}
	for i, typ := range cfg.DownBlockTypes {
		if typ != "DownEncoderBlock2D" {
			return nil, fmt.Errorf("vae: down block type %q is not supported (encoder.down_blocks.%d)", typ, i)
		}
	}
	for i, typ := range cfg.UpBlockTypes {
		if typ != "UpDecoderBlock2D" {
			return nil, fmt.Errorf("vae: up block type %q is not supported (decoder.up_blocks.%d)", typ, i)
		}
	}
	w.Aliases = LegacyAttentionAliases
	g := cfg.NormNumGroups
	L := cfg.LatentChannels
	root := w.Root()
	m := &AutoencoderKL{Config: cfg}

	es := root.Sub("encoder")
	enc := &vaeCoder{ConvIn: LoadConv2d(es, "conv_in", cfg.InChannels, boc[0], 3, 1, 1, true)}
	out := boc[0]
	for i := range cfg.DownBlockTypes {
		in := out
		out = boc[i]
		s := es.Sub("down_blocks", i)
		b := &unetBlock{Name: s.Prefix}
		for j := 0; j < cfg.LayersPerBlock; j++ {
			rin := out
			if j == 0 {
				rin = in
			}
			b.Resnets = append(b.Resnets, LoadResnetBlock2D(s.Sub("resnets", j), rin, out, 0, g, 1e-6, 1))
		}
		if i < nb-1 {
			b.Down = LoadDownsample2D(s.Sub("downsamplers", 0), out, 0)
		}
		enc.Blocks = append(enc.Blocks, b)
	}
	last := boc[nb-1]
	enc.Mid = loadVAEMid(es.Sub("mid_block"), last, g)
	if *cfg.MidBlockAddAttention {
		enc.Mid.Attentions = []*Attention{loadSpatialAttention(es.Sub("mid_block").Sub("attentions", 0), last, 0, g, 1e-6, 1)}
	}
	enc.ConvNormOut = LoadGroupNorm(es, "conv_norm_out", g, last, 1e-6)
	enc.ConvOut = LoadConv2d(es, "conv_out", last, 2*L, 3, 1, 1, true)
	m.Encoder = enc
	if *cfg.UseQuantConv {
		m.QuantConv = LoadConv2d(root, "quant_conv", 2*L, 2*L, 1, 1, 0, true)
	}
	if *cfg.UsePostQuantConv {
		m.PostQuantConv = LoadConv2d(root, "post_quant_conv", L, L, 1, 1, 0, true)
	}

	ds := root.Sub("decoder")
	dec := &vaeCoder{ConvIn: LoadConv2d(ds, "conv_in", L, last, 3, 1, 1, true)}
	dec.Mid = loadVAEMid(ds.Sub("mid_block"), last, g)
	if *cfg.MidBlockAddAttention {
		dec.Mid.Attentions = []*Attention{loadSpatialAttention(ds.Sub("mid_block").Sub("attentions", 0), last, 0, g, 1e-6, 1)}
	}
	out = last
	for i := range cfg.UpBlockTypes {
		prev := out
		out = boc[nb-1-i]
		s := ds.Sub("up_blocks", i)
		b := &unetBlock{Name: s.Prefix}
		for j := 0; j < cfg.LayersPerBlock+1; j++ {
			rin := out
			if j == 0 {
				rin = prev
			}
			b.Resnets = append(b.Resnets, LoadResnetBlock2D(s.Sub("resnets", j), rin, out, 0, g, 1e-6, 1))
		}
		if i < nb-1 {
			b.Up = LoadUpsample2D(s.Sub("upsamplers", 0), out)
		}
		dec.Blocks = append(dec.Blocks, b)
	}
	dec.ConvNormOut = LoadGroupNorm(ds, "conv_norm_out", g, boc[0], 1e-6)
	dec.ConvOut = LoadConv2d(ds, "conv_out", boc[0], cfg.OutChannels, 3, 1, 1, true)
	m.Decoder = dec
	if err := w.Finish(); err != nil {
		Free(w.Loaded()...)
		return nil, fmt.Errorf("vae: %w", err)
	}
	m.weights = w.Loaded()
	return m, nil
}

// Free releases the weights.
func (m *AutoencoderKL) Free() { Free(m.weights...); m.weights = nil }

// Factor is the spatial downsampling factor (2^(blocks−1)).
func (m *AutoencoderKL) Factor() int { return 1 << (len(m.Config.BlockOutChannels) - 1) }

func (m *AutoencoderKL) runCoder(be Backend, c *vaeCoder, x *Tensor, decoder bool) *Tensor {
	h := c.ConvIn.Forward(be, x)
	if decoder {
		n := c.Mid.forward(be, h, nil, nil)
		Free(h)
		h = n
	}
	for _, b := range c.Blocks {
		for _, r := range b.Resnets {
			n := r.Forward(be, h, nil)
			Free(h)
			h = n
		}
		if b.Down != nil {
			n := b.Down.Forward(be, h)
			Free(h)
			h = n
		}
		if b.Up != nil {
			n := b.Up.Forward(be, h)
			Free(h)
			h = n
		}
	}
	if !decoder {
		n := c.Mid.forward(be, h, nil, nil)
		Free(h)
		h = n
	}
	n := c.ConvNormOut.Forward(be, h, true)
	Free(h)
	o := c.ConvOut.Forward(be, n)
	Free(n)
	return o
}

// EncodeMoments returns the raw quant_conv output [B, 2·latent, h, w]
// (mean channels first, then logvar, before clamping).
func (m *AutoencoderKL) EncodeMoments(be Backend, x *Tensor) (*Tensor, error) {
	if err := be.Err(); err != nil {
		return nil, err
	}
	f := m.Factor()
	if x == nil || x.Rank() != 4 || x.Dim(1) != m.Config.InChannels || x.Dim(2)%f != 0 || x.Dim(3)%f != 0 {
		return nil, fmt.Errorf("vae: image %v must be [B, %d, H, W] with H and W multiples of %d", x, m.Config.InChannels, f)
	}
	h := m.runCoder(be, m.Encoder, x, false)
	if m.QuantConv != nil {
		q := m.QuantConv.Forward(be, h)
		Free(h)
		h = q
	}
	if err := be.Err(); err != nil {
		Free(h)
		return nil, err
	}
	return h, nil
}

// Encode returns the latent distribution of x [B, C, H, W] in [−1, 1]. The
// scaling factor is not applied (pipelines multiply by Config.ScalingFactor).
func (m *AutoencoderKL) Encode(be Backend, x *Tensor) (LatentDist, error) {
	mom, err := m.EncodeMoments(be, x)
	if err != nil {
		return LatentDist{}, err
	}
	defer Free(mom)
	mean, lv := splitChannels(be, mom)
	clamped := be.Clamp(lv, -30, 20)
	Free(lv)
	if err := be.Err(); err != nil {
		Free(mean, clamped)
		return LatentDist{}, err
	}
	return LatentDist{Mean: mean, LogVar: clamped}, nil
}

// splitChannels splits x [B, 2C, H, W] into its first and second C channels.
func splitChannels(be Backend, x *Tensor) (*Tensor, *Tensor) {
	if x == nil {
		return nil, nil
	}
	b, c2, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	c := c2 / 2
	r := Reshape(x, b, 2, c*h*w)
	p := be.Permute(r, 1, 0, 2) // [2, B, C·H·W]
	Free(r)
	a0, a1 := Narrow(p, 0, 1), Narrow(p, 1, 1)
	Free(p)
	// Materialise each half so callers own compact tensors.
	r0, r1 := Reshape(a0, b, c, h, w), Reshape(a1, b, c, h, w)
	m0, m1 := be.Affine(r0, 1, 0), be.Affine(r1, 1, 0)
	Free(a0, a1, r0, r1)
	return m0, m1
}

// Decode maps latents z [B, latent, h, w] (already divided by the scaling
// factor) to images [B, C, h·f, w·f], not clamped.
func (m *AutoencoderKL) Decode(be Backend, z *Tensor) (*Tensor, error) {
	if err := be.Err(); err != nil {
		return nil, err
	}
	if z == nil || z.Rank() != 4 || z.Dim(1) != m.Config.LatentChannels {
		return nil, fmt.Errorf("vae: latents %v must be [B, %d, h, w]", z, m.Config.LatentChannels)
	}
	h := z
	if m.PostQuantConv != nil {
		h = m.PostQuantConv.Forward(be, z)
	}
	o := m.runCoder(be, m.Decoder, h, true)
	if h != z {
		Free(h)
	}
	if err := be.Err(); err != nil {
		Free(o)
		return nil, err
	}
	return o, nil
}

// LoadAutoencoderKLDir loads a diffusers vae/ folder.
func LoadAutoencoderKLDir(be Backend, dir string, storage DType) (*AutoencoderKL, error) {
	var cfg AutoencoderKLConfig
	if err := readJSON(filepath.Join(dir, "config.json"), &cfg); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	if cfg.ClassName != "" && cfg.ClassName != "AutoencoderKL" {
		return nil, fmt.Errorf("vae: %s holds a %s, not an AutoencoderKL", dir, cfg.ClassName)
	}
	src, closer, err := openWeightsDir(dir)
	if err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	defer closer()
	w := NewWeights(be, src)
	w.Storage = storage
	return LoadAutoencoderKL(cfg, w)
}
