package restore

import (
	"fmt"
	"math"
	"slices"

	"retrace/nn"
)

// Blur is a Gaussian blur with standard deviation σ (pixels), A = k ⋆ x
// per channel with the normalised kernel k(i) ∝ exp(−i²/2σ²), |i| ≤
// r = ⌈3σ⌉, applied separably (a vertical then a horizontal 1-D
// correlation). The borders are zero-padded: that keeps A a plain matrix
// whose adjoint is the correlation with the flipped kernel, again
// zero-padded (reflect padding would fold the border terms back and the
// flipped-kernel correlation would no longer be the exact adjoint). The
// output has the input's size. A has no closed-form pseudo-inverse (its
// small singular values make it ill-posed): DDNM and Score-SDE do not
// support it; DDS and RED-Diff use only A and Aᵀ.
type Blur struct {
	sigma          float64
	r              int
	kv, kh         *nn.Tensor // [1, 1, 2r+1, 1] and [1, 1, 1, 2r+1]
	kvFlip, khFlip *nn.Tensor
}

// GaussianKernel returns the normalised 1-D kernel of radius ⌈3σ⌉.
func GaussianKernel(sigma float64) ([]float32, error) {
	if !(sigma > 0) || sigma > 50 {
		return nil, fmt.Errorf("restore: deblur: σ = %v (want 0 < σ ≤ 50 pixels)", sigma)
	}
	r := int(math.Ceil(3 * sigma))
	w := make([]float64, 2*r+1)
	sum := 0.0
	for i := range w {
		d := float64(i - r)
		w[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += w[i]
	}
	k := make([]float32, len(w))
	for i := range w {
		k[i] = float32(w[i] / sum)
	}
	return k, nil
}

// NewBlur builds the blur of σ pixels.
func NewBlur(be nn.Backend, sigma float64) (*Blur, error) {
	k, err := GaussianKernel(sigma)
	if err != nil {
		return nil, err
	}
	n := len(k)
	f := slices.Clone(k)
	slices.Reverse(f)
	b := &Blur{sigma: sigma, r: n / 2,
		kv: be.Upload([]int{1, 1, n, 1}, k), kh: be.Upload([]int{1, 1, 1, n}, k),
		kvFlip: be.Upload([]int{1, 1, n, 1}, f), khFlip: be.Upload([]int{1, 1, 1, n}, f)}
	if err := be.Err(); err != nil {
		b.Free()
		return nil, err
	}
	return b, nil
}

// Name implements Operator.
func (*Blur) Name() string { return "deblur" }

// Sigma is σ.
func (p *Blur) Sigma() float64 { return p.sigma }

// MeasShape implements Operator.
func (p *Blur) MeasShape(x []int) ([]int, error) {
	if len(x) != 4 || x[2] == 0 || x[3] == 0 {
		return nil, fmt.Errorf("restore: deblur: image %v must be [N, C, H, W]", x)
	}
	return slices.Clone(x), nil
}

func (p *Blur) conv(be nn.Backend, what string, x, kv, kh *nn.Tensor) (*nn.Tensor, error) {
	if err := checkImage("deblur", what, x, nil); err != nil {
		return nil, err
	}
	r := p.r
	return done(be, perChannel(be, x, func(v *nn.Tensor) *nn.Tensor {
		a := be.Conv2d(v, kv, nil, nn.Conv2dParams{StrideH: 1, StrideW: 1, PadTop: r, PadBottom: r})
		b := be.Conv2d(a, kh, nil, nn.Conv2dParams{StrideH: 1, StrideW: 1, PadLeft: r, PadRight: r})
		nn.Free(a)
		return b
	}))
}

// A implements Operator.
func (p *Blur) A(be nn.Backend, x *nn.Tensor) (*nn.Tensor, error) {
	return p.conv(be, "image", x, p.kv, p.kh)
}

// AT implements Operator: correlation with the flipped kernel.
func (p *Blur) AT(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) {
	return p.conv(be, "measurement", y, p.kvFlip, p.khFlip)
}

// Pinv implements Operator: ErrNoPinv.
func (*Blur) Pinv(nn.Backend, *nn.Tensor) (*nn.Tensor, error) { return nil, ErrNoPinv }

// HasPinv implements Operator.
func (*Blur) HasPinv() bool { return false }

// Free implements Operator.
func (p *Blur) Free() {
	nn.Free(p.kv, p.kh, p.kvFlip, p.khFlip)
	p.kv, p.kh, p.kvFlip, p.khFlip = nil, nil, nil, nil
}
