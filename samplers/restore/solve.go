package restore

import (
	"fmt"
	"math"
	"slices"

	"retrace/nn"
	"retrace/samplers"
)

// Prior is the diffusion prior: an ε-prediction model on pixels in [−1, 1]
// (samplers.UNetEps for an unconditional UNet2DModel, samplers.CondUNetEps
// with the null or a class prompt for a conditional one) and the training
// noise schedule (scheduler_config.json; only ᾱ, the timestep spacing and
// prediction_type = epsilon are used).
type Prior struct {
	Eps    samplers.EpsFunc
	Config samplers.SchedulerConfig
}

// Problem is one inverse problem y = A(x) + n, n ~ N(0, σ_y²I), for images
// of shape Shape [N, C, H, W].
type Problem struct {
	Op     Operator
	Y      *nn.Tensor
	Shape  []int
	SigmaY float64
}

// Options control a solve. Zero values take each solver's defaults.
type Options struct {
	Steps int    // model timesteps (DDIM-style spacing of the config)
	Seed  uint64 // all noise (initial x_T, re-noising, RED-Diff's ε) from samplers.NewNoise(Seed)
	// Eta is η: DDNM's fresh-noise share (default 0.85), DDS's DDIM η
	// (default 0.15); plain DDIM always uses 0.
	Eta *float64
	// CGSteps (DDS, default 5) and CGRho ρ ≥ 0 of (AᵀA + ρI)x = Aᵀy + ρx̂₀
	// (default: 0 for noiseless measurements, the Krylov-subspace form of
	// the paper; σ_y²·ᾱ_t/(1−ᾱ_t) with noise, see DDS).
	CGSteps int
	CGRho   float64
	// RED-Diff: Adam learning rate (default 0.1), λ of w_t = λ·√((1−ᾱ)/ᾱ)
	// (default 0.25) and the observation σ of the data term (default 1).
	LR, Lambda, ObsSigma float64
	// Score-SDE: the corrector's SNR r (default 0.16) and corrector steps
	// per timestep (default 1; a negative value means 0).
	SNR       float64
	Corrector int
	// OnStep, if set, sees the current estimate of x₀ after step k.
	OnStep func(k int, x0 *nn.Tensor) error
}

// Stats report a solve's cost.
type Stats struct {
	Calls int // ε-model evaluations (batched images count once)
}

// Solvers lists the solver names Solve accepts.
var Solvers = []string{"pinv", "ddim", "ddnm", "dds", "reddiff", "sde"}

// Supports returns nil when solver handles op with measurement noise σ_y,
// or an error naming the combination.
func Supports(solver string, op Operator, sigmaY float64) error {
	if !slices.Contains(Solvers, solver) {
		return fmt.Errorf("restore: unknown solver %q (want one of %v)", solver, Solvers)
	}
	task := op.Name()
	switch solver {
	case "ddnm":
		if !op.HasPinv() {
			return fmt.Errorf("restore: solver ddnm does not support task %s: it needs a closed-form pseudo-inverse A† (use dds or reddiff)", task)
		}
	case "sde":
		switch task {
		case "inpaint", "colorize":
		default:
			return fmt.Errorf("restore: solver sde does not support task %s (inpaint and colorize, as in Song et al.; for super-resolution its few-step samples lost to A†y, see docs/RESTORE.md)", task)
		}
		if sigmaY != 0 {
			return fmt.Errorf("restore: solver sde needs a noiseless measurement (σ_y = %v)", sigmaY)
		}
	}
	return nil
}

// Solve restores x from the problem with the named solver and returns the
// image [N, C, H, W] clamped to [−1, 1].
func Solve(be nn.Backend, solver string, prior Prior, p Problem, o Options) (*nn.Tensor, Stats, error) {
	if err := checkProblem(p); err != nil {
		return nil, Stats{}, err
	}
	if err := Supports(solver, p.Op, p.SigmaY); err != nil {
		return nil, Stats{}, err
	}
	if solver != "pinv" && prior.Eps == nil {
		return nil, Stats{}, fmt.Errorf("restore: %s: nil ε-model", solver)
	}
	var (
		x   *nn.Tensor
		st  Stats
		err error
	)
	switch solver {
	case "pinv":
		x, err = Estimate(be, p.Op, p.Y)
	case "ddim":
		x, st, err = DDIMPaste(be, prior, p, o)
	case "ddnm":
		x, st, err = DDNM(be, prior, p, o)
	case "dds":
		x, st, err = DDS(be, prior, p, o)
	case "reddiff":
		x, st, err = REDDiff(be, prior, p, o)
	case "sde":
		x, st, err = ScoreSDE(be, prior, p, o)
	}
	if err != nil {
		return nil, st, err
	}
	c := be.Clamp(x, -1, 1)
	nn.Free(x)
	c, err = done(be, c)
	return c, st, err
}

func checkProblem(p Problem) error {
	if p.Op == nil {
		return fmt.Errorf("restore: nil operator")
	}
	if len(p.Shape) != 4 || slices.Contains(p.Shape, 0) {
		return fmt.Errorf("restore: %s: image shape %v must be [N, C, H, W]", p.Op.Name(), p.Shape)
	}
	ys, err := p.Op.MeasShape(p.Shape)
	if err != nil {
		return err
	}
	if err := checkImage(p.Op.Name(), "measurement", p.Y, ys); err != nil {
		return err
	}
	if !(p.SigmaY >= 0) {
		return fmt.Errorf("restore: %s: measurement noise σ_y = %v must be ≥ 0", p.Op.Name(), p.SigmaY)
	}
	if p.Op.Name() == "denoise" && !(p.SigmaY > 0) {
		return fmt.Errorf("restore: denoise: measurement noise σ_y = %v must be > 0", p.SigmaY)
	}
	return nil
}

// schedule is the descending timestep grid of the prior's config (DDIM's
// timestep_spacing and steps_offset) with ᾱ at each, and ᾱ = 1 after the
// last: every solver ends on its clean estimate x̂₀.
type schedule struct {
	ts []int
	ac []float32
}

func newSchedule(method string, cfg samplers.SchedulerConfig, steps int) (*schedule, error) {
	cfg.Defaults()
	if cfg.PredictionType != "epsilon" {
		return nil, fmt.Errorf("restore: %s: prediction_type %q is not supported (epsilon only)", method, cfg.PredictionType)
	}
	d, err := samplers.NewDDIM(cfg)
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", method, err)
	}
	if err := d.SetTimesteps(steps); err != nil {
		return nil, fmt.Errorf("restore: %s: %w", method, err)
	}
	return &schedule{ts: d.IntTimesteps, ac: d.AlphasCumprod}, nil
}

// alphas returns ᾱ at step k and at the level the step moves to.
func (s *schedule) alphas(k int) (at, an float64) {
	at, an = float64(s.ac[s.ts[k]]), 1
	if k+1 < len(s.ts) {
		an = float64(s.ac[s.ts[k+1]])
	}
	return at, an
}

// model counts ε calls and checks their shape.
type model struct {
	method string
	eps    samplers.EpsFunc
	calls  int
}

func (m *model) at(be nn.Backend, x *nn.Tensor, t int) (*nn.Tensor, error) {
	m.calls++
	e, err := m.eps(be, x, float32(t))
	if err == nil && e == nil {
		err = be.Err()
		if err == nil {
			err = fmt.Errorf("no tensor")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %s: ε-model at t=%d: %w", m.method, t, err)
	}
	if !slices.Equal(e.Shape(), x.Shape()) {
		nn.Free(e)
		return nil, fmt.Errorf("restore: %s: ε-model returned %v for x %v", m.method, e.Shape(), x.Shape())
	}
	return e, nil
}

// tweedie returns x̂₀ = (x − √(1−ᾱ)·ε)/√ᾱ (Ho et al. 2020 eq. 15; the
// posterior mean of Tweedie's formula), clamped to [−1, 1].
func tweedie(be nn.Backend, x, eps *nn.Tensor, ab float64) *nn.Tensor {
	s := math.Sqrt(ab)
	x0 := be.Axpby(float32(1/s), x, float32(-math.Sqrt(1-ab)/s), eps)
	c := be.Clamp(x0, -1, 1)
	nn.Free(x0)
	return c
}

// lin returns Σ cᵢ·tᵢ (zero coefficients skipped, one term kept).
func lin(be nn.Backend, cs []float64, ts ...*nn.Tensor) *nn.Tensor {
	var acc *nn.Tensor
	for i, t := range ts {
		if cs[i] == 0 && !(acc == nil && i == len(ts)-1) {
			continue
		}
		if acc == nil {
			acc = be.Affine(t, float32(cs[i]), 0)
			continue
		}
		n := be.Axpby(1, acc, float32(cs[i]), t)
		nn.Free(acc)
		acc = n
	}
	return acc
}

// projector is an operator with an exact form of x − A†(A x − y).
type projector interface {
	project(be nn.Backend, x, y *nn.Tensor) (*nn.Tensor, error)
}

// project returns x − λ·A†(A x − y) (λ = 1: the closest point, in the
// null-space sense, with A x = y).
func project(be nn.Backend, op Operator, x, y *nn.Tensor, lambda float64) (*nn.Tensor, error) {
	if pr, ok := op.(projector); ok && lambda == 1 {
		return pr.project(be, x, y)
	}
	ax, err := op.A(be, x)
	if err != nil {
		return nil, err
	}
	r := be.Binary(nn.Sub, ax, y)
	nn.Free(ax)
	pr, err := op.Pinv(be, r)
	nn.Free(r)
	if err != nil {
		return nil, err
	}
	out := be.Axpby(1, x, float32(-lambda), pr)
	nn.Free(pr)
	return done(be, out)
}

func etaOr(e *float64, def float64) (float64, error) {
	if e == nil {
		return def, nil
	}
	if !(*e >= 0 && *e <= 1) {
		return 0, fmt.Errorf("restore: η = %v (want 0 ≤ η ≤ 1)", *e)
	}
	return *e, nil
}

func onStep(o Options, k int, x0 *nn.Tensor) error {
	if o.OnStep == nil {
		return nil
	}
	return o.OnStep(k, x0)
}
