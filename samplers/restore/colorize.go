package restore

import (
	"fmt"

	"retrace/nn"
)

// Colorize is A = the mean over the three channels, [N, 3, H, W] →
// [N, 1, H, W] (a 1×1 convolution with weights ⅓). AAᵀ = I/3, so
// Aᵀ = replicate ÷ 3 and A† = replicate the gray value to R, G and B.
type Colorize struct {
	mean, rep *nn.Tensor // [1, 3, 1, 1] of ⅓ and [3, 1, 1, 1] of 1
}

// NewColorize builds the operator (RGB models only).
func NewColorize(be nn.Backend) (*Colorize, error) {
	third := float32(1) / 3
	c := &Colorize{
		mean: be.Upload([]int{1, 3, 1, 1}, []float32{third, third, third}),
		rep:  be.Upload([]int{3, 1, 1, 1}, []float32{1, 1, 1}),
	}
	if err := be.Err(); err != nil {
		c.Free()
		return nil, err
	}
	return c, nil
}

// Name implements Operator.
func (*Colorize) Name() string { return "colorize" }

// MeasShape implements Operator.
func (*Colorize) MeasShape(x []int) ([]int, error) {
	if len(x) != 4 || x[1] != 3 {
		return nil, fmt.Errorf("restore: colorize: image %v must be [N, 3, H, W] (an RGB model)", x)
	}
	return []int{x[0], 1, x[2], x[3]}, nil
}

// A implements Operator.
func (c *Colorize) A(be nn.Backend, x *nn.Tensor) (*nn.Tensor, error) {
	if err := checkImage("colorize", "image", x, nil); err != nil {
		return nil, err
	}
	if _, err := c.MeasShape(x.Shape()); err != nil {
		return nil, err
	}
	return done(be, be.Conv2d(x, c.mean, nil, nn.Conv2dSame(1, 0)))
}

func (c *Colorize) replicate(be nn.Backend, y *nn.Tensor, scale float32) (*nn.Tensor, error) {
	if err := checkImage("colorize", "measurement", y, nil); err != nil {
		return nil, err
	}
	if y.Dim(1) != 1 {
		return nil, fmt.Errorf("restore: colorize: measurement %v must have one channel", y.Shape())
	}
	r := be.Conv2d(y, c.rep, nil, nn.Conv2dSame(1, 0))
	if scale != 1 {
		s := be.Affine(r, scale, 0)
		nn.Free(r)
		r = s
	}
	return done(be, r)
}

// AT implements Operator: replicate ÷ 3.
func (c *Colorize) AT(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) {
	return c.replicate(be, y, float32(1)/3)
}

// Pinv implements Operator: replicate.
func (c *Colorize) Pinv(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) {
	return c.replicate(be, y, 1)
}

// HasPinv implements Operator.
func (*Colorize) HasPinv() bool { return true }

// Free implements Operator.
func (c *Colorize) Free() { nn.Free(c.mean, c.rep); c.mean, c.rep = nil, nil }
