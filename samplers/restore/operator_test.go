package restore

import (
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
)

type opCase struct {
	name string
	make func(be nn.Backend, h, w int) (Operator, error)
}

func opCases() []opCase {
	return []opCase{
		{"inpaint_box", func(be nn.Backend, h, w int) (Operator, error) {
			m, err := BoxMask(h, w, 1, 2, h/2, w/3)
			if err != nil {
				return nil, err
			}
			return NewInpaint(be, m, h, w)
		}},
		{"inpaint_random", func(be nn.Backend, h, w int) (Operator, error) {
			m, err := RandomMask(h, w, 0.6, 3)
			if err != nil {
				return nil, err
			}
			return NewInpaint(be, m, h, w)
		}},
		{"sr2", func(be nn.Backend, h, w int) (Operator, error) { return NewSuperRes(be, 2) }},
		{"sr4", func(be nn.Backend, h, w int) (Operator, error) { return NewSuperRes(be, 4) }},
		{"deblur", func(be nn.Backend, h, w int) (Operator, error) { return NewBlur(be, 1.3) }},
		{"denoise", func(be nn.Backend, h, w int) (Operator, error) { return Denoise{}, nil }},
		{"colorize", func(be nn.Backend, h, w int) (Operator, error) { return NewColorize(be) }},
	}
}

// TestOperatorAdjoint checks ⟨Ax, y⟩ = ⟨x, Aᵀy⟩ and, where A† exists,
// A A† A = A and A A† y = y, on both backends (rtol 1e-5 of the dot
// products' scale; 1e-5 absolute for the pseudo-inverse identities).
func TestOperatorAdjoint(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		for _, c := range opCases() {
			for _, sh := range [][]int{{1, 3, 16, 16}, {2, 3, 12, 20}} {
				op, err := c.make(be, sh[2], sh[3])
				require.NoError(t, err, c.name)
				ys, err := op.MeasShape(sh)
				require.NoError(t, err, c.name)
				xv, yv := randn(1, numel(sh)), randn(2, numel(ys))
				x, y := be.Upload(sh, xv), be.Upload(ys, yv)
				ax, err := op.A(be, x)
				require.NoError(t, err)
				require.Equal(t, ys, ax.Shape(), c.name)
				aty, err := op.AT(be, y)
				require.NoError(t, err)
				require.Equal(t, sh, aty.Shape(), c.name)
				l, r := dot(read(t, be, ax), yv), dot(xv, read(t, be, aty))
				require.InDelta(t, l, r, 1e-5*float64(len(xv)), "%s %v: ⟨Ax,y⟩ %v ⟨x,Aᵀy⟩ %v", c.name, sh, l, r)
				if op.HasPinv() {
					py, err := op.Pinv(be, ax)
					require.NoError(t, err)
					apa, err := op.A(be, py)
					require.NoError(t, err)
					require.Less(t, maxAbsDiff(read(t, be, ax), read(t, be, apa)), 1e-5, "%s: A A† A = A", c.name)
					py2, err := op.Pinv(be, y)
					require.NoError(t, err)
					apy, err := op.A(be, py2)
					require.NoError(t, err)
					if c.name != "inpaint_box" && c.name != "inpaint_random" { // y outside the range of a mask
						require.Less(t, maxAbsDiff(yv, read(t, be, apy)), 1e-5, "%s: A A† y = y", c.name)
					}
					nn.Free(py, apa, py2, apy)
				} else {
					_, err := op.Pinv(be, y)
					require.ErrorIs(t, err, ErrNoPinv)
				}
				nn.Free(x, y, ax, aty)
				op.Free()
			}
		}
	})
}

// TestOperatorGPUvsCPU runs A, Aᵀ and A† on both backends (atol 1e-5).
func TestOperatorGPUvsCPU(t *testing.T) {
	g := testGPU(t)
	c := nn.NewCPU()
	sh := []int{1, 3, 20, 24}
	for _, oc := range opCases() {
		ops := make([]Operator, 2)
		outs := make([][][]float32, 2)
		for i, be := range []nn.Backend{c, g} {
			op, err := oc.make(be, sh[2], sh[3])
			require.NoError(t, err)
			ops[i] = op
			ys, _ := op.MeasShape(sh)
			x, y := be.Upload(sh, randn(5, numel(sh))), be.Upload(ys, randn(6, numel(ys)))
			ax, err := op.A(be, x)
			require.NoError(t, err)
			aty, err := op.AT(be, y)
			require.NoError(t, err)
			outs[i] = [][]float32{read(t, be, ax), read(t, be, aty)}
			if op.HasPinv() {
				py, err := op.Pinv(be, y)
				require.NoError(t, err)
				outs[i] = append(outs[i], read(t, be, py))
				nn.Free(py)
			}
			nn.Free(x, y, ax, aty)
			op.Free()
		}
		for k := range outs[0] {
			require.Less(t, maxAbsDiff(outs[0][k], outs[1][k]), 1e-5, "%s output %d", oc.name, k)
		}
	}
}

// TestOperatorReference compares A with direct Go loops.
func TestOperatorReference(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		n, ch, h, w := 2, 3, 8, 12
		xv := randn(9, n*ch*h*w)
		x := be.Upload([]int{n, ch, h, w}, xv)
		at := func(b, c, i, j int) float64 {
			if i < 0 || j < 0 || i >= h || j >= w {
				return 0
			}
			return float64(xv[((b*ch+c)*h+i)*w+j])
		}
		// sr2: 2×2 means.
		sr, _ := NewSuperRes(be, 2)
		y, err := sr.A(be, x)
		require.NoError(t, err)
		got := read(t, be, y)
		k := 0
		for b := range n {
			for c := range ch {
				for i := range h / 2 {
					for j := range w / 2 {
						want := (at(b, c, 2*i, 2*j) + at(b, c, 2*i+1, 2*j) + at(b, c, 2*i, 2*j+1) + at(b, c, 2*i+1, 2*j+1)) / 4
						require.InDelta(t, want, got[k], 1e-5)
						k++
					}
				}
			}
		}
		// deblur: 2-D correlation with the outer product kernel, zero padding.
		bl, _ := NewBlur(be, 0.8)
		kern, _ := GaussianKernel(0.8)
		r := len(kern) / 2
		y2, err := bl.A(be, x)
		require.NoError(t, err)
		got = read(t, be, y2)
		k = 0
		for b := range n {
			for c := range ch {
				for i := range h {
					for j := range w {
						want := 0.0
						for di := -r; di <= r; di++ {
							for dj := -r; dj <= r; dj++ {
								want += float64(kern[di+r]) * float64(kern[dj+r]) * at(b, c, i+di, j+dj)
							}
						}
						require.InDelta(t, want, got[k], 1e-5)
						k++
					}
				}
			}
		}
		// colorize: channel mean.
		co, _ := NewColorize(be)
		y3, err := co.A(be, x)
		require.NoError(t, err)
		got = read(t, be, y3)
		for b := range n {
			for i := range h {
				for j := range w {
					want := (at(b, 0, i, j) + at(b, 1, i, j) + at(b, 2, i, j)) / 3
					require.InDelta(t, want, got[(b*h+i)*w+j], 1e-5)
				}
			}
		}
		nn.Free(x, y, y2, y3)
		sr.Free()
		bl.Free()
		co.Free()
	})
}

func TestOperatorErrors(t *testing.T) {
	be := nn.NewCPU()
	_, err := NewInpaint(be, make([]float32, 10), 4, 4)
	require.ErrorContains(t, err, "mask has 10 values")
	ones := make([]float32, 16)
	for i := range ones {
		ones[i] = 1
	}
	_, err = NewInpaint(be, ones, 4, 4)
	require.ErrorContains(t, err, "empty")
	m, err := CenterBoxMask(4, 4)
	require.NoError(t, err)
	in, err := NewInpaint(be, m, 4, 4)
	require.NoError(t, err)
	x := be.Upload([]int{1, 3, 5, 4}, make([]float32, 60))
	_, err = in.A(be, x)
	require.ErrorContains(t, err, "does not match the 4×4 mask")
	_, err = BoxMask(4, 4, 2, 2, 3, 1)
	require.Error(t, err)
	_, err = RandomMask(4, 4, 0, 1)
	require.Error(t, err)
	_, err = NewSuperRes(be, 3)
	require.ErrorContains(t, err, "factor 3")
	sr, _ := NewSuperRes(be, 4)
	_, err = sr.A(be, x)
	require.ErrorContains(t, err, "multiples of 4")
	_, err = NewBlur(be, 0)
	require.ErrorContains(t, err, "σ = 0")
	_, err = NewBlur(be, -1)
	require.Error(t, err)
	co, _ := NewColorize(be)
	_, err = co.A(be, be.Upload([]int{1, 1, 4, 4}, make([]float32, 16)))
	require.ErrorContains(t, err, "RGB")
	_, err = Degrade(be, Denoise{}, x, -0.1, nil)
	require.Error(t, err)
	// A user-painted mask: wrong size, then white = hole.
	img := image.NewGray(image.Rect(0, 0, 3, 4))
	_, err = MaskFromImage(img, 4, 4)
	require.ErrorContains(t, err, "mask image is 3×4")
	img = image.NewGray(image.Rect(0, 0, 4, 4))
	img.Set(1, 2, color.White)
	mm, err := MaskFromImage(img, 4, 4)
	require.NoError(t, err)
	require.Equal(t, float32(0), mm[2*4+1])
	require.Equal(t, float32(1), mm[0])
}
