package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// chunkBytes bounds the scratch buffer of the converting accessors.
const chunkBytes = 1 << 20

func (f *File) lookup(name string) (TensorInfo, error) {
	t, ok := f.tensors[name]
	if !ok {
		return TensorInfo{}, f.errorf(name, "no such tensor")
	}
	return t, nil
}

func (f *File) readErr(t TensorInfo, err error) error {
	return fmt.Errorf("safetensors: %sreading tensor %q (%d bytes at offset %d): %w",
		fileLabel(f.name), t.Name, t.Size, t.Offset, err)
}

func fileLabel(name string) string {
	if name == "" {
		return ""
	}
	return name + ": "
}

// Raw returns the named tensor's bytes exactly as stored (little-endian). It
// reads only that tensor's byte range.
func (f *File) Raw(name string) ([]byte, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, t.Size)
	if err := readFull(f.r, buf, t.Offset); err != nil {
		return nil, f.readErr(t, err)
	}
	return buf, nil
}

// Section returns a reader over the named tensor's bytes, for streaming a
// large tensor without holding it whole (e.g. uploading it to the GPU in
// pieces).
func (f *File) Section(name string) (*io.SectionReader, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(f.r, t.Offset, t.Size), nil
}

// stream reads tensor t in chunks of whole elements and calls fn with each
// chunk and the index of its first element.
func (f *File) stream(t TensorInfo, fn func(first int, b []byte) error) error {
	esize := int64(t.DType.Size())
	step := int64(chunkBytes) / esize * esize
	buf := make([]byte, min(step, t.Size))
	for off := int64(0); off < t.Size; off += step {
		b := buf[:min(step, t.Size-off)]
		if err := readFull(f.r, b, t.Offset+off); err != nil {
			return f.readErr(t, err)
		}
		if err := fn(int(off/esize), b); err != nil {
			return err
		}
	}
	return nil
}

// Float32 returns the named tensor converted to float32. F32, F16 and BF16
// convert exactly; F64 rounds to nearest; integer and BOOL tensors convert
// to the nearest float32 (exact up to 2^24).
func (f *File) Float32(name string) ([]float32, error) {
	return convert[float32](f, name, "float32", nil)
}

// Float64 returns the named tensor converted to float64: exact for every
// floating-point dtype and for integers up to 2^53.
func (f *File) Float64(name string) ([]float64, error) {
	return convert[float64](f, name, "float64", nil)
}

// Int64 returns the named integer or BOOL tensor as int64 (BOOL as 0/1). U64
// values above math.MaxInt64 are an error; floating-point tensors are
// refused.
func (f *File) Int64(name string) ([]int64, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	switch t.DType {
	case F64, F32, F16, BF16:
		return nil, f.errorf(name, "cannot convert %s to int64", t.DType)
	}
	var check func(first int, b []byte) error
	if t.DType == U64 { // the conversion itself would wrap
		check = func(first int, b []byte) error {
			for i := range len(b) / 8 {
				if v := binary.LittleEndian.Uint64(b[8*i:]); v > math.MaxInt64 {
					return f.errorf(name, "element %d: U64 value %d overflows int64", first+i, v)
				}
			}
			return nil
		}
	}
	return convert[int64](f, name, "int64", check)
}

// convert reads a numeric tensor chunk by chunk into a []T, calling check (if
// not nil) on each chunk first.
func convert[T float32 | float64 | int64](f *File, name, to string, check func(first int, b []byte) error) ([]T, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if !convertible(t.DType) {
		return nil, f.errorf(name, "cannot convert %s to %s", t.DType, to)
	}
	out := make([]T, t.NumElements())
	err = f.stream(t, func(first int, b []byte) error {
		if check != nil {
			if err := check(first, b); err != nil {
				return err
			}
		}
		decode(t.DType, out[first:], b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// convertible reports whether the numeric accessors handle d.
func convertible(d DType) bool {
	return d.Size() != 0 && d != F8E4M3 && d != F8E5M2
}

// decode converts the len(b)/size little-endian elements of b to T, with Go's
// conversion rules (floats round to nearest, U64 wraps into int64, BOOL is
// 0 or 1).
func decode[T float32 | float64 | int64](d DType, dst []T, b []byte) {
	le := binary.LittleEndian
	switch d {
	case F32:
		for i := range len(b) / 4 {
			dst[i] = T(math.Float32frombits(le.Uint32(b[4*i:])))
		}
	case F16:
		for i := range len(b) / 2 {
			dst[i] = T(Float16To32(le.Uint16(b[2*i:])))
		}
	case BF16:
		for i := range len(b) / 2 {
			dst[i] = T(BFloat16To32(le.Uint16(b[2*i:])))
		}
	case F64:
		for i := range len(b) / 8 {
			dst[i] = T(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	case BOOL:
		for i, v := range b {
			if v != 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	case U8:
		for i, v := range b {
			dst[i] = T(v)
		}
	case I8:
		for i, v := range b {
			dst[i] = T(int8(v))
		}
	case I16:
		for i := range len(b) / 2 {
			dst[i] = T(int16(le.Uint16(b[2*i:])))
		}
	case U16:
		for i := range len(b) / 2 {
			dst[i] = T(le.Uint16(b[2*i:]))
		}
	case I32:
		for i := range len(b) / 4 {
			dst[i] = T(int32(le.Uint32(b[4*i:])))
		}
	case U32:
		for i := range len(b) / 4 {
			dst[i] = T(le.Uint32(b[4*i:]))
		}
	case I64:
		for i := range len(b) / 8 {
			dst[i] = T(int64(le.Uint64(b[8*i:])))
		}
	case U64:
		for i := range len(b) / 8 {
			dst[i] = T(le.Uint64(b[8*i:]))
		}
	}
}

// Float16Bits returns the named tensor as IEEE half-precision bit patterns:
// F16 as stored, F32 and BF16 rounded to nearest even (one rounding, since
// BF16 widens to float32 exactly). Other dtypes are refused; use Float32 and
// round yourself.
func (f *File) Float16Bits(name string) ([]uint16, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	switch t.DType {
	case F16, F32, BF16:
	default:
		return nil, f.errorf(name, "cannot convert %s to F16 bits (only F16, F32, BF16)", t.DType)
	}
	out := make([]uint16, t.NumElements())
	err = f.stream(t, func(first int, b []byte) error {
		dst := out[first:]
		le := binary.LittleEndian
		switch t.DType {
		case F16:
			for i := range len(b) / 2 {
				dst[i] = le.Uint16(b[2*i:])
			}
		case BF16:
			for i := range len(b) / 2 {
				dst[i] = Float16(BFloat16To32(le.Uint16(b[2*i:])))
			}
		case F32:
			for i := range len(b) / 4 {
				dst[i] = Float16(math.Float32frombits(le.Uint32(b[4*i:])))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
