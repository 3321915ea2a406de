package samplers

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
)

// exactSynthEps is a cheap nonlinear, timestep-dependent ε-model:
// ε(x, t) = 0.8·tanh(2x + t/1000).
func exactSynthEps(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error) {
	a := be.Affine(x, 2, t/1000)
	th := be.Unary(nn.Tanh, a)
	out := be.Affine(th, 0.8, 0)
	nn.Free(a, th)
	return out, be.Err()
}

// TestExactSyntheticRoundTrip checks the exact methods' round trips with a
// synthetic ε on batch 2 and an odd latent shape, for every supported
// timestep spacing, an odd number of steps (EDICT's leapfrog order must
// still invert), partial strengths and set_alpha_to_one.
func TestExactSyntheticRoundTrip(t *testing.T) {
	tr := true
	cases := []struct {
		name     string
		mod      func(c *SchedulerConfig)
		steps    int
		strength float64
	}{
		{"leading_20", func(c *SchedulerConfig) {}, 20, 1},
		{"trailing_7_s0.6", func(c *SchedulerConfig) { c.TimestepSpacing = "trailing"; c.StepsOffset = 0 }, 7, 0.6},
		{"linspace_9_alpha1", func(c *SchedulerConfig) { c.TimestepSpacing = "linspace"; c.SetAlphaToOne = &tr }, 9, 1},
		{"leading_1", func(c *SchedulerConfig) {}, 1, 1},
	}
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		rng := rand.New(rand.NewPCG(1, 2))
		shape := []int{2, 3, 5, 7}
		x0 := be.Upload(shape, exactRandn(rng, 2*3*5*7, 1))
		defer nn.Free(x0)
		want := read(t, be, x0)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				cfg := exactSDConfig()
				c.mod(&cfg)

				d, err := NewEDICT(cfg, c.steps)
				require.NoError(t, err)
				x, y, err := d.Invert(be, exactSynthEps, x0, c.strength)
				require.NoError(t, err)
				rx, ry, err := d.Reconstruct(be, exactSynthEps, x, y, c.strength)
				require.NoError(t, err)
				require.LessOrEqual(t, exactMaxDiff(want, read(t, be, rx)), 1e-5, "edict x")
				require.LessOrEqual(t, exactMaxDiff(want, read(t, be, ry)), 1e-5, "edict y")
				nn.Free(x, y, rx, ry)

				for _, g := range []float64{1, 0.94} {
					b, err := NewBDIA(cfg, c.steps, g)
					require.NoError(t, err)
					top, below, err := b.Invert(be, exactSynthEps, x0, c.strength)
					require.NoError(t, err)
					r, err := b.Reconstruct(be, exactSynthEps, top, below, c.strength)
					require.NoError(t, err)
					require.LessOrEqual(t, exactMaxDiff(want, read(t, be, r)), 1e-5, "bdia γ=%v", g)
					nn.Free(top, below, r)
				}

				f, err := NewEFDDPM(cfg, c.steps)
				require.NoError(t, err)
				noise := EFDDPMNoise(be, shape, c.steps, NewNoise(12))
				inv, err := f.Invert(be, exactSynthEps, x0, noise)
				nn.Free(noise...)
				require.NoError(t, err)
				zs := inv.ExactZs()
				r, err := f.Reverse(be, exactSynthEps, inv.Xts[c.steps], zs)
				require.NoError(t, err)
				require.Equal(t, read(t, be, inv.Xts[0]), read(t, be, r), "ef-ddpm reverse reproduces x_0 bit for bit")
				if !*cfg.SetAlphaToOne { // else σ = 0 at the last step: x_0 = μ
					require.LessOrEqual(t, exactMaxDiff(want, read(t, be, r)), 1e-5, "ef-ddpm")
				}
				nn.Free(r)
				nn.Free(zs...)
				inv.Free()
			})
		}
	})
}

// TestExactInversionErrors checks that bad configurations and inputs give
// clear errors naming the method and the problem.
func TestExactInversionErrors(t *testing.T) {
	be := nn.NewCPU()
	cfg := exactSDConfig()
	with := func(mod func(c *SchedulerConfig)) SchedulerConfig {
		c := exactSDConfig()
		mod(&c)
		return c
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"steps 0", errOnly(NewBDIA(cfg, 0, 1)), "bdia: 0 steps (want 1…1000)"},
		{"steps > T", errOnly(NewEDICT(cfg, 1001)), "edict: 1001 steps (want 1…1000)"},
		{"gamma 0", errOnly(NewBDIA(cfg, 10, 0)), "bdia: gamma 0 (want 0 < γ ≤ 1)"},
		{"gamma 1.5", errOnly(NewBDIA(cfg, 10, 1.5)), "bdia: gamma 1.5"},
		{"v_prediction", errOnly(NewEFDDPM(with(func(c *SchedulerConfig) { c.PredictionType = "v_prediction" }), 10)), `ef-ddpm: prediction_type "v_prediction" is not supported`},
		{"spacing", errOnly(NewEDICT(with(func(c *SchedulerConfig) { c.TimestepSpacing = "karras" }), 10)), `edict: timestep_spacing "karras" is not supported`},
		{"thresholding", errOnly(NewBDIA(with(func(c *SchedulerConfig) { c.Thresholding = true }), 10, 1)), "bdia: thresholding is not supported"},
		{"zero snr", errOnly(NewBDIA(with(func(c *SchedulerConfig) { c.RescaleBetasZeroSNR = true }), 10, 1)), "rescale_betas_zero_snr is not supported"},
		{"beta schedule", errOnly(NewEDICT(with(func(c *SchedulerConfig) { c.BetaSchedule = "sigmoid" }), 10)), `edict: scheduler: beta_schedule "sigmoid" is not supported`},
		{"offset past T", errOnly(NewEDICT(with(func(c *SchedulerConfig) { c.StepsOffset = 60 }), 20)), "edict: timestep 1010 outside 0…999 (steps_offset 60)"},
	} {
		require.ErrorContains(t, c.err, c.want, c.name)
	}

	x := be.Upload([]int{1, 2, 3, 3}, make([]float32, 18))
	other := be.Upload([]int{1, 2, 3, 4}, make([]float32, 24))
	defer nn.Free(x, other)
	b, err := NewBDIA(cfg, 10, 1)
	require.NoError(t, err)
	d, err := NewEDICT(cfg, 10)
	require.NoError(t, err)
	f, err := NewEFDDPM(cfg, 10)
	require.NoError(t, err)

	failing := func(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error) {
		return nil, errors.New("model exploded")
	}
	wrongShape := func(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error) {
		return be.Zeros([]int{1, 2, 3, 4}), nil
	}
	silentNil := func(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error) { return nil, nil }

	_, _, err = b.Invert(be, exactSynthEps, x, 0)
	require.ErrorContains(t, err, "bdia: strength 0 (want 0 < strength ≤ 1)")
	_, _, err = d.Invert(be, exactSynthEps, x, 1.5)
	require.ErrorContains(t, err, "edict: strength 1.5")
	_, _, err = d.Invert(be, exactSynthEps, x, 0.05)
	require.ErrorContains(t, err, "edict: strength 0.05 leaves no step of 10")
	_, _, err = b.Invert(be, failing, x, 1)
	require.ErrorContains(t, err, "bdia: eps at t=-99: model exploded")
	_, err = b.Sample(be, wrongShape, x)
	require.ErrorContains(t, err, "bdia: eps at t=901 returned [1 2 3 4] for latents [1 2 3 3]")
	_, _, err = d.Reconstruct(be, silentNil, x, x, 1)
	require.ErrorContains(t, err, "edict: eps at t=901 returned no tensor")
	_, err = b.Sample(be, exactSynthEps, nil)
	require.ErrorContains(t, err, "bdia: x_T is nil")
	_, err = b.Reconstruct(be, exactSynthEps, x, other, 1)
	require.ErrorContains(t, err, "bdia: latent pair [1 2 3 3] and [1 2 3 4] differ in shape")
	_, _, err = d.Reconstruct(be, exactSynthEps, x, other, 1)
	require.ErrorContains(t, err, "edict: coupled latents [1 2 3 3] and [1 2 3 4] differ in shape")
	d.P = 0
	_, _, err = d.Invert(be, exactSynthEps, x, 1)
	require.ErrorContains(t, err, "edict: mixing coefficient p = 0")

	noise := EFDDPMNoise(be, x.Shape(), 9, NewNoise(1))
	_, err = f.Invert(be, exactSynthEps, x, noise)
	require.ErrorContains(t, err, "ef-ddpm: 9 noise tensors for 10 timesteps")
	noise = append(noise, other)
	_, err = f.Invert(be, exactSynthEps, x, noise)
	require.ErrorContains(t, err, "ef-ddpm: noise[9]")
	_, err = f.Reverse(be, exactSynthEps, x, nil)
	require.ErrorContains(t, err, "ef-ddpm: 0 noise maps for 10 timesteps (want 1…10)")
	_, err = f.Reverse(be, exactSynthEps, x, []*nn.Tensor{other})
	require.ErrorContains(t, err, "ef-ddpm: noise map 0")
	f.Eta = 0
	_, err = f.Invert(be, exactSynthEps, x, noise[:10])
	require.ErrorContains(t, err, "ef-ddpm: eta 0 (want > 0")
	nn.Free(noise...)

	// Prompt embeddings must have 1 or B rows.
	e3 := be.Zeros([]int{3, 7, 32})
	defer nn.Free(e3)
	_, err = repeatBatch(be, "prompt embedding", e3, 2)
	require.ErrorContains(t, err, "eps: prompt embedding [3 7 32] must have 1 or 2 rows for latents of batch 2")
	_, err = repeatBatch(be, "prompt embedding", x, 2)
	require.ErrorContains(t, err, "must be [1 or 2, L, D]")
	require.NoError(t, be.Err())
}

func errOnly[T any](_ T, err error) error { return err }
