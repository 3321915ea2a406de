package nn

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/safetensors"
)

var fashionClasses = []string{"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}

func testClassEncoder(t *testing.T, classes []string, tokens, dim int) *ClassPromptEncoder {
	table := make([]float32, (len(classes)+1)*tokens*dim)
	for i := range table {
		table[i] = float32(i)
	}
	e, err := NewClassPromptEncoder(ClassPromptConfig{ClassName: "ClassPromptEncoder", Classes: classes, Tokens: tokens, Dim: dim}, table)
	require.NoError(t, err)
	return e
}

func TestClassPromptEncoderClassOf(t *testing.T) {
	e := testClassEncoder(t, fashionClasses, 2, 3)
	for _, tc := range []struct {
		prompt string
		want   int
	}{
		{"", 10},
		{"   ", 10},
		{"t-shirt", 0},
		{"a T-Shirt", 0},
		{"t shirt", 0},
		{"shirt", 6},
		{"a plain shirt", 6},
		{"Trousers", 1},
		{"ankle boot", 9},
		{"an  ANKLE   boot, leather", 9},
		{"ankle-boot", 9},
		{"bag", 8},
		{"sneaker", 7},
		{"t-shirt, a nice t-shirt", 0},
	} {
		got, err := e.ClassOf(tc.prompt)
		require.NoError(t, err, tc.prompt)
		require.Equal(t, tc.want, got, tc.prompt)
	}
	_, err := e.ClassOf("a hat")
	require.EqualError(t, err, `class encoder: prompt "a hat" names no class; the vocabulary is "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot" (or "" for none)`)
	_, err = e.ClassOf("a coat and a dress")
	require.ErrorContains(t, err, `names both "dress" and "coat"`)
	// "boot" inside "ankle boot": the longest match wins.
	e2 := testClassEncoder(t, []string{"boot", "ankle boot"}, 1, 1)
	got, err := e2.ClassOf("an ankle boot")
	require.NoError(t, err)
	require.Equal(t, 1, got)
	got, err = e2.ClassOf("a boot")
	require.NoError(t, err)
	require.Equal(t, 0, got)
}

func TestClassPromptEncoderEncode(t *testing.T) {
	e := testClassEncoder(t, []string{"cat", "dog", "ankle boot"}, 2, 3)
	bothBackends(t, func(t *testing.T, be Backend) {
		for _, tc := range []struct {
			prompt string
			row    int
		}{{"a dog", 1}, {"", 3}, {"CAT", 0}, {"Ankle Boot", 2}} {
			x, err := e.Encode(be, tc.prompt)
			require.NoError(t, err)
			require.Equal(t, []int{1, 2, 3}, x.Shape())
			want := make([]float32, 6)
			for i := range want {
				want[i] = float32(tc.row*6 + i)
			}
			require.Equal(t, want, readT(t, be, x), tc.prompt)
			Free(x)
		}
		_, err := e.Encode(be, "a bird")
		require.ErrorContains(t, err, `names no class; the vocabulary is "cat", "dog", "ankle boot"`)
		_, err = e.EncodeClass(be, 4)
		require.EqualError(t, err, "class encoder: class 4 out of range [0, 3]")
	})
}

func TestClassPromptEncoderBadConfig(t *testing.T) {
	_, err := NewClassPromptEncoder(ClassPromptConfig{Classes: []string{"a", "b"}, Tokens: 2, Dim: 3}, make([]float32, 12))
	require.EqualError(t, err, "class encoder: embedding.weight has 12 values, want [3, 6] (2 classes + null, 2 tokens × 3)")
	_, err = NewClassPromptEncoder(ClassPromptConfig{Classes: []string{"a", "A"}, Tokens: 1, Dim: 1}, make([]float32, 3))
	require.EqualError(t, err, `class encoder: class name "A" is empty or repeated`)
	_, err = NewClassPromptEncoder(ClassPromptConfig{}, nil)
	require.EqualError(t, err, "class encoder: config has no classes")
}

// writeClassEncoderDir writes a text_encoder folder with the Python
// exporter's layout.
func writeClassEncoderDir(t *testing.T, classes []string, tokens, dim int, shape []int, extra bool) string {
	dir := t.TempDir()
	cfg, err := json.Marshal(map[string]any{"_class_name": "ClassPromptEncoder", "classes": classes, "tokens": tokens, "dim": dim})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644))
	v := make([]float32, shape[0]*shape[1])
	for i := range v {
		v[i] = float32(i) / 2
	}
	ts := []safetensors.Tensor{safetensors.Float32Tensor("embedding.weight", shape, v)}
	if extra {
		ts = append(ts, safetensors.Float32Tensor("position.weight", []int{1}, []float32{1}))
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	require.NoError(t, safetensors.Write(f, ts, nil))
	require.NoError(t, f.Close())
	return dir
}

func TestClassPromptEncoderLoadDir(t *testing.T) {
	dir := writeClassEncoderDir(t, []string{"x", "y"}, 2, 2, []int{3, 4}, false)
	e, err := LoadClassPromptEncoderDir(dir)
	require.NoError(t, err)
	require.Equal(t, []string{"x", "y"}, e.Vocabulary())
	be := NewCPU()
	v, err := e.Encode(be, "y")
	require.NoError(t, err)
	require.Equal(t, []float32{2, 2.5, 3, 3.5}, readT(t, be, v))

	_, err = LoadClassPromptEncoderDir(writeClassEncoderDir(t, []string{"x", "y"}, 2, 2, []int{2, 4}, false))
	require.ErrorContains(t, err, "embedding.weight is [2 4], want [3 4] (2 classes + null, 2 tokens × 2)")
	_, err = LoadClassPromptEncoderDir(writeClassEncoderDir(t, []string{"x", "y"}, 2, 2, []int{3, 4}, true))
	require.ErrorContains(t, err, `unknown weight "position.weight"`)
	_, err = LoadClassPromptEncoderDir(t.TempDir())
	require.ErrorContains(t, err, "class encoder:")
}
