package nn

import (
	"fmt"
	"path/filepath"
)

// AutoencoderTinyConfig is the config.json of diffusers' AutoencoderTiny
// (TAESD). UseMidblockGN is not a diffusers field: TAESD variants for newer
// latent spaces (taef2) add a GroupNorm branch to the blocks of the last
// encoder stage and the first decoder stage (see tinyBlock).
type AutoencoderTinyConfig struct {
	ClassName               string   `json:"_class_name"`
	InChannels              int      `json:"in_channels"`
	OutChannels             int      `json:"out_channels"`
	EncoderBlockOutChannels []int    `json:"encoder_block_out_channels"`
	DecoderBlockOutChannels []int    `json:"decoder_block_out_channels"`
	ActFn                   string   `json:"act_fn"`
	UpsampleFn              string   `json:"upsample_fn"`
	LatentChannels          int      `json:"latent_channels"`
	UpsamplingScalingFactor int      `json:"upsampling_scaling_factor"`
	NumEncoderBlocks        []int    `json:"num_encoder_blocks"`
	NumDecoderBlocks        []int    `json:"num_decoder_blocks"`
	LatentMagnitude         float32  `json:"latent_magnitude"`
	LatentShift             float32  `json:"latent_shift"`
	ScalingFactor           float32  `json:"scaling_factor"`
	ShiftFactor             *float32 `json:"shift_factor"`
	UseMidblockGN           bool     `json:"use_midblock_gn"`
	ForceUpcast             bool     `json:"force_upcast"`
	BlockOutChannels        []int    `json:"block_out_channels"`
}

// tinyBlock is AutoencoderTinyBlock: relu(conv(x) + skip(x)) with conv =
// conv3×3, ReLU, conv3×3, ReLU, conv3×3. With the GroupNorm branch the block
// first computes x ← x + pool(x), pool = conv1×1 (c→4c, no bias), GroupNorm
// (4 groups, eps 1e-5), ReLU, conv1×1 (4c→c, no bias).
type tinyBlock struct {
	Conv     [3]*Conv2d
	Skip     *Conv2d
	PoolIn   *Conv2d
	PoolNorm *GroupNorm
	PoolOut  *Conv2d
}

func loadTinyBlock(s Scope, in, out int, gn bool) *tinyBlock {
	b := &tinyBlock{
		Conv: [3]*Conv2d{
			LoadConv2d(s, "conv.0", in, out, 3, 1, 1, true),
			LoadConv2d(s, "conv.2", out, out, 3, 1, 1, true),
			LoadConv2d(s, "conv.4", out, out, 3, 1, 1, true),
		},
	}
	if in != out {
		b.Skip = LoadConv2d(s, "skip", in, out, 1, 1, 0, false)
	}
	if gn {
		b.PoolIn = LoadConv2d(s, "pool.0", in, 4*in, 1, 1, 0, false)
		b.PoolNorm = LoadGroupNorm(s, "pool.1", 4, 4*in, 1e-5)
		b.PoolOut = LoadConv2d(s, "pool.3", 4*in, in, 1, 1, 0, false)
	}
	return b
}

func (b *tinyBlock) forward(be Backend, x *Tensor) *Tensor {
	if b.PoolIn != nil {
		p := b.PoolIn.Forward(be, x)
		n := b.PoolNorm.Forward(be, p, false)
		Free(p)
		r := be.Unary(ReLU, n)
		Free(n)
		q := b.PoolOut.Forward(be, r)
		Free(r)
		x = be.Binary(Add, x, q)
		Free(q)
		defer Free(x)
	}
	h := x
	for i, c := range b.Conv {
		o := c.Forward(be, h)
		if h != x {
			Free(h)
		}
		h = o
		if i < 2 {
			r := be.Unary(ReLU, h)
			Free(h)
			h = r
		}
	}
	sk := x
	if b.Skip != nil {
		sk = b.Skip.Forward(be, x)
	}
	s := be.Binary(Add, h, sk)
	Free(h)
	if sk != x {
		Free(sk)
	}
	out := be.Unary(ReLU, s)
	Free(s)
	return out
}

// tinyLayer is one entry of EncoderTiny/DecoderTiny's layer list.
type tinyLayer struct {
	conv  *Conv2d
	block *tinyBlock
	relu  bool
	up    bool
}

// AutoencoderTiny is diffusers' AutoencoderTiny (TAESD): a small conv
// encoder/decoder for fast previews, with the optional GroupNorm branch.
type AutoencoderTiny struct {
	Config  AutoencoderTinyConfig
	Encoder []tinyLayer
	Decoder []tinyLayer
	weights []*Tensor
}

// LoadAutoencoderTiny builds the model. Weight names are diffusers'
// ("encoder.layers.1.conv.0.weight").
func LoadAutoencoderTiny(cfg AutoencoderTinyConfig, w *Weights) (*AutoencoderTiny, error) {
	if cfg.ActFn == "" {
		cfg.ActFn = "relu"
	}
	if cfg.UpsampleFn == "" {
		cfg.UpsampleFn = "nearest"
	}
	if cfg.UpsamplingScalingFactor == 0 {
		cfg.UpsamplingScalingFactor = 2
	}
	if cfg.LatentMagnitude == 0 {
		cfg.LatentMagnitude = 3
	}
	if cfg.LatentShift == 0 {
		cfg.LatentShift = 0.5
	}
	ne, nd := cfg.NumEncoderBlocks, cfg.NumDecoderBlocks
	eb, db := cfg.EncoderBlockOutChannels, cfg.DecoderBlockOutChannels
	switch {
	case cfg.ActFn != "relu":
		return nil, fmt.Errorf("taesd: act_fn %q is not supported (relu)", cfg.ActFn)
	case cfg.UpsampleFn != "nearest" || cfg.UpsamplingScalingFactor != 2:
		return nil, fmt.Errorf("taesd: upsampling %s ×%d is not supported (nearest ×2)", cfg.UpsampleFn, cfg.UpsamplingScalingFactor)
	case len(ne) == 0 || len(ne) != len(eb) || len(nd) == 0 || len(nd) != len(db):
		return nil, fmt.Errorf("taesd: num_encoder_blocks/encoder_block_out_channels and num_decoder_blocks/decoder_block_out_channels must have matching lengths")
	case cfg.InChannels <= 0 || cfg.OutChannels <= 0 || cfg.LatentChannels <= 0:
		return nil, fmt.Errorf("taesd: config needs in_channels, out_channels and latent_channels")
	}
	root := w.Root()
	m := &AutoencoderTiny{Config: cfg}
	es := root.Sub("encoder.layers")
	idx := 0
	add := func(list *[]tinyLayer, l tinyLayer) {
		*list = append(*list, l)
		idx++
	}
	for i, n := range ne {
		c := eb[i]
		if i == 0 {
			add(&m.Encoder, tinyLayer{conv: LoadConv2d(es, fmt.Sprint(idx), cfg.InChannels, c, 3, 1, 1, true)})
		} else {
			add(&m.Encoder, tinyLayer{conv: LoadConv2d(es, fmt.Sprint(idx), eb[i-1], c, 3, 2, 1, false)})
		}
		gn := cfg.UseMidblockGN && i == len(ne)-1
		for j := 0; j < n; j++ {
			add(&m.Encoder, tinyLayer{block: loadTinyBlock(es.Sub(fmt.Sprint(idx)), c, c, gn)})
		}
	}
	add(&m.Encoder, tinyLayer{conv: LoadConv2d(es, fmt.Sprint(idx), eb[len(eb)-1], cfg.LatentChannels, 3, 1, 1, true)})

	ds := root.Sub("decoder.layers")
	idx = 0
	add(&m.Decoder, tinyLayer{conv: LoadConv2d(ds, "0", cfg.LatentChannels, db[0], 3, 1, 1, true)})
	add(&m.Decoder, tinyLayer{relu: true})
	for i, n := range nd {
		c := db[i]
		final := i == len(nd)-1
		gn := cfg.UseMidblockGN && i == 0
		for j := 0; j < n; j++ {
			add(&m.Decoder, tinyLayer{block: loadTinyBlock(ds.Sub(fmt.Sprint(idx)), c, c, gn)})
		}
		if !final {
			add(&m.Decoder, tinyLayer{up: true})
			add(&m.Decoder, tinyLayer{conv: LoadConv2d(ds, fmt.Sprint(idx), c, db[i+1], 3, 1, 1, false)})
		} else {
			add(&m.Decoder, tinyLayer{conv: LoadConv2d(ds, fmt.Sprint(idx), c, cfg.OutChannels, 3, 1, 1, true)})
		}
	}
	if err := w.Finish(); err != nil {
		Free(w.Loaded()...)
		return nil, fmt.Errorf("taesd: %w", err)
	}
	m.weights = w.Loaded()
	return m, nil
}

// Free releases the weights.
func (m *AutoencoderTiny) Free() { Free(m.weights...); m.weights = nil }

// Factor is the spatial downsampling factor.
func (m *AutoencoderTiny) Factor() int { return 1 << (len(m.Config.NumEncoderBlocks) - 1) }

func runTiny(be Backend, layers []tinyLayer, x *Tensor) *Tensor {
	h := x
	for _, l := range layers {
		var o *Tensor
		switch {
		case l.conv != nil:
			o = l.conv.Forward(be, h)
		case l.block != nil:
			o = l.block.forward(be, h)
		case l.relu:
			o = be.Unary(ReLU, h)
		case l.up:
			o = be.Upsample2x(h)
		}
		if h != x {
			Free(h)
		}
		h = o
	}
	return h
}

// Encode maps images x [B, C, H, W] in [−1, 1] to raw latents
// [B, latent, H/f, W/f] (no scaling or shift factor).
func (m *AutoencoderTiny) Encode(be Backend, x *Tensor) (*Tensor, error) {
	if err := be.Err(); err != nil {
		return nil, err
	}
	f := m.Factor()
	if x == nil || x.Rank() != 4 || x.Dim(1) != m.Config.InChannels || x.Dim(2)%f != 0 || x.Dim(3)%f != 0 {
		return nil, fmt.Errorf("taesd: image %v must be [B, %d, H, W] with H and W multiples of %d", x, m.Config.InChannels, f)
	}
	x01 := be.Affine(x, 0.5, 0.5)
	z := runTiny(be, m.Encoder, x01)
	Free(x01)
	if err := be.Err(); err != nil {
		Free(z)
		return nil, err
	}
	return z, nil
}

// Decode maps latents to images in the [−1, 1] convention (not clamped);
// the decoder's soft clamp tanh(z/3)·3 is applied first.
func (m *AutoencoderTiny) Decode(be Backend, z *Tensor) (*Tensor, error) {
	if err := be.Err(); err != nil {
		return nil, err
	}
	if z == nil || z.Rank() != 4 || z.Dim(1) != m.Config.LatentChannels {
		return nil, fmt.Errorf("taesd: latents %v must be [B, %d, h, w]", z, m.Config.LatentChannels)
	}
	s := be.Affine(z, 1/m.Config.LatentMagnitude, 0)
	t := be.Unary(Tanh, s)
	Free(s)
	c := be.Affine(t, m.Config.LatentMagnitude, 0)
	Free(t)
	y := runTiny(be, m.Decoder, c)
	Free(c)
	o := be.Affine(y, 2, -1)
	Free(y)
	if err := be.Err(); err != nil {
		Free(o)
		return nil, err
	}
	return o, nil
}

// ScaleLatents maps raw latents to [0, 1] for 8-bit storage:
// clamp(z/(2·magnitude) + shift, 0, 1).
func (m *AutoencoderTiny) ScaleLatents(be Backend, z *Tensor) *Tensor {
	a := be.Affine(z, 1/(2*m.Config.LatentMagnitude), m.Config.LatentShift)
	c := be.Clamp(a, 0, 1)
	Free(a)
	return c
}

// UnscaleLatents inverts ScaleLatents: (u − shift)·2·magnitude.
func (m *AutoencoderTiny) UnscaleLatents(be Backend, u *Tensor) *Tensor {
	mg := 2 * m.Config.LatentMagnitude
	return be.Affine(u, mg, -m.Config.LatentShift*mg)
}

// LoadAutoencoderTinyDir loads a diffusers AutoencoderTiny folder.
func LoadAutoencoderTinyDir(be Backend, dir string, storage DType) (*AutoencoderTiny, error) {
	var cfg AutoencoderTinyConfig
	if err := readJSON(filepath.Join(dir, "config.json"), &cfg); err != nil {
		return nil, fmt.Errorf("taesd: %w", err)
	}
	if cfg.ClassName != "" && cfg.ClassName != "AutoencoderTiny" {
		return nil, fmt.Errorf("taesd: %s holds a %s, not an AutoencoderTiny", dir, cfg.ClassName)
	}
	src, closer, err := openWeightsDir(dir)
	if err != nil {
		return nil, fmt.Errorf("taesd: %w", err)
	}
	defer closer()
	w := NewWeights(be, src)
	w.Storage = storage
	return LoadAutoencoderTiny(cfg, w)
}
