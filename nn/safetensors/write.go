package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Tensor is one tensor to write: Data holds its little-endian bytes,
// len(Data) = DType.Size() × product(Shape).
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Write writes tensors and metadata (may be nil) as a safetensors file. The
// tensors are sorted by name and stored contiguously in that order; the
// header is padded with spaces so that the data area starts at a multiple of
// 8 bytes. Names must be unique, non-empty, valid UTF-8 and not
// "__metadata__".
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return tensors[order[a]].Name < tensors[order[b]].Name })

	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		for k, v := range metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return fmt.Errorf("safetensors: write: metadata %q: not valid UTF-8", k)
			}
		}
		h.WriteString(`"__metadata__":`)
		m, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return fmt.Errorf("safetensors: write: metadata: %w", err)
		}
		h.Write(m)
	}
	var off uint64
	for i, idx := range order {
		t := tensors[idx]
		bad := func(format string, args ...any) error {
			return fmt.Errorf("safetensors: write: tensor %q: %s", t.Name, fmt.Sprintf(format, args...))
		}
		switch {
		case t.Name == "":
			return bad("empty name")
		case t.Name == metadataKey:
			return bad("name is reserved")
		case !utf8.ValidString(t.Name):
			return bad("name is not valid UTF-8")
		case i > 0 && tensors[order[i-1]].Name == t.Name:
			return bad("duplicate name")
		case t.DType.Size() == 0:
			return bad("unsupported dtype %q", t.DType)
		}
		numel, zero, overflow := uint64(1), false, false
		for _, d := range t.Shape {
			if d < 0 {
				return bad("negative dimension in shape %v", t.Shape)
			}
			zero = zero || d == 0
			hi, lo := bits.Mul64(numel, uint64(d))
			overflow = overflow || hi != 0 || lo > math.MaxInt64
			numel = lo
		}
		if zero { // empty, however large the other dimensions
			numel, overflow = 0, false
		}
		hi, want := bits.Mul64(numel, uint64(t.DType.Size()))
		if overflow || hi != 0 || want > math.MaxInt64 {
			return bad("shape %v overflows", t.Shape)
		}
		if want != uint64(len(t.Data)) {
			return bad("%s shape %v needs %d bytes, Data has %d", t.DType, t.Shape, want, len(t.Data))
		}
		if h.Len() > 1 {
			h.WriteByte(',')
		}
		name, _ := json.Marshal(t.Name)
		h.Write(name)
		h.WriteString(`:{"dtype":"`)
		h.WriteString(string(t.DType))
		h.WriteString(`","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		end := off + uint64(len(t.Data))
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}

	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(h.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	if _, err := w.Write(h.Bytes()); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	for _, idx := range order {
		if _, err := w.Write(tensors[idx].Data); err != nil {
			return fmt.Errorf("safetensors: write: tensor %q: %w", tensors[idx].Name, err)
		}
	}
	return nil
}

// Float32Tensor makes an F32 Tensor of v.
func Float32Tensor(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: F32, Shape: shape, Data: b}
}

// Float16Tensor makes an F16 Tensor of half-precision bit patterns.
func Float16Tensor(name string, shape []int, bits []uint16) Tensor {
	b := make([]byte, 2*len(bits))
	for i, x := range bits {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return Tensor{Name: name, DType: F16, Shape: shape, Data: b}
}

// Float64Tensor makes an F64 Tensor of v.
func Float64Tensor(name string, shape []int, v []float64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return Tensor{Name: name, DType: F64, Shape: shape, Data: b}
}

// Int64Tensor makes an I64 Tensor of v.
func Int64Tensor(name string, shape []int, v []int64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return Tensor{Name: name, DType: I64, Shape: shape, Data: b}
}
