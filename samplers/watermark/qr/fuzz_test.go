package qr

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzQRDecode feeds Decode and DecodeSoft arbitrary matrices: in[0] picks
// the version (and an off-size now and then), in[1] hard or soft; the rest
// gives module bits (hard) or probabilities byte/255 (soft), cycled. They
// must not panic; whatever decodes must re-encode (byte mode, same version,
// level and mask) to a symbol that decodes to the same data.
func FuzzQRDecode(f *testing.F) {
	for i, s := range []string{"rtrc-01", "", "hello world", "https://example.com/retrace?id=42"} {
		lv := Level(i % 4)
		c, err := Encode([]byte(s), lv, 0, -1)
		require.NoError(f, err)
		for _, soft := range []bool{false, true} {
			in := []byte{byte(c.Version - 1), 0}
			if soft {
				in[1] = 1
				for _, d := range c.Modules {
					in = append(in, map[bool]byte{false: 20, true: 235}[d])
				}
			} else {
				var b byte
				for j, d := range c.Modules {
					if d {
						b |= 0x80 >> (j % 8)
					}
					if j%8 == 7 || j == len(c.Modules)-1 {
						in, b = append(in, b), 0
					}
				}
			}
			f.Add(in)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0xff})

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 3 {
			return
		}
		version := 1 + int(in[0])%4
		size := symbolSize(version)
		if in[0] >= 250 {
			size += int(in[0]) - 252 // off-size: must be an error
		}
		n := max(size*size, 0)
		body := in[2:]
		var res *Result
		var err error
		if in[1]%2 == 0 {
			m := make([]bool, n)
			for i := range m {
				bi := i / 8 % len(body)
				m[i] = body[bi]>>(7-i%8)&1 != 0
			}
			res, err = Decode(m, size)
		} else {
			p := make([]float32, n)
			for i := range p {
				p[i] = float32(body[i%len(body)]) / 255
			}
			res, err = DecodeSoft(p, size)
		}
		if err != nil {
			return
		}
		require.Equal(t, version, res.Version)
		c, err := Encode(res.Data, res.Level, res.Version, res.Mask)
		if err != nil {
			// Numeric/alphanumeric payloads can outgrow byte mode.
			require.Greater(t, len(res.Data), ByteCapacity(res.Version, res.Level), "re-encoding failed: %v", err)
			return
		}
		again, err := Decode(c.Modules, c.Size)
		require.NoError(t, err)
		require.Equal(t, res.Data, again.Data)
	})
}
