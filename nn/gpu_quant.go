package nn

import (
	"fmt"

	"retrace/nn/gpu"
)

// Quantized weights on the GPU: Linear and Conv2d route here (a one-line
// hook at the top of each) when the weight is Q8 or Q4. The kernels read the
// packed words and scales from one binding and dequantize in registers.

// qbind binds a quantized tensor's whole buffer (values, then scales).
func (g *GPU) qbind(op string, w *Tensor) (gpu.Binding, *quantInfo, bool) {
	q := quantOf(w)
	if q == nil || (w.dtype != Q8 && w.dtype != Q4) {
		g.errf(op, "weight %v has no quantized storage", w)
		return gpu.Binding{}, nil, false
	}
	if !g.fits(q.words) {
		g.errf(op, "quantized weight %v (%d bytes) exceeds maxStorageBufferBindingSize (%d bytes)", w, q.words*4, g.maxElems()*4)
		return gpu.Binding{}, nil, false
	}
	if w.shape[0] != q.rows || w.Numel() != q.rows*q.rowLen {
		g.errf(op, "quantized weight %v was stored as %d rows of %d", w, q.rows, q.rowLen)
		return gpu.Binding{}, nil, false
	}
	return gpu.Binding{Buf: w.st.buf, Size: uint64(q.words) * 4}, q, true
}

// qsbase is the index of the first scale in qw, in the format's units (f16
// halves for q8, (scale, min) words for q4).
func (q *quantInfo) qsbase() uint32 {
	if q.format == Q8 {
		return uint32(2 * q.sWord)
	}
	return uint32(q.sWord)
}

// qkernel compiles kernel name (one per format: it includes the format's
// dequant snippet, shaders/quant_q8_inc.wgsl or quant_q4_inc.wgsl)
// specialised by consts and q's group size.
func (g *GPU) qkernel(op, name string, q *quantInfo, consts map[string]string, ro []bool) *gpu.Kernel {
	consts["QG"] = fmt.Sprintf("%du", q.group)
	return g.kernel(op, name, consts, ro)
}

func (g *GPU) qrun(op string, k *gpu.Kernel, p *gpu.Params, bs []gpu.Binding, x, y, z int) bool {
	if err := g.Dev.Dispatch(k, p.Bytes(), bs, uint32(x), uint32(y), uint32(z)); err != nil {
		g.setErr(fmt.Errorf("nn: %s: %w", op, err))
		return false
	}
	return true
}

// linearQuant is Linear with a Q8/Q4 weight: shaders/linear_q8.wgsl or
// linear_q4.wgsl. Rows of x and out are split over dispatches when they
// exceed one binding; the weight must fit one binding.
func (g *GPU) linearQuant(x, w, bias *Tensor) *Tensor {
	const op = "linear"
	if !g.ok(op, x, w) || (bias != nil && !g.ok(op, bias)) {
		return nil
	}
	d, err := linearDims(x, w, bias)
	if err != nil {
		return g.errf(op, "%v", err)
	}
	wb, q, ok := g.qbind(op, w)
	if !ok {
		return nil
	}
	biasMode := 0
	if bias != nil {
		biasMode = 1
		if bias.dtype == F16 {
			biasMode = 2
		}
	}
	const tm, wgs = 4, 16
	consts := map[string]string{"TM": fmt.Sprintf("%du", tm), "WG": fmt.Sprintf("%du", wgs), "BIAS": fmt.Sprintf("%du", biasMode)}
	k := g.qkernel(op, "linear_"+q.format.String(), q, consts, []bool{true, true, true, false})
	if k == nil {
		return nil
	}
	lim := int(g.Dev.Limits().MaxComputeWorkgroupsPerDimension)
	nx := (d.N + 4*wgs - 1) / (4 * wgs)
	if nx > lim {
		return g.errf(op, "N=%d needs %d workgroups, over the limit %d", d.N, nx, lim)
	}
	maxE := g.maxElems()
	mc := min(d.M, maxE/d.K, maxE/d.N, lim*tm)
	if mc == 0 {
		return g.errf(op, "a row of x %v or of the output exceeds maxStorageBufferBindingSize", x)
	}
	if bias != nil && !g.fits(bias.Numel()) {
		return g.errf(op, "bias %v exceeds maxStorageBufferBindingSize", bias)
	}
	out := g.newTensor(op, d.out, F32)
	if out == nil {
		return nil
	}
	bb, baseBias := wb, uint32(0)
	if bias != nil {
		bb, baseBias = g.bind(bias)
	}
	for m0 := 0; m0 < d.M; m0 += mc {
		nm := min(mc, d.M-m0)
		xb, ox := g.bindElems(x, m0*d.K, nm*d.K)
		ob, oo := g.bindElems(out, m0*d.N, nm*d.N)
		p := new(gpu.Params).U(uint32(nm), uint32(d.N), uint32(d.K), uint32(q.rowWords))
		p.U(ox, oo, baseBias, q.qsbase(), uint32(q.groups), 0, 0, 0)
		if !g.qrun(op, k, p, []gpu.Binding{xb, wb, bb, ob}, nx, (nm+tm-1)/tm, 1) {
			Free(out)
			return nil
		}
	}
	return out
}

// conv2dQuant is Conv2d with a Q8/Q4 weight: shaders/conv2d_q8.wgsl or q4 (the
// shared conv2d_q_inc.wgsl), cut into dispatches like Conv2d (planConv2d).
func (g *GPU) conv2dQuant(x, w, bias *Tensor, p Conv2dParams) *Tensor {
	const op = "conv2d"
	ts := []*Tensor{x, w}
	if bias != nil {
		ts = append(ts, bias)
	}
	if !g.ok(op, ts...) {
		return nil
	}
	s, err := checkConv2d(x, w, bias, p)
	if err != nil {
		return g.errf(op, "%v", err)
	}
	wb, q, ok := g.qbind(op, w)
	if !ok {
		return nil
	}
	pl, err := g.planConv2d(s)
	if err != nil {
		return g.errf(op, "x %v, weight %v: %v", x.shape, w.shape, err)
	}
	kk, hw, ohw := s.kh*s.kw, s.h*s.w, s.oh*s.ow
	gx := (ohw + 255) / 256
	if gx > int(g.Dev.Limits().MaxComputeWorkgroupsPerDimension) {
		return g.errf(op, "output %dx%d needs %d workgroups along x", s.oh, s.ow, gx)
	}
	bounds := !(s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && p.PadTop == 0 && p.PadLeft == 0 && p.PadBottom == 0 && p.PadRight == 0)
	consts := map[string]string{
		"KH": fmt.Sprintf("%du", s.kh), "KW": fmt.Sprintf("%du", s.kw),
		"SH": fmt.Sprintf("%du", s.sh), "SW": fmt.Sprintf("%du", s.sw),
		"BF16": fmt.Sprint(bias != nil && bias.dtype == F16), "BOUNDS": fmt.Sprint(bounds),
	}
	k := g.qkernel(op, "conv2d_"+q.format.String(), q, consts, []bool{true, true, true, false})
	if k == nil {
		return nil
	}
	out := g.newTensor(op, []int{s.n, s.cout, s.oh, s.ow}, F32)
	if out == nil {
		return nil
	}
	for n0 := 0; n0 < s.n; n0 += pl.nb {
		nb := min(pl.nb, s.n-n0)
		for co0 := 0; co0 < s.cout; co0 += pl.cob {
			cob := min(pl.cob, s.cout-co0)
			bbind, bb := wb, uint32(0)
			if bias != nil {
				bbind, bb = g.bind(bias)
				bb += uint32(co0)
			}
			for ci0 := 0; ci0 < s.cin; ci0 += pl.cg {
				cg := min(pl.cg, s.cin-ci0)
				xbind, xb := g.bindElems(x, n0*s.cin*hw+ci0*hw, (nb-1)*s.cin*hw+cg*hw)
				obind, ob := g.bindElems(out, (n0*s.cout+co0)*ohw, (nb-1)*s.cout*ohw+cob*ohw)
				var flags uint32
				if ci0 > 0 {
					flags |= 2
				} else if bias != nil {
					flags |= 1
				}
				prm := new(gpu.Params).U(uint32(cg), uint32(s.h), uint32(s.w), uint32(s.oh),
					uint32(s.ow), uint32(cob), uint32(q.rowWords), uint32(ci0*kk)).
					I(int32(s.pt), int32(s.pl)).
					U(xb, uint32(co0), bb, ob, uint32(s.cin*hw), uint32(s.cout*ohw), flags, uint32(q.groups), q.qsbase(), 0)
				if !g.qrun(op, k, prm, []gpu.Binding{xbind, wb, bbind, obind}, gx, (cob+3)/4, nb) {
					Free(out)
					return nil
				}
			}
		}
	}
	return out
}
