package restore

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/samplers"
)

const testSteps = 3

func tinyPrior(t *testing.T, be nn.Backend) (Prior, *nn.UNet2DModel) {
	t.Helper()
	m, err := nn.LoadUNet2DModelDir(be, filepath.Join(golden.Dir(t), "unet2d_tiny"), nn.F32)
	require.NoError(t, err)
	t.Cleanup(m.Free)
	return Prior{Eps: samplers.UNetEps(m)}, m
}

// testTask builds the operator of a task for 16×16 images.
func testTask(t *testing.T, be nn.Backend, task string) (Operator, float64) {
	t.Helper()
	var (
		op  Operator
		err error
	)
	sigmaY := 0.0
	switch task {
	case "inpaint":
		m, _ := CenterBoxMask(16, 16)
		op, err = NewInpaint(be, m, 16, 16)
	case "inpaint_random":
		m, _ := RandomMask(16, 16, 0.5, 11)
		op, err = NewInpaint(be, m, 16, 16)
	case "sr2":
		op, err = NewSuperRes(be, 2)
	case "sr4":
		op, err = NewSuperRes(be, 4)
	case "deblur":
		op, err = NewBlur(be, 1)
	case "denoise":
		op, sigmaY = Denoise{}, 0.2
	case "colorize":
		op, err = NewColorize(be)
	}
	require.NoError(t, err, task)
	t.Cleanup(op.Free)
	return op, sigmaY
}

func testProblem(t *testing.T, be nn.Backend, task string) (Problem, []float32) {
	t.Helper()
	op, sigmaY := testTask(t, be, task)
	shape := []int{1, 3, 16, 16}
	xv := smoothImage(1, 3, 16, 16)
	x := be.Upload(shape, xv)
	y, err := Degrade(be, op, x, sigmaY, samplers.NewNoise(99))
	require.NoError(t, err)
	nn.Free(x)
	t.Cleanup(func() { nn.Free(y) })
	return Problem{Op: op, Y: y, Shape: shape, SigmaY: sigmaY}, xv
}

func residual(t *testing.T, be nn.Backend, p Problem, x *nn.Tensor) float64 {
	t.Helper()
	ax, err := p.Op.A(be, x)
	require.NoError(t, err)
	defer nn.Free(ax)
	return maxAbsDiff(read(t, be, ax), read(t, be, p.Y))
}

// runSolver calls a solver without Solve's final clamp.
func runSolver(be nn.Backend, solver string, prior Prior, p Problem, o Options) (x *nn.Tensor, st Stats, err error) {
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
	return x, st, err
}

var testTasks = []string{"inpaint", "inpaint_random", "sr2", "sr4", "deblur", "denoise", "colorize"}

// TestSolveConsistency runs every supported task × solver on the tiny
// UNet2DModel: the result is finite, in [−1, 1], and consistent with the
// measurement. Exact-projection solvers (ddnm, sde, ddim with paste) give
// A x = y to rounding (inpainting: the known pixels are y bit for bit);
// DDS's CG solves the data problem exactly in one step for the projection-
// like operators (AᵀA has one nonzero eigenvalue), so its residual is at
// rounding level too, except for deblurring; RED-Diff only lowers the
// residual approximately.
func TestSolveConsistency(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		prior, _ := tinyPrior(t, be)
		tasks := testTasks
		if be.Name() == "gpu" { // the GPU run covers fewer tasks to stay fast on CPU adapters
			tasks = []string{"inpaint", "deblur"}
		}
		for _, task := range tasks {
			p, _ := testProblem(t, be, task)
			for _, solver := range Solvers {
				if Supports(solver, p.Op, p.SigmaY) != nil {
					continue
				}
				// The consistency guarantee is for the solver's output
				// before Solve clamps it to [−1, 1] (checked in
				// TestSolveDeterministic).
				x, st, err := runSolver(be, solver, prior, p, Options{Steps: testSteps, Seed: 5})
				require.NoError(t, err, "%s %s", task, solver)
				v := read(t, be, x)
				for _, f := range v {
					require.False(t, math.IsNaN(float64(f)) || math.IsInf(float64(f), 0), "%s %s: %v", task, solver, f)
				}
				res := residual(t, be, p, x)
				t.Logf("%-14s %-8s calls %3d  max|Ax−y| %.3g", task, solver, st.Calls, res)
				exact := p.SigmaY == 0 && p.Op.HasPinv() && solver != "reddiff"
				if exact {
					require.Less(t, res, 1e-5, "%s %s", task, solver)
				} else if solver != "ddim" && p.SigmaY == 0 { // DDIM ignores y when A has no A†; a noisy y is not to be fitted
					// RED-Diff fits y only approximately (Adam steps of
					// at most about lr each from A†y), DDS on the blur
					// stops CG after 5 steps.
					require.Less(t, res, 0.5, "%s %s", task, solver)
				}
				if p.SigmaY == 0 && (task == "inpaint" || task == "inpaint_random") && solver != "reddiff" && solver != "dds" {
					in := p.Op.(*Inpaint)
					mk, yv := read(t, be, in.mask), read(t, be, p.Y)
					for i := range v {
						if mk[i%256] == 1 {
							require.Equal(t, yv[i], v[i], "%s %s: known pixel %d", task, solver, i)
						}
					}
				}
				switch solver {
				case "pinv":
					require.Zero(t, st.Calls)
				case "sde":
					require.Equal(t, 2*testSteps, st.Calls)
				default:
					require.Equal(t, testSteps, st.Calls)
				}
				nn.Free(x)
			}
		}
	})
}

// TestSolveDeterministic: the same seed gives the same image, another seed
// another one.
func TestSolveDeterministic(t *testing.T) {
	be := nn.NewCPU()
	prior, _ := tinyPrior(t, be)
	p, _ := testProblem(t, be, "inpaint")
	for _, solver := range []string{"ddnm", "dds", "reddiff", "sde", "ddim"} {
		run := func(seed uint64) []float32 {
			x, _, err := Solve(be, solver, prior, p, Options{Steps: 2, Seed: seed})
			require.NoError(t, err)
			defer nn.Free(x)
			v := read(t, be, x)
			for _, f := range v {
				require.True(t, f >= -1 && f <= 1, "%s: Solve clamps to [−1, 1]: %v", solver, f)
			}
			return v
		}
		a, b, c := run(1), run(1), run(2)
		require.Equal(t, a, b, solver)
		require.NotEqual(t, a, c, solver)
	}
}

// TestSolveGPUvsCPU: DDNM, DDS and RED-Diff inpainting agree across
// backends (max abs difference 2e-3 after 8 steps of the tiny UNet: the
// backends' UNets differ by float rounding, which the trajectory carries).
func TestSolveGPUvsCPU(t *testing.T) {
	g := testGPU(t)
	c := nn.NewCPU()
	for _, solver := range []string{"ddnm", "dds", "reddiff", "sde"} {
		var out [2][]float32
		for i, be := range []nn.Backend{c, g} {
			prior, _ := tinyPrior(t, be)
			p, _ := testProblem(t, be, "inpaint")
			x, _, err := Solve(be, solver, prior, p, Options{Steps: testSteps, Seed: 3})
			require.NoError(t, err)
			out[i] = read(t, be, x)
			nn.Free(x)
		}
		d := maxAbsDiff(out[0], out[1])
		t.Logf("%s: max |gpu − cpu| = %.3g", solver, d)
		require.Less(t, d, 2e-3, solver)
	}
}

// TestConjugateGradient checks the device CG against the normal equations
// on the blur: the residual of (AᵀA + ρI)x = Aᵀy + ρx₀ falls.
func TestConjugateGradient(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		op, err := NewBlur(be, 1.2)
		require.NoError(t, err)
		defer op.Free()
		sh := []int{1, 2, 12, 12}
		xt := be.Upload(sh, smoothImage(1, 2, 12, 12))
		y, _ := op.A(be, xt)
		aty, _ := op.AT(be, y)
		x0 := be.Zeros(sh)
		norm := func(x *nn.Tensor) float64 {
			ax, _ := op.A(be, x)
			r := residualNorm(read(t, be, ax), read(t, be, y))
			nn.Free(ax)
			return r
		}
		prev := norm(x0)
		for _, n := range []int{1, 3, 10, 30} {
			x, err := ConjugateGradient(be, op, aty, x0, 0, n)
			require.NoError(t, err)
			r := norm(x)
			t.Logf("CG %d steps: ‖Ax−y‖ = %.3g", n, r)
			require.Less(t, r, prev)
			prev = r
			nn.Free(x)
		}
		require.Less(t, prev, 0.02*norm(x0))
		nn.Free(xt, y, aty, x0)
	})
}

func residualNorm(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

func TestSolveErrors(t *testing.T) {
	be := nn.NewCPU()
	prior, _ := tinyPrior(t, be)
	p, _ := testProblem(t, be, "inpaint")
	o := Options{Steps: 4}
	solve := func(solver string, p Problem, o Options) error {
		x, _, err := Solve(be, solver, prior, p, o)
		nn.Free(x)
		return err
	}
	// Mask of the wrong size for the image.
	bad := p
	bad.Shape = []int{1, 3, 32, 32}
	require.ErrorContains(t, solve("ddnm", bad, o), "does not match the 16×16 mask")
	// Measurement of the wrong shape.
	bad = p
	bad.Y = be.Zeros([]int{1, 3, 8, 8})
	require.ErrorContains(t, solve("dds", bad, o), "measurement")
	// Unsupported task × solver.
	blur, _ := testProblem(t, be, "deblur")
	require.ErrorContains(t, solve("ddnm", blur, o), "does not support task deblur")
	require.ErrorContains(t, solve("sde", blur, o), "does not support task deblur")
	den, _ := testProblem(t, be, "denoise")
	require.ErrorContains(t, solve("sde", den, o), "does not support task denoise")
	require.ErrorContains(t, solve("magic", p, o), "unknown solver")
	// σ ≤ 0: denoising without noise, negative σ_y.
	den.SigmaY = 0
	require.ErrorContains(t, solve("ddnm", den, o), "σ_y = 0 must be > 0")
	bad = p
	bad.SigmaY = -1
	require.ErrorContains(t, solve("ddnm", bad, o), "must be ≥ 0")
	noisy := p
	noisy.SigmaY = 0.1
	require.ErrorContains(t, solve("sde", noisy, o), "noiseless")
	// Steps and η.
	require.ErrorContains(t, solve("ddnm", p, Options{}), "0 inference steps")
	eta := 1.5
	require.ErrorContains(t, solve("dds", p, Options{Steps: 4, Eta: &eta}), "η = 1.5")
	require.ErrorContains(t, solve("dds", p, Options{Steps: 4, CGSteps: -1}), "CG steps")
	require.ErrorContains(t, solve("reddiff", p, Options{Steps: 4, LR: -1}), "lr")
	require.NoError(t, solve("ddnm", p, o)) // the valid problem itself
	_, _, err := Solve(be, "ddnm", Prior{}, p, o)
	require.ErrorContains(t, err, "nil ε-model")
}

// oracleEps is the exact ε-model of a prior concentrated on one image x*:
// ε(x, t) = (x − √ᾱ_t·x*)/√(1−ᾱ_t). Every solver must then return x*
// (up to its discretisation), which checks the solvers' formulas
// independently of any trained network.
func oracleEps(t *testing.T, be nn.Backend, xs *nn.Tensor) samplers.EpsFunc {
	var cfg samplers.SchedulerConfig
	cfg.Defaults()
	ac, err := cfg.AlphasCumprod()
	require.NoError(t, err)
	return func(be nn.Backend, x *nn.Tensor, tt float32) (*nn.Tensor, error) {
		a := float64(ac[int(tt)])
		return be.Axpby(float32(1/math.Sqrt(1-a)), x, float32(-math.Sqrt(a)/math.Sqrt(1-a)), xs), be.Err()
	}
}

// TestSolveOracle: with the exact ε of a point-mass prior at the true
// image, every solver recovers it (max abs error below the bound of each
// solver, printed with -v).
func TestSolveOracle(t *testing.T) {
	be := nn.NewCPU()
	for _, task := range []string{"inpaint", "sr4", "deblur", "denoise", "colorize"} {
		p, xv := testProblem(t, be, task)
		xs := be.Upload(p.Shape, xv)
		prior := Prior{Eps: oracleEps(t, be, xs)}
		for _, solver := range Solvers[1:] {
			if Supports(solver, p.Op, p.SigmaY) != nil {
				continue
			}
			x, _, err := Solve(be, solver, prior, p, Options{Steps: 20, Seed: 1})
			require.NoError(t, err)
			d := maxAbsDiff(xv, read(t, be, x))
			t.Logf("%-9s %-8s max |x − x*| = %.3g", task, solver, d)
			bound := 1e-4
			switch solver {
			case "reddiff": // 20 Adam steps of lr 0.1 from A†y
				bound = 0.3
				if p.SigmaY > 0 {
					// For a point-mass prior the default weights (λ = 0.25,
					// σ = 1) have their optimum at μ = (λx* + y)/(1 + λ):
					// closer to x* than y, but mostly y.
					bound = maxAbsDiff(xv, read(t, be, p.Y))
				}
			case "sde": // stochastic PC with 20 steps
				bound = 0.1
			case "dds":
				if p.SigmaY > 0 { // the last CG keeps y's noise with weight 1/(1+ρ_t)
					bound = 0.01
				}
			}
			require.Less(t, d, bound, "%s %s", task, solver)
			nn.Free(x)
		}
		nn.Free(xs)
	}
}
