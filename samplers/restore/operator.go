// Package restore solves image inverse problems y = A(x) + n with a
// pixel-space diffusion prior that is only ever run forward (no gradient
// through the network): DDNM, DDS, RED-Diff and Score-SDE predictor–
// corrector with measurement projection, plus the A†y and plain-DDIM
// baselines.
//
// Images are [N, C, H, W] tensors in the model's [−1, 1] scale. Every
// operator is a handful of backend ops (WGSL kernels on the GPU): masks are
// broadcasting multiplies, pooling and blur are convolutions with fixed
// kernels run per channel (the image is viewed as [N·C, 1, H, W]), and
// nearest upsampling is Upsample2x. Measurement noise σ_y is in the same
// [−1, 1] scale (twice its value in [0, 1] pixel units).
package restore

import (
	"errors"
	"fmt"
	"slices"

	"retrace/nn"
	"retrace/samplers"
)

// Operator is a linear degradation A: images [N, C, H, W] → measurements.
// Tensors passed in stay owned by the caller; returned tensors belong to
// the caller.
type Operator interface {
	// Name is the task name (inpaint, sr2, sr4, deblur, denoise, colorize).
	Name() string
	// MeasShape returns the measurement shape for images of shape x, or an
	// error naming the mismatch.
	MeasShape(x []int) ([]int, error)
	// A applies the degradation.
	A(be nn.Backend, x *nn.Tensor) (*nn.Tensor, error)
	// AT applies the adjoint Aᵀ (⟨Ax, y⟩ = ⟨x, Aᵀy⟩).
	AT(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error)
	// Pinv applies the Moore–Penrose pseudo-inverse A† (A A† A = A), or
	// returns ErrNoPinv where the operator has none in closed form.
	Pinv(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error)
	// HasPinv reports whether Pinv is defined.
	HasPinv() bool
	// Free releases the operator's device tensors (masks, kernels).
	Free()
}

// ErrNoPinv is returned by Pinv of operators without a closed-form
// pseudo-inverse (Gaussian blur).
var ErrNoPinv = errors.New("restore: the operator has no closed-form pseudo-inverse")

// checkImage checks that x is a 4-D F32 tensor of shape want (nil want: any
// [N, C, H, W]).
func checkImage(op, what string, x *nn.Tensor, want []int) error {
	if x == nil {
		return fmt.Errorf("restore: %s: %s is nil", op, what)
	}
	if x.Rank() != 4 || x.DType() != nn.F32 {
		return fmt.Errorf("restore: %s: %s %v must be an f32 [N, C, H, W] tensor", op, what, x)
	}
	if want != nil && !slices.Equal(x.Shape(), want) {
		return fmt.Errorf("restore: %s: %s %v, want shape %v", op, what, x.Shape(), want)
	}
	return nil
}

// done returns t, or nil and the backend's sticky error.
func done(be nn.Backend, t *nn.Tensor) (*nn.Tensor, error) {
	if err := be.Err(); err != nil {
		nn.Free(t)
		return nil, err
	}
	if t == nil {
		return nil, errors.New("restore: an op returned no tensor")
	}
	return t, nil
}

// perChannel runs f on x [N, C, H, W] viewed as [N·C, 1, H, W] and views
// the result [N·C, 1, h, w] as [N, C, h, w].
func perChannel(be nn.Backend, x *nn.Tensor, f func(v *nn.Tensor) *nn.Tensor) *nn.Tensor {
	n, c := x.Dim(0), x.Dim(1)
	v := nn.Reshape(x, n*c, 1, x.Dim(2), x.Dim(3))
	r := f(v)
	nn.Free(v)
	if r == nil {
		return nil
	}
	out := nn.Reshape(r, n, c, r.Dim(2), r.Dim(3))
	nn.Free(r)
	return out
}

// Degrade returns the measurement y = A(x) + σ_y·n with n standard normal
// from g (σ_y = 0: noiseless, g may be nil).
func Degrade(be nn.Backend, op Operator, x *nn.Tensor, sigmaY float64, g *samplers.Noise) (*nn.Tensor, error) {
	if sigmaY < 0 {
		return nil, fmt.Errorf("restore: measurement noise σ_y = %v must be ≥ 0", sigmaY)
	}
	y, err := op.A(be, x)
	if err != nil || sigmaY == 0 {
		return y, err
	}
	if g == nil {
		nn.Free(y)
		return nil, errors.New("restore: σ_y > 0 needs a noise generator")
	}
	n := g.Tensor(be, y.Shape()...)
	out := be.Axpby(1, y, float32(sigmaY), n)
	nn.Free(y, n)
	return done(be, out)
}

// Estimate is the A†y baseline (zero-filled holes, nearest upsampling,
// replicated gray, the noisy image); for Gaussian blur, which has no A†,
// it is the blurred measurement itself.
func Estimate(be nn.Backend, op Operator, y *nn.Tensor) (*nn.Tensor, error) {
	if op.HasPinv() {
		return op.Pinv(be, y)
	}
	if _, ok := op.(*Blur); ok {
		if err := checkImage(op.Name(), "measurement", y, nil); err != nil {
			return nil, err
		}
		return be.Affine(y, 1, 0), be.Err()
	}
	return nil, fmt.Errorf("restore: %s: no estimate of x from y", op.Name())
}
