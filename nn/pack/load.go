package pack

import (
	"encoding/json"
	"fmt"

	"retrace/nn"
)

// weights returns the loader of a component: f16 tensors stay f16 and
// q8/q4 tensors stay quantized on be (f32 packs load as f32).
func (p *Pack) weights(be nn.Backend, component string, cfg any) (*nn.Weights, error) {
	s, err := p.Component(component)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(s.Config(), cfg); err != nil {
		return nil, fmt.Errorf("pack: %s config: %w", component, err)
	}
	w := nn.NewWeights(be, s)
	w.Storage = nn.F16
	for _, t := range s.Tensors() {
		if t.Format == "f32" && len(t.Shape) >= 2 {
			w.Storage = nn.F32
		}
	}
	return w, nil
}

// UNet loads the pack's unet.
func (p *Pack) UNet(be nn.Backend) (*nn.UNet2DConditionModel, error) {
	var cfg nn.UNet2DConditionConfig
	w, err := p.weights(be, "unet", &cfg)
	if err != nil {
		return nil, err
	}
	return nn.LoadUNet2DConditionModel(cfg, w)
}

// VAE loads the pack's vae.
func (p *Pack) VAE(be nn.Backend) (*nn.AutoencoderKL, error) {
	var cfg nn.AutoencoderKLConfig
	w, err := p.weights(be, "vae", &cfg)
	if err != nil {
		return nil, err
	}
	return nn.LoadAutoencoderKL(cfg, w)
}

// TextEncoder loads the pack's text_encoder.
func (p *Pack) TextEncoder(be nn.Backend) (*nn.CLIPTextModel, error) {
	var cfg nn.CLIPTextConfig
	w, err := p.weights(be, "text_encoder", &cfg)
	if err != nil {
		return nil, err
	}
	return nn.LoadCLIPTextModel(cfg, w)
}
