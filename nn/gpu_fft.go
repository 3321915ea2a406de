package nn

import (
	"math/bits"

	"retrace/nn/gpu"
)

// fftPass is one dispatch of FFT2: a radix-2 Stockham pass (s > 0) or a
// direct DFT (s == 0) along the W (cols) or H axis.
type fftPass struct {
	cols bool
	n, s int
	last bool // the axis' last pass: applies the inverse's 1/N
}

func fftPasses(h, w int) []fftPass {
	var ps []fftPass
	for _, ax := range []struct {
		cols bool
		n    int
	}{{true, w}, {false, h}} {
		switch {
		case ax.n == 1:
		case bits.OnesCount(uint(ax.n)) == 1:
			for s := 1; s < ax.n; s *= 2 {
				ps = append(ps, fftPass{cols: ax.cols, n: ax.n, s: s, last: 2*s == ax.n})
			}
		default:
			ps = append(ps, fftPass{cols: ax.cols, n: ax.n, last: true})
		}
	}
	return ps
}

// fft2 implements FFT2: shaders/fft_radix2.wgsl passes for power-of-two
// axes, shaders/fft_dft.wgsl otherwise, ping-ponging between the output and
// a scratch pair. Tensors larger than one storage binding are processed in
// chunks of whole [H, W] planes; one plane must fit a binding.
func (g *GPU) fft2(re, im *Tensor, inverse bool) (*Tensor, *Tensor) {
	ts := []*Tensor{re}
	if im != nil {
		ts = append(ts, im)
	}
	if !g.ok("fft2", ts...) {
		return nil, nil
	}
	if err := fftCheck(re, im); err != nil {
		g.errf("fft2", "%v", err)
		return nil, nil
	}
	r := re.Rank()
	h, w := re.shape[r-2], re.shape[r-1]
	plane := h * w
	if !g.fits(plane) {
		g.errf("fft2", "one [%d %d] plane of %v exceeds maxStorageBufferBindingSize", h, w, re)
		return nil, nil
	}
	if im == nil {
		im = g.Zeros(re.shape)
		if im == nil {
			return nil, nil
		}
		defer Free(im)
	}
	passes := fftPasses(h, w)
	if len(passes) == 0 { // 1×1 planes: the transform is the identity
		return g.Affine(re, 1, 0), g.Affine(im, 1, 0)
	}
	outRe, outIm := g.newTensor("fft2", re.shape, F32), g.newTensor("fft2", re.shape, F32)
	var tmpRe, tmpIm *Tensor
	if len(passes) > 1 {
		tmpRe, tmpIm = g.newTensor("fft2", re.shape, F32), g.newTensor("fft2", re.shape, F32)
	}
	defer Free(tmpRe, tmpIm)
	if outRe == nil || outIm == nil || (len(passes) > 1 && (tmpRe == nil || tmpIm == nil)) {
		Free(outRe, outIm)
		return nil, nil
	}
	tws := map[int]*Tensor{}
	defer func() {
		for _, t := range tws {
			Free(t)
		}
	}()
	twiddle := func(n int) *Tensor {
		if t, ok := tws[n]; ok {
			return t
		}
		v := make([]float32, 2*n)
		for k, c := range twiddles(n) {
			v[2*k], v[2*k+1] = float32(real(c)), float32(imag(c))
		}
		t := g.Upload([]int{2 * n}, v)
		tws[n] = t
		return t
	}
	planes := re.Numel() / plane
	chunk := max(g.maxElems()/plane, 1) // planes per dispatch
	sign := float32(-1)
	if inverse {
		sign = 1
	}
	srcRe, srcIm := re, im
	for i, ps := range passes {
		dstRe, dstIm := outRe, outIm
		if (len(passes)-1-i)%2 == 1 {
			dstRe, dstIm = tmpRe, tmpIm
		}
		tw := twiddle(ps.n)
		if tw == nil {
			Free(outRe, outIm)
			return nil, nil
		}
		bt, ot := g.bind(tw)
		scale := float32(1)
		if inverse && ps.last {
			scale = 1 / float32(ps.n)
		}
		// Lines: along W, every row (inner 1, outer W, stride 1); along H,
		// every column (line = plane·W + col: inner W, outer H·W, stride W).
		inner, outer, stride, perPlane := 1, w, 1, h
		if !ps.cols {
			inner, outer, stride, perPlane = w, plane, w, w
		}
		name, work := "fft_radix2", ps.n/2
		if ps.s == 0 {
			name, work = "fft_dft", ps.n
		}
		for p0 := 0; p0 < planes; p0 += chunk {
			np := min(chunk, planes-p0)
			lines := np * perPlane
			bxr, oxr := g.bindElems(srcRe, p0*plane, np*plane)
			bxi, oxi := g.bindElems(srcIm, p0*plane, np*plane)
			byr, oyr := g.bindElems(dstRe, p0*plane, np*plane)
			byi, oyi := g.bindElems(dstIm, p0*plane, np*plane)
			nx, ny := g.grid((lines*work + 255) / 256)
			prm := new(gpu.Params).U(uint32(lines), uint32(ps.n), uint32(ps.s), uint32(inner), uint32(outer), uint32(stride),
				oxr, oxi, oyr, oyi, ot, uint32(nx)).F(scale, sign)
			if !g.run("fft2", name, nil, []bool{true, true, true, false, false}, prm,
				[]gpu.Binding{bxr, bxi, bt, byr, byi}, nx, ny, 1) {
				Free(outRe, outIm)
				return nil, nil
			}
		}
		srcRe, srcIm = dstRe, dstIm
	}
	return outRe, outIm
}

// fftShift implements FFTShift with shaders/fftshift.wgsl, in chunks of
// whole planes when x exceeds one storage binding.
func (g *GPU) fftShift(x *Tensor, inverse bool) *Tensor {
	if !g.ok("fftshift", x) {
		return nil
	}
	if x.Rank() < 2 || x.dtype != F32 {
		return g.errf("fftshift", "needs an f32 [..., H, W] tensor, got %v", x)
	}
	r := x.Rank()
	h, w := x.shape[r-2], x.shape[r-1]
	plane := h * w
	if !g.fits(plane) {
		return g.errf("fftshift", "one [%d %d] plane of %v exceeds maxStorageBufferBindingSize", h, w, x)
	}
	sh, sw := shiftAmounts(h, w, inverse)
	out := g.newTensor("fftshift", x.shape, F32)
	if out == nil {
		return nil
	}
	planes := x.Numel() / max(plane, 1)
	chunk := max(g.maxElems()/max(plane, 1), 1)
	for p0 := 0; p0 < planes; p0 += chunk {
		np := min(chunk, planes-p0)
		n := np * plane
		bx, ox := g.bindElems(x, p0*plane, n)
		bo, oo := g.bindElems(out, p0*plane, n)
		nx, ny := g.grid((n + 255) / 256)
		prm := new(gpu.Params).U(uint32(n), uint32(h), uint32(w), uint32(sh), uint32(sw), ox, oo, uint32(nx))
		if !g.run("fftshift", "fftshift", nil, []bool{true, false}, prm, []gpu.Binding{bx, bo}, nx, ny, 1) {
			Free(out)
			return nil
		}
	}
	return out
}
