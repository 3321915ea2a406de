package samplers

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
)

// noiseChecksum is sha256 of the little-endian float32 bits of the first
// 100003 values of NewNoise(20240607). It pins the documented algorithm:
// the same value must come out natively and under GOOS=js GOARCH=wasm
// (GOOS=js GOARCH=wasm go test ./samplers -run TestNoise
// -exec "$(go env GOROOT)/lib/wasm/go_js_wasm_exec").
const noiseChecksum = "2494d9a121d9008f0a4b6022e125d16be1a89b98b6c83bb595e310d3577d299b"

func noiseSum(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestNoiseChecksum(t *testing.T) {
	v := NewNoise(20240607).Float32s(100003)
	require.Equal(t, noiseChecksum, noiseSum(v))
}

// TestNoiseStream: the values do not depend on how they are requested.
func TestNoiseStream(t *testing.T) {
	all := NewNoise(7).Float32s(1001)
	g := NewNoise(7)
	var parts []float32
	for _, n := range []int{1, 3, 0, 7, 77, 913} {
		parts = append(parts, g.Float32s(n)...)
	}
	require.Equal(t, all, parts)
	require.NotEqual(t, all[:10], NewNoise(8).Float32s(10), "seeds differ")
}

func TestNoiseMoments(t *testing.T) {
	v := NewNoise(1).Float32s(200000)
	var s, s2 float64
	for _, x := range v {
		require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0))
		s += float64(x)
		s2 += float64(x) * float64(x)
	}
	mean := s / float64(len(v))
	std := math.Sqrt(s2/float64(len(v)) - mean*mean)
	require.InDelta(t, 0, mean, 0.01)
	require.InDelta(t, 1, std, 0.01)
}

// TestNoisePureLog: fdlibm's log agrees with math.Log to an ulp.
func TestNoisePureLog(t *testing.T) {
	g := NewNoise(3)
	for i := 0; i < 10000; i++ {
		x := float64(g.src.Uint64()>>11) * twoM53
		if x == 0 {
			continue
		}
		a, b := pureLog(x), math.Log(x)
		require.LessOrEqual(t, math.Abs(a-b), 2*math.Abs(math.Nextafter(b, 0)-b), "log(%v)", x)
	}
}

func TestNoiseTensor(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		x := NewNoise(5).Tensor(be, 2, 3, 4)
		require.Equal(t, []int{2, 3, 4}, x.Shape())
		require.Equal(t, NewNoise(5).Float32s(24), read(t, be, x))
		nn.Free(x)
	})
}
