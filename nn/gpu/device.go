// Package gpu is retrace's thin runtime over WebGPU: one Device that owns the
// adapter's real limits, a buffer pool, a compiled-pipeline cache, a batch of
// compute dispatches per command buffer, and readback. It builds natively
// (wgpu-native via cgo) and under GOOS=js GOARCH=wasm (the browser's WebGPU)
// from the same code; only opening the device differs (open_native.go,
// open_js.go).
//
// The device is deliberately boring: kernels live in package shaders, ops
// live in package nn.
package gpu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/cogentcore/webgpu/wgpu"
)

// Limits are the adapter limits retrace requested and got.
type Limits struct {
	MaxBufferSize                     uint64 `json:"maxBufferSize"`
	MaxStorageBufferBindingSize       uint64 `json:"maxStorageBufferBindingSize"`
	MaxUniformBufferBindingSize       uint64 `json:"maxUniformBufferBindingSize"`
	MinStorageBufferOffsetAlignment   uint32 `json:"minStorageBufferOffsetAlignment"`
	MinUniformBufferOffsetAlignment   uint32 `json:"minUniformBufferOffsetAlignment"`
	MaxStorageBuffersPerShaderStage   uint32 `json:"maxStorageBuffersPerShaderStage"`
	MaxComputeWorkgroupStorageSize    uint32 `json:"maxComputeWorkgroupStorageSize"`
	MaxComputeInvocationsPerWorkgroup uint32 `json:"maxComputeInvocationsPerWorkgroup"`
	MaxComputeWorkgroupSizeX          uint32 `json:"maxComputeWorkgroupSizeX"`
	MaxComputeWorkgroupSizeY          uint32 `json:"maxComputeWorkgroupSizeY"`
	MaxComputeWorkgroupSizeZ          uint32 `json:"maxComputeWorkgroupSizeZ"`
	MaxComputeWorkgroupsPerDimension  uint32 `json:"maxComputeWorkgroupsPerDimension"`
}

// Info describes the adapter behind a Device.
type Info struct {
	Name         string   `json:"name"`
	Vendor       string   `json:"vendor"`
	Architecture string   `json:"architecture"`
	Driver       string   `json:"driver"`
	AdapterType  string   `json:"adapterType"`
	Backend      string   `json:"backend"`
	Features     []string `json:"features"`
	ShaderF16    bool     `json:"shaderF16"`
	Subgroups    bool     `json:"subgroups"`
	// CPU is true for software adapters (lavapipe, SwiftShader): kernels
	// without workgroup barriers are preferred there.
	CPU    bool   `json:"cpu"`
	Limits Limits `json:"limits"`
}

// Options select how a Device is opened.
type Options struct {
	// MaxStorageBufferBindingSize caps the binding size retrace requests
	// (0: the adapter's maximum). Tests use it to force the split paths.
	MaxStorageBufferBindingSize uint64
	// LowPower asks for the low-power adapter instead of high-performance.
	LowPower bool
}

// ErrNoAdapter is returned when no WebGPU adapter can be created.
var ErrNoAdapter = errors.New("gpu: no WebGPU adapter available (natively: install a Vulkan driver such as mesa-vulkan-drivers; in a browser: enable WebGPU)")

// ErrDeviceLost is returned by every call after the device was lost.
var ErrDeviceLost = errors.New("gpu: device lost")

// Buffer is a storage buffer owned by a Device. Size is the requested size in
// bytes; the underlying allocation may be larger (pool size classes).
type Buffer struct {
	buf   *wgpu.Buffer
	size  uint64
	alloc uint64
	dev   *Device
	freed bool
}

// Size returns the buffer's usable size in bytes.
func (b *Buffer) Size() uint64 { return b.size }

// Binding is a byte range of a buffer bound to one kernel argument. Offset must
// be a multiple of the device's MinStorageBufferOffsetAlignment and Size at most
// MaxStorageBufferBindingSize; use Device.BindRange to get an aligned range and
// the element offset that remains.
type Binding struct {
	Buf    *Buffer
	Offset uint64
	Size   uint64
}

// Whole binds the whole buffer.
func (b *Buffer) Whole() Binding { return Binding{Buf: b, Size: b.size} }

// Kernel is a compiled compute pipeline with its explicit layout: binding 0 is
// a uniform block of parameters, bindings 1..N storage buffers.
type Kernel struct {
	Name     string
	pipeline *wgpu.ComputePipeline
	bgl      *wgpu.BindGroupLayout
	layout   *wgpu.PipelineLayout
	nStorage int
	readOnly []bool
}

// Device is one WebGPU device with retrace's pool, cache and batching.
// A Device is safe for use by one goroutine at a time; the mutex only guards
// against accidental concurrent use.
type Device struct {
	mu      sync.Mutex
	adapter *wgpu.Adapter
	dev     *wgpu.Device
	queue   *wgpu.Queue
	info    Info

	kernels map[string]*Kernel

	// pool of free buffers by allocation size
	free map[uint64][]*wgpu.Buffer

	// batch state
	enc        *wgpu.CommandEncoder
	pass       *wgpu.ComputePassEncoder
	params     []byte
	uniform    *wgpu.Buffer
	bindGroups []*wgpu.BindGroup
	dispatches int

	stats Stats
	lost  error
}

// Stats counts device work; memory figures are bytes of storage buffers.
type Stats struct {
	Live       uint64 `json:"liveBytes"`   // held by live Buffers
	Pooled     uint64 `json:"pooledBytes"` // free buffers kept for reuse
	Peak       uint64 `json:"peakBytes"`   // max of Live+Pooled since the last ResetPeak
	Dispatches uint64 `json:"dispatches"`
	Submits    uint64 `json:"submits"`
}

const (
	uniformSlot  = 256         // bytes per dispatch's parameter block
	uniformSlots = 1024        // dispatches per batch before a forced flush
	maxParams    = uniformSlot // parameter block size limit
)

// Info returns the adapter description and the limits in force.
func (d *Device) Info() Info { return d.info }

// Limits returns the limits in force.
func (d *Device) Limits() Limits { return d.info.Limits }

// Stats returns a snapshot of the counters.
func (d *Device) Stats() Stats { d.mu.Lock(); defer d.mu.Unlock(); return d.stats }

// ResetPeak sets the peak memory counter to the current usage.
func (d *Device) ResetPeak() {
	d.mu.Lock()
	d.stats.Peak = d.stats.Live + d.stats.Pooled
	d.mu.Unlock()
}

func (d *Device) init() error {
	d.kernels = map[string]*Kernel{}
	d.free = map[uint64][]*wgpu.Buffer{}
	d.queue = d.dev.GetQueue()
	u, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{
		Label: "retrace.params",
		Size:  uniformSlot * uniformSlots,
		Usage: wgpu.BufferUsageUniform | wgpu.BufferUsageCopyDst,
	})
	if err != nil {
		return fmt.Errorf("gpu: creating the parameter buffer: %w", err)
	}
	d.uniform = u
	return nil
}

// sizeClass rounds an allocation up so freed buffers can be reused: multiples
// of 256 bytes up to 64 KiB, then 8 classes per power of two (≤12.5% waste).
func sizeClass(n uint64) uint64 {
	if n < 256 {
		return 256
	}
	if n <= 64<<10 {
		return (n + 255) &^ 255
	}
	p := uint64(1) << (63 - leadingZeros(n))
	step := p / 8
	return (n + step - 1) / step * step
}

func leadingZeros(x uint64) int {
	n := 0
	for i := 63; i >= 0; i-- {
		if x&(1<<uint(i)) != 0 {
			return n
		}
		n++
	}
	return 64
}

// Alloc returns an uninitialised storage buffer of n bytes (n rounded up to 4).
func (d *Device) Alloc(n uint64) (*Buffer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.alloc(n)
}

func (d *Device) alloc(n uint64) (*Buffer, error) {
	if d.lost != nil {
		return nil, d.lost
	}
	if n == 0 {
		n = 4
	}
	n = (n + 3) &^ 3
	if n > d.info.Limits.MaxBufferSize {
		return nil, fmt.Errorf("gpu: buffer of %d bytes exceeds the adapter's maxBufferSize %d", n, d.info.Limits.MaxBufferSize)
	}
	c := sizeClass(n)
	if c > d.info.Limits.MaxBufferSize {
		c = n
	}
	if l := d.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		d.free[c] = l[:len(l)-1]
		d.stats.Pooled -= c
		d.stats.Live += c
		return &Buffer{buf: b, size: n, alloc: c, dev: d}, nil
	}
	b, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{
		Size:  c,
		Usage: wgpu.BufferUsageStorage | wgpu.BufferUsageCopySrc | wgpu.BufferUsageCopyDst,
	})
	if err != nil {
		// Out of memory is reported as a validation/OOM error: drop the pool and retry once.
		d.trimLocked()
		b, err = d.dev.CreateBuffer(&wgpu.BufferDescriptor{
			Size:  c,
			Usage: wgpu.BufferUsageStorage | wgpu.BufferUsageCopySrc | wgpu.BufferUsageCopyDst,
		})
		if err != nil {
			return nil, fmt.Errorf("gpu: allocating %d bytes: %w", c, err)
		}
	}
	d.stats.Live += c
	if t := d.stats.Live + d.stats.Pooled; t > d.stats.Peak {
		d.stats.Peak = t
	}
	return &Buffer{buf: b, size: n, alloc: c, dev: d}, nil
}

// Free returns b to the pool. Pending dispatches that use b still see its
// contents: a reused buffer is only written by later commands in queue order.
func (b *Buffer) Free() {
	if b == nil || b.freed {
		return
	}
	d := b.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	b.freed = true
	d.stats.Live -= b.alloc
	d.stats.Pooled += b.alloc
	d.free[b.alloc] = append(d.free[b.alloc], b.buf)
}

// Trim destroys all pooled buffers.
func (d *Device) Trim() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trimLocked()
}

func (d *Device) trimLocked() {
	if d.dispatches > 0 {
		_ = d.flushLocked()
	}
	for c, l := range d.free {
		for _, b := range l {
			b.Destroy()
			b.Release()
		}
		d.stats.Pooled -= c * uint64(len(l))
	}
	d.free = map[uint64][]*wgpu.Buffer{}
}

// Write uploads data into b at byte offset off. Pending dispatches are
// submitted first so they cannot observe the new contents.
func (d *Device) Write(b *Buffer, off uint64, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lost != nil {
		return d.lost
	}
	if off+uint64(len(data)) > b.size {
		return fmt.Errorf("gpu: write of %d bytes at %d overflows a %d-byte buffer", len(data), off, b.size)
	}
	if d.dispatches > 0 {
		if err := d.flushLocked(); err != nil {
			return err
		}
	}
	if len(data)%4 != 0 {
		pad := make([]byte, (len(data)+3)&^3)
		copy(pad, data)
		data = pad
	}
	// Large writes are chunked to keep staging allocations bounded.
	const chunk = 64 << 20
	for s := 0; s < len(data); s += chunk {
		e := min(s+chunk, len(data))
		if err := d.queue.WriteBuffer(b.buf, off+uint64(s), data[s:e]); err != nil {
			return fmt.Errorf("gpu: write: %w", err)
		}
	}
	return nil
}

// WriteFloat32 uploads float32 values at element offset off.
func (d *Device) WriteFloat32(b *Buffer, off int, v []float32) error {
	return d.Write(b, uint64(off)*4, Float32Bytes(v))
}

// Float32Bytes returns the little-endian bytes of v.
func Float32Bytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

// BytesFloat32 decodes little-endian float32 values.
func BytesFloat32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// Kernel compiles (or fetches from the cache) the WGSL entry point "main" of
// src. key must identify src uniquely (shader name plus specialisation).
// nStorage is the number of storage bindings (1..nStorage); readOnly marks
// which of them the shader declares read-only.
func (d *Device) Kernel(key, src string, readOnly []bool) (*Kernel, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := d.kernels[key]; ok {
		return k, nil
	}
	if d.lost != nil {
		return nil, d.lost
	}
	mod, err := d.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{
		Label:          key,
		WGSLDescriptor: &wgpu.ShaderModuleWGSLDescriptor{Code: src},
	})
	if err != nil {
		return nil, fmt.Errorf("gpu: compiling kernel %s: %w", key, err)
	}
	defer mod.Release()
	entries := []wgpu.BindGroupLayoutEntry{{
		Binding:    0,
		Visibility: wgpu.ShaderStageCompute,
		Buffer:     wgpu.BufferBindingLayout{Type: wgpu.BufferBindingTypeUniform},
	}}
	for i, ro := range readOnly {
		t := wgpu.BufferBindingTypeStorage
		if ro {
			t = wgpu.BufferBindingTypeReadOnlyStorage
		}
		entries = append(entries, wgpu.BindGroupLayoutEntry{
			Binding:    uint32(i + 1),
			Visibility: wgpu.ShaderStageCompute,
			Buffer:     wgpu.BufferBindingLayout{Type: t},
		})
	}
	bgl, err := d.dev.CreateBindGroupLayout(&wgpu.BindGroupLayoutDescriptor{Label: key, Entries: entries})
	if err != nil {
		return nil, fmt.Errorf("gpu: kernel %s layout: %w", key, err)
	}
	pl, err := d.dev.CreatePipelineLayout(&wgpu.PipelineLayoutDescriptor{Label: key, BindGroupLayouts: []*wgpu.BindGroupLayout{bgl}})
	if err != nil {
		return nil, fmt.Errorf("gpu: kernel %s pipeline layout: %w", key, err)
	}
	p, err := d.dev.CreateComputePipeline(&wgpu.ComputePipelineDescriptor{
		Layout:  pl,
		Compute: wgpu.ProgrammableStageDescriptor{Module: mod, EntryPoint: "main"},
	})
	if err != nil {
		return nil, fmt.Errorf("gpu: kernel %s pipeline: %w", key, err)
	}
	k := &Kernel{Name: key, pipeline: p, bgl: bgl, layout: pl, nStorage: len(readOnly), readOnly: readOnly}
	d.kernels[key] = k
	return k, nil
}

// KernelNames lists the compiled kernels (for diagnostics).
func (d *Device) KernelNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s []string
	for k := range d.kernels {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Dispatch records one dispatch of k into the current batch. params is the
// kernel's uniform block (at most 256 bytes, little-endian, WGSL layout);
// bindings are the storage arguments in binding order. Work is submitted by
// Flush, Read, Write or when the batch is full.
func (d *Device) Dispatch(k *Kernel, params []byte, bindings []Binding, x, y, z uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lost != nil {
		return d.lost
	}
	if len(bindings) != k.nStorage {
		return fmt.Errorf("gpu: kernel %s takes %d buffers, got %d", k.Name, k.nStorage, len(bindings))
	}
	if len(params) > maxParams {
		return fmt.Errorf("gpu: kernel %s parameters are %d bytes (max %d)", k.Name, len(params), maxParams)
	}
	lim := d.info.Limits
	if x > lim.MaxComputeWorkgroupsPerDimension || y > lim.MaxComputeWorkgroupsPerDimension || z > lim.MaxComputeWorkgroupsPerDimension {
		return fmt.Errorf("gpu: kernel %s dispatch %d×%d×%d exceeds maxComputeWorkgroupsPerDimension %d", k.Name, x, y, z, lim.MaxComputeWorkgroupsPerDimension)
	}
	if x == 0 || y == 0 || z == 0 {
		return nil
	}
	for i, b := range bindings {
		if b.Buf == nil || b.Buf.freed {
			return fmt.Errorf("gpu: kernel %s binding %d: buffer is nil or freed", k.Name, i+1)
		}
		if b.Size == 0 || b.Size%4 != 0 || b.Offset%uint64(lim.MinStorageBufferOffsetAlignment) != 0 || b.Offset+b.Size > b.Buf.alloc {
			return fmt.Errorf("gpu: kernel %s binding %d: bad range offset %d size %d of a %d-byte buffer", k.Name, i+1, b.Offset, b.Size, b.Buf.alloc)
		}
		if b.Size > lim.MaxStorageBufferBindingSize {
			return fmt.Errorf("gpu: kernel %s binding %d: %d bytes exceed maxStorageBufferBindingSize %d (the op must split it)", k.Name, i+1, b.Size, lim.MaxStorageBufferBindingSize)
		}
	}
	if d.dispatches == uniformSlots {
		if err := d.flushLocked(); err != nil {
			return err
		}
	}
	if d.enc == nil {
		enc, err := d.dev.CreateCommandEncoder(nil)
		if err != nil {
			return d.fail(fmt.Errorf("gpu: command encoder: %w", err))
		}
		d.enc = enc
		d.pass = enc.BeginComputePass(nil)
		d.params = d.params[:0]
	}
	slot := uint64(d.dispatches) * uniformSlot
	d.params = append(d.params, params...)
	d.params = append(d.params, make([]byte, uniformSlot-len(params))...)
	entries := make([]wgpu.BindGroupEntry, 0, len(bindings)+1)
	entries = append(entries, wgpu.BindGroupEntry{Binding: 0, Buffer: d.uniform, Offset: slot, Size: uniformSlot})
	for i, b := range bindings {
		entries = append(entries, wgpu.BindGroupEntry{Binding: uint32(i + 1), Buffer: b.Buf.buf, Offset: b.Offset, Size: b.Size})
	}
	bg, err := d.dev.CreateBindGroup(&wgpu.BindGroupDescriptor{Layout: k.bgl, Entries: entries})
	if err != nil {
		return fmt.Errorf("gpu: kernel %s bind group: %w", k.Name, err)
	}
	d.bindGroups = append(d.bindGroups, bg)
	d.pass.SetPipeline(k.pipeline)
	d.pass.SetBindGroup(0, bg, nil)
	d.pass.DispatchWorkgroups(x, y, z)
	d.dispatches++
	d.stats.Dispatches++
	return nil
}

// Copy records a buffer-to-buffer copy (sizes and offsets multiples of 4).
func (d *Device) Copy(src *Buffer, srcOff uint64, dst *Buffer, dstOff, n uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lost != nil {
		return d.lost
	}
	if srcOff+n > src.size || dstOff+n > dst.size || n%4 != 0 || srcOff%4 != 0 || dstOff%4 != 0 {
		return fmt.Errorf("gpu: bad copy of %d bytes from %d/%d to %d/%d", n, srcOff, src.size, dstOff, dst.size)
	}
	if n == 0 {
		return nil
	}
	// A copy cannot be recorded inside a compute pass: end the batch's pass
	// and continue with a new one in the same encoder.
	if d.enc == nil {
		enc, err := d.dev.CreateCommandEncoder(nil)
		if err != nil {
			return d.fail(fmt.Errorf("gpu: command encoder: %w", err))
		}
		d.enc = enc
		d.params = d.params[:0]
	} else if d.pass != nil {
		if err := endPass(d.pass); err != nil {
			return d.fail(fmt.Errorf("gpu: ending compute pass: %w", err))
		}
		d.pass.Release()
	}
	if err := d.enc.CopyBufferToBuffer(src.buf, srcOff, dst.buf, dstOff, n); err != nil {
		return fmt.Errorf("gpu: copy: %w", err)
	}
	d.pass = d.enc.BeginComputePass(nil)
	return nil
}

// Flush submits the pending batch without waiting for it.
func (d *Device) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flushLocked()
}

func (d *Device) flushLocked() error {
	if d.lost != nil {
		return d.lost
	}
	if d.enc == nil {
		return nil
	}
	enc, pass := d.enc, d.pass
	d.enc, d.pass = nil, nil
	defer func() {
		for _, bg := range d.bindGroups {
			bg.Release()
		}
		d.bindGroups = d.bindGroups[:0]
		d.dispatches = 0
	}()
	if pass != nil {
		if err := endPass(pass); err != nil {
			return d.fail(fmt.Errorf("gpu: ending compute pass: %w", err))
		}
		pass.Release()
	}
	cmd, err := enc.Finish(nil)
	enc.Release()
	if err != nil {
		return d.fail(fmt.Errorf("gpu: recording commands: %w", err))
	}
	if len(d.params) > 0 {
		if err := d.queue.WriteBuffer(d.uniform, 0, d.params); err != nil {
			return d.fail(fmt.Errorf("gpu: writing parameters: %w", err))
		}
	}
	d.queue.Submit(cmd)
	cmd.Release()
	d.stats.Submits++
	return nil
}

// Sync submits pending work and waits until the GPU finished it.
func (d *Device) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.flushLocked(); err != nil {
		return err
	}
	return d.waitIdle()
}

// Read copies n bytes at byte offset off of b back to the host, after all
// pending work.
func (d *Device) Read(b *Buffer, off, n uint64) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lost != nil {
		return nil, d.lost
	}
	if off+n > b.size || off%4 != 0 || n%4 != 0 {
		return nil, fmt.Errorf("gpu: bad read of %d bytes at %d from a %d-byte buffer", n, off, b.size)
	}
	if n == 0 {
		return nil, nil
	}
	if err := d.flushLocked(); err != nil {
		return nil, err
	}
	staging, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{Size: n, Usage: wgpu.BufferUsageMapRead | wgpu.BufferUsageCopyDst})
	if err != nil {
		return nil, fmt.Errorf("gpu: readback buffer of %d bytes: %w", n, err)
	}
	defer func() { staging.Destroy(); staging.Release() }()
	enc, err := d.dev.CreateCommandEncoder(nil)
	if err != nil {
		return nil, d.fail(err)
	}
	if err := enc.CopyBufferToBuffer(b.buf, off, staging, 0, n); err != nil {
		enc.Release()
		return nil, fmt.Errorf("gpu: readback copy: %w", err)
	}
	cmd, err := enc.Finish(nil)
	enc.Release()
	if err != nil {
		return nil, d.fail(fmt.Errorf("gpu: readback: %w", err))
	}
	d.queue.Submit(cmd)
	cmd.Release()
	d.stats.Submits++
	return d.mapRead(staging, n)
}

// ReadFloat32 reads n float32 values starting at element off.
func (d *Device) ReadFloat32(b *Buffer, off, n int) ([]float32, error) {
	raw, err := d.Read(b, uint64(off)*4, uint64(n)*4)
	if err != nil {
		return nil, err
	}
	return BytesFloat32(raw), nil
}

func (d *Device) fail(err error) error {
	if strings.Contains(strings.ToLower(err.Error()), "lost") {
		d.lost = fmt.Errorf("%w: %v", ErrDeviceLost, err)
		return d.lost
	}
	return err
}

// BindRange returns a binding covering elements [start, start+n) of 4-byte
// elements of b whose offset is aligned down to the device's storage offset
// alignment, and the element index of start inside that binding.
func (d *Device) BindRange(b *Buffer, start, n uint64) (Binding, uint32) {
	al := uint64(d.info.Limits.MinStorageBufferOffsetAlignment)
	off := start * 4
	aoff := off / al * al
	size := off + n*4 - aoff
	if n == 0 {
		size = 4
	}
	return Binding{Buf: b, Offset: aoff, Size: size}, uint32((off - aoff) / 4)
}

// MaxBindingElems is the number of 4-byte elements one binding may hold,
// leaving room for offset alignment.
func (d *Device) MaxBindingElems() uint64 {
	return (d.info.Limits.MaxStorageBufferBindingSize - uint64(d.info.Limits.MinStorageBufferOffsetAlignment)) / 4
}

// Params builds a kernel's uniform block: u32, i32 and f32 fields in order,
// each 4 bytes (WGSL scalars in a struct of scalars have 4-byte alignment).
type Params struct{ b []byte }

// U appends u32 fields.
func (p *Params) U(v ...uint32) *Params {
	for _, x := range v {
		p.b = binary.LittleEndian.AppendUint32(p.b, x)
	}
	return p
}

// I appends i32 fields.
func (p *Params) I(v ...int32) *Params {
	for _, x := range v {
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(x))
	}
	return p
}

// F appends f32 fields.
func (p *Params) F(v ...float32) *Params {
	for _, x := range v {
		p.b = binary.LittleEndian.AppendUint32(p.b, math.Float32bits(x))
	}
	return p
}

// Bytes returns the block padded to 16 bytes.
func (p *Params) Bytes() []byte {
	for len(p.b)%16 != 0 {
		p.b = append(p.b, 0)
	}
	return p.b
}
