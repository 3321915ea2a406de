package pack

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSHA256Small checks the browser's SHA-256 against crypto/sha256 for
// every length around the block and padding boundaries, written in one
// piece and in odd chunks.
func TestSHA256Small(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 4099)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, n := range []int{0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4095, 4099} {
		want := sha256.Sum256(data[:n])
		h := newSHA256Small()
		h.Write(data[:n])
		require.Equal(t, want[:], h.Sum(nil), "%d bytes in one write", n)
		require.Equal(t, want[:], h.Sum(nil), "%d bytes: Sum twice", n)
		h.Reset()
		for p := data[:n]; len(p) > 0; {
			k := min(len(p), 1+r.IntN(70))
			h.Write(p[:k])
			p = p[k:]
		}
		require.Equal(t, want[:], h.Sum([]byte{}), "%d bytes in chunks", n)
	}
}
