package pack

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"os"
	"path/filepath"

	"retrace/nn"
)

func float32frombits(b uint32) float32 { return math.Float32frombits(b) }

// Writer creates a pack in a folder: tensors and files are appended to the
// shard stream as they come (peak memory is one tensor), and Close writes
// manifest.json.
type Writer struct {
	dir string
	m   Manifest

	f   *os.File
	h   hash.Hash
	pos int64 // bytes written to the stream
}

// Create starts a pack in dir (created if missing) with shards of
// shardBytes (a multiple of 64; 0 means DefaultShardBytes).
func Create(dir string, shardBytes int64) (*Writer, error) {
	if shardBytes == 0 {
		shardBytes = DefaultShardBytes
	}
	if shardBytes < 64 || shardBytes%64 != 0 {
		return nil, fmt.Errorf("pack: shard size %d must be a positive multiple of 64", shardBytes)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	return &Writer{dir: dir, m: Manifest{Format: Magic, Version: Version, ShardBytes: shardBytes,
		Components: map[string]*Component{}, Files: map[string]Range{}}}, nil
}

func (w *Writer) component(name string) *Component {
	c := w.m.Components[name]
	if c == nil {
		c = &Component{}
		w.m.Components[name] = c
	}
	return c
}

// SetConfig stores a component's config.json.
func (w *Writer) SetConfig(component string, cfg json.RawMessage) {
	w.component(component).Config = cfg
}

// Bytes is the size of the shard stream so far.
func (w *Writer) Bytes() int64 { return w.pos }

// write appends b to the stream, padded first to a multiple of 64 bytes,
// and returns its range.
func (w *Writer) write(b []byte) (Range, error) {
	if pad := (64 - w.pos%64) % 64; pad > 0 {
		if err := w.put(make([]byte, pad)); err != nil {
			return Range{}, err
		}
	}
	r := Range{Shard: int(w.pos / w.m.ShardBytes), Offset: w.pos % w.m.ShardBytes, Bytes: int64(len(b))}
	return r, w.put(b)
}

func (w *Writer) put(b []byte) error {
	for len(b) > 0 {
		if w.f == nil {
			name := fmt.Sprintf("shard-%05d.bin", len(w.m.Shards))
			f, err := os.Create(filepath.Join(w.dir, name))
			if err != nil {
				return fmt.Errorf("pack: %w", err)
			}
			w.f, w.h = f, newSHA256()
			w.m.Shards = append(w.m.Shards, Shard{File: name})
		}
		s := &w.m.Shards[len(w.m.Shards)-1]
		n := min(int64(len(b)), w.m.ShardBytes-s.Bytes)
		if _, err := w.f.Write(b[:n]); err != nil {
			return fmt.Errorf("pack: %s: %w", s.File, err)
		}
		w.h.Write(b[:n])
		s.Bytes += n
		w.pos += n
		b = b[n:]
		if s.Bytes == w.m.ShardBytes {
			if err := w.closeShard(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *Writer) closeShard() error {
	if w.f == nil {
		return nil
	}
	s := &w.m.Shards[len(w.m.Shards)-1]
	s.SHA256 = hex.EncodeToString(w.h.Sum(nil))
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("pack: %s: %w", s.File, err)
	}
	return nil
}

func (w *Writer) add(component string, t Tensor, b []byte) error {
	r, err := w.write(b)
	if err != nil {
		return err
	}
	t.Range = r
	c := w.component(component)
	c.Tensors = append(c.Tensors, t)
	return nil
}

// AddF32 stores a tensor as f32.
func (w *Writer) AddF32(component, name string, shape []int, v []float32) error {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return w.add(component, Tensor{Name: name, Shape: shape, Format: "f32"}, b)
}

// AddF16 stores a tensor as f16 bits.
func (w *Writer) AddF16(component, name string, shape []int, bits []uint16) error {
	b := make([]byte, 2*len(bits))
	for i, x := range bits {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return w.add(component, Tensor{Name: name, Shape: shape, Format: "f16"}, b)
}

// AddQuant stores a q8/q4 tensor (values, then scales).
func (w *Writer) AddQuant(component, name string, q *nn.QuantTensor) error {
	if err := q.Validate(); err != nil {
		return fmt.Errorf("pack: %s/%s: %w", component, name, err)
	}
	return w.add(component, Tensor{Name: name, Shape: q.Shape, Format: q.Format.String(), Group: q.Group,
		ScalesOffset: int64(4 * len(q.Data))}, q.Encode())
}

// AddFile stores an extra file (e.g. "tokenizer/vocab.json").
func (w *Writer) AddFile(name string, data []byte) error {
	r, err := w.write(data)
	if err != nil {
		return err
	}
	w.m.Files[name] = r
	return nil
}

// Close finishes the last shard and writes manifest.json; it returns the
// manifest.
func (w *Writer) Close() (*Manifest, error) {
	if err := w.closeShard(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(&w.m, "", " ")
	if err != nil {
		return nil, fmt.Errorf("pack: manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "manifest.json"), b, 0o644); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	return &w.m, nil
}
