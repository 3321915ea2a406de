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
