package safetensors

import (
	"bytes"
	"encoding/binary"
	"maps"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Parse must not panic; any file it
// accepts must be internally consistent, every tensor must be readable
// through every accessor its dtype allows, and writing the tensors back must
// give a file that parses to the same tensors.
//
//	go test ./nn/safetensors -run XXX -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	valid := encode(f, []Tensor{
		Float32Tensor("w", []int{2, 2}, []float32{1, 2, 3, 4}),
		Float16Tensor("h", []int{3}, []uint16{0x3c00, 0x8001, 0x7e00}),
		Int64Tensor("s", []int{}, []int64{-7}),
		{Name: "b", DType: BF16, Shape: []int{1}, Data: []byte{0x80, 0x3f}},
		{Name: "u", DType: U64, Shape: []int{1}, Data: le64(1 << 63)},
		{Name: "e", DType: U8, Shape: []int{0, 4}},
	}, map[string]string{"format": "pt"})
	f.Add(valid)
	f.Add(valid[:len(valid)-3])                                                              // truncated data
	f.Add(valid[:20])                                                                        // truncated header
	f.Add(append(le64(MaxHeaderSize+1), '{', '}'))                                           // header too large
	f.Add(append(le64(1<<63), '{', '}'))                                                     // length overflows int64
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{}}`, le32(1))) // duplicate
	f.Add(rawFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, make([]byte, 4)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, nil))
	f.Add(rawFile(`{"a":{"dtype":"F16","shape":[3],"data_offsets":[2,8]},"__metadata__":{"k":"v"}}   `, make([]byte, 8)))
	f.Add(rawFile(`{"__metadata__":{"k":1}}`, nil))
	f.Add(rawFile(`{"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2],"x":[[[]]]}}`, []byte{0, 3}))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if _, ok := err.(*FormatError); !ok {
				t.Fatalf("Parse error %T is not a *FormatError: %v", err, err)
			}
			return
		}
		hlen := int64(binary.LittleEndian.Uint64(data))
		var out []Tensor
		for _, name := range file.Names() {
			info, ok := file.Info(name)
			if !ok || info.Name != name {
				t.Fatalf("Names lists %q, Info does not know it", name)
			}
			if info.Offset < 8+hlen || info.Size < 0 || info.Offset+info.Size > int64(len(data)) {
				t.Fatalf("%q: range [%d, +%d) outside the data area", name, info.Offset, info.Size)
			}
			if int64(info.NumElements()*info.DType.Size()) != info.Size {
				t.Fatalf("%q: %d elements of %s in %d bytes", name, info.NumElements(), info.DType, info.Size)
			}
			raw, err := file.Raw(name)
			if err != nil || !bytes.Equal(raw, data[info.Offset:info.Offset+info.Size]) {
				t.Fatalf("%q: Raw: %v", name, err)
			}
			if convertible(info.DType) {
				v, err := file.Float32(name)
				if err != nil || len(v) != info.NumElements() {
					t.Fatalf("%q: Float32: %v", name, err)
				}
				w, err := file.Float64(name)
				if err != nil || len(w) != info.NumElements() {
					t.Fatalf("%q: Float64: %v", name, err)
				}
			}
			out = append(out, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: raw})
		}

		var b bytes.Buffer
		if err := Write(&b, out, file.Metadata()); err != nil {
			// Only names the writer refuses may fail here.
			for _, tt := range out {
				if tt.Name == "" {
					return
				}
			}
			t.Fatalf("rewriting an accepted file: %v", err)
		}
		again, err := Parse(bytes.NewReader(b.Bytes()), int64(b.Len()))
		if err != nil {
			t.Fatalf("parsing the rewritten file: %v", err)
		}
		if !maps.Equal(again.Metadata(), file.Metadata()) {
			t.Fatalf("metadata changed through a rewrite")
		}
		for _, tt := range out {
			info, ok := again.Info(tt.Name)
			raw, _ := again.Raw(tt.Name)
			if !ok || info.DType != tt.DType || len(info.Shape) != len(tt.Shape) || !bytes.Equal(raw, tt.Data) {
				t.Fatalf("%q changed through a rewrite", tt.Name)
			}
		}
	})
}
