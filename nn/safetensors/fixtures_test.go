package safetensors

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// goldenDir returns the folder of golden fixtures: $RETRACE_GOLDEN (relative
// paths are taken from the repository root), else testdata/golden at the
// repository root, else the shared fixtures folder next to the checkout. It
// skips the test when none exists, unless $CI is set, where it fails.
func goldenDir(t *testing.T) string {
	t.Helper()
	const root = "../.." // the repository root, from this package's folder
	dir := os.Getenv("RETRACE_GOLDEN")
	if dir == "" {
		dir = "testdata/golden"
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	for _, d := range []string{dir, filepath.Join(root, "../shared/fixtures")} {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("golden fixtures not found at %s (set RETRACE_GOLDEN)", dir)
	}
	t.Skipf("golden fixtures not found at %s (set RETRACE_GOLDEN)", dir)
	return ""
}

func sum[T float32 | float64 | int64](v []T) float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x)
	}
	return s
}

// TestSafetensorsFixtures reads the checkpoints written by PyTorch's
// safetensors for the golden fixtures; expected values were computed from
// the files with Python's struct module.
func TestSafetensorsFixtures(t *testing.T) {
	golden := goldenDir(t)
	type want struct {
		name   string
		dtype  DType
		shape  []int
		offset int64 // data_offsets begin
		first  []float64
		sum    float64
	}
	cases := []struct {
		file    string
		headerN int64
		count   int
		meta    map[string]string
		tensors []want
	}{
		{"unet2d_tiny/weights.safetensors", 14512, 144, map[string]string{"format": "pt"}, []want{
			{"conv_in.weight", F32, []int{32, 3, 3, 3}, 128, []float64{-0.1812959760427475, -0.03775925934314728}, -1.2846908419960528},
			{"conv_out.bias", F32, []int{3}, 3840, []float64{0.18887925148010254, -0.010254094377160072}, 0.1826509442180395},
		}},
		{"unet2d_tiny/io.safetensors", 1280, 15, map[string]string{"fixture": "unet2d_tiny"}, []want{
			{"in.sample", F32, []int{2, 3, 16, 16}, 417024, []float64{1.3974971771240234, -1.308258056640625}, -53.121201322363504},
			{"in.timestep", I64, []int{2}, 423168, []float64{10, 737}, 747},
			{"in.timestep_scalar", I64, []int{}, 423184, []float64{500}, 500},
			{"out.sample", F32, []int{2, 3, 16, 16}, 423192, []float64{0.08777040243148804, 0.2965943515300751}, 134.0806083464995},
		}},
		{"dwtdct/io.safetensors", 3264, 36, map[string]string{"fixture": "dwtdct"}, []want{
			{"astronaut.bits48.votes.marked", F64, []int{48}, 4224, []float64{0.9767441860465116, 0.313953488372093}, 32.41696306429548},
			{"astronaut.bits32.payload", I64, []int{32}, 1024, []float64{1, 1}, 20},
			// 2 MiB: read in two chunks.
			{"dbg.astronaut.bits32.u_idwt", F64, []int{512, 512}, 1057920, []float64{128.00000000000006, 127.00000000000004}, 31183446},
			{"dbg.astronaut.bits32.yuv_in", U8, []int{512, 512, 3}, 3155072, []float64{150, 128}, 100963484},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			f, err := Open(filepath.Join(golden, tc.file))
			require.NoError(t, err)
			defer f.Close()
			require.Len(t, f.Names(), tc.count)
			require.Equal(t, tc.meta, f.Metadata())
			for _, w := range tc.tensors {
				info, ok := f.Info(w.name)
				require.True(t, ok, w.name)
				require.Equal(t, w.dtype, info.DType)
				require.Equal(t, w.shape, info.Shape)
				require.Equal(t, 8+tc.headerN+w.offset, info.Offset)
				require.Equal(t, int64(info.NumElements()*w.dtype.Size()), info.Size)

				f64, err := f.Float64(w.name)
				require.NoError(t, err)
				require.Equal(t, w.first, f64[:len(w.first)])
				// Summed in the file's order, as Python did.
				require.InDelta(t, w.sum, sum(f64), 1e-9*max(1, abs(w.sum)))

				f32, err := f.Float32(w.name)
				require.NoError(t, err)
				for i := range f64 {
					require.Equal(t, float32(f64[i]), f32[i])
				}
				switch w.dtype {
				case I64, U8:
					i64, err := f.Int64(w.name)
					require.NoError(t, err)
					require.Equal(t, w.sum, sum(i64))
				case F32:
					h, err := f.Float16Bits(w.name)
					require.NoError(t, err)
					for i := range h {
						require.Equal(t, Float16(f32[i]), h[i])
					}
				}
			}
			// Every tensor is readable.
			for _, name := range f.Names() {
				_, err := f.Raw(name)
				require.NoError(t, err, name)
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
