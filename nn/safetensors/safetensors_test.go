package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var allDTypes = []DType{BOOL, U8, I8, F8E5M2, F8E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64}

// encode writes tensors to memory with Write.
func encode(t testing.TB, tensors []Tensor, meta map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, Write(&b, tensors, meta))
	return b.Bytes()
}

// rawFile assembles a file from a literal header and data area.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func parseBytes(b []byte) (*File, error) { return Parse(bytes.NewReader(b), int64(len(b))) }

func TestSafetensorsRoundTrip(t *testing.T) {
	shapes := [][]int{{}, {0}, {1}, {7}, {3, 7}, {2, 0, 5}, {2, 3, 1, 4}}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dt := range allDTypes {
		t.Run(string(dt), func(t *testing.T) {
			var tensors []Tensor
			for i, shape := range shapes {
				n := 1
				for _, d := range shape {
					n *= d
				}
				data := make([]byte, n*dt.Size())
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				// Names deliberately out of sorted order.
				name := string(rune('g'-i)) + ".w"
				tensors = append(tensors, Tensor{Name: name, DType: dt, Shape: shape, Data: data})
			}
			meta := map[string]string{"format": "pt", "note": `quotes " and <html> & ünïcode`}
			b := encode(t, tensors, meta)

			hlen := binary.LittleEndian.Uint64(b)
			require.Zero(t, hlen%8, "header padded so the data area starts 8-aligned")

			f, err := parseBytes(b)
			require.NoError(t, err)
			require.Equal(t, []string{"a.w", "b.w", "c.w", "d.w", "e.w", "f.w", "g.w"}, f.Names())
			require.Equal(t, meta, f.Metadata())
			prevEnd := int64(8 + hlen)
			for _, name := range f.Names() {
				info, ok := f.Info(name)
				require.True(t, ok)
				var want Tensor
				for _, tt := range tensors {
					if tt.Name == name {
						want = tt
					}
				}
				require.Equal(t, dt, info.DType)
				require.Equal(t, want.Shape, append([]int{}, info.Shape...))
				require.Equal(t, int64(len(want.Data)), info.Size)
				require.Equal(t, prevEnd, info.Offset, "tensors contiguous in name order")
				prevEnd += info.Size
				raw, err := f.Raw(name)
				require.NoError(t, err)
				require.Equal(t, want.Data, raw)
				if dt != F8E4M3 && dt != F8E5M2 {
					v, err := f.Float64(name)
					require.NoError(t, err)
					require.Len(t, v, info.NumElements())
				}
			}
			require.Equal(t, int64(len(b)), prevEnd)
			_, ok := f.Info("nope")
			require.False(t, ok)
			_, err = f.Raw("nope")
			require.EqualError(t, err, `safetensors: tensor "nope": no such tensor`)
			require.NoError(t, f.Close())
		})
	}
}

func TestSafetensorsOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	w := []float32{1, -2.5, 3e-8, float32(math.Inf(-1))}
	require.NoError(t, os.WriteFile(path, encode(t, []Tensor{
		Float32Tensor("w", []int{2, 2}, w),
		Int64Tensor("steps", []int{3}, []int64{-1, 0, 1 << 40}),
		Float64Tensor("sigmas", []int{2}, []float64{14.6, 0.029}),
	}, nil), 0o644))
	f, err := Open(path)
	require.NoError(t, err)
	got, err := f.Float32("w")
	require.NoError(t, err)
	require.Equal(t, w, got)
	steps, err := f.Int64("steps")
	require.NoError(t, err)
	require.Equal(t, []int64{-1, 0, 1 << 40}, steps)
	sigmas, err := f.Float64("sigmas")
	require.NoError(t, err)
	require.Equal(t, []float64{14.6, 0.029}, sigmas)
	require.Equal(t, []string{"sigmas", "steps", "w"}, f.Names())
	require.Equal(t, map[string]string{}, f.Metadata())
	require.NoError(t, f.Close())
	require.NoError(t, f.Close(), "second Close is a no-op")
	_, err = f.Raw("w")
	require.ErrorContains(t, err, path+`: reading tensor "w"`)

	_, err = Open(filepath.Join(t.TempDir(), "missing.safetensors"))
	require.ErrorIs(t, err, os.ErrNotExist)

	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	require.NoError(t, os.WriteFile(bad, rawFile(`{"x":{"dtype":"Q7","shape":[],"data_offsets":[0,0]}}`, nil), 0o644))
	_, err = Open(bad)
	require.EqualError(t, err, "safetensors: "+bad+`: tensor "x": unsupported dtype "Q7"`)
	var fe *FormatError
	require.True(t, errors.As(err, &fe))
	require.Equal(t, FormatError{File: bad, Tensor: "x", Msg: `unsupported dtype "Q7"`}, *fe)
}

func le16(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	return b
}

func le32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}

func le64(v ...uint64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return b
}

func TestSafetensorsConvert(t *testing.T) {
	inf := math.Inf(1)
	cases := []struct {
		name  string
		dt    DType
		data  []byte
		f32   []float32 // nil: Float32 must fail
		i64   []int64   // nil: Int64 must fail
		f16   []uint16  // nil: Float16Bits must fail
		f64   []float64 // nil: expect float64(f32)
		err32 string
	}{
		{name: "f32", dt: F32, data: le32(math.Float32bits(1.5), math.Float32bits(-0), math.Float32bits(65520), math.Float32bits(1e-8), 0x7f800000),
			f32: []float32{1.5, 0, 65520, 1e-8, float32(inf)},
			f16: []uint16{0x3e00, 0x0000, 0x7c00 /* 65520 rounds up to inf */, 0x0000, 0x7c00}},
		{name: "f16", dt: F16, data: le16(0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0xfc00),
			f32: []float32{1, -2, 0x1p-24, 0x3ffp-24, 65504, float32(math.Inf(-1))},
			f16: []uint16{0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0xfc00}},
		{name: "bf16", dt: BF16, data: le16(0x3f80, 0xc2f7, 0x0001, 0x7f80),
			f32: []float32{1, -123.5, math.Float32frombits(0x00010000), float32(inf)},
			f16: []uint16{0x3c00, 0xd7b8, 0x0000, 0x7c00}},
		{name: "f64", dt: F64, data: le64(math.Float64bits(0.1), math.Float64bits(-1e300), math.Float64bits(2.5)),
			f32: []float32{0.1, float32(math.Inf(-1)), 2.5}, f64: []float64{0.1, -1e300, 2.5}},
		{name: "i64", dt: I64, data: le64(uint64(1<<53+1), ^uint64(0), 7),
			f32: []float32{1 << 53, -1, 7}, i64: []int64{1<<53 + 1, -1, 7}, f64: []float64{1 << 53, -1, 7}},
		{name: "i32", dt: I32, data: le32(0x80000000, 5), f32: []float32{-2147483648, 5}, i64: []int64{-2147483648, 5}},
		{name: "u32", dt: U32, data: le32(0xffffffff), f32: []float32{4294967295}, i64: []int64{4294967295}, f64: []float64{4294967295}},
		{name: "i16", dt: I16, data: le16(0x8000, 3), f32: []float32{-32768, 3}, i64: []int64{-32768, 3}},
		{name: "u16", dt: U16, data: le16(0xffff), f32: []float32{65535}, i64: []int64{65535}},
		{name: "u8", dt: U8, data: []byte{0, 200, 255}, f32: []float32{0, 200, 255}, i64: []int64{0, 200, 255}},
		{name: "i8", dt: I8, data: []byte{0x80, 0x7f, 0xff}, f32: []float32{-128, 127, -1}, i64: []int64{-128, 127, -1}},
		{name: "bool", dt: BOOL, data: []byte{0, 1, 2}, f32: []float32{0, 1, 1}, i64: []int64{0, 1, 1}},
		{name: "u64", dt: U64, data: le64(1 << 63), f32: []float32{1 << 63},
			err32: `safetensors: tensor "x": element 0: U64 value 9223372036854775808 overflows int64`},
		{name: "f8", dt: F8E4M3, data: []byte{0x38}, err32: `safetensors: tensor "x": cannot convert F8_E4M3 to float32`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := len(tc.data) / tc.dt.Size()
			f, err := parseBytes(encode(t, []Tensor{{Name: "x", DType: tc.dt, Shape: []int{n}, Data: tc.data}}, nil))
			require.NoError(t, err)

			f32, err := f.Float32("x")
			if tc.f32 == nil {
				require.EqualError(t, err, tc.err32)
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.f32, f32)
			}

			f64, err := f.Float64("x")
			if tc.f32 == nil {
				require.ErrorContains(t, err, "cannot convert")
			} else {
				require.NoError(t, err)
				want := tc.f64
				if want == nil {
					for _, v := range tc.f32 {
						want = append(want, float64(v))
					}
				}
				require.Equal(t, want, f64)
			}

			i64, err := f.Int64("x")
			switch {
			case tc.i64 != nil:
				require.NoError(t, err)
				require.Equal(t, tc.i64, i64)
			case tc.dt == U64:
				require.EqualError(t, err, tc.err32)
			default:
				require.EqualError(t, err, `safetensors: tensor "x": cannot convert `+string(tc.dt)+` to int64`)
			}

			f16, err := f.Float16Bits("x")
			if tc.f16 == nil {
				require.EqualError(t, err, `safetensors: tensor "x": cannot convert `+string(tc.dt)+` to F16 bits (only F16, F32, BF16)`)
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.f16, f16)
			}
		})
	}
}

// TestSafetensorsFloat16 checks the f16 codec exhaustively against float64
// arithmetic: every half decodes exactly and re-encodes to itself, and
// float32 values between two halves round to nearest even.
func TestSafetensorsFloat16(t *testing.T) {
	for h := range 1 << 16 {
		v := Float16To32(uint16(h))
		exp, man := h>>10&0x1f, h&0x3ff
		var want float64
		switch {
		case exp == 0x1f && man != 0:
			require.True(t, v != v, "NaN %#04x", h)
			continue
		case exp == 0x1f:
			want = math.Inf(1)
		case exp == 0:
			want = math.Ldexp(float64(man), -24)
		default:
			want = math.Ldexp(float64(man|0x400), exp-25)
		}
		if h&0x8000 != 0 {
			want = -want
		}
		require.Equal(t, want, float64(v), "%#04x", h)
		require.Equal(t, uint16(h), Float16(v), "%#04x", h)
		// Halfway to the next half up (in magnitude) rounds to the even one.
		if exp < 0x1e || (exp == 0x1e && man < 0x3ff) {
			next := Float16To32(uint16(h + 1))
			mid := float32((float64(v) + float64(next)) / 2)
			even := uint16(h)
			if h&1 == 1 {
				even = uint16(h + 1)
			}
			require.Equal(t, even, Float16(mid), "midpoint above %#04x", h)
		}
	}
	require.Equal(t, float32(-3), BFloat16To32(0xc040))
	require.Equal(t, uint16(0xfe00), Float16(float32(-math.NaN())), "NaN stays NaN")
	require.Equal(t, uint16(0x7c00), Float16(1e6), "overflow saturates to Inf")
	require.Equal(t, uint16(0x8000), Float16(-1e-9), "underflow keeps the sign")
}

func TestSafetensorsChunked(t *testing.T) {
	// Larger than one 1 MiB read chunk, with a length that is not a multiple
	// of it.
	n := chunkBytes/2 + 12345
	bitsIn := make([]uint16, n)
	f32 := make([]float32, n)
	for i := range bitsIn {
		bitsIn[i] = uint16(i*7919) & 0x7bff
		f32[i] = Float16To32(bitsIn[i])
	}
	f, err := parseBytes(encode(t, []Tensor{
		Float16Tensor("h", []int{n}, bitsIn),
		Float32Tensor("s", []int{n, 1}, f32),
	}, nil))
	require.NoError(t, err)
	got, err := f.Float32("h")
	require.NoError(t, err)
	require.Equal(t, f32, got)
	gotBits, err := f.Float16Bits("s")
	require.NoError(t, err)
	require.Equal(t, bitsIn, gotBits)
	gotBits, err = f.Float16Bits("h")
	require.NoError(t, err)
	require.Equal(t, bitsIn, gotBits)
}

// TestSafetensorsHeaderLayout reads a hand-written header: keys in any order,
// metadata anywhere, whitespace, unknown entry keys, gaps between tensors and
// after the last, tensors stored out of name order, empty tensors anywhere.
func TestSafetensorsHeaderLayout(t *testing.T) {
	header := ` { "z" : {"shape":[2],"data_offsets":[0,8],"dtype":"F32"},
	  "__metadata__": {"b": "2", "a": "1"},
	  "a": {"data_offsets":[16,20],"dtype":"I32","shape":[1,1],"extra":{"x":[1,2]}},
	  "e": {"dtype":"F16","shape":[0,3],"data_offsets":[4,4]},
	  "m": {"dtype":"U8","shape":[],"data_offsets":[24,25]} }   `
	data := append(le32(math.Float32bits(1), math.Float32bits(2)), make([]byte, 8)...)
	data = append(data, le32(42)...)
	data = append(data, 0, 0, 0, 0, 9, 0, 0)
	f, err := parseBytes(rawFile(header, data))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "e", "m", "z"}, f.Names())
	require.Equal(t, map[string]string{"a": "1", "b": "2"}, f.Metadata())
	z, err := f.Float32("z")
	require.NoError(t, err)
	require.Equal(t, []float32{1, 2}, z)
	a, err := f.Int64("a")
	require.NoError(t, err)
	require.Equal(t, []int64{42}, a)
	m, err := f.Int64("m")
	require.NoError(t, err)
	require.Equal(t, []int64{9}, m)
	e, err := f.Float32("e")
	require.NoError(t, err)
	require.Empty(t, e)
	info, _ := f.Info("m")
	require.Equal(t, TensorInfo{Name: "m", DType: U8, Shape: []int{}, Offset: int64(8 + len(header) + 24), Size: 1}, info)
	info.Shape = append(info.Shape, 5)
	again, _ := f.Info("m")
	require.Empty(t, again.Shape, "Info returns a copy")

	// A null metadata is accepted.
	f, err = parseBytes(rawFile(`{"__metadata__":null}`, nil))
	require.NoError(t, err)
	require.Empty(t, f.Names())
	require.Empty(t, f.Metadata())
}

func TestSafetensorsParseErrors(t *testing.T) {
	entry := func(name, dtype, shape, offs string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offs + `}`
	}
	hugeLen := binary.LittleEndian.AppendUint64(nil, MaxHeaderSize+1)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"short file", []byte{1, 0, 0}, "file is 3 bytes, too short for the 8-byte header length"},
		{"header over cap", append(hugeLen, "{}"...), "header length 100000001 exceeds the 100000000-byte limit"},
		{"header beyond file", append(le64(100), "{}"...), "header length 100 exceeds the file size 10"},
		{"header length overflows", append(le64(^uint64(0)), "{}"...), "header length 18446744073709551615 exceeds the 100000000-byte limit"},
		{"empty header", rawFile("", nil), "invalid JSON header at byte 0: unexpected end of header"},
		{"invalid json", rawFile(`{"a":`, nil), `tensor "a": invalid JSON at byte 5: unexpected end of header`},
		{"invalid json top", rawFile(`{,}`, nil), `invalid JSON header at byte 1: invalid character ','`},
		{"truncated entry", rawFile(`{"a":{"dtype":"F32",`, nil), `tensor "a": invalid JSON`},
		{"not utf8", rawFile("{\"\xff\":1}", nil), "header is not valid UTF-8"},
		{"not an object", rawFile(`[1,2]`, nil), "header is not a JSON object (starts with [)"},
		{"trailing data", rawFile(`{} {}`, nil), "unexpected { after the JSON header object"},
		{"trailing nul", rawFile("{}\x00", nil), "invalid JSON header"},
		{"entry not object", rawFile(`{"w":[1,2]}`, nil), `tensor "w": entry is an array, want an object with dtype, shape and data_offsets`},
		{"entry string", rawFile(`{"w":"F32"}`, nil), `tensor "w": entry is a string, want an object`},
		{"missing dtype", rawFile(`{"w":{"shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": entry has no dtype`},
		{"missing shape", rawFile(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": entry has no shape`},
		{"missing offsets", rawFile(`{"w":{"dtype":"F32","shape":[]}}`, make([]byte, 4)), `tensor "w": entry has no data_offsets`},
		{"dtype not string", rawFile(`{"w":{"dtype":4,"shape":[],"data_offsets":[0,4]}}`, nil), `tensor "w": dtype is a number, want a string`},
		{"unknown dtype", rawFile(`{`+entry("w", "F128", "[1]", "[0,16]")+`}`, make([]byte, 16)), `tensor "w": unsupported dtype "F128"`},
		{"lowercase dtype", rawFile(`{`+entry("w", "f32", "[1]", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": unsupported dtype "f32"`},
		{"duplicate tensor", rawFile(`{`+entry("w", "U8", "[1]", "[0,1]")+`,`+entry("w", "U8", "[1]", "[1,2]")+`}`, make([]byte, 2)), `tensor "w": duplicate tensor name in header`},
		{"duplicate metadata", rawFile(`{"__metadata__":{},"__metadata__":{}}`, nil), `duplicate "__metadata__" in header`},
		{"duplicate entry key", rawFile(`{"w":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), `tensor "w": duplicate key "dtype" in entry`},
		{"begin > end", rawFile(`{`+entry("w", "U8", "[0]", "[4,2]")+`}`, make([]byte, 4)), `tensor "w": data_offsets [4, 2]: begin > end`},
		{"end beyond data", rawFile(`{`+entry("w", "U8", "[5]", "[0,5]")+`}`, make([]byte, 4)), `tensor "w": data_offsets [0, 5]: end beyond the 4-byte data area`},
		{"one offset", rawFile(`{`+entry("w", "U8", "[0]", "[0]")+`}`, nil), `tensor "w": data_offsets has 1 values, want [begin, end]`},
		{"three offsets", rawFile(`{`+entry("w", "U8", "[0]", "[0,0,0]")+`}`, nil), `tensor "w": data_offsets has 3 values, want [begin, end]`},
		{"offsets not array", rawFile(`{`+entry("w", "U8", "[0]", `"0-4"`)+`}`, nil), `tensor "w": data_offsets is a string, want an array of integers`},
		{"negative offset", rawFile(`{`+entry("w", "U8", "[0]", "[-1,0]")+`}`, nil), `tensor "w": data_offsets value -1 is not a non-negative integer`},
		{"offset overflows", rawFile(`{`+entry("w", "U8", "[0]", "[0,18446744073709551616]")+`}`, nil), `tensor "w": data_offsets value 18446744073709551616 overflows`},
		{"float offset", rawFile(`{`+entry("w", "U8", "[0]", "[0.0,0]")+`}`, nil), `tensor "w": data_offsets value 0.0 is not a non-negative integer`},
		{"size mismatch", rawFile(`{`+entry("w", "F32", "[2,3]", "[0,20]")+`}`, make([]byte, 24)), `tensor "w": F32 shape [2 3] needs 24 bytes, data_offsets [0, 20] hold 20`},
		{"scalar mismatch", rawFile(`{`+entry("w", "F64", "[]", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": F64 shape [] needs 8 bytes, data_offsets [0, 4] hold 4`},
		{"negative dim", rawFile(`{`+entry("w", "F32", "[-1,4]", "[0,0]")+`}`, nil), `tensor "w": shape value -1 is not a non-negative integer`},
		{"float dim", rawFile(`{`+entry("w", "F32", "[1.5]", "[0,0]")+`}`, nil), `tensor "w": shape value 1.5 is not a non-negative integer`},
		{"dim not number", rawFile(`{`+entry("w", "F32", `["3"]`, "[0,0]")+`}`, nil), `tensor "w": shape holds a string, want non-negative integers`},
		{"dim overflows u64", rawFile(`{`+entry("w", "F32", "[99999999999999999999]", "[0,0]")+`}`, nil), `tensor "w": shape value 99999999999999999999 overflows`},
		{"dim beyond int", rawFile(`{`+entry("w", "U8", "[9223372036854775808]", "[0,0]")+`}`, nil), `tensor "w": shape [9223372036854775808]: dimension 9223372036854775808 does not fit in int`},
		{"shape product overflows", rawFile(`{`+entry("w", "U8", "[4294967296,4294967296]", "[0,0]")+`}`, nil), `tensor "w": shape [4294967296 4294967296]: element count overflows`},
		{"bytes overflow", rawFile(`{`+entry("w", "F64", "[4611686018427387904]", "[0,0]")+`}`, nil), `tensor "w": shape [4611686018427387904]: element count overflows`},
		{"overlap", rawFile(`{`+entry("a", "U8", "[4]", "[0,4]")+`,`+entry("b", "U8", "[2]", "[3,5]")+`}`, make([]byte, 5)), `tensor "b": data_offsets [3, 5] overlap tensor "a" at [0, 4]`},
		{"same range", rawFile(`{`+entry("b", "U8", "[2]", "[0,2]")+`,`+entry("a", "U8", "[2]", "[0,2]")+`}`, make([]byte, 2)), `tensor "b": data_offsets [0, 2] overlap tensor "a" at [0, 2]`},
		{"contained", rawFile(`{`+entry("a", "U8", "[8]", "[0,8]")+`,`+entry("b", "U8", "[2]", "[1,3]")+`,`+entry("c", "U8", "[2]", "[5,7]")+`}`, make([]byte, 8)), `tensor "b": data_offsets [1, 3] overlap tensor "a" at [0, 8]`},
		{"metadata not object", rawFile(`{"__metadata__":["a"]}`, nil), `__metadata__ is an array, want an object of strings`},
		{"metadata number value", rawFile(`{"__metadata__":{"epoch":3}}`, nil), `__metadata__["epoch"] is a number, want a string`},
		{"metadata nested", rawFile(`{"__metadata__":{"cfg":{"a":"b"}}}`, nil), `__metadata__["cfg"] is an object, want a string`},
		{"metadata null value", rawFile(`{"__metadata__":{"k":null}}`, nil), `__metadata__["k"] is null, want a string`},
		{"metadata duplicate key", rawFile(`{"__metadata__":{"k":"1","k":"2"}}`, nil), `duplicate key "k" in __metadata__`},
		{"metadata bad json", rawFile(`{"__metadata__":{"k":}}`, nil), `invalid JSON in __metadata__`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseBytes(tc.file)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "safetensors: "), err.Error())
			var fe *FormatError
			require.True(t, errors.As(err, &fe), "%T", err)
		})
	}
}

func TestSafetensorsWriteErrors(t *testing.T) {
	ok := Float32Tensor("w", []int{2}, []float32{1, 2})
	cases := []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		want    string
	}{
		{"empty name", []Tensor{{Name: "", DType: U8, Shape: []int{0}}}, nil, `tensor "": empty name`},
		{"reserved", []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}, nil, `tensor "__metadata__": name is reserved`},
		{"bad utf8", []Tensor{{Name: "a\xff", DType: U8, Shape: []int{0}}}, nil, `tensor "a\xff": name is not valid UTF-8`},
		{"duplicate", []Tensor{ok, ok}, nil, `tensor "w": duplicate name`},
		{"dtype", []Tensor{{Name: "w", DType: "F128", Shape: []int{0}}}, nil, `tensor "w": unsupported dtype "F128"`},
		{"negative dim", []Tensor{{Name: "w", DType: U8, Shape: []int{-1}}}, nil, `tensor "w": negative dimension in shape [-1]`},
		{"overflow", []Tensor{{Name: "w", DType: U8, Shape: []int{1 << 62, 4}}}, nil, `tensor "w": shape [4611686018427387904 4] overflows`},
		{"bytes overflow", []Tensor{{Name: "w", DType: F64, Shape: []int{1 << 61}}}, nil, `tensor "w": shape [2305843009213693952] overflows`},
		{"zero dim", []Tensor{{Name: "w", DType: F64, Shape: []int{1 << 62, 0, 1 << 62}, Data: []byte{}}, {Name: "z", DType: U8, Shape: []int{1, 2}}}, nil, `tensor "z": U8 shape [1 2] needs 2 bytes, Data has 0`},
		{"size", []Tensor{{Name: "w", DType: F32, Shape: []int{3}, Data: make([]byte, 8)}}, nil, `tensor "w": F32 shape [3] needs 12 bytes, Data has 8`},
		{"metadata utf8", []Tensor{ok}, map[string]string{"k": "\xff"}, `metadata "k": not valid UTF-8`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Write(&b, tc.tensors, tc.meta)
			require.ErrorContains(t, err, "safetensors: write: "+tc.want)
		})
	}
}

// recorder is an io.ReaderAt that logs the byte ranges read.
type recorder struct {
	r   *bytes.Reader
	mu  sync.Mutex
	log [][2]int64
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	r.mu.Lock()
	r.log = append(r.log, [2]int64{off, off + int64(n)})
	r.mu.Unlock()
	return n, err
}

// TestSafetensorsStreaming checks that Parse reads only the header and that
// each accessor reads only its tensor's bytes.
func TestSafetensorsStreaming(t *testing.T) {
	big := make([]float32, chunkBytes/4*2+3)
	b := encode(t, []Tensor{
		Float32Tensor("a", []int{3}, []float32{1, 2, 3}),
		Float32Tensor("big", []int{len(big)}, big),
		Int64Tensor("c", []int{2}, []int64{4, 5}),
	}, nil)
	rec := &recorder{r: bytes.NewReader(b)}
	f, err := Parse(rec, int64(len(b)))
	require.NoError(t, err)
	hlen := int64(binary.LittleEndian.Uint64(b))
	for _, r := range rec.log {
		require.LessOrEqual(t, r[1], 8+hlen, "Parse read %v beyond the header", r)
	}
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		for i, read := range []func(string) error{
			func(n string) error { _, err := f.Float32(n); return err },
			func(n string) error { _, err := f.Float64(n); return err },
			func(n string) error { _, err := f.Raw(n); return err },
			func(n string) error { s, _ := f.Section(n); _, err := s.Read(make([]byte, 100)); return err },
		} {
			rec.log = nil
			require.NoError(t, read(name))
			require.NotEmpty(t, rec.log)
			for _, r := range rec.log {
				require.GreaterOrEqual(t, r[0], info.Offset, "%s read %v", name, r)
				require.LessOrEqual(t, r[1], info.Offset+info.Size, "%s read %v", name, r)
				if i < 2 {
					require.LessOrEqual(t, r[1]-r[0], int64(chunkBytes), "converters read in chunks")
				}
			}
		}
	}
}

// liar is a tiny io.ReaderAt whose owner claims it is huge.
type liar []byte

func (l liar) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(l).ReadAt(p, off)
}

// TestSafetensorsAllocBound checks that a reader claiming a huge size with a
// huge header length does not make Parse allocate that length.
func TestSafetensorsAllocBound(t *testing.T) {
	b := append(le64(MaxHeaderSize), `{"a":`...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Parse(liar(b), 1<<40)
	runtime.ReadMemStats(&after)
	require.EqualError(t, err, "safetensors: reading 100000000-byte header: unexpected EOF")
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
}

func TestSafetensorsConcurrent(t *testing.T) {
	var tensors []Tensor
	for i := range 8 {
		v := make([]float32, 1000+i)
		for j := range v {
			v[j] = float32(i*j) * 0.5
		}
		tensors = append(tensors, Float32Tensor(string(rune('a'+i)), []int{len(v)}, v))
	}
	b := encode(t, tensors, nil)
	f, err := parseBytes(b)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, len(tensors))
	for i, tt := range tensors {
		wg.Go(func() {
			got, err := f.Raw(tt.Name)
			if err == nil && !bytes.Equal(got, tt.Data) {
				err = errors.New("mismatch " + tt.Name)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

// BenchmarkSafetensorsConvert times the converting accessors on a 4M-element
// tensor held in memory (go test -run XXX -bench Safetensors).
func BenchmarkSafetensorsConvert(b *testing.B) {
	const n = 4 << 20
	v := make([]float32, n)
	h := make([]uint16, n)
	for i := range v {
		v[i] = float32(i) * 1e-3
		h[i] = Float16(v[i])
	}
	f, err := parseBytes(encode(b, []Tensor{Float32Tensor("f32", []int{n}, v), Float16Tensor("f16", []int{n}, h)}, nil))
	require.NoError(b, err)
	for _, bc := range []struct {
		name string
		read func() error
	}{
		{"Raw/F32", func() error { _, err := f.Raw("f32"); return err }},
		{"Float32/F32", func() error { _, err := f.Float32("f32"); return err }},
		{"Float32/F16", func() error { _, err := f.Float32("f16"); return err }},
		{"Float16Bits/F32", func() error { _, err := f.Float16Bits("f32"); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				if err := bc.read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
