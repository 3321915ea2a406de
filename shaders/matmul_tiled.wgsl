// Batched matrix product out[z] = A[z]·B[z] (+ bias) with workgroup-memory
// tiles: 16×16 invocations share 64×16 slices of A and 16×64 slices of B
// and each computes a 4×4 block of the 64×64 output tile (fast on real GPUs;
// the barriers make it slow on CPU adapters, use matmul_reg there).
// Parameters, bindings and specialisation (TA, TB, BF16, BIAS) as in
// matmul_reg.wgsl.
struct P {
  M: u32, N: u32, K: u32, _p0: u32,
  ars: u32, acs: u32, brs: u32, bcs: u32,
  sa: u32, sb: u32, so: u32, _p: u32,
  oa: u32, ob: u32, oo: u32, obias: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

const T = 64u;  // output tile edge
const BK = 16u; // k slice

var<workgroup> As: array<f32, 1024>; // As[k·64 + i] = A(row0+i, k0+k)
var<workgroup> Bs: array<f32, 1024>; // Bs[k·64 + j] = B(k0+k, col0+j)

fn ldB(e: u32) -> f32 {
  if (BF16) {
    return unpack2x16float(b[e >> 1u])[e & 1u];
  }
  return bitcast<f32>(b[e]);
}

fn ldBias(j: u32) -> f32 {
  if (BIAS == 1u) {
    return bitcast<f32>(bias[p.obias + j]);
  }
  return unpack2x16float(bias[(p.obias + j) >> 1u])[(p.obias + j) & 1u];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let z = wg.z;
  let row0 = wg.y * T;
  let col0 = wg.x * T;
  let baseA = p.oa + z * p.sa;
  let baseB = p.ob + z * p.sb;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // Each invocation stages 4 elements of each slice; neighbouring
    // invocations read neighbouring addresses along the contiguous axis.
    for (var e = li; e < T * BK; e += 256u) {
      var i = e / BK;
      var k = e % BK;
      if (TA) { i = e % T; k = e / T; }
      var va = 0.0;
      if (row0 + i < p.M && k0 + k < p.K) {
        va = a[baseA + (row0 + i) * p.ars + (k0 + k) * p.acs];
      }
      As[k * T + i] = va;
      var j = e % T;
      var kb = e / T;
      if (TB) { j = e / BK; kb = e % BK; }
      var vb = 0.0;
      if (col0 + j < p.N && k0 + kb < p.K) {
        vb = ldB(baseB + (k0 + kb) * p.brs + (col0 + j) * p.bcs);
      }
      Bs[kb * T + j] = vb;
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let ia = k * T + lid.y * 4u;
      let ib = k * T + lid.x * 4u;
      let bv = vec4<f32>(Bs[ib], Bs[ib + 1u], Bs[ib + 2u], Bs[ib + 3u]);
      for (var r = 0u; r < 4u; r++) {
        acc[r] += As[ia + r] * bv;
      }
    }
    workgroupBarrier();
  }
  let c0 = col0 + lid.x * 4u;
  var bv = vec4<f32>(0.0);
  if (BIAS != 0u) {
    for (var q = 0u; q < 4u; q++) {
      bv[q] = ldBias(min(c0 + q, p.N - 1u));
    }
  }
  let baseO = p.oo + z * p.so;
  for (var r = 0u; r < 4u; r++) {
    let i = row0 + lid.y * 4u + r;
    if (i >= p.M) { break; }
    let v = acc[r] + bv;
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < p.N) { o[baseO + i * p.N + c0 + q] = v[q]; }
    }
  }
}
