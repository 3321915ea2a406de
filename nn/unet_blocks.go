package nn

import "fmt"

// BlockHook observes or replaces the output of a UNet block (style
// injection, feature caching). Name is the block's weight prefix
// ("down_blocks.1", "mid_block", "up_blocks.0"). Returning nil keeps h.
type BlockHook func(be Backend, name string, h *Tensor) *Tensor

// unetBlock is a down or up block of either UNet: resnets interleaved with
// optional attentions (spatial Attention or Transformer2DModel), then an
// optional down/up sampler.
type unetBlock struct {
	Name        string
	Resnets     []*ResnetBlock2D
	Attentions  []*Attention          // UNet2DModel attention blocks
	Transformer []*Transformer2DModel // UNet2DConditionModel cross-attention blocks
	Down        *Downsample2D
	Up          *Upsample2D
}

// blockLoader loads the down and up blocks of either UNet (diffusers'
// get_down_block / get_up_block for the resnet-only and the attention
// variant of each).
type blockLoader struct {
	op           string // error prefix: "unet2d" or "unet"
	plainDown    string // block types without attention, and with it
	attnDown     string
	plainUp      string
	attnUp       string
	tdim, groups int
	eps          float32
	downPad      int // downsample_padding
	// attention loads the attention after each resnet of an attention block
	// (block i of the down or up list, scope s, ch channels) into b.
	attention func(i int, b *unetBlock, s Scope, ch int) error
}

// hasAttention tells which variant typ is, for block i of kind "down"/"up".
func (l *blockLoader) hasAttention(kind string, i int, typ, plain, attn string) (bool, error) {
	switch typ {
	case plain:
		return false, nil
	case attn:
		return true, nil
	}
	return false, fmt.Errorf("%s: %s block type %q is not supported (%s_blocks.%d)", l.op, kind, typ, kind, i)
}

// downBlocks loads down_blocks.i for each of types: layers[i] resnets to
// boc[i] channels (the first from the previous block's channels), each
// followed by an attention in attention blocks, then a downsampler except
// after the last block.
func (l *blockLoader) downBlocks(root Scope, types []string, boc, layers []int) ([]*unetBlock, error) {
	nb := len(boc)
	var blocks []*unetBlock
	out := boc[0]
	for i, typ := range types {
		in := out
		out = boc[i]
		s := root.Sub("down_blocks", i)
		b := &unetBlock{Name: s.Prefix}
		attn, err := l.hasAttention("down", i, typ, l.plainDown, l.attnDown)
		if err != nil {
			return nil, err
		}
		for j := 0; j < layers[i]; j++ {
			rin := out
			if j == 0 {
				rin = in
			}
			b.Resnets = append(b.Resnets, LoadResnetBlock2D(s.Sub("resnets", j), rin, out, l.tdim, l.groups, l.eps, 1))
			if attn {
				if err := l.attention(i, b, s.Sub("attentions", j), out); err != nil {
					return nil, err
				}
			}
		}
		if i < nb-1 {
			b.Down = LoadDownsample2D(s.Sub("downsamplers", 0), out, l.downPad)
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// upBlocks loads up_blocks.i for each of types, mirroring the down blocks:
// block i has layers[nb-1-i]+1 resnets to boc[nb-1-i] channels, each taking
// a skip connection (the last one from the next-shallower level) concatenated
// to its input, each followed by an attention in attention blocks, then an
// upsampler except after the last block.
func (l *blockLoader) upBlocks(root Scope, types []string, boc, layers []int) ([]*unetBlock, error) {
	nb := len(boc)
	var blocks []*unetBlock
	out := boc[nb-1]
	for i, typ := range types {
		prev := out
		out = boc[nb-1-i]
		in := boc[max(nb-2-i, 0)]
		s := root.Sub("up_blocks", i)
		b := &unetBlock{Name: s.Prefix}
		attn, err := l.hasAttention("up", i, typ, l.plainUp, l.attnUp)
		if err != nil {
			return nil, err
		}
		n := layers[nb-1-i] + 1
		for j := 0; j < n; j++ {
			skip := out
			if j == n-1 {
				skip = in
			}
			rin := out
			if j == 0 {
				rin = prev
			}
			b.Resnets = append(b.Resnets, LoadResnetBlock2D(s.Sub("resnets", j), rin+skip, out, l.tdim, l.groups, l.eps, 1))
			if attn {
				if err := l.attention(i, b, s.Sub("attentions", j), out); err != nil {
					return nil, err
				}
			}
		}
		if i < nb-1 {
			b.Up = LoadUpsample2D(s.Sub("upsamplers", 0), out)
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// forwardDown runs a down block, appending every intermediate output to
// skips (diffusers' output_states).
func (b *unetBlock) forwardDown(be Backend, h, temb, ctx *Tensor, skips *[]*Tensor) *Tensor {
	for i, r := range b.Resnets {
		// h is always an entry of skips here, so it is not freed.
		h = r.Forward(be, h, temb)
		h = b.attend(be, i, h, ctx)
		*skips = append(*skips, h)
	}
	if b.Down != nil {
		h = b.Down.Forward(be, h)
		*skips = append(*skips, h)
	}
	return h
}

// attend applies the i-th attention of the block, if any, freeing its input.
func (b *unetBlock) attend(be Backend, i int, h, ctx *Tensor) *Tensor {
	var o *Tensor
	switch {
	case i < len(b.Transformer):
		o = b.Transformer[i].Forward(be, h, ctx)
	case i < len(b.Attentions):
		o = b.Attentions[i].ForwardSpatial(be, h)
	default:
		return h
	}
	Free(h)
	return o
}

// forwardUp runs an up block, consuming skips from the end.
func (b *unetBlock) forwardUp(be Backend, h, temb, ctx *Tensor, skips *[]*Tensor) *Tensor {
	for i, r := range b.Resnets {
		if len(*skips) == 0 {
			be.setErr(fmt.Errorf("nn: %s: ran out of skip connections", b.Name))
			return nil
		}
		s := (*skips)[len(*skips)-1]
		*skips = (*skips)[:len(*skips)-1]
		cat := be.Concat(1, h, s)
		Free(h, s)
		h = r.Forward(be, cat, temb)
		Free(cat)
		h = b.attend(be, i, h, ctx)
	}
	if b.Up != nil {
		u := b.Up.Forward(be, h)
		Free(h)
		h = u
	}
	return h
}

// midBlock is UNetMidBlock2D / UNetMidBlock2DCrossAttn: resnet, then
// (attention, resnet) pairs.
type midBlock struct {
	Resnets     []*ResnetBlock2D
	Attentions  []*Attention
	Transformer []*Transformer2DModel
}

func (m *midBlock) forward(be Backend, h, temb, ctx *Tensor) *Tensor {
	h = m.Resnets[0].Forward(be, h, temb)
	for i, r := range m.Resnets[1:] {
		var a *Tensor
		switch {
		case i < len(m.Transformer):
			a = m.Transformer[i].Forward(be, h, ctx)
		case i < len(m.Attentions):
			a = m.Attentions[i].ForwardSpatial(be, h)
		default:
			a = h
		}
		if a != h {
			Free(h)
		}
		h = r.Forward(be, a, temb)
		Free(a)
	}
	return h
}

// loadSpatialAttention loads a UNet2DModel / VAE attention block (group
// norm, biased q/k/v, residual).
func loadSpatialAttention(s Scope, channels, headDim, groups int, eps, rescale float32) *Attention {
	heads := 1
	if headDim > 0 && headDim < channels {
		heads = channels / headDim
	}
	a := LoadAttention(s, channels, channels, heads, channels/heads, true)
	a.GroupNorm = LoadGroupNorm(s, "group_norm", groups, channels, eps)
	a.Residual = true
	a.RescaleOutput = rescale
	return a
}

// timesteps converts per-batch timesteps (one value broadcast, or one per
// batch element) to a [B] tensor.
func timestepTensor(be Backend, t []float32, batch int) *Tensor {
	switch len(t) {
	case 1:
		v := make([]float32, batch)
		for i := range v {
			v[i] = t[0]
		}
		return be.Upload([]int{batch}, v)
	case batch:
		return be.Upload([]int{batch}, t)
	}
	be.setErr(fmt.Errorf("nn: unet: %d timesteps for a batch of %d (want 1 or %d)", len(t), batch, batch))
	return nil
}
