package samplers

import (
	"fmt"
	"slices"
	"strings"

	"retrace/nn"
)

// Training-free style transfer by self-attention injection (Chung et al.,
// "Style Injection in Diffusion: A Training-free Approach for Adapting
// Large-scale Diffusion Models for Style Transfer" (StyleID), CVPR 2024,
// eq. 5–6), with StyleSSP's start point. The style and the content image
// are DDIM-inverted; a batch [style, content] is then denoised from
// [z^s_T, z^c_T']. The style branch is pinned to its inversion after every
// step (Direct Inversion), so it reproduces the style image's features; in
// the self-attention (attn1) layers of the decoder (up_blocks) the content
// branch keeps its queries but attends over the style branch's keys and
// values, for the first InjectFraction of the steps:
//
//	out_c = softmax(τ·q_c·k_sᵀ/√d)·v_s
//
// (τ: StyleID's attention temperature). StyleID's query preservation and
// AdaIN of the start latent are left out.

// StyleTransferOptions configures StyleTransfer.
type StyleTransferOptions struct {
	UNet      *nn.UNet2DConditionModel
	Scheduler SchedulerConfig
	Steps     int
	// Prompt is the embedding both branches see [1, L, D] (StyleID uses
	// the empty prompt); no classifier-free guidance.
	Prompt *nn.Tensor
	// Content and Style are the images' latents [1, C, h, w].
	Content, Style *nn.Tensor
	// InjectFraction of the steps, from the first, inject the style's keys
	// and values.
	InjectFraction float64
	// Layers is the prefix of the attention layers injected; "" means
	// "up_blocks." (the decoder).
	Layers string
	// Temperature τ scales the injected attention's logits; 0 means 1.
	Temperature float32
	// LowFreq (λ) and LowPass set StyleSSP's frequency manipulation of the
	// content start point (0: off).
	LowFreq float32
	LowPass LowPass
	// Negative and NegativeGuidance set StyleSSP's negative guidance
	// during the content inversion (nil: off); see InvertOptions.
	Negative         *nn.Tensor
	NegativeGuidance float32
}

// StyleTransfer restyles the content image with the style image and
// returns the stylised latent [1, C, h, w].
func StyleTransfer(be nn.Backend, o StyleTransferOptions) (*nn.Tensor, error) {
	if o.UNet == nil || o.Prompt == nil || o.Content == nil || o.Style == nil {
		return nil, fmt.Errorf("style transfer: missing UNet, scheduler, prompt, content or style")
	}
	if !(o.InjectFraction >= 0 && o.InjectFraction <= 1) {
		return nil, fmt.Errorf("style transfer: InjectFraction %v outside [0, 1]", o.InjectFraction)
	}
	if o.Content.Rank() != 4 || o.Content.Dim(0) != 1 || !slices.Equal(o.Content.Shape(), o.Style.Shape()) {
		return nil, fmt.Errorf("style transfer: content %v and style %v must be equal [1, C, h, w]", o.Content.Shape(), o.Style.Shape())
	}
	layers := o.Layers
	if layers == "" {
		layers = "up_blocks."
	}
	tau := o.Temperature
	if tau == 0 {
		tau = 1
	}
	trS, err := InvertTrajectory(be, o.Style, InvertOptions{UNet: o.UNet, Scheduler: o.Scheduler, Steps: o.Steps, Prompt: o.Prompt})
	if err != nil {
		return nil, err
	}
	defer trS.Free()
	trC, start, err := StyleSSPStart(be, o.Content, InvertOptions{UNet: o.UNet, Scheduler: o.Scheduler, Steps: o.Steps, Prompt: o.Prompt, Negative: o.Negative, Guidance: o.NegativeGuidance}, o.LowFreq, o.LowPass)
	if err != nil {
		return nil, err
	}
	trC.Free()
	x := be.Concat(0, trS.Latent(0), start)
	nn.Free(start)
	ctx := be.Concat(0, o.Prompt, o.Prompt)
	defer nn.Free(ctx)
	h := &styleHook{layers: layers, tau: tau, steps: o.Steps, frac: o.InjectFraction}
	run := pairRun{unet: o.UNet, sched: o.Scheduler, steps: o.Steps, guidance: 1, ctx: ctx, hook: h.hook,
		before: func(k int) { h.step = k },
		check:  func() error { return h.err },
		after: func(k, t int, x *nn.Tensor) (*nn.Tensor, error) {
			return directInversionCorrect(be, x, trS.Latent(k+1)), nil
		}}
	x, err = run.run(be, x)
	if err != nil {
		return nil, err
	}
	v := nn.Narrow(x, 1, 1)
	out := be.Affine(v, 1, 0)
	nn.Free(v, x)
	if err := be.Err(); err != nil {
		nn.Free(out)
		return nil, err
	}
	return out, nil
}

// styleHook injects the style row's (0) self-attention keys and values
// into the content row (1).
type styleHook struct {
	layers      string
	tau         float32
	step, steps int
	frac        float64
	err         error
}

func (s *styleHook) hook(be nn.Backend, name string, q, k, v *nn.Tensor, heads int, scale float32) *nn.Tensor {
	if s.err != nil || !strings.HasSuffix(name, "attn1") || !strings.HasPrefix(name, s.layers) || !editActive(s.frac, s.step, s.steps) {
		return nil
	}
	if q.Dim(0) != 2 {
		s.err = fmt.Errorf("style transfer: %s: batch %d, want 2 ([style, content])", name, q.Dim(0))
		return nil
	}
	qs, ks, vs := nn.Narrow(q, 0, 1), nn.Narrow(k, 0, 1), nn.Narrow(v, 0, 1)
	qc := nn.Narrow(q, 1, 1)
	own := editAttend(be, qs, ks, vs, heads, scale)
	inj := editAttend(be, qc, ks, vs, heads, scale*s.tau)
	out := be.Concat(0, own, inj)
	nn.Free(qs, ks, vs, qc, own, inj)
	return out
}
