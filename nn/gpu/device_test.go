package gpu

import (
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	once   sync.Once
	shared *Device
	openEr error
)

func testDevice(t *testing.T) *Device {
	t.Helper()
	once.Do(func() { shared, openEr = Open(Options{}) })
	if openEr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no WebGPU device: %v", openEr)
		}
		t.Skipf("no WebGPU device: %v", openEr)
	}
	return shared
}

const addOne = `
struct P { n: u32, off: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x >= p.n) { return; }
  o[id.x] = a[p.off + id.x] + 1.0;
}`

func TestDeviceInfoAndLimits(t *testing.T) {
	d := testDevice(t)
	info := d.Info()
	require.NotEmpty(t, info.Backend)
	require.NotEmpty(t, info.Name)
	require.GreaterOrEqual(t, info.Limits.MaxStorageBufferBindingSize, uint64(128<<20))
	require.GreaterOrEqual(t, info.Limits.MaxBufferSize, info.Limits.MaxStorageBufferBindingSize)
	require.NotZero(t, info.Limits.MinStorageBufferOffsetAlignment)
}

func TestDeviceRoundTripAndBatching(t *testing.T) {
	d := testDevice(t)
	k, err := d.Kernel("test.addone", addOne, []bool{true, false})
	require.NoError(t, err)
	k2, err := d.Kernel("test.addone", addOne, []bool{true, false})
	require.NoError(t, err)
	require.Same(t, k, k2, "pipeline cache")
	n := 1000
	in := make([]float32, n)
	for i := range in {
		in[i] = float32(i)
	}
	a, err := d.Alloc(uint64(4 * n))
	require.NoError(t, err)
	defer a.Free()
	b, err := d.Alloc(uint64(4 * n))
	require.NoError(t, err)
	defer b.Free()
	require.NoError(t, d.WriteFloat32(a, 0, in))
	before := d.Stats()
	// Ten dispatches ping-pong between a and b in one submission.
	for i := 0; i < 10; i++ {
		src, dst := a, b
		if i%2 == 1 {
			src, dst = b, a
		}
		p := new(Params).U(uint32(n), 0)
		require.NoError(t, d.Dispatch(k, p.Bytes(), []Binding{src.Whole(), dst.Whole()}, uint32((n+63)/64), 1, 1))
	}
	out, err := d.ReadFloat32(a, 0, n)
	require.NoError(t, err)
	for i, v := range out {
		require.Equal(t, float32(i+10), v)
	}
	st := d.Stats()
	require.Equal(t, uint64(10), st.Dispatches-before.Dispatches)
	require.LessOrEqual(t, st.Submits-before.Submits, uint64(2), "dispatches are batched")
}

func TestDeviceBindRangeUnaligned(t *testing.T) {
	d := testDevice(t)
	k, err := d.Kernel("test.addone", addOne, []bool{true, false})
	require.NoError(t, err)
	a, _ := d.Alloc(4 * 500)
	o, _ := d.Alloc(4 * 7)
	defer a.Free()
	defer o.Free()
	in := make([]float32, 500)
	for i := range in {
		in[i] = float32(i)
	}
	require.NoError(t, d.WriteFloat32(a, 0, in))
	bd, base := d.BindRange(a, 101, 7) // element 101 is not 256-byte aligned
	require.Zero(t, bd.Offset%uint64(d.Limits().MinStorageBufferOffsetAlignment))
	p := new(Params).U(7, base)
	require.NoError(t, d.Dispatch(k, p.Bytes(), []Binding{bd, o.Whole()}, 1, 1, 1))
	out, err := d.ReadFloat32(o, 0, 7)
	require.NoError(t, err)
	require.Equal(t, []float32{102, 103, 104, 105, 106, 107, 108}, out)
}

func TestDevicePoolReuse(t *testing.T) {
	d := testDevice(t)
	a, err := d.Alloc(1 << 20)
	require.NoError(t, err)
	a.Free()
	a.Free() // double free is harmless
	live := d.Stats().Live
	b, err := d.Alloc(1<<20 - 100) // same size class
	require.NoError(t, err)
	require.Equal(t, live+sizeClass(1<<20), d.Stats().Live)
	require.Same(t, a.buf, b.buf, "buffer reused from the pool")
	b.Free()
}

func TestDeviceErrors(t *testing.T) {
	d := testDevice(t)
	_, err := d.Alloc(d.Limits().MaxBufferSize + 4)
	require.ErrorContains(t, err, "maxBufferSize")
	_, err = d.Kernel("test.bad", "this is not wgsl", []bool{true})
	require.ErrorContains(t, err, "compiling kernel test.bad")
	k, err := d.Kernel("test.addone", addOne, []bool{true, false})
	require.NoError(t, err)
	a, _ := d.Alloc(16)
	defer a.Free()
	require.ErrorContains(t, d.Dispatch(k, nil, []Binding{a.Whole()}, 1, 1, 1), "takes 2 buffers")
	require.ErrorContains(t, d.Dispatch(k, nil, []Binding{a.Whole(), a.Whole()}, 1<<20, 1, 1), "maxComputeWorkgroupsPerDimension")
	require.ErrorContains(t, d.Dispatch(k, make([]byte, 300), []Binding{a.Whole(), a.Whole()}, 1, 1, 1), "parameters are 300 bytes")
	require.ErrorContains(t, d.Dispatch(k, nil, []Binding{{Buf: a, Offset: 4, Size: 8}, a.Whole()}, 1, 1, 1), "bad range")
	_, err = d.Read(a, 8, 16)
	require.ErrorContains(t, err, "bad read")
	require.ErrorContains(t, d.Write(a, 8, make([]byte, 16)), "overflows")
	b, _ := d.Alloc(16)
	b.Free()
	require.ErrorContains(t, d.Dispatch(k, nil, []Binding{b.Whole(), a.Whole()}, 1, 1, 1), "nil or freed")
}

func TestSizeClass(t *testing.T) {
	for _, tc := range []struct{ n, want uint64 }{{1, 256}, {256, 256}, {257, 512}, {64 << 10, 64 << 10}, {1 << 20, 1 << 20}, {1<<20 + 1, 1<<20 + 1<<17}} {
		require.Equal(t, tc.want, sizeClass(tc.n), "sizeClass(%d)", tc.n)
		require.GreaterOrEqual(t, sizeClass(tc.n), tc.n)
	}
}
