package restore

import (
	"fmt"
	"slices"

	"retrace/nn"
)

// Denoise is A = I (y = x + σ_y·n): Aᵀ = A† = I. The task is only
// meaningful with measurement noise σ_y > 0.
type Denoise struct{}

// Name implements Operator.
func (Denoise) Name() string { return "denoise" }

// MeasShape implements Operator.
func (Denoise) MeasShape(x []int) ([]int, error) {
	if len(x) != 4 {
		return nil, fmt.Errorf("restore: denoise: image %v must be [N, C, H, W]", x)
	}
	return slices.Clone(x), nil
}

func identity(be nn.Backend, what string, x *nn.Tensor) (*nn.Tensor, error) {
	if err := checkImage("denoise", what, x, nil); err != nil {
		return nil, err
	}
	return done(be, be.Affine(x, 1, 0))
}

// A implements Operator (a copy of x).
func (Denoise) A(be nn.Backend, x *nn.Tensor) (*nn.Tensor, error) { return identity(be, "image", x) }

// AT implements Operator.
func (Denoise) AT(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) {
	return identity(be, "measurement", y)
}

// Pinv implements Operator.
func (Denoise) Pinv(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) {
	return identity(be, "measurement", y)
}

// HasPinv implements Operator.
func (Denoise) HasPinv() bool { return true }

// Free implements Operator.
func (Denoise) Free() {}
