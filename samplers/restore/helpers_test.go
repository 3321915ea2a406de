package restore

import (
	"math"
	"math/rand/v2"
	"testing"

	"retrace/nn"
	"retrace/samplers/samplertest"
)

func testGPU(t testing.TB) *nn.GPU { return samplertest.GPU(t) }

func bothBackends(t *testing.T, fn func(t *testing.T, be nn.Backend)) {
	samplertest.BothBackends(t, fn)
}

func read(t testing.TB, be nn.Backend, x *nn.Tensor) []float32 { return samplertest.Read(t, be, x) }

func randn(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// smoothImage is a synthetic smooth picture [n, c, h, w] in [−0.8, 0.8].
func smoothImage(n, c, h, w int) []float32 {
	v := make([]float32, n*c*h*w)
	i := 0
	for b := range n {
		for ch := range c {
			for y := range h {
				for x := range w {
					fy, fx := float64(y)/float64(h), float64(x)/float64(w)
					v[i] = float32(0.8 * math.Sin(2*fx+1.3*float64(ch)+0.5*float64(b)) * math.Cos(2.5*fy-0.7*float64(ch)))
					i++
				}
			}
		}
	}
	return v
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
