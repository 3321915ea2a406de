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
	hw, ohw, kk := s.h*s.w, s.oh*s.ow, s.kh*s.kw
	c.parallel(s.n*s.cout, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			n, co := i/s.cout, i%s.cout
			o := od[i*ohw : (i+1)*ohw]
			if bd != nil {
				for j := range o {
					o[j] = bd[co]
				}
			}
			for ci := 0; ci < s.cin; ci++ {
				xp := xd[(n*s.cin+ci)*hw : (n*s.cin+ci+1)*hw]
				wk := wd[(co*s.cin+ci)*kk : (co*s.cin+ci+1)*kk]
				for kh := 0; kh < s.kh; kh++ {
					for kw := 0; kw < s.kw; kw++ {
						wv := wk[kh*s.kw+kw]
						// Output columns whose input column ow·sw − pl + kw is inside [0, W).
						owLo := max(0, ceilDiv(s.pl-kw, s.sw))
						owHi := min(s.ow, ceilDiv(s.w+s.pl-kw, s.sw))
						if owLo >= owHi {
							continue
						}
						for oh := 0; oh < s.oh; oh++ {
							ih := oh*s.sh - s.pt + kh
							if ih < 0 || ih >= s.h {
								continue
							}
							orow := o[oh*s.ow+owLo : oh*s.ow+owHi]
							xrow := xp[ih*s.w:]
							iw := owLo*s.sw - s.pl + kw
							if s.sw == 1 {
								xr := xrow[iw : iw+len(orow)]
								for j := range orow {
									orow[j] += wv * xr[j]
								}
								continue
							}
							for j := range orow {
								orow[j] += wv * xrow[iw+j*s.sw]
							}
						}
					}
				}
			}
		}
	})
	return out
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
