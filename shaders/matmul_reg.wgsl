// Batched matrix product out[z] = A[z]·B[z] (+ bias): register-tiled,
// barrier-free, vec4 loads (the fast kernel on CPU adapters such as lavapipe
// and SwiftShader, where every storage load costs a loop over SIMD lanes, so
// the work per loaded vec4 is what counts). An 8×8 workgroup covers a 64×64
// output tile; each invocation keeps an 8×8 block in 16 vec4 accumulators.
// Operands must be vec4-aligned: the contiguous axis of A and B a multiple
// of 4 (of 8 for f16 B), element bases oa, ob likewise, and K a multiple of
// the k step KS; other shapes use matmul_reg_scalar.wgsl. Parameters and bindings as in matmul_reg_scalar.wgsl.
// Specialised by:
//   TA, TB (bool) A is stored [K, M] / B is stored [N, K] (else [M, K] / [K, N])
//   BF16   (bool) B holds f16 halves packed two per u32 (low half first)
//   BIAS   (u32)  0 none, 1 f32 bias [N], 2 f16 bias [N]
//   KS, EB (u32)  k values per step and B elements per vec4<u32>: 4 for f32
//                 B, 8 for f16 B (one vec4<u32> holds 8 halves)
struct P {
  M: u32, N: u32, K: u32, _p0: u32,
  ars: u32, acs: u32, brs: u32, bcs: u32,
  sa: u32, sb: u32, so: u32, _p: u32,
  oa: u32, ob: u32, oo: u32, obias: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>; // 4 f32 or 8 f16
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

fn ldBias(j: u32) -> f32 {
  if (BIAS == 1u) {
    return bitcast<f32>(bias[p.obias + j]);
  }
  return unpack2x16float(bias[(p.obias + j) >> 1u])[(p.obias + j) & 1u];
}

// loadA sets ar[r] = A(r0+r, k .. k+3) for r < 8.
fn loadA(ar: ptr<function, array<vec4<f32>, 8>>, ia: ptr<function, array<u32, 8>>, k: u32) {
  if (TA) { // A(i .. i+3, kk) is contiguous
    for (var kk = 0u; kk < 4u; kk++) {
      for (var g = 0u; g < 2u; g++) {
        let v = a[(*ia)[g] + (k + kk) * (p.acs / 4u)];
        for (var q = 0u; q < 4u; q++) {
          (*ar)[4u * g + q][kk] = v[q];
        }
      }
    }
  } else { // A(i, k .. k+3) is contiguous
    for (var r = 0u; r < 8u; r++) {
      (*ar)[r] = a[(*ia)[r] + k / 4u];
    }
  }
}

// loadB sets br[kk·2 + h] = B(k+kk, c0+4h .. c0+4h+3) for kk < 4 (f32 B).
fn loadB(br: ptr<function, array<vec4<f32>, 8>>, ib: ptr<function, array<u32, 8>>, k: u32) {
  if (TB) { // B(k .. k+3, j) is contiguous
    for (var j = 0u; j < 8u; j++) {
      let v = bitcast<vec4<f32>>(b[(*ib)[j] + k / 4u]);
      for (var kk = 0u; kk < 4u; kk++) {
        (*br)[kk * 2u + j / 4u][j % 4u] = v[kk];
      }
    }
  } else { // B(kk, j .. j+3) is contiguous
    for (var kk = 0u; kk < 4u; kk++) {
      for (var h = 0u; h < 2u; h++) {
        (*br)[kk * 2u + h] = bitcast<vec4<f32>>(b[(*ib)[h] + (k + kk) * (p.brs / 4u)]);
      }
    }
  }
}

// loadB16 is loadB for f16 B over 8 k values: br0 gets k .. k+3, br1 k+4 .. k+7.
fn loadB16(br0: ptr<function, array<vec4<f32>, 8>>, br1: ptr<function, array<vec4<f32>, 8>>,
           ib: ptr<function, array<u32, 8>>, k: u32) {
  if (TB) { // B(k .. k+7, j) is one vec4<u32>
    for (var j = 0u; j < 8u; j++) {
      let w = b[(*ib)[j] + k / 8u];
      let lo = vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
      let hi = vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
      for (var kk = 0u; kk < 4u; kk++) {
        (*br0)[kk * 2u + j / 4u][j % 4u] = lo[kk];
        (*br1)[kk * 2u + j / 4u][j % 4u] = hi[kk];
      }
    }
  } else { // B(kk, c0 .. c0+7) is one vec4<u32>
    for (var kk = 0u; kk < 4u; kk++) {
      let w0 = b[(*ib)[0] + (k + kk) * (p.brs / 8u)];
      (*br0)[kk * 2u] = vec4<f32>(unpack2x16float(w0.x), unpack2x16float(w0.y));
      (*br0)[kk * 2u + 1u] = vec4<f32>(unpack2x16float(w0.z), unpack2x16float(w0.w));
      let w1 = b[(*ib)[0] + (k + 4u + kk) * (p.brs / 8u)];
      (*br1)[kk * 2u] = vec4<f32>(unpack2x16float(w1.x), unpack2x16float(w1.y));
      (*br1)[kk * 2u + 1u] = vec4<f32>(unpack2x16float(w1.z), unpack2x16float(w1.w));
    }
  }
}

// fma4 adds the 8×8 block A(r0.., k .. k+3)·B(k .. k+3, c0..) to acc.
fn fma4(acc: ptr<function, array<vec4<f32>, 16>>, ar: ptr<function, array<vec4<f32>, 8>>,
        br: ptr<function, array<vec4<f32>, 8>>) {
  for (var kk = 0u; kk < 4u; kk++) {
    for (var r = 0u; r < 8u; r++) {
      let x = (*ar)[r][kk];
      (*acc)[r * 2u] += x * (*br)[kk * 2u];
      (*acc)[r * 2u + 1u] += x * (*br)[kk * 2u + 1u];
    }
  }
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let z = wg.z;
  let r0 = wg.y * 64u + lid.y * 8u;
  let c0 = wg.x * 64u + lid.x * 8u;
  let baseA = p.oa + z * p.sa;
  let baseB = p.ob + z * p.sb;
  // Rows and columns past the edge are clamped for loading, skipped on store.
  // Vector indices of the first loads, hoisted out of the k loop:
  //   ia[r] = A(r0+r, 0) (ia[g] = A(r0+4g, 0) when TA); ib[j] = B(0, c0+j)
  //   when TB, else ib[h] = B(0, c0+4h) (f32) or ib[0] = B(0, c0) (f16).
  var ia: array<u32, 8>;
  var ib: array<u32, 8>;
  for (var r = 0u; r < 8u; r++) {
    if (TA) {
      ia[r] = (baseA + min(r0 + 4u * r, p.M - 4u)) / 4u;
    } else {
      ia[r] = (baseA + min(r0 + r, p.M - 1u) * p.ars) / 4u;
    }
    if (TB) {
      ib[r] = (baseB + min(c0 + r, p.N - 1u) * p.bcs) / EB;
    } else if (BF16) {
      ib[r] = (baseB + min(c0, p.N - 8u)) / 8u;
    } else {
      ib[r] = (baseB + min(c0 + 4u * r, p.N - 4u)) / 4u;
    }
  }
  var acc: array<vec4<f32>, 16>; // acc[r·2 + h] = out(r0+r, c0+4h .. c0+4h+3)
  for (var k = 0u; k < p.K; k += KS) {
    var ar0: array<vec4<f32>, 8>;
    var br0: array<vec4<f32>, 8>;
    loadA(&ar0, &ia, k);
    if (BF16) { // one f16 load covers 8 k values: two steps of 4
      var ar1: array<vec4<f32>, 8>;
      var br1: array<vec4<f32>, 8>;
      loadA(&ar1, &ia, k + 4u);
      loadB16(&br0, &br1, &ib, k);
      fma4(&acc, &ar0, &br0);
      fma4(&acc, &ar1, &br1);
    } else {
      loadB(&br0, &ib, k);
      fma4(&acc, &ar0, &br0);
    }
  }
  let baseO = p.oo + z * p.so;
  for (var h = 0u; h < 2u; h++) {
    var bv = vec4<f32>(0.0);
    if (BIAS != 0u) {
      for (var q = 0u; q < 4u; q++) {
        bv[q] = ldBias(min(c0 + 4u * h + q, p.N - 1u));
      }
    }
    for (var r = 0u; r < 8u; r++) {
      let i = r0 + r;
      let v = acc[r * 2u + h] + bv;
      for (var q = 0u; q < 4u; q++) {
        let j = c0 + 4u * h + q;
        if (i < p.M && j < p.N) { o[baseO + i * p.N + j] = v[q]; }
      }
    }
  }
}
