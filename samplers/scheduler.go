package samplers

import (
	"fmt"
	"math"
	"slices"

	"retrace/nn"
)

// Scheduler is a diffusers-style noise scheduler. A sampling loop is
//
//	s.SetTimesteps(n)
//	x := latents·InitNoiseSigma()
//	for k, t := range s.Timesteps() {
//		in := s.ScaleModelInput(be, x, k)
//		out := model(in, t)
//		var z *nn.Tensor // standard normal noise, only where s.NeedsNoise(k)
//		x, err = s.Step(be, out, k, x, z)
//	}
//
// Steps are addressed by their index k in Timesteps (not by timestep value,
// which repeats in PNDM). Multistep solvers (DPM-Solver++, PNDM) keep the
// previous model outputs: their steps must be taken in order from k = 0,
// and step 0 starts a new trajectory. Tensors passed in stay owned by the
// caller; returned tensors belong to the caller (free them with nn.Free).
type Scheduler interface {
	// SetTimesteps chooses the timesteps for n inference steps.
	SetTimesteps(n int) error
	// Timesteps are the model's timesteps, one per step (integers stored as
	// float32 for the discrete schedulers, fractional for Euler-type).
	Timesteps() []float32
	// InitNoiseSigma scales the initial standard-normal latents.
	InitNoiseSigma() float32
	// ScaleModelInput returns the model input for step k (a new reference,
	// possibly a view of x).
	ScaleModelInput(be nn.Backend, x *nn.Tensor, k int) *nn.Tensor
	// NeedsNoise reports whether Step k consumes a standard-normal tensor.
	NeedsNoise(k int) bool
	// Step returns the sample after step k from the model output at step k
	// and the current sample x; noise (shaped like x) is required where
	// NeedsNoise(k) and ignored elsewhere.
	Step(be nn.Backend, modelOut *nn.Tensor, k int, x, noise *nn.Tensor) (*nn.Tensor, error)
}

// NewScheduler builds the scheduler named by cfg.ClassName (diffusers class
// names; an empty name means DDIMScheduler).
func NewScheduler(cfg SchedulerConfig) (Scheduler, error) {
	switch cfg.ClassName {
	case "DDIMScheduler", "":
		return NewDDIM(cfg)
	case "DDIMInverseScheduler":
		return NewDDIMInverse(cfg)
	case "DDPMScheduler":
		return NewDDPM(cfg)
	case "EulerDiscreteScheduler":
		return NewEuler(cfg)
	case "EulerAncestralDiscreteScheduler":
		return NewEulerAncestral(cfg)
	case "DPMSolverMultistepScheduler":
		return NewDPMSolver(cfg)
	case "PNDMScheduler":
		return NewPNDM(cfg)
	}
	return nil, fmt.Errorf("scheduler: _class_name %q is not supported (DDIMScheduler, DDIMInverseScheduler, DDPMScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler, PNDMScheduler)", cfg.ClassName)
}

// Guidance is classifier-free guidance (Ho & Salimans, 2022, eq. 6 in
// diffusers' form): ε_u + g·(ε_c − ε_u). A negative prompt is simply the
// prompt of the unconditional branch.
func Guidance(be nn.Backend, epsUncond, epsCond *nn.Tensor, g float32) *nn.Tensor {
	d := be.Binary(nn.Sub, epsCond, epsUncond)
	out := be.Axpby(1, epsUncond, g, d)
	nn.Free(d)
	return out
}

// GuidanceBatch applies Guidance to a model output whose batch is
// [uncond; cond] (diffusers' order), returning half the batch.
func GuidanceBatch(be nn.Backend, eps *nn.Tensor, g float32) (*nn.Tensor, error) {
	if eps == nil || eps.Rank() == 0 || eps.Dim(0)%2 != 0 {
		return nil, fmt.Errorf("guidance: model output %v must have an even batch [uncond; cond]", eps)
	}
	h := eps.Dim(0) / 2
	u, c := nn.Narrow(eps, 0, h), nn.Narrow(eps, h, h)
	out := Guidance(be, u, c, g)
	nn.Free(u, c)
	return out, be.Err()
}

// term is one c·t of a linear combination.
type term struct {
	c float64
	t *nn.Tensor
}

// lin returns Σ cᵢ·tᵢ with the coefficients rounded to float32, through
// Axpby/Affine (one op per extra term). Terms with a zero coefficient are
// skipped; at least one term is kept.
func lin(be nn.Backend, ts ...term) *nn.Tensor {
	var keep []term
	for _, t := range ts {
		if t.c != 0 {
			keep = append(keep, t)
		}
	}
	if len(keep) == 0 {
		keep = ts[:1]
	}
	var acc *nn.Tensor
	if len(keep) == 1 {
		return be.Affine(keep[0].t, float32(keep[0].c), 0)
	}
	acc = be.Axpby(float32(keep[0].c), keep[0].t, float32(keep[1].c), keep[1].t)
	for _, t := range keep[2:] {
		n := be.Axpby(1, acc, float32(t.c), t.t)
		nn.Free(acc)
		acc = n
	}
	return acc
}

// retain returns a new reference to x (a view), so a scheduler can keep a
// tensor that the caller frees.
func retain(x *nn.Tensor) *nn.Tensor {
	if x == nil {
		return nil
	}
	return nn.Reshape(x, x.Shape()...)
}

// predictX0Eps writes the model output m at ᾱ as coefficients of (x, m)
// for the predicted clean sample x̂₀ and noise ε̂ (Ho et al. 2020 eq. 4,
// x = √ᾱ·x₀ + √(1−ᾱ)·ε; Salimans & Ho 2022 §4 for v = √ᾱ·ε − √(1−ᾱ)·x₀).
func predictX0Eps(pred string, abar float64) (x0, eps [2]float64, err error) {
	a, b := math.Sqrt(abar), math.Sqrt(1-abar)
	switch pred {
	case "epsilon":
		return [2]float64{1 / a, -b / a}, [2]float64{0, 1}, nil
	case "sample":
		return [2]float64{0, 1}, [2]float64{1 / b, -a / b}, nil
	case "v_prediction":
		return [2]float64{a, -b}, [2]float64{b, a}, nil
	}
	return x0, eps, fmt.Errorf("prediction_type %q is not supported (epsilon, sample, v_prediction)", pred)
}

// checkStep validates the common Step arguments.
func checkStep(name string, n, k int, m, x *nn.Tensor) error {
	if n == 0 {
		return fmt.Errorf("%s: step %d before SetTimesteps", name, k)
	}
	if k < 0 || k >= n {
		return fmt.Errorf("%s: step %d out of range [0, %d)", name, k, n)
	}
	if m == nil || x == nil {
		return fmt.Errorf("%s: step %d: nil model output or sample", name, k)
	}
	if !slices.Equal(m.Shape(), x.Shape()) {
		return fmt.Errorf("%s: step %d: model output %v and sample %v differ in shape", name, k, m.Shape(), x.Shape())
	}
	return nil
}

func checkNoise(name string, k int, x, noise *nn.Tensor) error {
	if noise == nil {
		return fmt.Errorf("%s: step %d needs a noise tensor", name, k)
	}
	if !slices.Equal(noise.Shape(), x.Shape()) {
		return fmt.Errorf("%s: step %d: noise %v and sample %v differ in shape", name, k, noise.Shape(), x.Shape())
	}
	return nil
}

// checkSteps validates a number of inference steps.
func checkSteps(name string, n, T int) error {
	if n <= 0 || n > T {
		return fmt.Errorf("%s: %d inference steps (want 1…%d, num_train_timesteps)", name, n, T)
	}
	return nil
}

// checkCommon rejects config values no scheduler here implements.
func checkCommon(name string, c SchedulerConfig) error {
	if c.Thresholding {
		return fmt.Errorf("%s: thresholding (dynamic thresholding) is not supported", name)
	}
	return nil
}

// numpyLinspace mirrors np.linspace(start, stop, n) in float64:
// start + i·step with step = (stop − start)/(n − 1), the last value stop.
func numpyLinspace(start, stop float64, n int) []float64 {
	out := make([]float64, n)
	if n == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(n-1)
	for i := range out {
		out[i] = float64(i)*step + start
	}
	out[n-1] = stop
	return out
}

// numpyArangeDown mirrors np.arange(start, 0, −step) for float step:
// ⌈start/step⌉ values start + i·d with d = (start − step) − start.
func numpyArangeDown(start, step float64) []float64 {
	n := int(math.Ceil((0 - start) / -step))
	d := (start - step) - start
	out := make([]float64, n)
	for i := range out {
		out[i] = start + float64(i)*d
	}
	return out
}

// spacedTimesteps returns the descending integer timesteps of the
// "linspace", "leading" and "trailing" spacings (Lin et al. 2023, Table 2)
// exactly as diffusers' DDIM/DDPM set_timesteps computes them.
func spacedTimesteps(spacing string, T, n, offset int) ([]int, error) {
	var ts []int
	switch spacing {
	case "linspace":
		v := numpyLinspace(0, float64(T-1), n)
		for i := n - 1; i >= 0; i-- {
			ts = append(ts, int(math.RoundToEven(v[i])))
		}
	case "leading":
		r := T / n
		for i := n - 1; i >= 0; i-- {
			ts = append(ts, i*r+offset)
		}
	case "trailing":
		for _, v := range numpyArangeDown(float64(T), float64(T)/float64(n)) {
			ts = append(ts, int(math.RoundToEven(v))-1)
		}
	default:
		return nil, fmt.Errorf("timestep_spacing %q is not supported (linspace, leading, trailing)", spacing)
	}
	return ts, nil
}

// trainSigmas returns σ_t = √((1−ᾱ_t)/ᾱ_t) in float32 (torch's order).
func trainSigmas(ac []float32) []float32 {
	s := make([]float32, len(ac))
	for i, a := range ac {
		s[i] = float32(math.Sqrt(float64((1 - a) / a)))
	}
	return s
}

// interpSigma mirrors np.interp(t, arange(len(s)), s) in float64.
func interpSigma(t float64, s []float32) float64 {
	n := len(s)
	switch {
	case t <= 0:
		return float64(s[0])
	case t >= float64(n-1):
		return float64(s[n-1])
	}
	j := int(math.Floor(t))
	if float64(j) == t {
		return float64(s[j])
	}
	slope := (float64(s[j+1]) - float64(s[j])) / 1
	return slope*(t-float64(j)) + float64(s[j])
}

func intsToF32(ts []int) []float32 {
	out := make([]float32, len(ts))
	for i, t := range ts {
		out[i] = float32(t)
	}
	return out
}

func sqrt(x float64) float64 { return math.Sqrt(x) }
