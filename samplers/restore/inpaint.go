package restore

import (
	"fmt"
	"image"
	"math/rand/v2"

	"retrace/nn"
)

// Inpaint is A = diag(m): the known pixels of x, zeros in the holes, with
// m [1, 1, H, W] (1 known, 0 missing) broadcast over batch and channels.
// A is an orthogonal projection, so Aᵀ = A† = A.
type Inpaint struct {
	mask, holes *nn.Tensor // m and 1 − m
	h, w        int
}

// NewInpaint uploads a known-pixel mask of h×w values (1 known, 0 hole;
// see BoxMask, RandomMask, MaskFromImage). A mask with no hole is an error:
// there is nothing to restore.
func NewInpaint(be nn.Backend, known []float32, h, w int) (*Inpaint, error) {
	if h <= 0 || w <= 0 || len(known) != h*w {
		return nil, fmt.Errorf("restore: inpaint: mask has %d values, want %d×%d = %d", len(known), w, h, h*w)
	}
	holes := 0
	for i, v := range known {
		switch v {
		case 0:
			holes++
		case 1:
		default:
			return nil, fmt.Errorf("restore: inpaint: mask value %v at pixel %d (want 0 for a hole or 1 for known)", v, i)
		}
	}
	if holes == 0 {
		return nil, fmt.Errorf("restore: inpaint: the %d×%d mask is empty (no pixel to fill)", w, h)
	}
	inv := make([]float32, len(known))
	for i, v := range known {
		inv[i] = 1 - v
	}
	p := &Inpaint{mask: be.Upload([]int{1, 1, h, w}, known), holes: be.Upload([]int{1, 1, h, w}, inv), h: h, w: w}
	if err := be.Err(); err != nil {
		p.Free()
		return nil, err
	}
	return p, nil
}

// Name implements Operator.
func (*Inpaint) Name() string { return "inpaint" }

// MeasShape implements Operator: y has the image's shape (zeros in holes).
func (p *Inpaint) MeasShape(x []int) ([]int, error) {
	if len(x) != 4 || x[2] != p.h || x[3] != p.w {
		return nil, fmt.Errorf("restore: inpaint: image %v does not match the %d×%d mask", x, p.w, p.h)
	}
	return append([]int(nil), x...), nil
}

func (p *Inpaint) apply(be nn.Backend, what string, x *nn.Tensor) (*nn.Tensor, error) {
	if err := checkImage("inpaint", what, x, nil); err != nil {
		return nil, err
	}
	if _, err := p.MeasShape(x.Shape()); err != nil {
		return nil, err
	}
	return done(be, be.Binary(nn.Mul, x, p.mask))
}

// A implements Operator: m ⊙ x.
func (p *Inpaint) A(be nn.Backend, x *nn.Tensor) (*nn.Tensor, error) { return p.apply(be, "image", x) }

// AT implements Operator (A is symmetric).
func (p *Inpaint) AT(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) {
	return p.apply(be, "measurement", y)
}

// Pinv implements Operator (A is a projection: A† = A).
func (p *Inpaint) Pinv(be nn.Backend, y *nn.Tensor) (*nn.Tensor, error) {
	return p.apply(be, "measurement", y)
}

// HasPinv implements Operator.
func (*Inpaint) HasPinv() bool { return true }

// Free implements Operator.
func (p *Inpaint) Free() { nn.Free(p.mask, p.holes); p.mask, p.holes = nil, nil }

// project returns x − A†(A x − y) as (1 − m)⊙x + m⊙y, so that the known
// pixels are exactly y (x − (x − y) can differ from y by a rounding).
func (p *Inpaint) project(be nn.Backend, x, y *nn.Tensor) (*nn.Tensor, error) {
	if err := checkImage("inpaint", "image", x, nil); err != nil {
		return nil, err
	}
	if err := checkImage("inpaint", "measurement", y, x.Shape()); err != nil {
		return nil, err
	}
	if _, err := p.MeasShape(x.Shape()); err != nil {
		return nil, err
	}
	keep := be.Binary(nn.Mul, x, p.holes)
	known := be.Binary(nn.Mul, y, p.mask)
	out := be.Binary(nn.Add, keep, known)
	nn.Free(keep, known)
	return done(be, out)
}

// BoxMask returns an h×w known-pixel mask with the bh×bw box at (top, left)
// missing.
func BoxMask(h, w, top, left, bh, bw int) ([]float32, error) {
	if bh <= 0 || bw <= 0 || top < 0 || left < 0 || top+bh > h || left+bw > w {
		return nil, fmt.Errorf("restore: box %d×%d at (%d, %d) does not fit in the %d×%d image", bw, bh, left, top, w, h)
	}
	m := make([]float32, h*w)
	for i := range m {
		m[i] = 1
	}
	for y := top; y < top+bh; y++ {
		for x := left; x < left+bw; x++ {
			m[y*w+x] = 0
		}
	}
	return m, nil
}

// CenterBoxMask is BoxMask with a centred box of half the image's sides.
func CenterBoxMask(h, w int) ([]float32, error) {
	return BoxMask(h, w, h/4, w/4, max(h/2, 1), max(w/2, 1))
}

// RandomMask returns an h×w mask with each pixel missing with probability
// frac, drawn from PCG(seed, 0x5eed) (Go's math/rand/v2, the same on every
// platform).
func RandomMask(h, w int, frac float64, seed uint64) ([]float32, error) {
	if !(frac > 0 && frac < 1) {
		return nil, fmt.Errorf("restore: random mask fraction %v (want 0 < frac < 1)", frac)
	}
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("restore: random mask size %d×%d", w, h)
	}
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	m := make([]float32, h*w)
	for i := range m {
		if r.Float64() >= frac {
			m[i] = 1
		}
	}
	return m, nil
}

// MaskFromImage reads a user-painted mask of exactly w×h pixels: painted
// (light, luminance ≥ ½) pixels are the holes to fill, dark pixels are
// kept. Transparent pixels count as dark.
func MaskFromImage(img image.Image, w, h int) ([]float32, error) {
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		return nil, fmt.Errorf("restore: mask image is %d×%d, the image is %d×%d", b.Dx(), b.Dy(), w, h)
	}
	m := make([]float32, h*w)
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA() // premultiplied
			lum := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 0xffff
			if lum < 0.5 {
				m[y*w+x] = 1
			}
		}
	}
	return m, nil
}
