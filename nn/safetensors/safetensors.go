// Package safetensors reads and writes the safetensors checkpoint format
// (https://github.com/huggingface/safetensors). It has no dependencies inside
// retrace, so converters, tools, the nn loader and the wasm build can all
// import it.
//
// # Format
//
// A file is
//
//	[8 bytes]  N, the header length, unsigned little-endian 64-bit
//	[N bytes]  JSON header, UTF-8, possibly padded with trailing spaces
//	[rest]     the data area: raw little-endian tensor bytes
//
// The header is one JSON object. Each key other than "__metadata__" names a
// tensor:
//
//	{"conv_in.weight": {"dtype": "F32", "shape": [32, 3, 3, 3], "data_offsets": [128, 3584]},
//	 "__metadata__": {"format": "pt"}}
//
// data_offsets [begin, end) are byte offsets relative to the first byte after
// the header; end-begin must equal the dtype size times the product of the
// shape (an empty shape is a scalar with one element). Tensors are row-major.
// Keys may come in any order and the data area may hold gaps (alignment
// padding) between tensors, but tensors must not overlap. "__metadata__" is an
// optional string-to-string map.
//
// # Reading
//
// Open and Parse read only the 8-byte length and the header. Every tensor
// accessor (Raw, Float32, Int64, Float64, Float16Bits, Section) then reads
// exactly that tensor's byte range with ReadAt, never the bytes of other
// tensors, so a loader can stream a multi-gigabyte checkpoint one tensor at a
// time, and Parse works over any io.ReaderAt (a byte slice in wasm, HTTP range
// requests). The converting accessors read in chunks of at most 1 MiB, so
// their peak memory is the result plus one chunk. A File is safe for
// concurrent use when its ReaderAt is (an *os.File and a *bytes.Reader are).
//
// Every header problem is reported as a *FormatError naming the file (when
// opened by path), the tensor and the problem; read failures wrap the
// reader's error. Allocations made while parsing are bounded by the bytes
// actually present, so a tiny or hostile input cannot make Parse allocate a
// lot of memory, and the bytes a File's accessors allocate are bounded by
// the size given to Parse.
//
// # Writing
//
// Write produces spec-compliant files: tensors sorted by name and stored
// contiguously in that order, header padded with spaces so the data area
// starts at a multiple of 8 bytes.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest accepted JSON header (100 MB, as in the
// reference implementation).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding the metadata map.
const metadataKey = "__metadata__"

// DType is a tensor's element type as spelled in the header.
type DType string

// The element types. Raw works for all of them; the converting accessors
// support the numeric ones noted on each method.
const (
	BOOL    DType = "BOOL"
	U8      DType = "U8"
	I8      DType = "I8"
	F8E5M2  DType = "F8_E5M2" // Raw only
	F8E4M3  DType = "F8_E4M3" // Raw only
	I16     DType = "I16"
	U16     DType = "U16"
	F16     DType = "F16"
	BF16    DType = "BF16"
	I32     DType = "I32"
	U32     DType = "U32"
	F32     DType = "F32"
	F64     DType = "F64"
	I64     DType = "I64"
	U64     DType = "U64"
	invalid DType = ""
)

// Size returns the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8, F8E5M2, F8E4M3:
		return 1
	case I16, U16, F16, BF16:
		return 2
	case I32, U32, F32:
		return 4
	case F64, I64, U64:
		return 8
	}
	return 0
}

// TensorInfo describes one tensor of a File.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	// Offset is the absolute byte offset of the tensor's data in the file
	// (header included), so [Offset, Offset+Size) can be fetched directly,
	// e.g. with an HTTP range request.
	Offset int64
	// Size is the tensor's data length in bytes.
	Size int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// FormatError reports a malformed file or a tensor that cannot be read as
// asked.
type FormatError struct {
	File   string // path given to Open; empty for Parse
	Tensor string // tensor concerned; empty when the whole file is
	Msg    string
}

func (e *FormatError) Error() string {
	s := "safetensors: "
	if e.File != "" {
		s += e.File + ": "
	}
	if e.Tensor != "" {
		s += fmt.Sprintf("tensor %q: ", e.Tensor)
	}
	return s + e.Msg
}

// File is an opened safetensors file. Its methods read tensor data on demand.
type File struct {
	name    string
	r       io.ReaderAt
	closer  io.Closer
	size    int64
	data    int64 // offset of the data area
	tensors map[string]TensorInfo
	names   []string
	meta    map[string]string
}

// Open opens the file at path and parses its header. Tensor data is read on
// demand with ReadAt; call Close when done.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := parse(path, fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Parse parses the header of a safetensors file of the given size read
// through r (a *bytes.Reader, an HTTP range reader, ...). size must be the
// true length of the data behind r. The caller keeps ownership of r; Close
// does not close it.
func Parse(r io.ReaderAt, size int64) (*File, error) {
	return parse("", r, size)
}

// Close closes the file opened by Open. It is a no-op for a File from Parse.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	c := f.closer
	f.closer = nil
	return c.Close()
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	return append([]string(nil), f.names...)
}

// Info returns the description of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	t, ok := f.tensors[name]
	if ok {
		t.Shape = append([]int{}, t.Shape...)
	}
	return t, ok
}

// Metadata returns a copy of the "__metadata__" map (empty, never nil, when
// the file has none).
func (f *File) Metadata() map[string]string {
	m := make(map[string]string, len(f.meta))
	for k, v := range f.meta {
		m[k] = v
	}
	return m
}

func (f *File) errorf(tensor, format string, args ...any) *FormatError {
	return &FormatError{File: f.name, Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
}

// readFull reads len(buf) bytes at off, treating a short read as an error.
func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func parse(name string, r io.ReaderAt, size int64) (*File, error) {
	f := &File{name: name, r: r, size: size, tensors: map[string]TensorInfo{}, meta: map[string]string{}}
	if size < 8 {
		return nil, f.errorf("", "file is %d bytes, too short for the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if err := readFull(r, lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: %sreading header length: %w", fileLabel(f.name), err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, f.errorf("", "header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return nil, f.errorf("", "header length %d exceeds the file size %d", n, size)
	}
	// ReadAll through a SectionReader grows with the bytes actually
	// delivered, so a reader that lies about its size cannot make us
	// allocate the claimed header length up front.
	header, err := io.ReadAll(io.NewSectionReader(r, 8, int64(n)))
	if err == nil && uint64(len(header)) != n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: %sreading %d-byte header: %w", fileLabel(f.name), n, err)
	}
	dataStart := 8 + int64(n)
	f.data = dataStart
	if err := f.parseHeader(header, dataStart); err != nil {
		return nil, err
	}
	return f, nil
}

// parseHeader decodes the JSON header and validates every entry against the
// data area [dataStart, f.size).
func (f *File) parseHeader(header []byte, dataStart int64) error {
	dataSize := uint64(f.size - dataStart)
	if !utf8.Valid(header) {
		return f.errorf("", "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	jsonErr := func(err error) error {
		return f.errorf("", "invalid JSON header at byte %d: %v", dec.InputOffset(), jsonMsg(err))
	}
	tok, err := dec.Token()
	if err != nil {
		return jsonErr(err)
	}
	if tok != json.Delim('{') {
		return f.errorf("", "header is not a JSON object (starts with %v)", tok)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonErr(err)
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			if key == metadataKey {
				return f.errorf("", "duplicate %q in header", metadataKey)
			}
			return f.errorf(key, "duplicate tensor name in header")
		}
		seen[key] = true
		if key == metadataKey {
			if err := f.parseMetadata(dec); err != nil {
				return err
			}
			continue
		}
		t, err := f.parseEntry(dec, key, dataStart, dataSize)
		if err != nil {
			return err
		}
		f.tensors[key] = t
		f.names = append(f.names, key)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return jsonErr(err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return jsonErr(err)
		}
		return f.errorf("", "unexpected %v after the JSON header object", tok)
	}
	sort.Strings(f.names)
	return f.checkOverlaps()
}

// parseMetadata decodes the "__metadata__" value: null or an object of
// strings.
func (f *File) parseMetadata(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return f.errorf("", "invalid JSON in %s: %v", metadataKey, jsonMsg(err))
	}
	if tok == nil {
		return nil
	}
	if tok != json.Delim('{') {
		return f.errorf("", "%s is %s, want an object of strings", metadataKey, describe(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return f.errorf("", "invalid JSON in %s: %v", metadataKey, jsonMsg(err))
		}
		key := tok.(string)
		if _, dup := f.meta[key]; dup {
			return f.errorf("", "duplicate key %q in %s", key, metadataKey)
		}
		tok, err = dec.Token()
		if err != nil {
			return f.errorf("", "invalid JSON in %s: %v", metadataKey, jsonMsg(err))
		}
		v, ok := tok.(string)
		if !ok {
			return f.errorf("", "%s[%q] is %s, want a string", metadataKey, key, describe(tok))
		}
		f.meta[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return f.errorf("", "invalid JSON in %s: %v", metadataKey, jsonMsg(err))
	}
	return nil
}

// jsonMsg words a decoder error; the decoder reports a truncated header as
// a bare EOF.
func jsonMsg(err error) string {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "unexpected end of header"
	}
	return err.Error()
}

// describe names a JSON token's kind for error messages.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%v", tok)
}

// parseEntry decodes and validates one tensor entry.
func (f *File) parseEntry(dec *json.Decoder, name string, dataStart int64, dataSize uint64) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	bad := func(format string, args ...any) (TensorInfo, error) {
		return TensorInfo{}, f.errorf(name, format, args...)
	}
	jsonErr := func(err error) (TensorInfo, error) {
		return bad("invalid JSON at byte %d: %v", dec.InputOffset(), jsonMsg(err))
	}
	tok, err := dec.Token()
	if err != nil {
		return jsonErr(err)
	}
	if tok != json.Delim('{') {
		return bad("entry is %s, want an object with dtype, shape and data_offsets", describe(tok))
	}
	var (
		dtype            string
		shape, offsets   []uint64
		hasD, hasS, hasO bool
		seen             = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonErr(err)
		}
		key := tok.(string)
		if seen[key] {
			return bad("duplicate key %q in entry", key)
		}
		seen[key] = true
		switch key {
		case "dtype":
			tok, err := dec.Token()
			if err != nil {
				return jsonErr(err)
			}
			s, ok := tok.(string)
			if !ok {
				return bad("dtype is %s, want a string", describe(tok))
			}
			dtype, hasD = s, true
		case "shape", "data_offsets":
			v, err := f.uintArray(dec, name, key)
			if err != nil {
				return TensorInfo{}, err
			}
			if key == "shape" {
				shape, hasS = v, true
			} else {
				offsets, hasO = v, true
			}
		default: // unknown keys are ignored, as in the reference implementation
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return jsonErr(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return jsonErr(err)
	}
	switch {
	case !hasD:
		return bad("entry has no dtype")
	case !hasS:
		return bad("entry has no shape")
	case !hasO:
		return bad("entry has no data_offsets")
	}
	t.DType = DType(dtype)
	esize := t.DType.Size()
	if esize == 0 {
		return bad("unsupported dtype %q", dtype)
	}
	if len(offsets) != 2 {
		return bad("data_offsets has %d values, want [begin, end]", len(offsets))
	}
	begin, end := offsets[0], offsets[1]
	if begin > end {
		return bad("data_offsets [%d, %d]: begin > end", begin, end)
	}
	if end > dataSize {
		return bad("data_offsets [%d, %d]: end beyond the %d-byte data area", begin, end, dataSize)
	}
	// Element count, with overflow checks. Any zero dimension makes the
	// tensor empty however large the others are.
	t.Shape = make([]int, len(shape))
	numel, zero, overflow := uint64(1), false, false
	for i, d := range shape {
		if d > uint64(math.MaxInt) {
			return bad("shape %v: dimension %d does not fit in int", shape, d)
		}
		t.Shape[i] = int(d)
		zero = zero || d == 0
		hi, lo := bits.Mul64(numel, d)
		if hi != 0 || lo > uint64(math.MaxInt) {
			overflow = true
		}
		numel = lo
	}
	if zero {
		numel, overflow = 0, false
	}
	hi, nbytes := bits.Mul64(numel, uint64(esize))
	if overflow || hi != 0 {
		return bad("shape %v: element count overflows", shape)
	}
	if nbytes != end-begin {
		return bad("%s shape %v needs %d bytes, data_offsets [%d, %d] hold %d",
			dtype, shape, nbytes, begin, end, end-begin)
	}
	t.Offset = dataStart + int64(begin)
	t.Size = int64(nbytes)
	return t, nil
}

// uintArray decodes a JSON array of non-negative integers.
func (f *File) uintArray(dec *json.Decoder, name, key string) ([]uint64, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, f.errorf(name, "invalid JSON in %s: %v", key, jsonMsg(err))
	}
	if tok != json.Delim('[') {
		return nil, f.errorf(name, "%s is %s, want an array of integers", key, describe(tok))
	}
	v := []uint64{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, f.errorf(name, "invalid JSON in %s: %v", key, jsonMsg(err))
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, f.errorf(name, "%s holds %s, want non-negative integers", key, describe(tok))
		}
		u, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, f.errorf(name, "%s value %s overflows", key, num)
			}
			return nil, f.errorf(name, "%s value %s is not a non-negative integer", key, num)
		}
		v = append(v, u)
	}
	if _, err := dec.Token(); err != nil {
		return nil, f.errorf(name, "invalid JSON in %s: %v", key, jsonMsg(err))
	}
	return v, nil
}

// checkOverlaps rejects tensors whose byte ranges intersect. Empty tensors
// occupy no bytes and never overlap.
func (f *File) checkOverlaps() error {
	ts := make([]TensorInfo, 0, len(f.tensors))
	for _, name := range f.names {
		if t := f.tensors[name]; t.Size > 0 {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Offset != ts[j].Offset {
			return ts[i].Offset < ts[j].Offset
		}
		return ts[i].Name < ts[j].Name
	})
	for i := 1; i < len(ts); i++ {
		// ts[i-1] ends furthest among the earlier ones whenever none overlap.
		a, b := ts[i-1], ts[i]
		if b.Offset < a.Offset+a.Size {
			return f.errorf(b.Name, "data_offsets [%d, %d] overlap tensor %q at [%d, %d]",
				b.Offset-f.data, b.Offset-f.data+b.Size, a.Name, a.Offset-f.data, a.Offset-f.data+a.Size)
		}
	}
	return nil
}
