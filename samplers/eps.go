package samplers

import (
	"fmt"
	"slices"

	"retrace/nn"
)

// EpsFunc predicts the noise ε(x, t) for latents x [B, C, H, W] at the
// (possibly fractional or negative) timestep t. The exact inversion methods
// (EDICT, BDIA, edit-friendly DDPM) take one, so the same code runs with an
// unconditional UNet2DModel, a conditional UNet with classifier-free
// guidance, or anything else that predicts ε. The caller owns (frees) the
// returned tensor; x is not consumed.
type EpsFunc func(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error)

// UNetEps wraps an unconditional UNet2DModel: ε = unet(x, t).sample.
func UNetEps(m *nn.UNet2DModel) EpsFunc {
	return func(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error) {
		return m.Forward(be, x, []float32{t})
	}
}

// CondUNetEps wraps a UNet2DConditionModel with a prompt embedding cond
// [1 or B, L, D] and classifier-free guidance (Ho & Salimans, 2022, in
// diffusers' form, g = 1 + w): the UNet sees the batch [x, x] with contexts
// [uncond, cond] (diffusers order) and
//
//	ε = ε_u + g·(ε_c − ε_u) = (1−g)·ε_u + g·ε_c.
//
// With uncond nil or g = 1 the UNet runs once on cond alone. The embeddings
// stay owned by the caller and must outlive the EpsFunc.
func CondUNetEps(m *nn.UNet2DConditionModel, cond, uncond *nn.Tensor, g float32) EpsFunc {
	return func(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error) {
		if x == nil || x.Rank() != 4 {
			return nil, fmt.Errorf("eps: latents %v must be [B, C, H, W]", x)
		}
		b := x.Dim(0)
		c, err := repeatBatch(be, "prompt embedding", cond, b)
		if err != nil {
			return nil, err
		}
		if uncond == nil || g == 1 {
			defer nn.Free(c)
			return m.Forward(be, x, []float32{t}, c)
		}
		u, err := repeatBatch(be, "negative prompt embedding", uncond, b)
		if err != nil {
			nn.Free(c)
			return nil, err
		}
		ctx := be.Concat(0, u, c)
		in := be.Concat(0, x, x)
		nn.Free(u, c)
		out, err := m.Forward(be, in, []float32{t}, ctx)
		nn.Free(in, ctx)
		if err != nil {
			return nil, err
		}
		eu, ec := nn.Narrow(out, 0, b), nn.Narrow(out, b, b)
		eps := be.Axpby(1-g, eu, g, ec)
		nn.Free(eu, ec, out)
		return eps, be.Err()
	}
}

// repeatBatch returns a new reference to e [1 or b, L, D] with b rows.
func repeatBatch(be nn.Backend, what string, e *nn.Tensor, b int) (*nn.Tensor, error) {
	if e == nil || e.Rank() != 3 {
		return nil, fmt.Errorf("eps: %s %v must be [1 or %d, L, D]", what, e, b)
	}
	switch e.Dim(0) {
	case b:
		return nn.Reshape(e, e.Shape()...), nil
	case 1:
		rows := make([]*nn.Tensor, b)
		for i := range rows {
			rows[i] = e
		}
		return be.Concat(0, rows...), nil
	}
	return nil, fmt.Errorf("eps: %s %v must have 1 or %d rows for latents of batch %d", what, e.Shape(), b, b)
}

// exactSchedule is the discrete DDIM time grid shared by the exact
// inversion methods: descending timesteps t_0 > … > t_{n−1} chosen by the
// config's timestep_spacing, and ᾱ at every level, with the level below
// t_{n−1} (t_{n−1} − T/n, negative for the usual configs) at the "final"
// alpha (1 with set_alpha_to_one, else ᾱ_0), as in diffusers'
// DDIMScheduler and the reference implementations of the three methods.
type exactSchedule struct {
	method    string
	ac        []float32
	final     float64
	timesteps []int // descending
	ratio     int   // ⌊T/n⌋, the distance to the level below a timestep
	bottom    int   // level below the last timestep (t_{n−1} − ⌊T/n⌋)
}

func newExactSchedule(method string, cfg SchedulerConfig, steps int) (*exactSchedule, error) {
	cfg.Defaults()
	if cfg.PredictionType != "epsilon" {
		return nil, fmt.Errorf("%s: prediction_type %q is not supported (epsilon only)", method, cfg.PredictionType)
	}
	if cfg.Thresholding {
		return nil, fmt.Errorf("%s: thresholding is not supported (it would make the inversion inexact)", method)
	}
	if cfg.RescaleBetasZeroSNR {
		return nil, fmt.Errorf("%s: rescale_betas_zero_snr is not supported", method)
	}
	T := cfg.NumTrainTimesteps
	if steps <= 0 || steps > T {
		return nil, fmt.Errorf("%s: %d steps (want 1…%d)", method, steps, T)
	}
	ac, err := cfg.AlphasCumprod()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	s := &exactSchedule{method: method, ac: ac, final: finalAlpha(cfg, ac), ratio: T / steps}
	var ok bool
	if s.timesteps, ok = exactGrid(cfg.TimestepSpacing, T, steps, cfg.StepsOffset); !ok {
		return nil, fmt.Errorf("%s: timestep_spacing %q is not supported", method, cfg.TimestepSpacing)
	}
	for _, t := range s.timesteps {
		if t < 0 || t >= T {
			return nil, fmt.Errorf("%s: timestep %d outside 0…%d (steps_offset %d)", method, t, T-1, cfg.StepsOffset)
		}
	}
	s.bottom = s.timesteps[steps-1] - s.ratio
	return s, nil
}

// alpha returns ᾱ at level t; levels below 0 use the final alpha.
func (s *exactSchedule) alpha(t int) float64 {
	if t < 0 {
		return s.final
	}
	return float64(s.ac[t])
}

// levels returns the descending levels of the last m timesteps followed
// by the bottom level: the m+1 noise levels a strength-limited run visits.
func (s *exactSchedule) levels(m int) []int {
	n := len(s.timesteps)
	return append(append([]int(nil), s.timesteps[n-m:]...), s.bottom)
}

// strengthSteps is the number of timesteps a run of the given strength
// walks: n − t_limit with t_limit = n − ⌊n·strength⌋ (EDICT/BDIA editing
// code, diffusers img2img).
func (s *exactSchedule) strengthSteps(strength float64) (int, error) {
	n := len(s.timesteps)
	if !(strength > 0 && strength <= 1) {
		return 0, fmt.Errorf("%s: strength %v (want 0 < strength ≤ 1)", s.method, strength)
	}
	m := int(float64(n) * strength)
	if m < 1 {
		return 0, fmt.Errorf("%s: strength %v leaves no step of %d", s.method, strength, n)
	}
	return m, nil
}

// ddimCoef returns the coefficients of the deterministic DDIM map from
// level from to level to (see the function ddimCoef).
func (s *exactSchedule) ddimCoef(from, to int) (cx, ce float64) {
	return ddimCoef(s.alpha(from), s.alpha(to))
}

// callExactEps runs eps and checks that it returned a tensor shaped like x.
func callExactEps(be nn.Backend, method string, eps EpsFunc, x *nn.Tensor, t int) (*nn.Tensor, error) {
	e, err := eps(be, x, float32(t))
	if err != nil {
		return nil, fmt.Errorf("%s: eps at t=%d: %w", method, t, err)
	}
	if e == nil {
		if err := be.Err(); err != nil {
			return nil, fmt.Errorf("%s: eps at t=%d: %w", method, t, err)
		}
		return nil, fmt.Errorf("%s: eps at t=%d returned no tensor", method, t)
	}
	if !slices.Equal(e.Shape(), x.Shape()) {
		nn.Free(e)
		return nil, fmt.Errorf("%s: eps at t=%d returned %v for latents %v", method, t, e.Shape(), x.Shape())
	}
	return e, nil
}

// checkExactLatents rejects nil or non-F32 latents.
func checkExactLatents(method, name string, x *nn.Tensor) error {
	if x == nil {
		return fmt.Errorf("%s: %s is nil", method, name)
	}
	if x.DType() != nn.F32 {
		return fmt.Errorf("%s: %s %v must be f32", method, name, x)
	}
	return nil
}
