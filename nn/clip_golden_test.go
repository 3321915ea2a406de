package nn

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func idRows(shape []int, v []int64) [][]int {
	rows := make([][]int, shape[0])
	for i := range rows {
		for j := 0; j < shape[1]; j++ {
			rows[i] = append(rows[i], int(v[i*shape[1]+j]))
		}
	}
	return rows
}

func TestGoldenCLIPTextTiny(t *testing.T) {
	dir, io := goldenFixture(t, "clip_text_tiny")
	bothBackends(t, func(t *testing.T, be Backend) {
		m, err := LoadCLIPTextModelDir(be, dir, F32)
		require.NoError(t, err)
		defer m.Free()
		for _, sfx := range []string{"", "_short"} {
			s, v := ioInts(t, io, "in.input_ids"+sfx)
			out, err := m.Forward(be, idRows(s, v), true)
			require.NoError(t, err)
			_, want := ioF32(t, io, "out.last_hidden_state"+sfx)
			requireClose(t, want, readT(t, be, out.LastHiddenState), 1e-4, 1e-4, "last_hidden_state"+sfx)
			_, want = ioF32(t, io, "out.pooler_output"+sfx)
			requireClose(t, want, readT(t, be, out.Pooled), 1e-4, 1e-4, "pooler_output"+sfx)
			for i, h := range out.HiddenStates {
				name := fmt.Sprintf("out.hidden_states.%d%s", i, sfx)
				if _, ok := io.Info(name); !ok {
					continue
				}
				_, want = ioF32(t, io, name)
				requireClose(t, want, readT(t, be, h), 1e-4, 1e-4, name)
			}
			out.Free()
		}
	})
}

func TestCLIPTextErrors(t *testing.T) {
	dir, _ := goldenFixture(t, "clip_text_tiny")
	be := NewCPU()
	m, err := LoadCLIPTextModelDir(be, dir, F32)
	require.NoError(t, err)
	_, err = m.Forward(be, [][]int{make([]int, 78)}, false)
	require.ErrorContains(t, err, "78 tokens exceed")
	_, err = m.Forward(be, [][]int{{0, 5000}}, false)
	require.ErrorContains(t, err, "outside the vocabulary")
	_, err = m.Forward(be, [][]int{{0, 1}, {0}}, false)
	require.ErrorContains(t, err, "row 1 has 1 ids")
}
