package nn

import (
	"fmt"
	"math"
)

// FFT2 returns the 2-D discrete Fourier transform over the last two axes of
// the complex tensor re + i·im [..., H, W] as two new F32 tensors (real,
// imaginary). im may be nil for a real input. The forward transform is
// unnormalised, the inverse carries 1/(H·W) (numpy's and torch.fft's
// default "backward" norm):
//
//	X[k, l] = Σ_{m,n} x[m, n]·exp(∓2πi·(km/H + ln/W))   (− forward, + inverse)
//
// Every size works; powers of two take the GPU's radix-2 kernel
// (shaders/fft_radix2.wgsl), other lengths a direct DFT (shaders/fft_dft.wgsl).
//
// FFT2 is a function rather than a Backend method so the op set in
// backend.go stays unchanged; both backends implement it.
//
// Backends are found by their fft2 method (not a case *CPU), so a program
// that never makes a CPU backend (the browser's wasm) does not link the
// CPU reference through FFT2.
func FFT2(be Backend, re, im *Tensor, inverse bool) (*Tensor, *Tensor) {
	if f, ok := be.(interface {
		fft2(re, im *Tensor, inverse bool) (*Tensor, *Tensor)
	}); ok {
		return f.fft2(re, im, inverse)
	}
	if be != nil {
		be.setErr(fmt.Errorf("nn: fft2: backend %s has no FFT", be.Name()))
	}
	return nil, nil
}

// FFTShift rolls the last two axes of x [..., H, W] by ⌊H/2⌋ and ⌊W/2⌋ so
// the zero frequency moves to the centre (numpy.fft.fftshift over axes
// (−2, −1)); inverse undoes it (ifftshift; the two differ for odd sizes).
func FFTShift(be Backend, x *Tensor, inverse bool) *Tensor {
	switch b := be.(type) {
	case *CPU:
		return b.fftShift(x, inverse)
	case *GPU:
		return b.fftShift(x, inverse)
	}
	if be != nil {
		be.setErr(fmt.Errorf("nn: fftshift: backend %s has no FFT", be.Name()))
	}
	return nil
}

// fftCheck validates a complex pair for FFT2; im may be nil.
func fftCheck(re, im *Tensor) error {
	if re.Rank() < 2 {
		return fmt.Errorf("needs [..., H, W], got %v", re)
	}
	if re.dtype != F32 {
		return fmt.Errorf("needs f32 tensors, got %v", re)
	}
	if im != nil {
		if im.dtype != F32 {
			return fmt.Errorf("needs f32 tensors, got %v", im)
		}
		if !sameShape(re.shape, im.shape) {
			return fmt.Errorf("real part %v and imaginary part %v differ in shape", re, im)
		}
	}
	return nil
}

// shiftAmounts returns the roll applied to rows and columns of an h×w plane.
func shiftAmounts(h, w int, inverse bool) (int, int) {
	if inverse {
		return h - h/2, w - w/2
	}
	return h / 2, w / 2
}

// twiddles returns exp(−2πi·k/n) for k in [0, n) in float64, from the
// exact angle of k mod n so large k lose no accuracy.
func twiddles(n int) []complex128 {
	w := make([]complex128, n)
	for k := range w {
		a := -2 * math.Pi * float64(k) / float64(n)
		w[k] = complex(math.Cos(a), math.Sin(a))
	}
	return w
}

// dft1 transforms n values of line (stride apart, starting at off) in
// place with the direct sum Σ x[m]·w[(k·m) mod n]; conj selects the
// inverse direction (no scaling).
func dft1(line []complex128, off, stride, n int, w []complex128, conj bool, tmp []complex128) {
	for k := 0; k < n; k++ {
		var s complex128
		for m := 0; m < n; m++ {
			t := w[k*m%n]
			if conj {
				t = complex(real(t), -imag(t))
			}
			s += line[off+m*stride] * t
		}
		tmp[k] = s
	}
	for k := 0; k < n; k++ {
		line[off+k*stride] = tmp[k]
	}
}

// fft2 is the reference: a direct DFT along W then H per plane, in float64
// (rounded to float32 once at the end).
func (c *CPU) fft2(re, im *Tensor, inverse bool) (*Tensor, *Tensor) {
	ts := []*Tensor{re}
	if im != nil {
		ts = append(ts, im)
	}
	if !c.ok("fft2", ts...) {
		return nil, nil
	}
	if err := fftCheck(re, im); err != nil {
		c.errf("fft2", "%v", err)
		return nil, nil
	}
	r := re.Rank()
	h, w := re.shape[r-2], re.shape[r-1]
	planes := re.Numel() / max(h*w, 1)
	outRe, outIm := c.newTensor(re.shape, F32), c.newTensor(re.shape, F32)
	rd, ord, oid := re.cpuData(), outRe.cpuData(), outIm.cpuData()
	var id []float32
	if im != nil {
		id = im.cpuData()
	}
	wh, ww := twiddles(h), twiddles(w)
	scale := 1.0
	if inverse {
		scale = 1 / float64(h*w)
	}
	c.parallel(planes, func(lo, hi int) {
		buf := make([]complex128, h*w)
		tmp := make([]complex128, max(h, w))
		for p := lo; p < hi; p++ {
			base := p * h * w
			for i := range buf {
				v := complex(float64(rd[base+i]), 0)
				if id != nil {
					v = complex(float64(rd[base+i]), float64(id[base+i]))
				}
				buf[i] = v
			}
			for row := 0; row < h; row++ {
				dft1(buf, row*w, 1, w, ww, inverse, tmp)
			}
			for col := 0; col < w; col++ {
				dft1(buf, col, w, h, wh, inverse, tmp)
			}
			for i, v := range buf {
				ord[base+i] = float32(real(v) * scale)
				oid[base+i] = float32(imag(v) * scale)
			}
		}
	})
	return outRe, outIm
}

// fftShift is the reference roll: out[(i+sh) mod H, (j+sw) mod W] = x[i, j].
func (c *CPU) fftShift(x *Tensor, inverse bool) *Tensor {
	if !c.ok("fftshift", x) {
		return nil
	}
	if x.Rank() < 2 || x.dtype != F32 {
		return c.errf("fftshift", "needs an f32 [..., H, W] tensor, got %v", x)
	}
	r := x.Rank()
	h, w := x.shape[r-2], x.shape[r-1]
	sh, sw := shiftAmounts(h, w, inverse)
	out := c.newTensor(x.shape, F32)
	xd, od := x.cpuData(), out.cpuData()
	planes := x.Numel() / max(h*w, 1)
	c.parallel(planes, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			base := p * h * w
			for i := 0; i < h; i++ {
				for j := 0; j < w; j++ {
					od[base+(i+sh)%h*w+(j+sw)%w] = xd[base+i*w+j]
				}
			}
		}
	})
	return out
}
