package nn

import (
	"fmt"
	"path/filepath"
)

// UNet2DConfig is the config.json of diffusers' UNet2DModel (pixel-space
// DDPM models such as google/ddpm-*).
type UNet2DConfig struct {
	ClassName            string    `json:"_class_name"`
	SampleSize           any       `json:"sample_size"`
	InChannels           int       `json:"in_channels"`
	OutChannels          int       `json:"out_channels"`
	CenterInputSample    bool      `json:"center_input_sample"`
	TimeEmbeddingType    string    `json:"time_embedding_type"`
	FreqShift            float32   `json:"freq_shift"`
	FlipSinToCos         *bool     `json:"flip_sin_to_cos"`
	DownBlockTypes       []string  `json:"down_block_types"`
	UpBlockTypes         []string  `json:"up_block_types"`
	BlockOutChannels     []int     `json:"block_out_channels"`
	LayersPerBlock       int       `json:"layers_per_block"`
	MidBlockScaleFactor  *float32  `json:"mid_block_scale_factor"`
	DownsamplePadding    *int      `json:"downsample_padding"`
	DownsampleType       string    `json:"downsample_type"`
	UpsampleType         string    `json:"upsample_type"`
	ActFn                string    `json:"act_fn"`
	AttentionHeadDim     IntOrList `json:"attention_head_dim"`
	NormNumGroups        *int      `json:"norm_num_groups"`
	AttnNormNumGroups    *int      `json:"attn_norm_num_groups"`
	NormEps              *float32  `json:"norm_eps"`
	ResnetTimeScaleShift string    `json:"resnet_time_scale_shift"`
	AddAttention         *bool     `json:"add_attention"`
	ClassEmbedType       *string   `json:"class_embed_type"`
	NumClassEmbeds       *int      `json:"num_class_embeds"`
}

// UNet2DModel is diffusers' UNet2DModel.
type UNet2DModel struct {
	Config        UNet2DConfig
	ConvIn        *Conv2d
	TimeEmbedding *TimestepEmbedding
	DownBlocks    []*unetBlock
	MidBlock      *midBlock
	UpBlocks      []*unetBlock
	ConvNormOut   *GroupNorm
	ConvOut       *Conv2d
	weights       []*Tensor
}

// LoadUNet2DModel builds the model from its config and weights. Legacy
// attention names (query/key/value/proj_attn) are accepted.
func LoadUNet2DModel(cfg UNet2DConfig, w *Weights) (*UNet2DModel, error) {
	t := true
	one := 1
	onef := float32(1)
	g32 := 32
	eps := float32(1e-5)
	if cfg.FlipSinToCos == nil {
		cfg.FlipSinToCos = &t
	}
	if cfg.MidBlockScaleFactor == nil {
		cfg.MidBlockScaleFactor = &onef
	}
	if cfg.DownsamplePadding == nil {
		cfg.DownsamplePadding = &one
	}
	if cfg.NormNumGroups == nil {
		cfg.NormNumGroups = &g32
	}
	if cfg.NormEps == nil {
		cfg.NormEps = &eps
	}
	if cfg.AddAttention == nil {
		cfg.AddAttention = &t
	}
	if cfg.LayersPerBlock == 0 {
		cfg.LayersPerBlock = 2
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.TimeEmbeddingType, "positional")
	def(&cfg.DownsampleType, "conv")
	def(&cfg.UpsampleType, "conv")
	def(&cfg.ActFn, "silu")
	def(&cfg.ResnetTimeScaleShift, "default")
	switch {
	case len(cfg.BlockOutChannels) == 0 || len(cfg.DownBlockTypes) != len(cfg.BlockOutChannels) || len(cfg.UpBlockTypes) != len(cfg.BlockOutChannels):
		return nil, fmt.Errorf("unet2d: config needs matching block_out_channels, down_block_types and up_block_types")
	case cfg.TimeEmbeddingType != "positional":
		return nil, fmt.Errorf("unet2d: time_embedding_type %q is not supported", cfg.TimeEmbeddingType)
	case cfg.DownsampleType != "conv" || cfg.UpsampleType != "conv":
		return nil, fmt.Errorf("unet2d: downsample_type %q / upsample_type %q are not supported (conv only)", cfg.DownsampleType, cfg.UpsampleType)
	case cfg.ActFn != "silu":
		return nil, fmt.Errorf("unet2d: act_fn %q is not supported", cfg.ActFn)
	case cfg.ResnetTimeScaleShift != "default":
		return nil, fmt.Errorf("unet2d: resnet_time_scale_shift %q is not supported", cfg.ResnetTimeScaleShift)
	case cfg.ClassEmbedType != nil || cfg.NumClassEmbeds != nil:
		return nil, fmt.Errorf("unet2d: class embeddings are not supported")
	}
	headDim := 0 // 0: one head of all channels (attention_head_dim null)
	if cfg.AttentionHeadDim.Set {
		if len(cfg.AttentionHeadDim.List) != 1 {
			return nil, fmt.Errorf("unet2d: attention_head_dim must be one int")
		}
		headDim = cfg.AttentionHeadDim.List[0]
	}
	groups, neps := *cfg.NormNumGroups, *cfg.NormEps
	attnGroups := groups
	if cfg.AttnNormNumGroups != nil {
		attnGroups = *cfg.AttnNormNumGroups
	}
	w.Aliases = LegacyAttentionAliases
	boc := cfg.BlockOutChannels
	nb := len(boc)
	tdim := boc[0] * 4
	root := w.Root()
	m := &UNet2DModel{Config: cfg}
	m.ConvIn = LoadConv2d(root, "conv_in", cfg.InChannels, boc[0], 3, 1, 1, true)
	m.TimeEmbedding = LoadTimestepEmbedding(root.Sub("time_embedding"), boc[0], tdim)
	layers := make([]int, nb)
	for i := range layers {
		layers[i] = cfg.LayersPerBlock
	}
	bl := &blockLoader{
		op: "unet2d", plainDown: "DownBlock2D", attnDown: "AttnDownBlock2D", plainUp: "UpBlock2D", attnUp: "AttnUpBlock2D",
		tdim: tdim, groups: groups, eps: neps, downPad: *cfg.DownsamplePadding,
		attention: func(_ int, b *unetBlock, s Scope, ch int) error {
			b.Attentions = append(b.Attentions, loadSpatialAttention(s, ch, headDim, attnGroups, neps, 1))
			return nil
		},
	}
	var err error
	if m.DownBlocks, err = bl.downBlocks(root, cfg.DownBlockTypes, boc, layers); err != nil {
		return nil, err
	}
	last := boc[nb-1]
	ms := root.Sub("mid_block")
	m.MidBlock = &midBlock{}
	for j := 0; j < 2; j++ {
		m.MidBlock.Resnets = append(m.MidBlock.Resnets, LoadResnetBlock2D(ms.Sub("resnets", j), last, last, tdim, groups, neps, *cfg.MidBlockScaleFactor))
	}
	if *cfg.AddAttention {
		m.MidBlock.Attentions = append(m.MidBlock.Attentions, loadSpatialAttention(ms.Sub("attentions", 0), last, headDim, attnGroups, neps, *cfg.MidBlockScaleFactor))
	}
	if m.UpBlocks, err = bl.upBlocks(root, cfg.UpBlockTypes, boc, layers); err != nil {
		return nil, err
	}
	m.ConvNormOut = LoadGroupNorm(root, "conv_norm_out", groups, boc[0], neps)
	m.ConvOut = LoadConv2d(root, "conv_out", boc[0], cfg.OutChannels, 3, 1, 1, true)
	if err := w.Finish(); err != nil {
		Free(w.Loaded()...)
		return nil, fmt.Errorf("unet2d: %w", err)
	}
	m.weights = w.Loaded()
	return m, nil
}

// Free releases the model's weights.
func (m *UNet2DModel) Free() { Free(m.weights...); m.weights = nil }

// Forward predicts noise for sample [B, C, H, W] at timesteps t (one value
// or one per batch element).
func (m *UNet2DModel) Forward(be Backend, sample *Tensor, t []float32) (*Tensor, error) {
	if err := be.Err(); err != nil {
		return nil, err
	}
	cfg := m.Config
	if sample == nil || sample.Rank() != 4 || sample.Dim(1) != cfg.InChannels {
		return nil, fmt.Errorf("unet2d: sample %v must be [B, %d, H, W]", sample, cfg.InChannels)
	}
	f := 1 << (len(cfg.BlockOutChannels) - 1)
	if sample.Dim(2)%f != 0 || sample.Dim(3)%f != 0 {
		return nil, fmt.Errorf("unet2d: sample %dx%d must be a multiple of %d", sample.Dim(2), sample.Dim(3), f)
	}
	x := sample
	if cfg.CenterInputSample {
		x = be.Affine(sample, 2, -1)
		defer Free(x)
	}
	tt := timestepTensor(be, t, sample.Dim(0))
	tp := be.TimestepEmbedding(tt, cfg.BlockOutChannels[0], *cfg.FlipSinToCos, cfg.FreqShift, 1, 10000)
	Free(tt)
	temb := m.TimeEmbedding.Forward(be, tp)
	Free(tp)
	defer Free(temb)
	h := m.ConvIn.Forward(be, x)
	skips := []*Tensor{h}
	for _, blk := range m.DownBlocks {
		h = blk.forwardDown(be, h, temb, nil, &skips)
	}
	h = m.MidBlock.forward(be, h, temb, nil)
	for _, blk := range m.UpBlocks {
		h = blk.forwardUp(be, h, temb, nil, &skips)
	}
	Free(skips...)
	n := m.ConvNormOut.Forward(be, h, true)
	Free(h)
	out := m.ConvOut.Forward(be, n)
	Free(n)
	if err := be.Err(); err != nil {
		Free(out)
		return nil, err
	}
	return out, nil
}

// LoadUNet2DModelDir loads a diffusers UNet2DModel folder.
func LoadUNet2DModelDir(be Backend, dir string, storage DType) (*UNet2DModel, error) {
	var cfg UNet2DConfig
	if err := readJSON(filepath.Join(dir, "config.json"), &cfg); err != nil {
		return nil, fmt.Errorf("unet2d: %w", err)
	}
	if cfg.ClassName != "" && cfg.ClassName != "UNet2DModel" {
		return nil, fmt.Errorf("unet2d: %s holds a %s, not a UNet2DModel", dir, cfg.ClassName)
	}
	src, closer, err := openWeightsDir(dir)
	if err != nil {
		return nil, fmt.Errorf("unet2d: %w", err)
	}
	defer closer()
	w := NewWeights(be, src)
	w.Storage = storage
	return LoadUNet2DModel(cfg, w)
}
