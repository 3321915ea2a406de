package samplers

import (
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
)

// RoundTrip through the shared entry points: exact methods reconstruct to
// 1e-4, DDIM inversion does not (untrained model), and model calls follow
// the methods' costs.
func TestRoundTripAllMethods(t *testing.T) {
	dir, io := golden.Open(t, "unet2d_tiny")
	be := nn.NewCPU()
	m, err := nn.LoadUNet2DModelDir(be, dir, nn.F32)
	require.NoError(t, err)
	defer m.Free()
	shape, x := golden.F32(t, io, "in.sample")
	x0 := be.Upload(append([]int{1}, shape[1:]...), x[:len(x)/shape[0]])
	cfg := SchedulerConfig{BetaSchedule: "scaled_linear", BetaStart: 0.00085, BetaEnd: 0.012, StepsOffset: 1}
	f := false
	cfg.SetAlphaToOne = &f
	cfg.ClipSample = &f
	for _, meth := range Methods {
		r, err := RoundTrip(be, meth.Name, cfg, 6, UNetEps(m), x0, 1)
		require.NoError(t, err, meth.Name)
		require.InDelta(t, 2*6*meth.CallsPerStep, r.ModelCalls, 1, meth.Name) // BDIA reuses one ε across the turn
		if meth.Exact {
			require.Less(t, r.MaxAbsErr, 1e-4, meth.Name)
		} else {
			require.Greater(t, r.MaxAbsErr, 1e-3, "DDIM inversion of an untrained model is not exact")
		}
	}
	_, err = RoundTrip(be, "nope", cfg, 6, UNetEps(m), x0, 1)
	require.ErrorContains(t, err, `unknown method "nope"`)
}
