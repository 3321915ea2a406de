package watermark

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// The noncentral chi-square CDF against closed forms: central df = 2, 4
// (1 − e^(−x/2)·Σ_{i<df/2} (x/2)^i/i!) and noncentral df = 1, where
// X = (Z + √λ)² gives P(X ≤ x) = Φ(√x − √λ) − Φ(−√x − √λ), written with
// erfc so far lower tails keep their relative accuracy.
func TestNCX2CDF(t *testing.T) {
	for _, x := range []float64{1e-3, 0.5, 2, 7.3, 40, 300} {
		h := x / 2
		require.InEpsilon(t, -math.Expm1(-h), NCX2CDF(x, 2, 0), 1e-12, "df 2, x %v", x)
		if x >= 0.5 { // the closed form cancels below
			require.InEpsilon(t, 1-math.Exp(-h)*(1+h), NCX2CDF(x, 4, 0), 1e-11, "df 4, x %v", x)
		}
	}
	for _, c := range []struct{ x, nc float64 }{{1, 400}, {0.01, 50}, {3, 2}, {30, 9}, {0.2, 1000}, {500, 480}} {
		a, b := math.Sqrt(c.x), math.Sqrt(c.nc)
		want := 0.5*math.Erfc((b-a)/math.Sqrt2) - 0.5*math.Erfc((b+a)/math.Sqrt2)
		got := NCX2CDF(c.x, 1, c.nc)
		require.InEpsilon(t, want, got, 1e-9, "df 1, x %v, nc %v", c.x, c.nc)
		require.InEpsilon(t, math.Log(want), logNCX2CDF(c.x, 1, c.nc), 1e-9)
	}
	require.Equal(t, 0.0, NCX2CDF(0, 3, 1))
	require.Equal(t, 1.0, NCX2CDF(math.Inf(1), 3, 1))
	require.True(t, math.IsNaN(NCX2CDF(1, -1, 0)))
	// an underflowing probability keeps a finite logarithm
	lp := logNCX2CDF(100, 634, 5000)
	require.True(t, lp < -745 && !math.IsInf(lp, 0), "log p %v", lp)
}
