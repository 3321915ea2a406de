package nn

import (
	"encoding/binary"
	"fmt"
	"math"
)

// QuantTensor is a weight quantized group-wise along its rows. A weight of
// shape [Rows, ...] is seen as Rows rows (output channels) of RowLen
// elements (the product of the other axes, e.g. Cin·KH·KW for a conv
// kernel). Each row is cut into Groups() groups of Group consecutive
// elements (the last one padded), each with its own scale.
//
// Bit layouts (all words little-endian u32; docs/PACK.md has the same text):
//
// Q8 — int8, symmetric. Element k of row r is the signed byte k%4 (bits
// 8·(k%4) .. +7, two's complement) of word Data[r·RowWords + k/4], with
// RowWords = ceil(Groups·Group/4). Its value is q·s where s is f16 scale
// number r·Groups + k/Group, stored two per word in Scales (even index in
// the low half). q is in [-127, 127]; s = max|x|/127 of the group. Group
// must be a multiple of 4, or equal RowLen (one scale per output channel).
//
// Q4 — uint4, asymmetric. Element k of row r is nibble k%8 (bits
// 4·(k%8) .. +3) of word Data[r·RowWords + k/8], RowWords = Groups·Group/8.
// Its value is q·d + m where word Scales[r·Groups + k/Group] holds d (low
// half) and m (high half) as f16: m is the group's minimum, d its range/15.
// Group must be a multiple of 8.
//
// Padding elements are 0 (Q8) and nibble 0 (Q4); kernels never read them.
type QuantTensor struct {
	Format DType // Q8 or Q4
	Shape  []int
	Group  int
	Data   []uint32
	Scales []uint32
}

// Rows is the number of output channels (Shape[0]).
func (q *QuantTensor) Rows() int { return q.Shape[0] }

// RowLen is the number of elements per row.
func (q *QuantTensor) RowLen() int { return numel(q.Shape) / q.Shape[0] }

// Groups is the number of groups per row.
func (q *QuantTensor) Groups() int { return (q.RowLen() + q.Group - 1) / q.Group }

// RowWords is the number of Data words per row.
func (q *QuantTensor) RowWords() int {
	if q.Format == Q4 {
		return q.Groups() * q.Group / 8
	}
	return (q.Groups()*q.Group + 3) / 4
}

// ScaleWords is the length of Scales.
func (q *QuantTensor) ScaleWords() int {
	if q.Format == Q4 {
		return q.Rows() * q.Groups()
	}
	return (q.Rows()*q.Groups() + 1) / 2
}

// Bytes is the stored size (Data then Scales).
func (q *QuantTensor) Bytes() int { return 4 * (len(q.Data) + len(q.Scales)) }

// Validate checks the format, group and the lengths of Data and Scales.
func (q *QuantTensor) Validate() error {
	if err := checkShape(q.Shape); err != nil {
		return err
	}
	rl := q.RowLen()
	switch q.Format {
	case Q8:
		if q.Group <= 0 || (q.Group%4 != 0 && q.Group != rl) {
			return fmt.Errorf("q8 %v: group %d must be a multiple of 4 or the row length %d", q.Shape, q.Group, rl)
		}
	case Q4:
		if q.Group <= 0 || q.Group%8 != 0 {
			return fmt.Errorf("q4 %v: group %d must be a positive multiple of 8", q.Shape, q.Group)
		}
	default:
		return fmt.Errorf("quantized %v: format %v is not q8 or q4", q.Shape, q.Format)
	}
	if len(q.Data) != q.Rows()*q.RowWords() || len(q.Scales) != q.ScaleWords() {
		return fmt.Errorf("%v %v group %d: %d data and %d scale words, want %d and %d", q.Format, q.Shape, q.Group,
			len(q.Data), len(q.Scales), q.Rows()*q.RowWords(), q.ScaleWords())
	}
	return nil
}

// Quantize quantizes v (row-major, shape) to format Q8 or Q4 with groups
// of group elements; group 0 means one group per row (Q8 per output
// channel). Scales are rounded to f16 before the values are rounded, so
// Dequantize reproduces exactly what the kernels compute.
func Quantize(format DType, shape []int, v []float32, group int) (*QuantTensor, error) {
	if err := checkShape(shape); err != nil {
		return nil, err
	}
	if numel(shape) != len(v) {
		return nil, fmt.Errorf("quantize %v: %d values for shape %v", format, len(v), shape)
	}
	q := &QuantTensor{Format: format, Shape: cloneShape(shape), Group: group}
	if group == 0 {
		q.Group = q.RowLen()
		if format == Q4 {
			q.Group = (q.RowLen() + 7) / 8 * 8
		}
	}
	q.Data = make([]uint32, max(q.Rows()*q.RowWords(), 0))
	q.Scales = make([]uint32, max(q.ScaleWords(), 0))
	if err := q.Validate(); err != nil {
		return nil, err
	}
	rl, ng, rw := q.RowLen(), q.Groups(), q.RowWords()
	for r := 0; r < q.Rows(); r++ {
		row := v[r*rl : (r+1)*rl]
		data := q.Data[r*rw : (r+1)*rw]
		for g := 0; g < ng; g++ {
			k0, k1 := g*q.Group, min((g+1)*q.Group, rl)
			si := r*ng + g
			if format == Q8 {
				amax := 0.0
				for _, x := range row[k0:k1] {
					amax = math.Max(amax, math.Abs(float64(x)))
				}
				sh := Float16(float32(amax / 127))
				s := float64(Float16To32(sh))
				q.Scales[si/2] |= uint32(sh) << (16 * (si % 2))
				for k := k0; k < k1; k++ {
					iv := 0
					if s > 0 {
						iv = int(math.Max(-127, math.Min(127, math.RoundToEven(float64(row[k])/s))))
					}
					data[k/4] |= uint32(uint8(int8(iv))) << (8 * (k % 4))
				}
				continue
			}
			dh, mh := q4Params(row[k0:k1])
			d, m := float64(Float16To32(dh)), float64(Float16To32(mh))
			q.Scales[si] = uint32(dh) | uint32(mh)<<16
			for k := k0; k < k1; k++ {
				data[k/8] |= uint32(q4Level(float64(row[k]), d, m)) << (4 * (k % 8))
			}
		}
	}
	return q, nil
}

// q4Level is the nearest of the 16 levels q·d + m to x.
func q4Level(x, d, m float64) int {
	if d <= 0 {
		return 0
	}
	return int(math.Max(0, math.Min(15, math.RoundToEven((x-m)/d))))
}

// Q4Search is the number of range candidates q4Params tries on each side
// of the min/max range; negative: min/max only (the quantizer before the
// search, kept to measure what the search gains).
var Q4Search = 4

// Q4Refine is the number of Lloyd steps after the search.
var Q4Refine = 2

// q4Params chooses a group's f16 step d and offset m minimising the squared
// error Σ (x − (q·d + m))² over a few candidates (the idea of llama.cpp's
// make_qkx2_quants): the min/max range (d = (max − min)/15, m = min), then
// for range scales 15/(15 + 0.5·i), i = −Q4Search … Q4Search, the levels
// that scale assigns and the least-squares d, m of those levels. Each
// candidate is scored after rounding d and m to f16 and re-assigning every
// element to its nearest level, exactly as stored, so the result is never
// worse than min/max. Clipping the range helps bell-shaped (trained)
// weights most: the rare extremes cost less than a coarser step for all.
func q4Params(x []float32) (dh, mh uint16) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range x {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	best := math.Inf(1)
	try := func(d, m float64) {
		cd, cm := Float16(float32(d)), Float16(float32(m))
		fd, fm := float64(Float16To32(cd)), float64(Float16To32(cm))
		if math.IsInf(fd, 0) || math.IsNaN(fd) || math.IsInf(fm, 0) || math.IsNaN(fm) || fd < 0 {
			return
		}
		var sse float64
		for _, v := range x {
			e := float64(v) - (float64(q4Level(float64(v), fd, fm))*fd + fm)
			sse += e * e
			if sse >= best {
				return
			}
		}
		best, dh, mh = sse, cd, cm
	}
	try((hi-lo)/15, lo)
	if hi <= lo || Q4Search < 0 {
		return dh, mh
	}
	n := float64(len(x))
	// fit tries the least-squares d, m of the levels level(v) assigns.
	fit := func(level func(v float64) float64) {
		var sl, sl2, sx, slx float64
		for _, v := range x {
			l := level(float64(v))
			sl += l
			sl2 += l * l
			sx += float64(v)
			slx += l * float64(v)
		}
		if det := n*sl2 - sl*sl; det > 0 {
			if d := (n*slx - sl*sx) / det; d > 0 {
				try(d, (sl2*sx-sl*slx)/det)
			}
		}
	}
	for i := -Q4Search; i <= Q4Search; i++ {
		iscale := (15 + 0.25*float64(i)) / (hi - lo)
		fit(func(v float64) float64 { return math.Max(0, math.Min(15, math.RoundToEven(iscale*(v-lo)))) })
	}
	// Two Lloyd steps from the best: re-assign to its levels, refit.
	for it := 0; it < Q4Refine; it++ {
		d, m := float64(Float16To32(dh)), float64(Float16To32(mh))
		fit(func(v float64) float64 { return float64(q4Level(v, d, m)) })
	}
	return dh, mh
}

// Dequantize returns the float32 values the kernels compute with.
func (q *QuantTensor) Dequantize() []float32 {
	rl, ng, rw := q.RowLen(), q.Groups(), q.RowWords()
	out := make([]float32, q.Rows()*rl)
	for r := 0; r < q.Rows(); r++ {
		for k := 0; k < rl; k++ {
			si := r*ng + k/q.Group
			w := q.Data[r*rw+k/8]
			if q.Format == Q8 {
				w = q.Data[r*rw+k/4]
				s := Float16To32(uint16(q.Scales[si/2] >> (16 * (si % 2))))
				out[r*rl+k] = float32(int8(w>>(8*(k%4)))) * s
				continue
			}
			d := Float16To32(uint16(q.Scales[si]))
			m := Float16To32(uint16(q.Scales[si] >> 16))
			out[r*rl+k] = float32((w>>(4*(k%8)))&15)*d + m
		}
	}
	return out
}

// Encode returns the stored bytes: Data then Scales, little-endian words.
func (q *QuantTensor) Encode() []byte {
	b := make([]byte, q.Bytes())
	for i, w := range q.Data {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	o := 4 * len(q.Data)
	for i, w := range q.Scales {
		binary.LittleEndian.PutUint32(b[o+4*i:], w)
	}
	return b
}

// DecodeQuant is the inverse of Encode for a tensor of the given format,
// shape and group.
func DecodeQuant(format DType, shape []int, group int, b []byte) (*QuantTensor, error) {
	q := &QuantTensor{Format: format, Shape: cloneShape(shape), Group: group}
	if err := checkShape(shape); err != nil {
		return nil, err
	}
	if group <= 0 {
		return nil, fmt.Errorf("%v %v: bad group %d", format, shape, group)
	}
	nd := q.Rows() * q.RowWords()
	if format != Q8 && format != Q4 {
		return nil, fmt.Errorf("%v %v: not a quantized format", format, shape)
	}
	if len(b) != 4*(nd+q.ScaleWords()) {
		return nil, fmt.Errorf("%v %v group %d: %d bytes, want %d", format, shape, group, len(b), 4*(nd+q.ScaleWords()))
	}
	w := make([]uint32, len(b)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	q.Data, q.Scales = w[:nd:nd], w[nd:]
	return q, q.Validate()
}

// quantInfo is the layout of a quantized tensor's storage. On the GPU the
// buffer holds Data from word 0 and Scales from word sWord (aligned to the
// storage-offset alignment); on the CPU the storage holds the dequantized
// values.
type quantInfo struct {
	format                      DType
	group, rows, rowLen, groups int
	rowWords, sWord, words      int
}

// quantOf returns t's quantization layout, or nil.
func quantOf(t *Tensor) *quantInfo {
	if t == nil || t.st == nil {
		return nil
	}
	return t.st.q
}

// cpuQuantUploader is the CPU reference's side of UploadQuant. It is an
// interface, not a case *CPU, so a program that never makes a CPU backend
// (the browser's wasm) does not link the CPU reference through UploadQuant.
type cpuQuantUploader interface {
	uploadQuant(q *QuantTensor, qi *quantInfo) *Tensor
}

func (c *CPU) uploadQuant(q *QuantTensor, qi *quantInfo) *Tensor {
	t := c.newTensor(q.Shape, q.Format)
	copy(t.st.cpu, q.Dequantize())
	t.st.q = qi
	return t
}

// UploadQuant stores a quantized weight on be: the GPU keeps the packed
// words (kernels dequantize while they compute), the CPU reference keeps
// the dequantized values so every op works on it.
func UploadQuant(be Backend, q *QuantTensor) *Tensor {
	if err := q.Validate(); err != nil {
		be.setErr(fmt.Errorf("nn: upload_quant: %w", err))
		return nil
	}
	qi := &quantInfo{format: q.Format, group: q.Group, rows: q.Rows(), rowLen: q.RowLen(), groups: q.Groups(), rowWords: q.RowWords()}
	switch b := be.(type) {
	case cpuQuantUploader:
		return b.uploadQuant(q, qi)
	case *GPU:
		align := max(int(b.Dev.Limits().MinStorageBufferOffsetAlignment)/4, 1)
		qi.sWord = (len(q.Data) + align - 1) / align * align
		qi.words = qi.sWord + len(q.Scales)
		buf, err := b.Dev.Alloc(uint64(qi.words) * 4)
		if err != nil {
			return b.errf("upload_quant", "%v %v: %v", q.Format, q.Shape, err)
		}
		raw := q.Encode()
		nd := 4 * len(q.Data)
		err = b.Dev.Write(buf, 0, raw[:nd])
		if err == nil {
			err = b.Dev.Write(buf, uint64(qi.sWord)*4, raw[nd:])
		}
		if err != nil {
			buf.Free()
			return b.errf("upload_quant", "%v %v: %v", q.Format, q.Shape, err)
		}
		st := &storage{buf: buf, q: qi}
		st.refs.Store(1)
		return &Tensor{shape: cloneShape(q.Shape), dtype: q.Format, st: st, be: b}
	}
	be.setErr(fmt.Errorf("nn: upload_quant: backend %s cannot hold quantized tensors", be.Name()))
	return nil
}

// QuantSource is implemented by tensor sources that hold some tensors
// quantized (packs). Weights uploads those with UploadQuant instead of
// converting them to float.
type QuantSource interface {
	// Quantized returns name's quantized form, or false if it is stored
	// as floats.
	Quantized(name string) (*QuantTensor, bool, error)
}

// quantized loads a tensor its source holds quantized; done is false when
// the source stores it otherwise.
func (w *Weights) quantized(name string) (t *Tensor, done bool) {
	qs, ok := w.src.(QuantSource)
	if !ok {
		return nil, false
	}
	q, ok, err := qs.Quantized(name)
	if err != nil {
		w.fail("weights: reading %q: %v", name, err)
		return nil, true
	}
	if !ok {
		return nil, false
	}
	if t = UploadQuant(w.be, q); t == nil {
		w.fail("weights: uploading %q: %v", name, w.be.Err())
		return nil, true
	}
	w.loaded = append(w.loaded, t)
	return t, true
}
