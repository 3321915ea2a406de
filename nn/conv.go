package nn

import "fmt"

// convShape is a checked Conv2d problem: x [N, Cin, H, W] * w [Cout, Cin,
// KH, KW] → [N, Cout, OH, OW].
type convShape struct {
	n, cin, h, w, cout, kh, kw, oh, ow int
	sh, sw, pt, pl                     int
}

// checkConv2d validates a Conv2d call shared by both backends.
func checkConv2d(x, w, bias *Tensor, p Conv2dParams) (convShape, error) {
	var s convShape
	if x.Rank() != 4 {
		return s, fmt.Errorf("x %v must be [N, Cin, H, W]", x)
	}
	if w.Rank() != 4 {
		return s, fmt.Errorf("weight %v must be [Cout, Cin, KH, KW]", w)
	}
	if x.dtype != F32 {
		return s, fmt.Errorf("x %v must be f32", x)
	}
	s = convShape{n: x.shape[0], cin: x.shape[1], h: x.shape[2], w: x.shape[3],
		cout: w.shape[0], kh: w.shape[2], kw: w.shape[3],
		sh: p.StrideH, sw: p.StrideW, pt: p.PadTop, pl: p.PadLeft}
	if w.shape[1] != s.cin {
		return s, fmt.Errorf("weight %v expects %d input channels, x %v has %d", w.shape, w.shape[1], x.shape, s.cin)
	}
	if bias != nil && (bias.Rank() != 1 || bias.shape[0] != s.cout) {
		return s, fmt.Errorf("bias %v must be [%d] for weight %v", bias, s.cout, w.shape)
	}
	if p.StrideH < 1 || p.StrideW < 1 {
		return s, fmt.Errorf("stride %dx%d must be at least 1", p.StrideH, p.StrideW)
	}
	if p.PadTop < 0 || p.PadBottom < 0 || p.PadLeft < 0 || p.PadRight < 0 {
		return s, fmt.Errorf("negative padding %+v", p)
	}
	ph, pw := s.h+p.PadTop+p.PadBottom, s.w+p.PadLeft+p.PadRight
	if s.kh > ph || s.kw > pw {
		return s, fmt.Errorf("kernel %dx%d is larger than the padded input %dx%d (x %v)", s.kh, s.kw, ph, pw, x.shape)
	}
	s.oh, s.ow = p.OutSize(s.h, s.w, s.kh, s.kw)
	return s, nil
}

// Conv2d implements Backend (reference). Work is split over (sample, output
// channel); each output plane starts at the bias and accumulates, for every
// (ci, kh, kw), one weight times a strided row of the input into a row of the
// output (the inner loop runs over contiguous output columns).
func (c *CPU) Conv2d(x, w, bias *Tensor, p Conv2dParams) *Tensor {
	ts := []*Tensor{x, w}
	if bias != nil {
		ts = append(ts, bias)
	}
	if !c.ok("conv2d", ts...) {
		return nil
	}
	s, err := checkConv2d(x, w, bias, p)
	if err != nil {
		return c.errf("conv2d", "%v", err)
	}
	out := c.newTensor([]int{s.n, s.cout, s.oh, s.ow}, F32)
	xd, wd, od := x.cpuData(), w.cpuData(), out.cpuData()
	var bd []float32
	if bias != nil {
		bd = bias.cpuData()
	}
	if bd == nil {
		bd = make([]float32, s.cout)
	}
	c.conv2dGEMM(s, xd, wd, bd, od)
	return out
}

// conv2dCols bounds the im2col buffer of conv2dGEMM (floats); a variable so
// that tests can force chunking.
var conv2dCols = 1 << 23

// conv2dGEMM computes the convolution as a matrix product per image
// (im2col): the rows of A are the output positions and its columns the
// (input channel, tap) pairs with the input value under that tap (zero in the
// padding), B is the weight viewed as [Cin·KH·KW, Cout], and the product
// [positions, Cout] is transposed into NCHW while the bias is added. Images
// go through in chunks so that the column buffer stays under conv2dCols
// floats and small images still give the product enough tiles to share out.
func (c *CPU) conv2dGEMM(s convShape, xd, wd, bd, od []float32) {
	hw, ohw, kk := s.h*s.w, s.oh*s.ow, s.kh*s.kw
	k := s.cin * kk
	chunk := max(1, min(s.n, conv2dCols/max(1, ohw*k)))
	col := make([]float32, chunk*ohw*k)
	prod := make([]float32, chunk*ohw*s.cout)
	for n0 := 0; n0 < s.n; n0 += chunk {
		nb := min(chunk, s.n-n0)
		c.parallel(nb*s.oh, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				z, oh := r/s.oh, r%s.oh
				xi := xd[(n0+z)*s.cin*hw:]
				for ow := 0; ow < s.ow; ow++ {
					dst := col[(z*ohw+oh*s.ow+ow)*k : (z*ohw+oh*s.ow+ow+1)*k]
					for ci := 0; ci < s.cin; ci++ {
						xp := xi[ci*hw : (ci+1)*hw]
						for kh := 0; kh < s.kh; kh++ {
							ih := oh*s.sh - s.pt + kh
							d := dst[ci*kk+kh*s.kw : ci*kk+(kh+1)*s.kw]
							if ih < 0 || ih >= s.h {
								clear(d)
								continue
							}
							for kw := range d {
								iw := ow*s.sw - s.pl + kw
								if iw < 0 || iw >= s.w {
									d[kw] = 0
								} else {
									d[kw] = xp[ih*s.w+iw]
								}
							}
						}
					}
				}
			}
		})
		d := mmDims{batch: nb, M: ohw, K: k, N: s.cout, ars: k, acs: 1, brs: 1, bcs: k}
		c.gemm(d, col, wd, nil, prod)
		c.parallel(nb*s.cout, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				z, co := i/s.cout, i%s.cout
				o := od[((n0+z)*s.cout+co)*ohw : ((n0+z)*s.cout+co+1)*ohw]
				p := prod[z*ohw*s.cout:]
				b := bd[co]
				for j := range o {
					o[j] = p[j*s.cout+co] + b
				}
			}
		})
	}
}

// ceilDiv is ⌈a/b⌉ for b > 0 and any sign of a.
func ceilDiv(a, b int) int {
	if a <= 0 {
		return -(-a / b)
	}
	return (a + b - 1) / b
}

// Upsample2x implements Backend (reference): out[y][x] = in[y/2][x/2].
func (c *CPU) Upsample2x(x *Tensor) *Tensor {
	if !c.ok("upsample2x", x) {
		return nil
	}
	if x.Rank() != 4 {
		return c.errf("upsample2x", "x %v must be [N, C, H, W]", x)
	}
	if x.dtype != F32 {
		return c.errf("upsample2x", "x %v must be f32", x)
	}
	h, w := x.shape[2], x.shape[3]
	out := c.newTensor([]int{x.shape[0], x.shape[1], 2 * h, 2 * w}, F32)
	xd, od := x.cpuData(), out.cpuData()
	rows := x.shape[0] * x.shape[1] * h // input rows; each makes two output rows
	c.parallel(rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			in := xd[r*w : (r+1)*w]
			o := od[r*4*w : (r+1)*4*w]
			for j, v := range in {
				o[2*j], o[2*j+1] = v, v
			}
			copy(o[2*w:], o[:2*w])
		}
	})
	return out
}

// concatShape checks a Concat call and returns the output shape, the number
// of outer blocks (product of the axes before axis) and each input's
// contiguous block length (its axis length times the inner axes).
func concatShape(axis int, ts []*Tensor) (shape []int, outer int, inner []int, err error) {
	if len(ts) == 0 {
		return nil, 0, nil, fmt.Errorf("no tensors")
	}
	r := ts[0].Rank()
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return nil, 0, nil, fmt.Errorf("axis out of range for %v", ts[0])
	}
	shape = cloneShape(ts[0].shape)
	shape[axis] = 0
	for _, t := range ts {
		if t.dtype != F32 {
			return nil, 0, nil, fmt.Errorf("needs f32 tensors, got %v", t)
		}
		if t.Rank() != r {
			return nil, 0, nil, fmt.Errorf("rank mismatch: %v and %v", ts[0].shape, t.shape)
		}
		for d := range r {
			if d != axis && t.shape[d] != ts[0].shape[d] {
				return nil, 0, nil, fmt.Errorf("shapes %v and %v differ outside axis %d", ts[0].shape, t.shape, axis)
			}
		}
		shape[axis] += t.shape[axis]
	}
	outer = numel(shape[:axis])
	in := numel(shape[axis+1:])
	for _, t := range ts {
		inner = append(inner, t.shape[axis]*in)
	}
	return shape, outer, inner, nil
}

// Concat implements Backend (reference).
func (c *CPU) Concat(axis int, ts ...*Tensor) *Tensor {
	if !c.ok("concat", ts...) {
		return nil
	}
	shape, outer, inner, err := concatShape(axis, ts)
	if err != nil {
		return c.errf("concat", "%v", err)
	}
	out := c.newTensor(shape, F32)
	od := out.cpuData()
	row := out.Numel() / outer
	off := 0
	for i, t := range ts {
		td, in, o0 := t.cpuData(), inner[i], off
		c.parallel(outer, func(lo, hi int) {
			for b := lo; b < hi; b++ {
				copy(od[b*row+o0:b*row+o0+in], td[b*in:(b+1)*in])
			}
		})
		off += in
	}
	return out
}
