package samplers

import (
	"math"
	"math/rand/v2"

	"retrace/nn"
)

// Noise is a deterministic standard-normal generator: the same seed gives
// bit-identical values on every platform (native amd64/arm64 and
// GOOS=js GOARCH=wasm), because it uses only integer arithmetic, IEEE
// basic operations (+ − × ÷ and √, correctly rounded everywhere) with every
// intermediate rounded explicitly (no fused multiply-add), and its own
// logarithm instead of math.Log (which has assembly versions).
//
// Algorithm, so that another implementation can reproduce it:
//
//  1. Uniform bits: PCG-DXSM as in Go's math/rand/v2 NewPCG(seed, 0x9e3779b97f4a7c15):
//     a 128-bit LCG state (hi, lo) = (seed, 0x9e3779b97f4a7c15), advanced
//     before each output by state = state·0x2360ed051fc65da44385df649fccf645
//     + 0x5851f42d4c957f2d14057b7ef767814f (mod 2¹²⁸); output (DXSM):
//     h = hi ^ (hi >> 32); h *= 0xda942042e4dd58b5; h ^= h >> 48; h *= lo | 1.
//  2. Two uniforms per try: u = (x >> 11)·2⁻⁵³·2 − 1 and likewise v, both
//     exact doubles in [−1, 1).
//  3. Marsaglia's polar form of the Box–Muller transform: s = u·u + v·v
//     (each product rounded to double, then the sum); retry while s ≥ 1 or
//     s = 0; f = √(−2·log(s)/s); the pair of normals is (u·f, v·f), used in
//     that order, each rounded to float32. log is fdlibm's e_log.c
//     (Go's pure-Go math.log: argument reduction to [√2/2, √2), the
//     Lg1…Lg7 polynomial), evaluated with every operation rounded.
//
// The generator is a stream: a tensor of n values takes the next n normals
// (a pair's second value is kept for the next call).
type Noise struct {
	src   *rand.PCG
	spare float32
	has   bool
}

// NewNoise returns the generator for seed.
func NewNoise(seed uint64) *Noise {
	return &Noise{src: rand.NewPCG(seed, 0x9e3779b97f4a7c15)}
}

// Float32s returns the next n standard-normal values.
func (g *Noise) Float32s(n int) []float32 {
	out := make([]float32, n)
	i := 0
	if g.has && n > 0 {
		out[0], g.has = g.spare, false
		i = 1
	}
	for i < n {
		a, b := g.pair()
		out[i] = a
		i++
		if i < n {
			out[i] = b
			i++
		} else {
			g.spare, g.has = b, true
		}
	}
	return out
}

// Tensor uploads the next shape-many normals as a tensor on be.
func (g *Noise) Tensor(be nn.Backend, shape ...int) *nn.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return be.Upload(shape, g.Float32s(n))
}

const twoM53 = 1.0 / (1 << 53)

func (g *Noise) pair() (float32, float32) {
	for {
		u := float64(g.src.Uint64()>>11)*twoM53*2 - 1
		v := float64(g.src.Uint64()>>11)*twoM53*2 - 1
		s := float64(u*u) + float64(v*v)
		if s >= 1 || s == 0 {
			continue
		}
		f := math.Sqrt(float64(-2*pureLog(s)) / s)
		return float32(float64(u * f)), float32(float64(v * f))
	}
}

// pureLog is fdlibm's __ieee754_log (as Go's pure-Go math.log) for
// 0 < x < ∞, with explicit float64 conversions so that no platform fuses
// the multiply-adds.
func pureLog(x float64) float64 {
	const (
		ln2Hi = 6.93147180369123816490e-01 // 3fe62e42 fee00000
		ln2Lo = 1.90821492927058770002e-10 // 3dea39ef 35793c76
		lg1   = 6.666666666666735130e-01   // 3FE55555 55555593
		lg2   = 3.999999999940941908e-01   // 3FD99999 9997FA04
		lg3   = 2.857142874366239149e-01   // 3FD24924 94229359
		lg4   = 2.222219843214978396e-01   // 3FCC71C5 1D8E78AF
		lg5   = 1.818357216161805012e-01   // 3FC74664 96CB03DE
		lg6   = 1.531383769920937332e-01   // 3FC39A09 D078C69F
		lg7   = 1.479819860511658591e-01   // 3FC2F112 DF3E5244
	)
	f1, ki := math.Frexp(x)
	if f1 < math.Sqrt2/2 {
		f1 *= 2
		ki--
	}
	f := f1 - 1
	k := float64(ki)
	s := f / (2 + f)
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	t1 := float64(s2 * float64(lg1+float64(s4*float64(lg3+float64(s4*float64(lg5+float64(s4*lg7)))))))
	t2 := float64(s4 * float64(lg2+float64(s4*float64(lg4+float64(s4*lg6)))))
	R := t1 + t2
	hfsq := float64(0.5 * f * f)
	return float64(k*ln2Hi) - ((hfsq - (float64(s*float64(hfsq+R)) + float64(k*ln2Lo))) - f)
}
