package nn

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// convCase is one Conv2d problem of the tests.
type convCase struct {
	n, cin, h, w, cout, kh, kw int
	p                          Conv2dParams
	f16, bias                  bool
}

func (tc convCase) String() string {
	return fmt.Sprintf("n%d_c%d_%dx%d_co%d_k%dx%d_s%dx%d_p%d.%d.%d.%d_f16=%v_b=%v", tc.n, tc.cin, tc.h, tc.w, tc.cout,
		tc.kh, tc.kw, tc.p.StrideH, tc.p.StrideW, tc.p.PadTop, tc.p.PadBottom, tc.p.PadLeft, tc.p.PadRight, tc.f16, tc.bias)
}

var convCases = []convCase{
	{n: 1, cin: 3, h: 7, w: 7, cout: 77, kh: 3, kw: 3, p: Conv2dSame(1, 1), bias: true},
	{n: 2, cin: 5, h: 7, w: 3, cout: 6, kh: 3, kw: 3, p: Conv2dSame(1, 1)},
	{n: 1, cin: 4, h: 1, w: 1, cout: 3, kh: 1, kw: 1, p: Conv2dSame(1, 0), bias: true},
	{n: 3, cin: 9, h: 3, w: 7, cout: 77, kh: 1, kw: 1, p: Conv2dSame(1, 0), bias: true, f16: true},
	{n: 1, cin: 3, h: 1, w: 1, cout: 5, kh: 3, kw: 3, p: Conv2dSame(1, 1), bias: true},
	{n: 2, cin: 8, h: 7, w: 7, cout: 9, kh: 3, kw: 3, p: Conv2dSame(2, 1), bias: true, f16: true},
	// AutoencoderKL downsampler: pad (0,1,0,1), then a padding-0 stride-2 3×3 conv.
	{n: 2, cin: 6, h: 8, w: 6, cout: 7, kh: 3, kw: 3, p: Conv2dParams{StrideH: 2, StrideW: 2, PadBottom: 1, PadRight: 1}, bias: true},
	{n: 1, cin: 3, h: 7, w: 3, cout: 4, kh: 3, kw: 3, p: Conv2dParams{StrideH: 2, StrideW: 2, PadBottom: 1, PadRight: 1}},
	{n: 1, cin: 2, h: 9, w: 11, cout: 3, kh: 2, kw: 5, p: Conv2dParams{StrideH: 1, StrideW: 2, PadTop: 2, PadBottom: 0, PadLeft: 1, PadRight: 3}, bias: true},
	{n: 1, cin: 2, h: 16, w: 16, cout: 4, kh: 7, kw: 7, p: Conv2dSame(2, 3), bias: true}, // 7×7
	{n: 1, cin: 3, h: 9, w: 17, cout: 5, kh: 5, kw: 3, p: Conv2dParams{StrideH: 2, StrideW: 1, PadTop: 2, PadBottom: 1, PadLeft: 1}, bias: true, f16: true},
	{n: 1, cin: 77, h: 20, w: 19, cout: 70, kh: 3, kw: 3, p: Conv2dSame(1, 1), bias: true},
}

// convData returns x, w (as f16-rounded values when f16) and bias for tc.
func convData(tc convCase) (x, w, b []float32, wbits []uint16) {
	x = randn(1, tc.n*tc.cin*tc.h*tc.w)
	w = randn(2, tc.cout*tc.cin*tc.kh*tc.kw)
	if tc.f16 {
		wbits = make([]uint16, len(w))
		for i, v := range w {
			wbits[i] = Float16(v)
			w[i] = Float16To32(wbits[i])
		}
	}
	if tc.bias {
		b = randn(3, tc.cout)
	}
	return x, w, b, wbits
}

func runConv(be Backend, tc convCase, x, w, b []float32, wbits []uint16) *Tensor {
	xt := be.Upload([]int{tc.n, tc.cin, tc.h, tc.w}, x)
	var wt, bt *Tensor
	if tc.f16 {
		wt = be.UploadF16([]int{tc.cout, tc.cin, tc.kh, tc.kw}, wbits)
	} else {
		wt = be.Upload([]int{tc.cout, tc.cin, tc.kh, tc.kw}, w)
	}
	if b != nil {
		bt = be.Upload([]int{tc.cout}, b)
	}
	return be.Conv2d(xt, wt, bt, tc.p)
}

// naiveConv is the textbook definition, the oracle of the reference.
func naiveConv(tc convCase, x, w, b []float32) []float32 {
	oh, ow := tc.p.OutSize(tc.h, tc.w, tc.kh, tc.kw)
	out := make([]float32, tc.n*tc.cout*oh*ow)
	for n := range tc.n {
		for co := range tc.cout {
			for y := range oh {
				for xx := range ow {
					var s float32
					if b != nil {
						s = b[co]
					}
					for ci := range tc.cin {
						for ky := range tc.kh {
							for kx := range tc.kw {
								iy, ix := y*tc.p.StrideH-tc.p.PadTop+ky, xx*tc.p.StrideW-tc.p.PadLeft+kx
								if iy < 0 || iy >= tc.h || ix < 0 || ix >= tc.w {
									continue
								}
								s += w[((co*tc.cin+ci)*tc.kh+ky)*tc.kw+kx] * x[((n*tc.cin+ci)*tc.h+iy)*tc.w+ix]
							}
						}
					}
					out[((n*tc.cout+co)*oh+y)*ow+xx] = s
				}
			}
		}
	}
	return out
}

// TestConv2dReference checks the Go reference against the textbook loops
// (same float32 products, different summation order: atol 1e-4, rtol 1e-5).
func TestConv2dReference(t *testing.T) {
	c := NewCPU()
	for _, tc := range convCases {
		t.Run(tc.String(), func(t *testing.T) {
			x, w, b, wbits := convData(tc)
			got := readT(t, c, runConv(c, tc, x, w, b, wbits))
			requireClose(t, naiveConv(tc, x, w, b), got, 1e-4, 1e-5, "reference")
		})
	}
}

// TestConv2dReferenceChunks runs the reference with an im2col buffer that
// holds one image, or a few, so that the chunk loop and its offsets are
// exercised.
func TestConv2dReferenceChunks(t *testing.T) {
	defer func(v int) { conv2dCols = v }(conv2dCols)
	c := NewCPU()
	tc := convCase{n: 5, cin: 3, h: 5, w: 6, cout: 4, kh: 3, kw: 3, p: Conv2dSame(1, 1), bias: true}
	x, w, b, wbits := convData(tc)
	for _, cols := range []int{1, 2 * 30 * 27, 3 * 30 * 27} {
		conv2dCols = cols
		got := readT(t, c, runConv(c, tc, x, w, b, wbits))
		requireClose(t, naiveConv(tc, x, w, b), got, 1e-4, 1e-5, fmt.Sprintf("cols %d", cols))
	}
}

// convVariants are the kernel variants under test ("reg" takes the
// conv2d_k3 path for kernels 3 wide with horizontal stride 1; "reg4x4" forces
// the general register-tiled kernel).
var convVariants = []string{"reg", "reg4x4", "tiled"}

// TestConv2dMatchesReference runs every kernel variant against the Go
// reference; f32 accumulation in another order: atol 1e-3, rtol 1e-4.
func TestConv2dMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, v := range convVariants {
		g.Variants["conv2d"] = v
		for _, tc := range convCases {
			t.Run(v+"/"+tc.String(), func(t *testing.T) {
				x, w, b, wbits := convData(tc)
				want := readT(t, c, runConv(c, tc, x, w, b, wbits))
				got := readT(t, g, runConv(g, tc, x, w, b, wbits))
				requireClose(t, want, got, 1e-3, 1e-4, v)
			})
		}
	}
}

// TestConv2dSplitsOverBindLimit forces a small binding limit so inputs are
// split into accumulated channel groups, outputs and weights into channel
// blocks, and samples into separate dispatches; x is a view at an odd offset.
func TestConv2dSplitsOverBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	cases := []struct {
		tc    convCase
		limit uint64
	}{
		{convCase{n: 2, cin: 13, h: 9, w: 10, cout: 11, kh: 3, kw: 3, p: Conv2dSame(1, 1), bias: true}, 4 * 400},             // 4 channels per group, 4 out channels per block
		{convCase{n: 2, cin: 13, h: 9, w: 10, cout: 11, kh: 3, kw: 3, p: Conv2dSame(1, 1), bias: true, f16: true}, 4 * 1000}, // 11 input channels per group
		{convCase{n: 3, cin: 4, h: 6, w: 5, cout: 5, kh: 1, kw: 1, p: Conv2dSame(1, 0)}, 4 * 300},                            // 2 samples per dispatch
		{convCase{n: 2, cin: 7, h: 8, w: 8, cout: 30, kh: 3, kw: 3, p: Conv2dSame(2, 1), bias: true}, 4 * 100},               // weight rows split (63 per row)
	}
	for _, v := range convVariants {
		g.Variants["conv2d"] = v
		for _, cs := range cases {
			tc := cs.tc
			t.Run(v+"/"+tc.String(), func(t *testing.T) {
				x, w, b, wbits := convData(tc)
				want := readT(t, c, runConv(c, tc, x, w, b, wbits))
				g.BindLimit = cs.limit
				defer func() { g.BindLimit = 0 }()
				wt := g.Upload([]int{tc.cout, tc.cin, tc.kh, tc.kw}, w)
				if tc.f16 {
					wt = g.UploadF16([]int{tc.cout, tc.cin, tc.kh, tc.kw}, wbits)
				}
				var bt *Tensor
				if b != nil {
					bt = g.Upload([]int{tc.cout}, b)
				}
				// x as a view at an unaligned element offset (3) of a bigger buffer.
				raw := g.Upload([]int{3 + len(x)}, append([]float32{1, 2, 3}, x...))
				xs := Reshape(Narrow(Reshape(raw, -1, 1), 3, len(x)), tc.n, tc.cin, tc.h, tc.w)
				got := readT(t, g, g.Conv2d(xs, wt, bt, tc.p))
				requireClose(t, want, got, 1e-3, 1e-4, "split")
			})
		}
	}
}

func TestConv2dErrors(t *testing.T) {
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		x := be.Upload([]int{2, 3, 4, 4}, make([]float32, 96))
		cases := []struct {
			x, w, b *Tensor
			p       Conv2dParams
			msg     string
		}{
			{x, be.Upload([]int{5, 4, 3, 3}, make([]float32, 180)), nil, Conv2dSame(1, 1), "weight [5 4 3 3] expects 4 input channels, x [2 3 4 4] has 3"},
			{x, be.Upload([]int{5, 3, 7, 7}, make([]float32, 735)), nil, Conv2dSame(1, 1), "kernel 7x7 is larger than the padded input 6x6"},
			{be.Upload([]int{3, 4, 4}, make([]float32, 48)), be.Upload([]int{5, 3, 3, 3}, make([]float32, 135)), nil, Conv2dSame(1, 1), "must be [N, Cin, H, W]"},
			{x, be.Upload([]int{5, 27}, make([]float32, 135)), nil, Conv2dSame(1, 1), "must be [Cout, Cin, KH, KW]"},
			{x, be.Upload([]int{5, 3, 3, 3}, make([]float32, 135)), be.Upload([]int{4}, make([]float32, 4)), Conv2dSame(1, 1), "bias f32[4] must be [5]"},
			{x, be.Upload([]int{5, 3, 3, 3}, make([]float32, 135)), nil, Conv2dSame(0, 1), "stride 0x0"},
		}
		for _, tc := range cases {
			require.Nil(t, be.Conv2d(tc.x, tc.w, tc.b, tc.p))
			require.ErrorContains(t, be.Err(), "nn: conv2d: ")
			require.ErrorContains(t, be.Err(), tc.msg, be.Name())
			be.ClearErr()
		}
		// nil propagates without a new error
		require.Nil(t, be.Conv2d(nil, nil, nil, Conv2dSame(1, 1)))
		be.ClearErr()
	}
}

func TestUpsample2x(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, shape := range [][]int{{1, 1, 1, 1}, {2, 3, 7, 5}, {1, 77, 3, 1}} {
		x := randn(5, numel(shape))
		want := readT(t, c, c.Upsample2x(c.Upload(shape, x)))
		// definition
		h, w := shape[2], shape[3]
		for i, v := range want {
			xx, y, nc := i%(2*w), i/(2*w)%(2*h), i/(4*w*h)
			require.Equal(t, x[(nc*h+y/2)*w+xx/2], v)
		}
		got := readT(t, g, g.Upsample2x(g.Upload(shape, x)))
		requireClose(t, want, got, 0, 0, fmt.Sprint(shape))
		g.BindLimit = 4 * 60 // 3 input rows of 5 per dispatch
		got = readT(t, g, g.Upsample2x(g.Upload(shape, x)))
		g.BindLimit = 0
		requireClose(t, want, got, 0, 0, fmt.Sprint("chunked ", shape))
	}
	for _, be := range []Backend{c, g} {
		require.Nil(t, be.Upsample2x(be.Upload([]int{3, 4}, make([]float32, 12))))
		require.ErrorContains(t, be.Err(), "upsample2x: x f32[3 4] must be [N, C, H, W]")
		be.ClearErr()
	}
}

func TestConcat(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	cases := []struct {
		axis   int
		shapes [][]int
		limit  uint64
	}{
		{1, [][]int{{2, 3, 4, 5}, {2, 7, 4, 5}}, 0}, // UNet skip connection
		{1, [][]int{{2, 3, 4, 5}, {2, 7, 4, 5}}, 4 * 64},
		{1, [][]int{{2, 3, 4, 5}, {2, 7, 4, 5}}, 4 * 16}, // blocks split into pieces
		{0, [][]int{{1, 3}, {4, 3}, {2, 3}}, 0},
		{-1, [][]int{{3, 2, 1}, {3, 2, 77}}, 4 * 100},
		{2, [][]int{{7}, {1}}, 0},
	}
	cases[5].axis = 0
	for i, tc := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var gs, cs []*Tensor
			for j, s := range tc.shapes {
				v := randn(uint64(10*i+j), numel(s))
				gs, cs = append(gs, g.Upload(s, v)), append(cs, c.Upload(s, v))
			}
			want := readT(t, c, c.Concat(tc.axis, cs...))
			g.BindLimit = tc.limit
			got := readT(t, g, g.Concat(tc.axis, gs...))
			g.BindLimit = 0
			requireClose(t, want, got, 0, 0, "concat")
		})
	}
	// The reference against the definition on a channel concat.
	a, b := c.Upload([]int{2, 1, 2}, []float32{1, 2, 3, 4}), c.Upload([]int{2, 2, 2}, []float32{5, 6, 7, 8, 9, 10, 11, 12})
	require.Equal(t, []float32{1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12}, readT(t, c, c.Concat(1, a, b)))
	for _, be := range []Backend{c, g} {
		x, y := be.Upload([]int{2, 3}, make([]float32, 6)), be.Upload([]int{3, 3}, make([]float32, 9))
		require.Nil(t, be.Concat(1, x, y))
		require.ErrorContains(t, be.Err(), "concat: shapes [2 3] and [3 3] differ outside axis 1")
		be.ClearErr()
		require.Nil(t, be.Concat(2, x, y))
		require.ErrorContains(t, be.Err(), "concat: axis out of range")
		be.ClearErr()
		require.Nil(t, be.Concat(0, x, be.Upload([]int{3}, make([]float32, 3))))
		require.ErrorContains(t, be.Err(), "concat: rank mismatch")
		be.ClearErr()
		require.Nil(t, be.Concat(0))
		require.ErrorContains(t, be.Err(), "concat: no tensors")
		be.ClearErr()
	}
}

// BenchmarkConv2d times the registered conv2d and upsample2x cases on both
// backends in the same run and reports the GPU/CPU speed ratio:
// go test ./nn/ -run '^$' -bench Conv2d -benchtime 1x
func BenchmarkConv2d(b *testing.B) {
	g, c := testGPU(b), NewCPU()
	for _, bc := range BenchCases() {
		if bc.Op != "conv2d" && bc.Op != "upsample2x" {
			continue
		}
		b.Run(bc.Op+"/"+bc.Shape, func(b *testing.B) {
			for range b.N {
				rg := RunBench(g, g.Dev.Info().Name, bc, time.Second, 2)
				rc := RunBench(c, "go", bc, time.Second, 2)
				require.Empty(b, rg.Error)
				require.Empty(b, rc.Error)
				b.ReportMetric(rg.Ms, "gpu-ms")
				b.ReportMetric(rc.Ms, "cpu-ms")
				b.ReportMetric(rg.GFLOPs, "gpu-GFLOP/s")
				b.ReportMetric(rc.GFLOPs, "cpu-GFLOP/s")
				b.ReportMetric(rc.Ms/rg.Ms, "gpu-speedup")
			}
		})
	}
}
