package nn

import (
	"fmt"

	"retrace/nn/gpu"
)

// convPlan says how a Conv2d is cut into dispatches so that every binding
// stays within the storage binding limit: nb samples per dispatch (only
// when whole samples of x and out fit), cob output channels and cg input
// channels per dispatch. Channel groups after the first accumulate.
type convPlan struct{ nb, cob, cg int }

func (g *GPU) planConv2d(s convShape) (convPlan, error) {
	lim := g.maxElems()
	hw, ohw, kk := s.h*s.w, s.oh*s.ow, s.kh*s.kw
	if hw > lim || ohw > lim || s.cin*kk > lim {
		return convPlan{}, fmt.Errorf("one input plane (%d), output plane (%d) or weight row (%d) exceeds the %d-element binding limit", hw, ohw, s.cin*kk, lim)
	}
	pl := convPlan{nb: 1, cob: min(s.cout, lim/ohw, lim/(s.cin*kk)), cg: min(s.cin, lim/hw)}
	if pl.cob == s.cout && pl.cg == s.cin {
		pl.nb = max(1, min(s.n, lim/(s.cin*hw), lim/(s.cout*ohw), int(g.Dev.Limits().MaxComputeWorkgroupsPerDimension)))
	}
	return pl, nil
}

// Conv2d implements Backend as an implicit GEMM (shaders/conv2d_reg.wgsl,
// barrier-free, the default on CPU adapters; shaders/conv2d_tiled.wgsl,
// workgroup-memory tiles, the default on real GPUs). Inputs, outputs and
// weights larger than one binding are split along samples, input-channel
// groups (accumulated) and output channels.
func (g *GPU) Conv2d(x, w, bias *Tensor, p Conv2dParams) *Tensor {
	if quantOf(w) != nil { // Q8/Q4 weights: gpu_quant.go
		return g.conv2dQuant(x, w, bias, p)
	}
	ts := []*Tensor{x, w}
	if bias != nil {
		ts = append(ts, bias)
	}
	if !g.ok("conv2d", ts...) {
		return nil
	}
	s, err := checkConv2d(x, w, bias, p)
	if err != nil {
		return g.errf("conv2d", "%v", err)
	}
	if out, ok := g.conv1x1(x, w, bias, p); ok {
		return out
	}
	pl, err := g.planConv2d(s)
	if err != nil {
		return g.errf("conv2d", "x %v, weight %v: %v", x.shape, w.shape, err)
	}
	def := "tiled"
	if g.Dev.Info().CPU {
		def = "reg"
	}
	variant := g.variant("conv2d", def)
	// Kernel and workgroup grid (x: pixel blocks, y: channel blocks, z: samples).
	kk, hw, ohw := s.kh*s.kw, s.h*s.w, s.oh*s.ow
	var name string
	var gx, chans int
	switch variant {
	case "reg", "reg4x4":
		name, gx, chans = "conv2d_reg", (ohw+255)/256, 4
		if variant == "reg" && s.kw == 3 && s.sw == 1 {
			name, gx, chans = "conv2d_k3", (s.oh*((s.ow+7)/8)+63)/64, 8
		}
	case "tiled":
		name, gx, chans = "conv2d_tiled", (ohw+63)/64, 64
	default:
		return g.errf("conv2d", "unknown variant %q", variant)
	}
	if gx > int(g.Dev.Limits().MaxComputeWorkgroupsPerDimension) {
		return g.errf("conv2d", "output %dx%d needs %d workgroups along x", s.oh, s.ow, gx)
	}
	bounds := !(s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && p.PadTop == 0 && p.PadLeft == 0 && p.PadBottom == 0 && p.PadRight == 0)
	consts := map[string]string{}
	consts["KH"], consts["KW"] = fmt.Sprintf("%du", s.kh), fmt.Sprintf("%du", s.kw)
	consts["SH"], consts["SW"] = fmt.Sprintf("%du", s.sh), fmt.Sprintf("%du", s.sw)
	consts["WF16"], consts["BF16"] = fmt.Sprint(w.dtype == F16), fmt.Sprint(bias != nil && bias.dtype == F16)
	consts["BOUNDS"] = fmt.Sprint(bounds)
	out := g.newTensor("conv2d", []int{s.n, s.cout, s.oh, s.ow}, F32)
	if out == nil {
		return nil
	}
	ro := []bool{true, true, true, false}
	for n0 := 0; n0 < s.n; n0 += pl.nb {
		nb := min(pl.nb, s.n-n0)
		for co0 := 0; co0 < s.cout; co0 += pl.cob {
			cob := min(pl.cob, s.cout-co0)
			wbind, wb := g.bindRows(w, co0*s.cin*kk, cob*s.cin*kk)
			bbind, bb := wbind, uint32(0)
			if bias != nil {
				bbind, bb = g.bind(bias)
				bb += uint32(co0)
			}
			for ci0 := 0; ci0 < s.cin; ci0 += pl.cg {
				cg := min(pl.cg, s.cin-ci0)
				// Whole samples when nb > 1 (then cg = Cin and cob = Cout).
				xbind, xb := g.bindElems(x, n0*s.cin*hw+ci0*hw, (nb-1)*s.cin*hw+cg*hw)
				obind, ob := g.bindElems(out, (n0*s.cout+co0)*ohw, (nb-1)*s.cout*ohw+cob*ohw)
				var flags uint32
				if ci0 > 0 {
					flags |= 2
				} else if bias != nil {
					flags |= 1
				}
				prm := new(gpu.Params).U(uint32(cg), uint32(s.h), uint32(s.w), uint32(s.oh),
					uint32(s.ow), uint32(cob), uint32(s.cin*kk), uint32(ci0*kk)).
					I(int32(s.pt), int32(s.pl)).
					U(xb, wb, bb, ob, uint32(s.cin*hw), uint32(s.cout*ohw), flags, 0, 0, 0)
				if !g.run("conv2d", name, consts, ro, prm, []gpu.Binding{xbind, wbind, bbind, obind},
					gx, (cob+chans-1)/chans, nb) {
					Free(out)
					return nil
				}
			}
		}
	}
	return out
}

// bindRows binds elements [start, start+n) of a contiguous F32 or F16 tensor
// and returns the element index of start inside the binding. F16 elements
// are packed two per u32: element e of the binding is half e%2 of word e/2.
func (g *GPU) bindRows(t *Tensor, start, n int) (gpu.Binding, uint32) {
	if t.dtype != F16 {
		return g.bindElems(t, start, n)
	}
	w0 := (t.off + start) / 2
	w1 := (t.off + start + n + 1) / 2
	b, base := g.Dev.BindRange(t.st.buf, uint64(w0), uint64(w1-w0))
	return b, base*2 + uint32((t.off+start)%2)
}

// AutotuneConv2d times the conv2d variants on a 3×3 64→64 32×32 problem
// and keeps the faster one in g.Variants.
func (g *GPU) AutotuneConv2d() (string, error) {
	best, bestMs := "", 0.0
	bc := conv2dBench(64, 64, 32, 32, 3, Conv2dSame(1, 1))
	for _, v := range []string{"reg", "tiled"} {
		g.mu.Lock()
		g.Variants["conv2d"] = v
		g.mu.Unlock()
		r := RunBench(g, "", bc, 0, 2)
		if r.Error != "" {
			return "", fmt.Errorf("nn: autotune conv2d %s: %s", v, r.Error)
		}
		if best == "" || r.Ms < bestMs {
			best, bestMs = v, r.Ms
		}
	}
	g.mu.Lock()
	g.Variants["conv2d"] = best
	g.mu.Unlock()
	return best, nil
}

// Upsample2x implements Backend: shaders/upsample2x.wgsl, one invocation per
// input element writing its 2×2 output block. Big tensors are processed in chunks of whole input rows
// (each input row of W values makes 4·W contiguous outputs).
func (g *GPU) Upsample2x(x *Tensor) *Tensor {
	if !g.ok("upsample2x", x) {
		return nil
	}
	if x.Rank() != 4 {
		return g.errf("upsample2x", "x %v must be [N, C, H, W]", x)
	}
	if x.dtype != F32 {
		return g.errf("upsample2x", "x %v must be f32", x)
	}
	w := x.shape[3]
	rows := x.shape[0] * x.shape[1] * x.shape[2]
	chunk := g.maxElems() / (4 * w)
	if chunk < 1 {
		return g.errf("upsample2x", "x %v: a row of %d outputs exceeds the binding limit", x, 4*w)
	}
	out := g.newTensor("upsample2x", []int{x.shape[0], x.shape[1], 2 * x.shape[2], 2 * w}, F32)
	if out == nil {
		return nil
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		nr := min(chunk, rows-r0)
		xbind, xb := g.bindElems(x, r0*w, nr*w)
		obind, ob := g.bindElems(out, r0*4*w, nr*4*w)
		n := nr * w // one invocation per input element
		nx, ny := g.grid((n + 255) / 256)
		prm := new(gpu.Params).U(uint32(n), uint32(w), xb, ob, uint32(nx))
		if !g.run("upsample2x", "upsample2x", nil, []bool{true, false}, prm, []gpu.Binding{xbind, obind}, nx, ny, 1) {
			Free(out)
			return nil
		}
	}
	return out
}

// Concat implements Backend: shaders/concat.wgsl copies each input's
// contiguous blocks (its axis length times the inner axes, one per outer
// index) to their place in the output. Inputs are processed in chunks of
// whole blocks, or of pieces of one block when a block exceeds a binding.
func (g *GPU) Concat(axis int, ts ...*Tensor) *Tensor {
	if !g.ok("concat", ts...) {
		return nil
	}
	shape, outer, inner, err := concatShape(axis, ts)
	if err != nil {
		return g.errf("concat", "%v", err)
	}
	out := g.newTensor("concat", shape, F32)
	if out == nil {
		return nil
	}
	lim := g.maxElems()
	row := out.Numel() / outer
	off := 0
	for i, t := range ts {
		in := inner[i]
		// Blocks per dispatch: the input span and the output span (whole
		// rows but the last, which ends after in elements) must fit.
		bpd := 0
		if in <= lim {
			bpd = min(outer, lim/in, (lim-in)/row+1)
		}
		if bpd >= 1 {
			for b0 := 0; b0 < outer; b0 += bpd {
				nb := min(bpd, outer-b0)
				if !g.concatPart(t, out, b0*in, b0*row+off, nb*in, in, row) {
					Free(out)
					return nil
				}
			}
		} else {
			for b := 0; b < outer; b++ {
				for s := 0; s < in; s += lim {
					n := min(lim, in-s)
					if !g.concatPart(t, out, b*in+s, b*row+off+s, n, n, n) {
						Free(out)
						return nil
					}
				}
			}
		}
		off += in
	}
	return out
}

// concatPart copies n elements of t from src on, as blocks of in elements
// placed row elements apart in out from dst on.
func (g *GPU) concatPart(t, out *Tensor, src, dst, n, in, row int) bool {
	span := (n/in-1)*row + in
	xbind, xb := g.bindElems(t, src, n)
	obind, ob := g.bindElems(out, dst, span)
	nx, ny := g.grid((n + 255) / 256)
	prm := new(gpu.Params).U(uint32(n), uint32(in), uint32(row), xb, ob, uint32(nx))
	return g.run("concat", "concat", nil, []bool{true, false}, prm, []gpu.Binding{xbind, obind}, nx, ny, 1)
}
