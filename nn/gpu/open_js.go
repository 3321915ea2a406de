//go:build js

package gpu

import (
	"errors"
	"fmt"
	"syscall/js"

	"github.com/cogentcore/webgpu/jsx"
	"github.com/cogentcore/webgpu/wgpu"
)

// Open creates a Device from the browser's navigator.gpu. It blocks on
// Promises, so it must run on a goroutine of its own, never inside a
// js.FuncOf callback (the Go runtime deadlocks there).
//
// The binding's js RequestDevice drops requiredLimits and panics on
// requiredFeatures, so the device is requested through syscall/js and wrapped
// with wgpu.NewDevice.
func Open(opt Options) (*Device, error) {
	gpu := js.Global().Get("navigator").Get("gpu")
	if !gpu.Truthy() {
		return nil, fmt.Errorf("%w: navigator.gpu is missing (this browser has no WebGPU, or it is disabled)", ErrNoAdapter)
	}
	o := map[string]any{"powerPreference": "high-performance"}
	if opt.LowPower {
		o["powerPreference"] = "low-power"
	}
	ad, ok := jsx.Await(gpu.Call("requestAdapter", o))
	if !ok || !ad.Truthy() {
		return nil, ErrNoAdapter
	}
	al := ad.Get("limits")
	binding := uint64(al.Get("maxStorageBufferBindingSize").Float())
	if opt.MaxStorageBufferBindingSize > 0 && opt.MaxStorageBufferBindingSize < binding {
		binding = opt.MaxStorageBufferBindingSize
	}
	req := map[string]any{
		"maxBufferSize":                     al.Get("maxBufferSize").Float(),
		"maxStorageBufferBindingSize":       float64(binding),
		"maxStorageBuffersPerShaderStage":   al.Get("maxStorageBuffersPerShaderStage").Int(),
		"maxComputeWorkgroupStorageSize":    al.Get("maxComputeWorkgroupStorageSize").Int(),
		"maxComputeInvocationsPerWorkgroup": al.Get("maxComputeInvocationsPerWorkgroup").Int(),
		"maxComputeWorkgroupSizeX":          al.Get("maxComputeWorkgroupSizeX").Int(),
		"maxComputeWorkgroupSizeY":          al.Get("maxComputeWorkgroupSizeY").Int(),
		"maxComputeWorkgroupsPerDimension":  al.Get("maxComputeWorkgroupsPerDimension").Int(),
	}
	var feats []any
	hasF16 := ad.Get("features").Call("has", "shader-f16").Bool()
	if hasF16 {
		feats = append(feats, "shader-f16")
	}
	dv, ok := jsx.Await(ad.Call("requestDevice", map[string]any{"requiredLimits": req, "requiredFeatures": feats}))
	if !ok || !dv.Truthy() {
		return nil, errors.New("gpu: requestDevice failed (the adapter refused retrace's limits)")
	}
	dev := wgpu.NewDevice(dv)
	d := &Device{dev: &dev}
	info := ad.Get("info")
	str := func(v js.Value, k string) string {
		if !v.Truthy() || !v.Get(k).Truthy() {
			return ""
		}
		return v.Get(k).String()
	}
	isFallback := ad.Get("isFallbackAdapter").Truthy() || (info.Truthy() && info.Get("isFallbackAdapter").Truthy())
	d.info = Info{
		Name:         str(info, "device"),
		Vendor:       str(info, "vendor"),
		Architecture: str(info, "architecture"),
		Driver:       str(info, "description"),
		Backend:      "browser-webgpu",
		ShaderF16:    hasF16,
		CPU:          isFallback || str(info, "architecture") == "swiftshader",
		Limits:       limitsJS(dv.Get("limits")),
	}
	if d.info.CPU {
		d.info.AdapterType = "cpu"
	}
	ad.Get("features").Call("forEach", js.FuncOf(func(this js.Value, args []js.Value) any {
		d.info.Features = append(d.info.Features, args[0].String())
		return nil
	}))
	d.info.Subgroups = ad.Get("features").Call("has", "subgroups").Bool()
	// Report device loss instead of failing later with obscure errors.
	dv.Get("lost").Call("then", js.FuncOf(func(this js.Value, args []js.Value) any {
		msg := "unknown reason"
		if len(args) > 0 && args[0].Truthy() {
			msg = args[0].Get("message").String()
		}
		d.lost = fmt.Errorf("%w: %s", ErrDeviceLost, msg)
		return nil
	}))
	if err := d.init(); err != nil {
		return nil, err
	}
	return d, nil
}

func limitsJS(l js.Value) Limits {
	u := func(k string) uint64 { return uint64(l.Get(k).Float()) }
	return Limits{
		MaxBufferSize:                     u("maxBufferSize"),
		MaxStorageBufferBindingSize:       u("maxStorageBufferBindingSize"),
		MaxUniformBufferBindingSize:       u("maxUniformBufferBindingSize"),
		MinStorageBufferOffsetAlignment:   uint32(u("minStorageBufferOffsetAlignment")),
		MinUniformBufferOffsetAlignment:   uint32(u("minUniformBufferOffsetAlignment")),
		MaxStorageBuffersPerShaderStage:   uint32(u("maxStorageBuffersPerShaderStage")),
		MaxComputeWorkgroupStorageSize:    uint32(u("maxComputeWorkgroupStorageSize")),
		MaxComputeInvocationsPerWorkgroup: uint32(u("maxComputeInvocationsPerWorkgroup")),
		MaxComputeWorkgroupSizeX:          uint32(u("maxComputeWorkgroupSizeX")),
		MaxComputeWorkgroupSizeY:          uint32(u("maxComputeWorkgroupSizeY")),
		MaxComputeWorkgroupSizeZ:          uint32(u("maxComputeWorkgroupSizeZ")),
		MaxComputeWorkgroupsPerDimension:  uint32(u("maxComputeWorkgroupsPerDimension")),
	}
}

func (d *Device) waitIdle() error {
	d.queue.OnSubmittedWorkDone(func(wgpu.QueueWorkDoneStatus) {})
	return d.lost
}

func (d *Device) mapRead(staging *wgpu.Buffer, n uint64) ([]byte, error) {
	if err := staging.MapAsync(wgpu.MapModeRead, 0, n, func(wgpu.BufferMapAsyncStatus) {}); err != nil {
		return nil, d.fail(err)
	}
	if d.lost != nil {
		return nil, d.lost
	}
	out := staging.GetMappedRange(0, uint(n))
	staging.Unmap()
	return out, nil
}

// Close releases the device.
func (d *Device) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return
	}
	_ = d.flushLocked()
	d.trimLocked()
	d.uniform.Destroy()
	d.dev = nil
}

func endPass(p *wgpu.ComputePassEncoder) error { p.End(); return nil }
