package samplers

import (
	"fmt"
	"time"

	"retrace/nn"
)

// Methods lists the inversion methods RoundTrip and Invert accept, with the
// model calls each spends per step (per ε evaluation; classifier-free
// guidance doubles the batch, not the calls).
var Methods = []struct {
	Name         string
	CallsPerStep int
	Exact        bool
}{
	{"ddim", 1, false},
	{"edict", 2, true},
	{"bdia", 1, true},
	{"ef-ddpm", 1, true},
}

// Inversion is an inverted image for one method: what a reconstruction or
// an edit starts from.
type Inversion struct {
	Method string
	Steps  int
	// DDIM: XT. EDICT: X, Y. BDIA: X (top), Y (below). EF-DDPM: EF.
	X, Y *nn.Tensor
	EF   *EFDDPMInversion
	// Calls counts model evaluations.
	Calls int
}

// Free releases the inversion's tensors.
func (inv *Inversion) Free() {
	nn.Free(inv.X, inv.Y)
	if inv.EF != nil {
		inv.EF.Free()
	}
}

// countingEps wraps eps to count its calls.
func countingEps(eps EpsFunc, n *int) EpsFunc {
	return func(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error) {
		*n++
		return eps(be, x, t)
	}
}

// runScheduler runs a deterministic scheduler (DDIM, DDIM inverse) over all
// its timesteps from x (not consumed).
func runScheduler(be nn.Backend, sch Scheduler, eps EpsFunc, x *nn.Tensor) (*nn.Tensor, error) {
	cur := be.Affine(x, 1, 0)
	for k, t := range sch.Timesteps() {
		in := sch.ScaleModelInput(be, cur, k)
		e, err := eps(be, in, t)
		nn.Free(in)
		if err != nil {
			nn.Free(cur)
			return nil, err
		}
		nx, err := sch.Step(be, e, k, cur, nil)
		nn.Free(e, cur)
		if err != nil {
			return nil, err
		}
		cur = nx
	}
	return cur, be.Err()
}

// Invert inverts x0 with method over steps of cfg's DDIM grid using eps
// (the source prompt's noise estimate). seed feeds edit-friendly DDPM's
// independent x_t draws.
func Invert(be nn.Backend, method string, cfg SchedulerConfig, steps int, eps EpsFunc, x0 *nn.Tensor, seed uint64) (*Inversion, error) {
	inv := &Inversion{Method: method, Steps: steps}
	eps = countingEps(eps, &inv.Calls)
	var err error
	switch method {
	case "ddim":
		c := cfg
		c.ClassName = "DDIMInverseScheduler"
		var sch *DDIMInverse
		if sch, err = NewDDIMInverse(c); err != nil {
			return nil, err
		}
		if err = sch.SetTimesteps(steps); err != nil {
			return nil, err
		}
		inv.X, err = runScheduler(be, sch, eps, x0)
	case "edict":
		var d *EDICT
		if d, err = NewEDICT(cfg, steps); err != nil {
			return nil, err
		}
		inv.X, inv.Y, err = d.Invert(be, eps, x0, 1)
	case "bdia":
		var b *BDIA
		if b, err = NewBDIA(cfg, steps, 1); err != nil {
			return nil, err
		}
		inv.X, inv.Y, err = b.Invert(be, eps, x0, 1)
	case "ef-ddpm":
		var f *EFDDPM
		if f, err = NewEFDDPM(cfg, steps); err != nil {
			return nil, err
		}
		noise := EFDDPMNoise(be, x0.Shape(), steps, NewNoise(seed))
		inv.EF, err = f.Invert(be, eps, x0, noise)
		nn.Free(noise...)
	default:
		return nil, fmt.Errorf("invert: unknown method %q (ddim, edict, bdia, ef-ddpm)", method)
	}
	if err != nil {
		inv.Free()
		return nil, err
	}
	return inv, nil
}

// Regenerate denoises an inversion with eps (the target prompt's noise
// estimate; the source's for a reconstruction). For edit-friendly DDPM,
// skip leaves the first skip steps out (T − T_skip) and exact restores
// the last noise map so an unedited run reconstructs exactly.
func Regenerate(be nn.Backend, inv *Inversion, cfg SchedulerConfig, eps EpsFunc, skip int, exact bool) (*nn.Tensor, int, error) {
	calls := 0
	eps = countingEps(eps, &calls)
	var out *nn.Tensor
	var err error
	switch inv.Method {
	case "ddim":
		c := cfg
		c.ClassName = "DDIMScheduler"
		var sch *DDIM
		if sch, err = NewDDIM(c); err != nil {
			return nil, 0, err
		}
		if err = sch.SetTimesteps(inv.Steps); err != nil {
			return nil, 0, err
		}
		out, err = runScheduler(be, sch, eps, inv.X)
	case "edict":
		var d *EDICT
		if d, err = NewEDICT(cfg, inv.Steps); err != nil {
			return nil, 0, err
		}
		var y *nn.Tensor
		out, y, err = d.Reconstruct(be, eps, inv.X, inv.Y, 1)
		nn.Free(y)
	case "bdia":
		var b *BDIA
		if b, err = NewBDIA(cfg, inv.Steps, 1); err != nil {
			return nil, 0, err
		}
		out, err = b.Reconstruct(be, eps, inv.X, inv.Y, 1)
	case "ef-ddpm":
		var f *EFDDPM
		if f, err = NewEFDDPM(cfg, inv.Steps); err != nil {
			return nil, 0, err
		}
		n := len(inv.EF.Zs)
		if skip < 0 || skip >= n {
			return nil, 0, fmt.Errorf("ef-ddpm: skip %d of %d steps", skip, n)
		}
		zs := inv.EF.Zs
		if exact {
			zs = inv.EF.ExactZs()
			defer nn.Free(zs...)
		}
		out, err = f.Reverse(be, eps, inv.EF.Xts[n-skip], zs[:n-skip])
	default:
		return nil, 0, fmt.Errorf("regenerate: unknown method %q", inv.Method)
	}
	return out, calls, err
}

// RoundTripResult is one line of `retrace roundtrip --json`.
type RoundTripResult struct {
	Method     string  `json:"method"`
	Steps      int     `json:"steps"`
	MaxAbsErr  float64 `json:"max_abs_err"`
	MeanAbsErr float64 `json:"mean_abs_err"`
	Ms         float64 `json:"ms"`
	ModelCalls int     `json:"model_calls"`
	Exact      bool    `json:"exact"`
	Backend    string  `json:"backend"`
}

// RoundTrip inverts x0 and reconstructs it with the same eps, measuring the
// error (the test of an exact inversion).
func RoundTrip(be nn.Backend, method string, cfg SchedulerConfig, steps int, eps EpsFunc, x0 *nn.Tensor, seed uint64) (RoundTripResult, error) {
	r := RoundTripResult{Method: method, Steps: steps, Backend: be.Name()}
	start := time.Now()
	inv, err := Invert(be, method, cfg, steps, eps, x0, seed)
	if err != nil {
		return r, err
	}
	defer inv.Free()
	rec, calls, err := Regenerate(be, inv, cfg, eps, 0, true)
	if err != nil {
		return r, err
	}
	defer nn.Free(rec)
	d := be.Binary(nn.Sub, rec, x0)
	mx := be.Reduce(nn.MaxAbs, d)
	ab := be.Unary(nn.Abs, d)
	mean := be.Reduce(nn.Mean, ab)
	nn.Free(d, ab)
	defer nn.Free(mx, mean)
	mv, err := be.Read(mx)
	if err != nil {
		return r, err
	}
	av, err := be.Read(mean)
	if err != nil {
		return r, err
	}
	r.Ms = float64(time.Since(start).Microseconds()) / 1000
	r.MaxAbsErr, r.MeanAbsErr = float64(mv[0]), float64(av[0])
	r.ModelCalls = inv.Calls + calls
	for _, m := range Methods {
		if m.Name == method {
			r.Exact = m.Exact
		}
	}
	return r, nil
}
