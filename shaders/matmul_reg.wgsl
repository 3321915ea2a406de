// Batched matrix product out[z] = A[z]·B[z] (+ bias), register-tiled and
// barrier-free (fast on CPU adapters such as lavapipe and SwiftShader).
// Specialised by:
//   TA, TB   (bool) A is stored [K, M] / B is stored [N, K] (else [M, K] / [K, N])
//   BF16     (bool) B holds f16 halves packed two per u32 (low half first)
//   BIAS     (u32)  0 none, 1 f32 bias [N], 2 f16 bias [N]
//   TM       (u32)  rows per workgroup; every invocation of a workgroup works
//                   on the same rows, so A's loads are workgroup-uniform
//                   (one scalar load + broadcast on SIMD CPU adapters)
//   WG       (u32)  invocations per workgroup, each computing TM rows × 4
//                   adjacent columns
// A(i,k) = a[oa + z·sa + i·ars + k·acs]; B(k,j) = b[ob + z·sb + k·brs + j·bcs]
// where the contiguous stride (acs or ars, bcs or brs) is 1.
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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let z = wg.z;
  let r0 = wg.y * TM;
  let c0 = (wg.x * WG + li) * 4u;
  let baseA = p.oa + z * p.sa;
  let baseB = p.ob + z * p.sb;
  // The contiguous stride is the constant 1 so loads along it are adjacent.
  let ars = select(p.ars, 1u, TA);
  let acs = select(1u, p.acs, TA);
  let brs = select(p.brs, 1u, TB);
  let bcs = select(1u, p.bcs, TB);
  // Out-of-range rows and columns are clamped for loading and skipped when storing.
  var cj: array<u32, 4>;
  for (var q = 0u; q < 4u; q++) {
    cj[q] = baseB + min(c0 + q, p.N - 1u) * bcs;
  }
  var ri: array<u32, TM>;
  for (var r = 0u; r < TM; r++) {
    ri[r] = baseA + min(r0 + r, p.M - 1u) * ars;
  }
  var acc: array<vec4<f32>, TM>;
  let K4 = p.K & ~3u;
  var k = 0u;
  for (; k < K4; k += 4u) {
    // b_t = B(k+t, c0..c0+3)
    var bt: array<vec4<f32>, 4>;
    for (var t = 0u; t < 4u; t++) {
      let kk = (k + t) * brs;
      bt[t] = vec4<f32>(ldB(cj[0] + kk), ldB(cj[1] + kk), ldB(cj[2] + kk), ldB(cj[3] + kk));
    }
    for (var r = 0u; r < TM; r++) {
      let ia = ri[r] + k * acs;
      let va = vec4<f32>(a[ia], a[ia + acs], a[ia + 2u * acs], a[ia + 3u * acs]);
      acc[r] += va.x * bt[0] + va.y * bt[1] + va.z * bt[2] + va.w * bt[3];
    }
  }
  for (; k < p.K; k++) {
    let kk = k * brs;
    let bv = vec4<f32>(ldB(cj[0] + kk), ldB(cj[1] + kk), ldB(cj[2] + kk), ldB(cj[3] + kk));
    for (var r = 0u; r < TM; r++) {
      acc[r] += a[ri[r] + k * acs] * bv;
    }
  }
  var bv = vec4<f32>(0.0);
  if (BIAS != 0u) {
    bv = vec4<f32>(ldBias(min(c0, p.N - 1u)), ldBias(min(c0 + 1u, p.N - 1u)), ldBias(min(c0 + 2u, p.N - 1u)), ldBias(min(c0 + 3u, p.N - 1u)));
  }
  let baseO = p.oo + z * p.so;
  for (var r = 0u; r < TM; r++) {
    let i = r0 + r;
    if (i >= p.M) { break; }
    let v = acc[r] + bv;
    let io = baseO + i * p.N + c0;
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < p.N) { o[io + q] = v[q]; }
    }
  }
}
