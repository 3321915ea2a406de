// Package pack reads and writes retrace weight packs: a folder (or the same
// files over HTTP) holding manifest.json and shard files, produced from a
// diffusers checkpoint by `retrace convert`. docs/PACK.md is the format's
// specification; this file is its Go form.
//
// The shards are one byte stream cut into files of exactly ShardBytes bytes
// (the last one shorter). Every tensor (and every extra file, e.g. the
// tokenizer's) is one byte range of that stream starting at a multiple of
// 64 bytes; it starts in shard Shard at byte Offset and may continue into
// the following shards. Each shard's sha256 is in the manifest and is
// checked before any byte of that shard is used.
package pack

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"retrace/nn"
)

// Version is the manifest format version this package reads and writes.
const Version = 1

// Magic is the manifest's "format" value.
const Magic = "retrace-pack"

// DefaultShardBytes is the default shard size (64 MiB).
const DefaultShardBytes = 64 << 20

// Manifest is manifest.json.
type Manifest struct {
	Format     string                `json:"format"`
	Version    int                   `json:"version"`
	ShardBytes int64                 `json:"shard_bytes"`
	Shards     []Shard               `json:"shards"`
	Components map[string]*Component `json:"components"`
	// Files are extra files (tokenizer vocab.json, merges.txt, ...) by name.
	Files map[string]Range `json:"files,omitempty"`
}

// Shard is one shard file.
type Shard struct {
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Range is a byte range of the shard stream.
type Range struct {
	Shard  int   `json:"shard"`
	Offset int64 `json:"offset"`
	Bytes  int64 `json:"bytes"`
}

// Component is one model of the pipeline (unet, vae, text_encoder) or a
// config-only part (scheduler).
type Component struct {
	// Config is the component's diffusers/transformers config.json.
	Config  json.RawMessage `json:"config,omitempty"`
	Tensors []Tensor        `json:"tensors,omitempty"`
}

// Tensor is one entry of a component's tensor table.
type Tensor struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	// Format is f32, f16, q8 or q4 (layouts in docs/PACK.md).
	Format string `json:"format"`
	// Group is the quantization group size (q8, q4).
	Group int `json:"group,omitempty"`
	Range
	// ScalesOffset is where the scales start inside the tensor's bytes
	// (q8, q4): the packed values come first.
	ScalesOffset int64 `json:"scales_offset,omitempty"`
}

// formats maps manifest format names to dtypes.
var formats = map[string]nn.DType{"f32": nn.F32, "f16": nn.F16, "q8": nn.Q8, "q4": nn.Q4}

// ExpectedBytes is the stored size of a tensor of this shape, format and
// group, and the offset of its scales.
func ExpectedBytes(t Tensor) (total, scales int64, err error) {
	n := int64(1)
	for _, d := range t.Shape {
		if d <= 0 || d > 1<<31 {
			return 0, 0, fmt.Errorf("bad shape %v", t.Shape)
		}
		n *= int64(d)
		if n > 1<<40 {
			return 0, 0, fmt.Errorf("shape %v is too large", t.Shape)
		}
	}
	switch t.Format {
	case "f32":
		return 4 * n, 0, nil
	case "f16":
		return 2 * n, 0, nil
	case "q8", "q4":
		if len(t.Shape) == 0 {
			return 0, 0, fmt.Errorf("quantized scalar")
		}
		q := &nn.QuantTensor{Format: formats[t.Format], Shape: t.Shape, Group: t.Group}
		rl := int(n) / t.Shape[0]
		if t.Group <= 0 || t.Group > 1<<24 || (t.Format == "q4" && t.Group%8 != 0) || (t.Format == "q8" && t.Group%4 != 0 && t.Group != rl) {
			return 0, 0, fmt.Errorf("bad group %d for %s %v", t.Group, t.Format, t.Shape)
		}
		data := int64(q.Rows()) * int64(q.RowWords()) * 4
		return data + int64(q.ScaleWords())*4, data, nil
	}
	return 0, 0, fmt.Errorf("unknown storage format %q", t.Format)
}

// ParseManifest decodes and validates manifest.json: the format and
// version, shard sizes, and that every tensor's range lies inside the
// shards and has the size its shape and format imply.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("pack: manifest.json: %w", err)
	}
	if m.Format != Magic {
		return nil, fmt.Errorf("pack: manifest.json: format %q is not %q", m.Format, Magic)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("pack: manifest.json: format version %d is not supported (this build reads version %d)", m.Version, Version)
	}
	if m.ShardBytes < 64 || m.ShardBytes%64 != 0 {
		return nil, fmt.Errorf("pack: manifest.json: shard_bytes %d must be a positive multiple of 64", m.ShardBytes)
	}
	var total int64
	for i, s := range m.Shards {
		if s.File == "" || len(s.SHA256) != 64 || strings.ContainsAny(s.File, "/\\") || s.File == "." || s.File == ".." || s.File == "manifest.json" {
			return nil, fmt.Errorf("pack: manifest.json: shard %d needs a plain file name and a sha256", i)
		}
		if s.Bytes <= 0 || s.Bytes > m.ShardBytes || (i < len(m.Shards)-1 && s.Bytes != m.ShardBytes) {
			return nil, fmt.Errorf("pack: manifest.json: shard %d (%s) has %d bytes; every shard but the last must have shard_bytes=%d", i, s.File, s.Bytes, m.ShardBytes)
		}
		total += s.Bytes
	}
	check := func(what string, r Range) error {
		if r.Shard < 0 || r.Shard >= len(m.Shards) || r.Offset < 0 || r.Offset >= m.ShardBytes || r.Bytes < 0 {
			return fmt.Errorf("pack: manifest.json: %s: range shard %d offset %d bytes %d is outside the %d shards", what, r.Shard, r.Offset, r.Bytes, len(m.Shards))
		}
		if start := int64(r.Shard)*m.ShardBytes + r.Offset; r.Bytes > total-start {
			return fmt.Errorf("pack: manifest.json: %s: %d bytes at shard %d offset %d run past the end of the shards", what, r.Bytes, r.Shard, r.Offset)
		}
		return nil
	}
	names := make([]string, 0, len(m.Components))
	for n := range m.Components {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, cn := range names {
		c := m.Components[cn]
		if c == nil {
			return nil, fmt.Errorf("pack: manifest.json: component %q is null", cn)
		}
		seen := map[string]bool{}
		for _, t := range c.Tensors {
			what := cn + "/" + t.Name
			if t.Name == "" || seen[t.Name] {
				return nil, fmt.Errorf("pack: manifest.json: %s: empty or duplicate tensor name", what)
			}
			seen[t.Name] = true
			want, sOff, err := ExpectedBytes(t)
			if err != nil {
				return nil, fmt.Errorf("pack: manifest.json: %s: %v", what, err)
			}
			if want != t.Bytes || sOff != t.ScalesOffset {
				return nil, fmt.Errorf("pack: manifest.json: %s: %s %v group %d takes %d bytes (scales at %d), the table says %d (scales at %d)", what, t.Format, t.Shape, t.Group, want, sOff, t.Bytes, t.ScalesOffset)
			}
			if err := check(what, t.Range); err != nil {
				return nil, err
			}
		}
	}
	for n, r := range m.Files {
		if err := check("file "+n, r); err != nil {
			return nil, err
		}
	}
	return &m, nil
}
