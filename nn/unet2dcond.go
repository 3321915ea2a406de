package nn

import (
	"fmt"
	"path/filepath"
)

// UNet2DConditionConfig is the config.json of diffusers'
// UNet2DConditionModel (the Stable Diffusion 1.x/2.x UNet). Fields this
// implementation does not support are rejected by Validate.
type UNet2DConditionConfig struct {
	ClassName                 string    `json:"_class_name"`
	SampleSize                int       `json:"sample_size"`
	InChannels                int       `json:"in_channels"`
	OutChannels               int       `json:"out_channels"`
	CenterInputSample         bool      `json:"center_input_sample"`
	FlipSinToCos              *bool     `json:"flip_sin_to_cos"`
	FreqShift                 float32   `json:"freq_shift"`
	DownBlockTypes            []string  `json:"down_block_types"`
	MidBlockType              *string   `json:"mid_block_type"`
	UpBlockTypes              []string  `json:"up_block_types"`
	OnlyCrossAttention        any       `json:"only_cross_attention"`
	BlockOutChannels          []int     `json:"block_out_channels"`
	LayersPerBlock            IntOrList `json:"layers_per_block"`
	DownsamplePadding         *int      `json:"downsample_padding"`
	MidBlockScaleFactor       *float32  `json:"mid_block_scale_factor"`
	ActFn                     string    `json:"act_fn"`
	NormNumGroups             *int      `json:"norm_num_groups"`
	NormEps                   *float32  `json:"norm_eps"`
	CrossAttentionDim         IntOrList `json:"cross_attention_dim"`
	TransformerLayersPerBlock IntOrList `json:"transformer_layers_per_block"`
	AttentionHeadDim          IntOrList `json:"attention_head_dim"`
	NumAttentionHeads         IntOrList `json:"num_attention_heads"`
	DualCrossAttention        bool      `json:"dual_cross_attention"`
	UseLinearProjection       bool      `json:"use_linear_projection"`
	ClassEmbedType            *string   `json:"class_embed_type"`
	AdditionEmbedType         *string   `json:"addition_embed_type"`
	NumClassEmbeds            *int      `json:"num_class_embeds"`
	ResnetTimeScaleShift      string    `json:"resnet_time_scale_shift"`
	TimeEmbeddingType         string    `json:"time_embedding_type"`
	TimeEmbeddingDim          *int      `json:"time_embedding_dim"`
	TimeCondProjDim           *int      `json:"time_cond_proj_dim"`
	ConvInKernel              int       `json:"conv_in_kernel"`
	ConvOutKernel             int       `json:"conv_out_kernel"`
	EncoderHidDim             *int      `json:"encoder_hid_dim"`
	AttentionType             string    `json:"attention_type"`
	ReverseTransformerLayers  any       `json:"reverse_transformer_layers_per_block"`
	ResnetOutScaleFactor      *float32  `json:"resnet_out_scale_factor"`
	TimestepPostAct           *string   `json:"timestep_post_act"`
	TimeEmbeddingActFn        *string   `json:"time_embedding_act_fn"`
}

// UNet2DConditionModel is diffusers' UNet2DConditionModel. Weight names are
// the diffusers state_dict keys.
type UNet2DConditionModel struct {
	Config UNet2DConditionConfig

	ConvIn        *Conv2d
	TimeEmbedding *TimestepEmbedding
	DownBlocks    []*unetBlock
	MidBlock      *midBlock
	UpBlocks      []*unetBlock
	ConvNormOut   *GroupNorm
	ConvOut       *Conv2d

	// AttentionHook, when set, receives every transformer attention call
	// (see AttentionHook); BlockHook every down/mid/up block output.
	AttentionHook AttentionHook
	BlockHook     BlockHook

	weights []*Tensor
}

func (c *UNet2DConditionConfig) defaults() {
	if c.FlipSinToCos == nil {
		t := true
		c.FlipSinToCos = &t
	}
	if c.DownsamplePadding == nil {
		one := 1
		c.DownsamplePadding = &one
	}
	if c.MidBlockScaleFactor == nil {
		one := float32(1)
		c.MidBlockScaleFactor = &one
	}
	if c.NormNumGroups == nil {
		g := 32
		c.NormNumGroups = &g
	}
	if c.NormEps == nil {
		e := float32(1e-5)
		c.NormEps = &e
	}
	if c.MidBlockType == nil {
		m := "UNetMidBlock2DCrossAttn"
		c.MidBlockType = &m
	}
	if !c.LayersPerBlock.Set {
		c.LayersPerBlock = IntOrList{Set: true, List: []int{2}}
	}
	if !c.CrossAttentionDim.Set {
		c.CrossAttentionDim = IntOrList{Set: true, List: []int{1280}}
	}
	if !c.AttentionHeadDim.Set {
		c.AttentionHeadDim = IntOrList{Set: true, List: []int{8}}
	}
	if !c.TransformerLayersPerBlock.Set {
		c.TransformerLayersPerBlock = IntOrList{Set: true, List: []int{1}}
	}
	if c.ConvInKernel == 0 {
		c.ConvInKernel = 3
	}
	if c.ConvOutKernel == 0 {
		c.ConvOutKernel = 3
	}
	if c.ActFn == "" {
		c.ActFn = "silu"
	}
	if c.ResnetTimeScaleShift == "" {
		c.ResnetTimeScaleShift = "default"
	}
	if c.TimeEmbeddingType == "" {
		c.TimeEmbeddingType = "positional"
	}
}

func (c *UNet2DConditionConfig) validate() error {
	bad := func(f string, v any) error {
		return fmt.Errorf("unet: config %s=%v is not supported", f, v)
	}
	switch {
	case len(c.BlockOutChannels) == 0:
		return fmt.Errorf("unet: config has no block_out_channels")
	case len(c.DownBlockTypes) != len(c.BlockOutChannels) || len(c.UpBlockTypes) != len(c.BlockOutChannels):
		return fmt.Errorf("unet: config has %d down and %d up block types for %d block_out_channels", len(c.DownBlockTypes), len(c.UpBlockTypes), len(c.BlockOutChannels))
	case c.InChannels <= 0 || c.OutChannels <= 0:
		return fmt.Errorf("unet: config needs in_channels and out_channels")
	case c.ActFn != "silu":
		return bad("act_fn", c.ActFn)
	case c.ResnetTimeScaleShift != "default":
		return bad("resnet_time_scale_shift", c.ResnetTimeScaleShift)
	case c.TimeEmbeddingType != "positional":
		return bad("time_embedding_type", c.TimeEmbeddingType)
	case c.ClassEmbedType != nil || c.NumClassEmbeds != nil:
		return bad("class_embed_type", "set")
	case c.AdditionEmbedType != nil:
		return bad("addition_embed_type", *c.AdditionEmbedType)
	case c.EncoderHidDim != nil:
		return bad("encoder_hid_dim", *c.EncoderHidDim)
	case c.TimeCondProjDim != nil:
		return bad("time_cond_proj_dim", *c.TimeCondProjDim)
	case c.TimeEmbeddingDim != nil:
		return bad("time_embedding_dim", *c.TimeEmbeddingDim)
	case c.TimestepPostAct != nil || c.TimeEmbeddingActFn != nil:
		return bad("timestep_post_act/time_embedding_act_fn", "set")
	case c.DualCrossAttention:
		return bad("dual_cross_attention", true)
	case c.AttentionType != "" && c.AttentionType != "default":
		return bad("attention_type", c.AttentionType)
	case c.ConvInKernel%2 == 0 || c.ConvOutKernel%2 == 0:
		return bad("conv_in_kernel/conv_out_kernel", "even")
	case c.ResnetOutScaleFactor != nil && *c.ResnetOutScaleFactor != 1:
		return bad("resnet_out_scale_factor", *c.ResnetOutScaleFactor)
	case *c.MidBlockType != "UNetMidBlock2DCrossAttn":
		return bad("mid_block_type", *c.MidBlockType)
	}
	if b, ok := c.OnlyCrossAttention.(bool); (ok && b) || (!ok && c.OnlyCrossAttention != nil) {
		return bad("only_cross_attention", c.OnlyCrossAttention)
	}
	if c.ReverseTransformerLayers != nil {
		return bad("reverse_transformer_layers_per_block", c.ReverseTransformerLayers)
	}
	return nil
}

// LoadUNet2DConditionModel builds the model from its config and weights.
func LoadUNet2DConditionModel(cfg UNet2DConditionConfig, w *Weights) (*UNet2DConditionModel, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	nb := len(cfg.BlockOutChannels)
	lpb, err := cfg.LayersPerBlock.Expand(nb, "layers_per_block")
	if err != nil {
		return nil, err
	}
	cross, err := cfg.CrossAttentionDim.Expand(nb, "cross_attention_dim")
	if err != nil {
		return nil, err
	}
	tlpb, err := cfg.TransformerLayersPerBlock.Expand(nb, "transformer_layers_per_block")
	if err != nil {
		return nil, err
	}
	// Legacy naming: in UNet2DConditionModel configs attention_head_dim is
	// the number of heads unless num_attention_heads is given.
	heads, err := cfg.NumAttentionHeads.Expand(nb, "num_attention_heads")
	if err != nil {
		return nil, err
	}
	if heads == nil {
		if heads, err = cfg.AttentionHeadDim.Expand(nb, "attention_head_dim"); err != nil {
			return nil, err
		}
	}
	boc := cfg.BlockOutChannels
	groups, eps := *cfg.NormNumGroups, *cfg.NormEps
	tdim := boc[0] * 4
	root := w.Root()
	m := &UNet2DConditionModel{Config: cfg}
	pin := (cfg.ConvInKernel - 1) / 2
	m.ConvIn = LoadConv2d(root, "conv_in", cfg.InChannels, boc[0], cfg.ConvInKernel, 1, pin, true)
	m.TimeEmbedding = LoadTimestepEmbedding(root.Sub("time_embedding"), boc[0], tdim)
	transformer := func(s Scope, ch, i int) *Transformer2DModel {
		if heads[i] <= 0 || ch%heads[i] != 0 {
			w.fail("unet: %s: %d channels do not split into %d heads", s.Prefix, ch, heads[i])
			return nil
		}
		return LoadTransformer2DModel(s, ch, cross[i], heads[i], ch/heads[i], tlpb[i], groups, cfg.UseLinearProjection)
	}
	bl := &blockLoader{
		op: "unet", plainDown: "DownBlock2D", attnDown: "CrossAttnDownBlock2D", plainUp: "UpBlock2D", attnUp: "CrossAttnUpBlock2D",
		tdim: tdim, groups: groups, eps: eps, downPad: *cfg.DownsamplePadding,
	}
	bl.attention = func(i int, b *unetBlock, s Scope, ch int) error {
		b.Transformer = append(b.Transformer, transformer(s, ch, i))
		return nil
	}
	if m.DownBlocks, err = bl.downBlocks(root, cfg.DownBlockTypes, boc, lpb); err != nil {
		return nil, err
	}
	last := boc[nb-1]
	ms := root.Sub("mid_block")
	m.MidBlock = &midBlock{}
	for j := 0; j < 2; j++ {
		m.MidBlock.Resnets = append(m.MidBlock.Resnets, LoadResnetBlock2D(ms.Sub("resnets", j), last, last, tdim, groups, eps, *cfg.MidBlockScaleFactor))
	}
	m.MidBlock.Transformer = append(m.MidBlock.Transformer, transformer(ms.Sub("attentions", 0), last, nb-1))
	// Up blocks mirror the down blocks.
	bl.attention = func(i int, b *unetBlock, s Scope, ch int) error {
		h := heads[nb-1-i]
		if h <= 0 || ch%h != 0 {
			return fmt.Errorf("unet: %s: %d channels do not split into %d heads", s.Prefix, ch, h)
		}
		b.Transformer = append(b.Transformer, LoadTransformer2DModel(s, ch, cross[nb-1-i], h, ch/h, tlpb[nb-1-i], groups, cfg.UseLinearProjection))
		return nil
	}
	if m.UpBlocks, err = bl.upBlocks(root, cfg.UpBlockTypes, boc, lpb); err != nil {
		return nil, err
	}
	m.ConvNormOut = LoadGroupNorm(root, "conv_norm_out", groups, boc[0], eps)
	pout := (cfg.ConvOutKernel - 1) / 2
	m.ConvOut = LoadConv2d(root, "conv_out", boc[0], cfg.OutChannels, cfg.ConvOutKernel, 1, pout, true)
	if err := w.Finish(); err != nil {
		Free(w.Loaded()...)
		return nil, fmt.Errorf("unet: %w", err)
	}
	m.weights = w.Loaded()
	m.installHooks()
	return m, nil
}

// installHooks routes transformer attention through m.AttentionHook.
func (m *UNet2DConditionModel) installHooks() {
	hook := &m.AttentionHook
	for _, blocks := range [][]*unetBlock{m.DownBlocks, m.UpBlocks} {
		for _, b := range blocks {
			for _, t := range b.Transformer {
				t.SetHook(hook)
			}
		}
	}
	for _, t := range m.MidBlock.Transformer {
		t.SetHook(hook)
	}
}

// Free releases the model's weights.
func (m *UNet2DConditionModel) Free() { Free(m.weights...); m.weights = nil }

// Forward predicts the noise (or v / x0, per the scheduler's
// prediction_type) for sample [B, C, H, W] at timesteps t (one value for
// the whole batch or one per element; fractional values allowed) given
// encoder_hidden_states ctx [B, L, cross_attention_dim] of any length L.
// Errors are returned, not only recorded.
func (m *UNet2DConditionModel) Forward(be Backend, sample *Tensor, t []float32, ctx *Tensor) (*Tensor, error) {
	if err := be.Err(); err != nil {
		return nil, err
	}
	if sample == nil || ctx == nil {
		return nil, fmt.Errorf("unet: nil input")
	}
	cfg := m.Config
	if sample.Rank() != 4 || sample.Dim(1) != cfg.InChannels {
		return nil, fmt.Errorf("unet: sample %v must be [B, %d, H, W]", sample, cfg.InChannels)
	}
	if ctx.Rank() != 3 || ctx.Dim(0) != sample.Dim(0) {
		return nil, fmt.Errorf("unet: encoder_hidden_states %v must be [%d, L, D]", ctx, sample.Dim(0))
	}
	f := 1 << (len(cfg.BlockOutChannels) - 1)
	if sample.Dim(2)%f != 0 || sample.Dim(3)%f != 0 {
		return nil, fmt.Errorf("unet: sample %dx%d must be a multiple of %d", sample.Dim(2), sample.Dim(3), f)
	}
	b := sample.Dim(0)
	x := sample
	if cfg.CenterInputSample {
		x = be.Affine(sample, 2, -1)
		defer Free(x)
	}
	tt := timestepTensor(be, t, b)
	tp := be.TimestepEmbedding(tt, cfg.BlockOutChannels[0], *cfg.FlipSinToCos, cfg.FreqShift, 1, 10000)
	Free(tt)
	temb := m.TimeEmbedding.Forward(be, tp)
	Free(tp)
	defer Free(temb)

	h := m.ConvIn.Forward(be, x)
	skips := []*Tensor{h}
	for _, blk := range m.DownBlocks {
		h = blk.forwardDown(be, h, temb, ctx, &skips)
		h = m.hookBlock(be, blk.Name, h, skips)
	}
	h = m.MidBlock.forward(be, h, temb, ctx)
	if m.BlockHook != nil && h != nil {
		if r := m.BlockHook(be, "mid_block", h); r != nil && r != h {
			Free(h)
			h = r
		}
	}
	for _, blk := range m.UpBlocks {
		h = blk.forwardUp(be, h, temb, ctx, &skips)
		if m.BlockHook != nil && h != nil {
			if r := m.BlockHook(be, blk.Name, h); r != nil && r != h {
				Free(h)
				h = r
			}
		}
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

// hookBlock applies BlockHook to a down block's output. The output is also
// the last skip connection, so a replacement replaces that too.
func (m *UNet2DConditionModel) hookBlock(be Backend, name string, h *Tensor, skips []*Tensor) *Tensor {
	if m.BlockHook == nil || h == nil {
		return h
	}
	r := m.BlockHook(be, name, h)
	if r == nil || r == h {
		return h
	}
	if len(skips) > 0 && skips[len(skips)-1] == h {
		Free(h)
		skips[len(skips)-1] = r
	}
	return r
}

// LoadUNet2DConditionModelDir loads a diffusers model folder (config.json +
// diffusion_pytorch_model.safetensors) onto be.
func LoadUNet2DConditionModelDir(be Backend, dir string, storage DType) (*UNet2DConditionModel, error) {
	var cfg UNet2DConditionConfig
	if err := readJSON(filepath.Join(dir, "config.json"), &cfg); err != nil {
		return nil, fmt.Errorf("unet: %w", err)
	}
	if cfg.ClassName != "" && cfg.ClassName != "UNet2DConditionModel" {
		return nil, fmt.Errorf("unet: %s holds a %s, not a UNet2DConditionModel", dir, cfg.ClassName)
	}
	src, closer, err := openWeightsDir(dir)
	if err != nil {
		return nil, fmt.Errorf("unet: %w", err)
	}
	defer closer()
	w := NewWeights(be, src)
	w.Storage = storage
	return LoadUNet2DConditionModel(cfg, w)
}
