package restore

import (
	"fmt"

	"retrace/nn"
)

// SuperRes is s×s average pooling, A: [N, C, H, W] → [N, C, H/s, W/s], a
// stride-s convolution per channel with the kernel 1/s². Each output pixel
// is the mean of its block, so A·Aᵀ = I/s²; hence Aᵀ = nearest upsampling
// ÷ s² and A† = Aᵀ(AAᵀ)⁻¹ = nearest upsampling (replicate each pixel).
type SuperRes struct {
	s      int
	kernel *nn.Tensor // [1, 1, s, s] of 1/s²
}

// NewSuperRes builds the ×s operator (s = 2 or 4).
func NewSuperRes(be nn.Backend, s int) (*SuperRes, error) {
	if s != 2 && s != 4 {
		return nil, fmt.Errorf("restore: super-resolution factor %d (want 2 or 4)", s)
	}
	k := make([]float32, s*s)
	for i := range k {
		k[i] = 1 / float32(s*s)
	}
	t := be.Upload([]int{1, 1, s, s}, k)
	if err := be.Err(); err != nil {
		return nil, err
	}
	return &SuperRes{s: s, kernel: t}, nil
}

// Name implements Operator.
func (p *SuperRes) Name() string { return fmt.Sprintf("sr%d", p.s) }

// Factor is s.
func (p *SuperRes) Factor() int { return p.s }

// MeasShape implements Operator.
func (p *SuperRes) MeasShape(x []int) ([]int, error) {
	if len(x) != 4 || x[2]%p.s != 0 || x[3]%p.s != 0 || x[2] == 0 || x[3] == 0 {
		return nil, fmt.Errorf("restore: %s: image %v must be [N, C, H, W] with H and W multiples of %d", p.Name(), x, p.s)
	}
	return []int{x[0], x[1], x[2] / p.s, x[3] / p.s}, nil
}

// A implements Operator.
func (p *SuperRes) A(be nn.Backend, x *nn.Tensor) (*nn.Tensor, error) {
	if err := checkImage(p.Name(), "image", x, nil); err != nil {
		return nil, err
	}
	if _, err := p.MeasShape(x.Shape()); err != nil {
		return nil, err
	}
	return done(be, perChannel(be, x, func(v *nn.Tensor) *nn.Tensor {
		return be.Conv2d(v, p.kernel, nil, nn.Conv2dSame(p.s, 0))
	}))
}

// upsample repeats every pixel s×s times (Upsample2x log₂ s times).
func (p *SuperRes) upsample(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) {
	if err := checkImage(p.Name(), "measurement", y, nil); err != nil {
		return nil, err
	}
	u := be.Upsample2x(y)
	for f := 4; f <= p.s; f *= 2 {
		v := be.Upsample2x(u)
		nn.Free(u)
		u = v
	}
	return done(be, u)
}

// AT implements Operator: nearest upsampling ÷ s².
func (p *SuperRes) AT(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) {
	u, err := p.upsample(be, y)
	if err != nil {
		return nil, err
	}
	out := be.Affine(u, 1/float32(p.s*p.s), 0)
	nn.Free(u)
	return done(be, out)
}

// Pinv implements Operator: nearest upsampling.
func (p *SuperRes) Pinv(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) { return p.upsample(be, y) }

// HasPinv implements Operator.
func (*SuperRes) HasPinv() bool { return true }

// Free implements Operator.
func (p *SuperRes) Free() { nn.Free(p.kernel); p.kernel = nil }
