package watermark

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPayloadHelpers(t *testing.T) {
	bits := BitsFromString("rtrc")
	require.Equal(t, "rtrc", PayloadText(bits))
	require.Empty(t, PayloadText(bits[:31]), "not whole bytes")
	require.Empty(t, PayloadText(BitsFromBytes([]byte{0x01, 'a'})), "control character")
	require.Empty(t, PayloadText(BitsFromBytes([]byte{0xff, 0xfe})), "invalid UTF-8")

	require.InDelta(t, 1, VoteConfidence([]float64{0, 1, 1, 0}), 1e-12)
	require.InDelta(t, 0, VoteConfidence([]float64{0.5, 0.5}), 1e-12)
	require.InDelta(t, 0.5, VoteConfidence([]float64{0.25, 0.75}), 1e-12)

	acc, exact := BitAccuracy(bits, bits)
	require.Equal(t, 1.0, acc)
	require.True(t, exact)
	flip := append([]bool(nil), bits...)
	flip[0], flip[9] = !flip[0], !flip[9]
	acc, exact = BitAccuracy(flip, bits)
	require.InDelta(t, 30.0/32, acc, 1e-12)
	require.False(t, exact)
}
