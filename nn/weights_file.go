package nn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"retrace/nn/safetensors"
)

// SafetensorsSource adapts a safetensors file (or several, e.g. sharded
// checkpoints) to TensorSource.
type SafetensorsSource struct{ Files []*safetensors.File }

func (s SafetensorsSource) find(name string) (*safetensors.File, safetensors.TensorInfo, bool) {
	for _, f := range s.Files {
		if ti, ok := f.Info(name); ok {
			return f, ti, true
		}
	}
	return nil, safetensors.TensorInfo{}, false
}

// Names implements TensorSource.
func (s SafetensorsSource) Names() []string {
	var out []string
	for _, f := range s.Files {
		out = append(out, f.Names()...)
	}
	return out
}

// Shape implements TensorSource.
func (s SafetensorsSource) Shape(name string) ([]int, bool) {
	_, ti, ok := s.find(name)
	return ti.Shape, ok
}

// Float32 implements TensorSource.
func (s SafetensorsSource) Float32(name string) ([]float32, error) {
	f, _, ok := s.find(name)
	if !ok {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	return f.Float32(name)
}

// Float16Bits implements TensorSource: F16 tensors are returned as stored.
func (s SafetensorsSource) Float16Bits(name string) ([]uint16, bool, error) {
	f, ti, ok := s.find(name)
	if !ok || ti.DType != safetensors.F16 {
		return nil, false, nil
	}
	b, err := f.Float16Bits(name)
	return b, err == nil, err
}

// weightFileNames are the file names diffusers and transformers use for a
// component's weights, in the order tried.
var weightFileNames = []string{
	"diffusion_pytorch_model.safetensors",
	"model.safetensors",
	"weights.safetensors",
	"diffusion_pytorch_model.fp16.safetensors",
	"model.fp16.safetensors",
}

// openWeightsDir opens the safetensors weights of a model folder.
func openWeightsDir(dir string) (TensorSource, func(), error) {
	for _, n := range weightFileNames {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		f, err := safetensors.Open(p)
		if err != nil {
			return nil, nil, err
		}
		return SafetensorsSource{Files: []*safetensors.File{f}}, func() { f.Close() }, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "diffusion_pytorch_model.bin")); err == nil {
		return nil, nil, errors.New(dir + ": only PyTorch .bin weights found; convert them to safetensors")
	}
	return nil, nil, fmt.Errorf("%s: no weights file (looked for %v)", dir, weightFileNames)
}

// OpenWeightsDir opens the safetensors weights of a model folder (the file
// names diffusers and transformers use, see weightFileNames); close them
// with the returned function once the model is loaded.
func OpenWeightsDir(dir string) (TensorSource, func(), error) { return openWeightsDir(dir) }
