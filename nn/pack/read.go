package pack

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"retrace/nn"
)

// File is one file of a pack as the reader sees it: random access and a
// size (an *os.File, or HTTP range requests in the browser).
type File interface {
	io.ReaderAt
	Size() int64
}

// Fetcher opens the files of a pack by name (manifest.json, shard files).
type Fetcher interface {
	Open(name string) (File, error)
}

// Dir is a Fetcher over a local folder.
type Dir string

type osFile struct {
	*os.File
	size int64
}

func (f osFile) Size() int64 { return f.size }

// Open implements Fetcher.
func (d Dir) Open(name string) (File, error) {
	f, err := os.Open(filepath.Join(string(d), name))
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return osFile{f, st.Size()}, nil
}

// Pack is an opened pack. Shards are opened and their sha256 checked on
// first use; it is safe for concurrent use.
type Pack struct {
	Manifest *Manifest
	fetch    Fetcher

	mu     sync.Mutex
	shards map[int]File
}

// Open opens the pack in folder dir.
func Open(dir string) (*Pack, error) { return OpenFetcher(Dir(dir)) }

// MaxManifestBytes bounds manifest.json.
const MaxManifestBytes = 64 << 20

// OpenFetcher reads and validates manifest.json through f.
func OpenFetcher(f Fetcher) (*Pack, error) {
	mf, err := f.Open("manifest.json")
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	if c, ok := mf.(io.Closer); ok {
		defer c.Close()
	}
	if mf.Size() > MaxManifestBytes {
		return nil, fmt.Errorf("pack: manifest.json has %d bytes (limit %d)", mf.Size(), MaxManifestBytes)
	}
	b := make([]byte, mf.Size())
	if _, err := mf.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && len(b) == 0) {
		return nil, fmt.Errorf("pack: reading manifest.json: %w", err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, err
	}
	return &Pack{Manifest: m, fetch: f, shards: map[int]File{}}, nil
}

// Close closes the opened shard files.
func (p *Pack) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, f := range p.shards {
		if c, ok := f.(io.Closer); ok {
			c.Close()
		}
		delete(p.shards, i)
	}
	return nil
}

// shard opens shard i and verifies its size and sha256 (once).
func (p *Pack) shard(i int) (File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.shards[i]; ok {
		return f, nil
	}
	s := p.Manifest.Shards[i]
	f, err := p.fetch.Open(s.File)
	if err != nil {
		return nil, fmt.Errorf("pack: shard %d: %w", i, err)
	}
	fail := func(format string, a ...any) (File, error) {
		if c, ok := f.(io.Closer); ok {
			c.Close()
		}
		return nil, fmt.Errorf("pack: shard %d (%s): %s", i, s.File, fmt.Sprintf(format, a...))
	}
	if f.Size() != s.Bytes {
		return fail("has %d bytes, the manifest says %d (truncated or wrong file)", f.Size(), s.Bytes)
	}
	h := newSHA256()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, s.Bytes)); err != nil {
		return fail("%v", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
		return fail("sha256 %s does not match the manifest's %s (corrupted or from another pack)", got, s.SHA256)
	}
	p.shards[i] = f
	return f, nil
}

// read returns the bytes of r, which may span shards.
func (p *Pack) read(r Range) ([]byte, error) {
	out := make([]byte, r.Bytes)
	pos, sh, off := int64(0), r.Shard, r.Offset
	for pos < r.Bytes {
		f, err := p.shard(sh)
		if err != nil {
			return nil, err
		}
		n := min(r.Bytes-pos, p.Manifest.Shards[sh].Bytes-off)
		if _, err := f.ReadAt(out[pos:pos+n], off); err != nil {
			return nil, fmt.Errorf("pack: shard %d: %w", sh, err)
		}
		pos += n
		sh, off = sh+1, 0
	}
	return out, nil
}

// File returns an extra file (e.g. "tokenizer/vocab.json").
func (p *Pack) File(name string) ([]byte, error) {
	r, ok := p.Manifest.Files[name]
	if !ok {
		return nil, fmt.Errorf("pack: no file %q", name)
	}
	return p.read(r)
}

// Component returns a model of the pack as an nn.TensorSource (and
// nn.QuantSource: q8/q4 tensors stay quantized on the backend).
func (p *Pack) Component(name string) (*Source, error) {
	c, ok := p.Manifest.Components[name]
	if !ok {
		names := make([]string, 0, len(p.Manifest.Components))
		for n := range p.Manifest.Components {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("pack: no component %q (have %v)", name, names)
	}
	s := &Source{p: p, name: name, c: c, idx: map[string]int{}}
	for i, t := range c.Tensors {
		s.idx[t.Name] = i
	}
	return s, nil
}

// Source is one component of a pack.
type Source struct {
	p    *Pack
	name string
	c    *Component
	idx  map[string]int
}

// Config returns the component's config.json.
func (s *Source) Config() json.RawMessage { return s.c.Config }

// Tensors returns the tensor table.
func (s *Source) Tensors() []Tensor { return s.c.Tensors }

func (s *Source) entry(name string) (Tensor, error) {
	i, ok := s.idx[name]
	if !ok {
		return Tensor{}, fmt.Errorf("pack: component %s has no tensor %q", s.name, name)
	}
	return s.c.Tensors[i], nil
}

// Names implements nn.TensorSource.
func (s *Source) Names() []string {
	out := make([]string, len(s.c.Tensors))
	for i, t := range s.c.Tensors {
		out[i] = t.Name
	}
	return out
}

// Shape implements nn.TensorSource.
func (s *Source) Shape(name string) ([]int, bool) {
	t, err := s.entry(name)
	return t.Shape, err == nil
}

// Float32 implements nn.TensorSource (quantized tensors are dequantized).
func (s *Source) Float32(name string) ([]float32, error) {
	t, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	b, err := s.p.read(t.Range)
	if err != nil {
		return nil, err
	}
	switch t.Format {
	case "f32":
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v, nil
	case "f16":
		v := make([]float32, len(b)/2)
		for i := range v {
			v[i] = nn.Float16To32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return v, nil
	}
	q, err := nn.DecodeQuant(formats[t.Format], t.Shape, t.Group, b)
	if err != nil {
		return nil, fmt.Errorf("pack: %s/%s: %w", s.name, name, err)
	}
	return q.Dequantize(), nil
}

// Float16Bits implements nn.TensorSource.
func (s *Source) Float16Bits(name string) ([]uint16, bool, error) {
	t, err := s.entry(name)
	if err != nil || t.Format != "f16" {
		return nil, false, nil
	}
	b, err := s.p.read(t.Range)
	if err != nil {
		return nil, false, err
	}
	v := make([]uint16, len(b)/2)
	for i := range v {
		v[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return v, true, nil
}

// Quantized implements nn.QuantSource.
func (s *Source) Quantized(name string) (*nn.QuantTensor, bool, error) {
	t, err := s.entry(name)
	if err != nil || (t.Format != "q8" && t.Format != "q4") {
		return nil, false, nil
	}
	b, err := s.p.read(t.Range)
	if err != nil {
		return nil, false, err
	}
	q, err := nn.DecodeQuant(formats[t.Format], t.Shape, t.Group, b)
	if err != nil {
		return nil, false, fmt.Errorf("pack: %s/%s: %w", s.name, name, err)
	}
	return q, true, nil
}
