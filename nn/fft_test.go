package nn

import (
	"fmt"
	"math"
	"math/cmplx"
	"testing"

	"github.com/stretchr/testify/require"
)

// naiveDFT2 is the textbook definition in complex128 for one plane.
func naiveDFT2(re, im []float32, h, w int, inverse bool) ([]float32, []float32) {
	sg := -1.0
	if inverse {
		sg = 1
	}
	or, oi := make([]float32, h*w), make([]float32, h*w)
	for k := 0; k < h; k++ {
		for l := 0; l < w; l++ {
			var s complex128
			for m := 0; m < h; m++ {
				for n := 0; n < w; n++ {
					x := complex(float64(re[m*w+n]), 0)
					if im != nil {
						x = complex(float64(re[m*w+n]), float64(im[m*w+n]))
					}
					s += x * cmplx.Exp(complex(0, sg*2*math.Pi*(float64(k*m)/float64(h)+float64(l*n)/float64(w))))
				}
			}
			if inverse {
				s /= complex(float64(h*w), 0)
			}
			or[k*w+l], oi[k*w+l] = float32(real(s)), float32(imag(s))
		}
	}
	return or, oi
}

func TestFFT2ReferenceMatchesDefinition(t *testing.T) {
	c := NewCPU()
	for _, hw := range [][2]int{{1, 1}, {1, 7}, {4, 4}, {3, 5}, {8, 6}} {
		h, w := hw[0], hw[1]
		re, im := randn(1, 2*h*w), randn(2, 2*h*w)
		for _, inv := range []bool{false, true} {
			gr, gi := FFT2(c, c.Upload([]int{2, h, w}, re), c.Upload([]int{2, h, w}, im), inv)
			vr, vi := readT(t, c, gr), readT(t, c, gi)
			for p := 0; p < 2; p++ {
				wr, wi := naiveDFT2(re[p*h*w:(p+1)*h*w], im[p*h*w:(p+1)*h*w], h, w, inv)
				msg := fmt.Sprintf("%dx%d inverse=%v plane %d", h, w, inv, p)
				requireClose(t, wr, vr[p*h*w:(p+1)*h*w], 1e-5, 1e-5, msg)
				requireClose(t, wi, vi[p*h*w:(p+1)*h*w], 1e-5, 1e-5, msg)
			}
		}
	}
	// a real input (im nil) and a round trip
	x := randn(3, 2*16*16)
	fr, fi := FFT2(c, c.Upload([]int{2, 16, 16}, x), nil, false)
	br, bi := FFT2(c, fr, fi, true)
	requireClose(t, x, readT(t, c, br), 1e-5, 0, "ifft(fft(x))")
	requireClose(t, make([]float32, len(x)), readT(t, c, bi), 1e-5, 0, "imaginary part of ifft(fft(x))")
}

// GPU kernels against the float64 reference. f32 error of an FFT grows
// like log N relative to the spectrum's magnitude (≈ √(H·W)·|x|), so the
// tolerance is atol 2e-6·√(H·W)·log2(H·W) + rtol 1e-5 (the direct DFT for
// other lengths grows like N: 2e-6·(H+W)·√(H·W)).
func TestFFT2MatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	shapes := [][]int{{1, 1}, {1, 7}, {7, 1}, {3, 8, 8}, {2, 4, 64, 64}, {1, 32, 32}, {5, 12}, {2, 3, 16, 6}, {2, 77}, {128, 4}}
	for i, s := range shapes {
		for _, realIn := range []bool{false, true} {
			for _, inv := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/real=%v/inverse=%v", s, realIn, inv), func(t *testing.T) {
					n := numel(s)
					re, im := randn(uint64(i), n), randn(uint64(i+50), n)
					var cim, gim *Tensor
					if !realIn {
						cim, gim = c.Upload(s, im), g.Upload(s, im)
					}
					wr, wi := FFT2(c, c.Upload(s, re), cim, inv)
					gr, gi := FFT2(g, g.Upload(s, re), gim, inv)
					h, w := s[len(s)-2], s[len(s)-1]
					hw := float64(h * w)
					atol := 2e-6 * math.Sqrt(hw) * max(math.Log2(hw), 1)
					if !pow2(h) || !pow2(w) {
						atol = 2e-6 * float64(h+w) * math.Sqrt(hw)
					}
					if inv {
						atol /= hw
					}
					requireClose(t, readT(t, c, wr), readT(t, g, gr), atol, 1e-5, "real")
					requireClose(t, readT(t, c, wi), readT(t, g, gi), atol, 1e-5, "imag")
				})
			}
		}
	}
}

func pow2(n int) bool { return n&(n-1) == 0 }

func TestFFTShift(t *testing.T) {
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		for _, s := range [][]int{{4, 4}, {2, 3, 5, 7}, {1, 64, 64}, {3, 1}} {
			n := numel(s)
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i)
			}
			h, w := s[len(s)-2], s[len(s)-1]
			got := readT(t, be, FFTShift(be, be.Upload(s, x), false))
			for i := range x {
				p, r := i/(h*w), i%(h*w)
				src := p*h*w + ((r/w)-h/2+h)%h*w + ((r%w)-w/2+w)%w // numpy: out[k] = x[(k − ⌊n/2⌋) mod n]
				require.Equal(t, x[src], got[i], "%s %v element %d", be.Name(), s, i)
			}
			back := readT(t, be, FFTShift(be, be.Upload(s, got), true))
			require.Equal(t, x, back, "%s %v: ifftshift(fftshift(x))", be.Name(), s)
		}
	}
}

// Views at unaligned offsets and the chunked path over a small binding limit.
func TestFFT2ViewsAndBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	s := []int{5, 8, 16}
	n := numel(s)
	re, im := randn(7, n+3), randn(8, n+3)
	view := func(be Backend, v []float32) *Tensor {
		return Reshape(Narrow(Reshape(be.Upload([]int{n + 3}, v), n+3, 1), 3, n), s...)
	}
	wr, wi := FFT2(c, view(c, re), view(c, im), false)
	want := [][]float32{readT(t, c, wr), readT(t, c, wi)}
	for _, lim := range []uint64{0, 4 * 128, 4 * 300} { // 1 plane, 2 planes per chunk
		g.BindLimit = lim
		gr, gi := FFT2(g, view(g, re), view(g, im), false)
		requireClose(t, want[0], readT(t, g, gr), 1e-4, 1e-5, fmt.Sprintf("real, limit %d", lim))
		requireClose(t, want[1], readT(t, g, gi), 1e-4, 1e-5, fmt.Sprintf("imag, limit %d", lim))
		sh := FFTShift(g, view(g, re), false)
		requireClose(t, readT(t, c, FFTShift(c, view(c, re), false)), readT(t, g, sh), 0, 0, "shift")
	}
	g.BindLimit = 4 * 64 // one 8×16 plane no longer fits
	gr, _ := FFT2(g, view(g, re), nil, false)
	require.Nil(t, gr)
	require.ErrorContains(t, g.Err(), "exceeds maxStorageBufferBindingSize")
	g.ClearErr()
	g.BindLimit = 0
}

func TestFFT2Errors(t *testing.T) {
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		r, i := FFT2(be, be.Upload([]int{4}, make([]float32, 4)), nil, false)
		require.Nil(t, r)
		require.Nil(t, i)
		require.ErrorContains(t, be.Err(), "fft2: needs [..., H, W]")
		be.ClearErr()
		FFT2(be, be.Upload([]int{2, 4}, make([]float32, 8)), be.Upload([]int{4, 2}, make([]float32, 8)), false)
		require.ErrorContains(t, be.Err(), "differ in shape")
		be.ClearErr()
		require.Nil(t, FFTShift(be, be.Upload([]int{3}, make([]float32, 3)), false))
		require.ErrorContains(t, be.Err(), "fftshift")
		be.ClearErr()
		// nil inputs propagate without a new error
		r, _ = FFT2(be, nil, nil, true)
		require.Nil(t, r)
		be.ClearErr()
	}
}
