package restore

import (
	"fmt"

	"retrace/nn"
)

// Tasks lists the task names NewOperator accepts.
var Tasks = []string{"inpaint", "sr2", "sr4", "deblur", "denoise", "colorize"}

// TaskOptions parameterise NewOperator.
type TaskOptions struct {
	// Known is the inpainting mask of H×W values (1 known, 0 hole); nil
	// means CenterBoxMask.
	Known []float32
	H, W  int
	// BlurSigma is the Gaussian blur's σ in pixels (deblur).
	BlurSigma float64
}

// NewOperator builds the operator of a task for images of H×W pixels and
// C channels.
func NewOperator(be nn.Backend, task string, c int, o TaskOptions) (Operator, error) {
	switch task {
	case "inpaint":
		known := o.Known
		if known == nil {
			var err error
			if known, err = CenterBoxMask(o.H, o.W); err != nil {
				return nil, err
			}
		}
		return NewInpaint(be, known, o.H, o.W)
	case "sr2":
		return NewSuperRes(be, 2)
	case "sr4":
		return NewSuperRes(be, 4)
	case "deblur":
		return NewBlur(be, o.BlurSigma)
	case "denoise":
		return Denoise{}, nil
	case "colorize":
		if c != 3 {
			return nil, fmt.Errorf("restore: colorize needs an RGB model (this one has %d channel(s))", c)
		}
		return NewColorize(be)
	}
	return nil, fmt.Errorf("restore: unknown task %q (want one of %v)", task, Tasks)
}
