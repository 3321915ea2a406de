//go:build !js

package gpu

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cogentcore/webgpu/wgpu"
)

// One instance per process: creating a second one aborts inside wgpu-native
// (see WEBGPU-NOTES.md), and a non-nil descriptor reads uninitialised memory.
var (
	instOnce sync.Once
	inst     *wgpu.Instance
)

// Open creates a Device on the best native adapter (wgpu-native: Vulkan,
// Metal or D3D12; lavapipe on machines without a GPU).
func Open(opt Options) (*Device, error) {
	instOnce.Do(func() {
		// Mesa's Vulkan loader warns on every start without it.
		if os.Getenv("XDG_RUNTIME_DIR") == "" {
			os.Setenv("XDG_RUNTIME_DIR", os.TempDir())
		}
		wgpu.SetLogLevel(wgpu.LogLevelError)
		inst = wgpu.CreateInstance(nil)
	})
	if inst == nil {
		return nil, ErrNoAdapter
	}
	pref := wgpu.PowerPreferenceHighPerformance
	if opt.LowPower {
		pref = wgpu.PowerPreferenceLowPower
	}
	ad, err := inst.RequestAdapter(&wgpu.RequestAdapterOptions{PowerPreference: pref})
	if err != nil || ad == nil {
		return nil, fmt.Errorf("%w: %v", ErrNoAdapter, err)
	}
	al := ad.GetLimits().Limits
	// Copy only the fields retrace needs: the adapter's struct passed back
	// whole fails at random (MaxPushConstantSize comes back as garbage).
	rl := wgpu.DefaultLimits()
	rl.MaxBufferSize = al.MaxBufferSize
	rl.MaxStorageBufferBindingSize = al.MaxStorageBufferBindingSize
	if opt.MaxStorageBufferBindingSize > 0 && opt.MaxStorageBufferBindingSize < rl.MaxStorageBufferBindingSize {
		rl.MaxStorageBufferBindingSize = opt.MaxStorageBufferBindingSize
	}
	rl.MaxStorageBuffersPerShaderStage = al.MaxStorageBuffersPerShaderStage
	rl.MaxComputeWorkgroupStorageSize = al.MaxComputeWorkgroupStorageSize
	rl.MaxComputeInvocationsPerWorkgroup = al.MaxComputeInvocationsPerWorkgroup
	rl.MaxComputeWorkgroupSizeX = al.MaxComputeWorkgroupSizeX
	rl.MaxComputeWorkgroupSizeY = al.MaxComputeWorkgroupSizeY
	rl.MaxComputeWorkgroupSizeZ = al.MaxComputeWorkgroupSizeZ
	rl.MaxComputeWorkgroupsPerDimension = al.MaxComputeWorkgroupsPerDimension
	var feats []wgpu.FeatureName
	hasF16 := ad.HasFeature(wgpu.FeatureNameShaderF16)
	if hasF16 {
		feats = append(feats, wgpu.FeatureNameShaderF16)
	}
	dev, err := ad.RequestDevice(&wgpu.DeviceDescriptor{
		Label:            "retrace",
		RequiredLimits:   &wgpu.RequiredLimits{Limits: rl},
		RequiredFeatures: feats,
	})
	if err != nil {
		return nil, fmt.Errorf("gpu: requesting a device: %w", err)
	}
	ai := ad.GetInfo()
	dl := dev.GetLimits().Limits
	d := &Device{adapter: ad, dev: dev}
	name := ai.Name
	if strings.HasPrefix(name, "0x") || name == "" {
		// Mesa reports the PCI id as the name; the driver string names it.
		name = ai.DriverDescription
	}
	d.info = Info{
		Name:         name,
		Vendor:       ai.VendorName,
		Architecture: ai.Architecture,
		Driver:       ai.DriverDescription,
		AdapterType:  ai.AdapterType.String(),
		Backend:      ai.BackendType.String(),
		ShaderF16:    hasF16,
		CPU:          ai.AdapterType == wgpu.AdapterTypeCPU || strings.Contains(strings.ToLower(ai.Name), "llvmpipe"),
		Limits:       limitsOf(dl),
	}
	for _, f := range ad.EnumerateFeatures() {
		d.info.Features = append(d.info.Features, f.String())
	}
	if err := d.init(); err != nil {
		return nil, err
	}
	return d, nil
}

func limitsOf(l wgpu.Limits) Limits {
	return Limits{
		MaxBufferSize:                     l.MaxBufferSize,
		MaxStorageBufferBindingSize:       l.MaxStorageBufferBindingSize,
		MaxUniformBufferBindingSize:       l.MaxUniformBufferBindingSize,
		MinStorageBufferOffsetAlignment:   l.MinStorageBufferOffsetAlignment,
		MinUniformBufferOffsetAlignment:   l.MinUniformBufferOffsetAlignment,
		MaxStorageBuffersPerShaderStage:   l.MaxStorageBuffersPerShaderStage,
		MaxComputeWorkgroupStorageSize:    l.MaxComputeWorkgroupStorageSize,
		MaxComputeInvocationsPerWorkgroup: l.MaxComputeInvocationsPerWorkgroup,
		MaxComputeWorkgroupSizeX:          l.MaxComputeWorkgroupSizeX,
		MaxComputeWorkgroupSizeY:          l.MaxComputeWorkgroupSizeY,
		MaxComputeWorkgroupSizeZ:          l.MaxComputeWorkgroupSizeZ,
		MaxComputeWorkgroupsPerDimension:  l.MaxComputeWorkgroupsPerDimension,
	}
}

func (d *Device) waitIdle() error {
	d.dev.Poll(true, nil)
	return d.lost
}

func (d *Device) mapRead(staging *wgpu.Buffer, n uint64) ([]byte, error) {
	var status wgpu.BufferMapAsyncStatus = 0xffffffff
	if err := staging.MapAsync(wgpu.MapModeRead, 0, n, func(s wgpu.BufferMapAsyncStatus) { status = s }); err != nil {
		return nil, d.fail(fmt.Errorf("gpu: mapping readback: %w", err))
	}
	d.dev.Poll(true, nil)
	if status != wgpu.BufferMapAsyncStatusSuccess {
		return nil, d.fail(fmt.Errorf("gpu: mapping readback failed (status %d)", status))
	}
	out := make([]byte, n)
	copy(out, staging.GetMappedRange(0, uint(n)))
	staging.Unmap()
	return out, nil
}

// Close releases the device and everything it holds.
func (d *Device) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return
	}
	_ = d.flushLocked()
	d.dev.Poll(true, nil)
	d.trimLocked()
	for _, k := range d.kernels {
		k.pipeline.Release()
		k.layout.Release()
		k.bgl.Release()
	}
	d.kernels = nil
	d.uniform.Destroy()
	d.uniform.Release()
	d.dev.Release()
	d.adapter.Release()
	d.dev = nil
}

func endPass(p *wgpu.ComputePassEncoder) error { return p.End() }
