// Conv2d NCHW fast path for kernels 3 wide with horizontal stride 1 (every
// 3×3 stride-1 conv of SD's UNet and VAE), register-tiled and barrier-free.
// Implicit GEMM (M = output channels, N = output pixels, K = Cin·KH·3)
// without an im2col buffer. Each invocation computes 8 output channels × 8
// consecutive output columns of one output row; the 10 input values of a
// kernel row serve all 3 taps of all 8 columns, so each (ci, kh) step costs
// 10 input + 24 weight loads for 192 multiply-adds (every load is a gather
// on lavapipe, so loads per multiply-add set the speed; 4 channels measured
// slower). The 64 invocations of a workgroup share the 8 channels.
//
// Specialised by: KH, SH (u32), KW = 3 and SW = 1 (for the shared snippets),
// WF16, BF16 (weights / bias f16 packed two per u32, else f32 bits), BOUNDS
// (unused). Parameters and channel-group accumulation are as in
// conv2d_reg.wgsl.
//#include conv2d_f_inc
//#include conv2d_out_inc

// xin loads input element iw of the row starting at rb, or 0 outside.
fn xin(rb: i32, rok: bool, iw: i32) -> f32 {
  let ok = rok && iw >= 0 && iw < i32(p.w);
  return select(0.0, x[u32(select(0, rb + iw, ok))], ok);
}

// store8 writes lo, hi (+ bias) to output channel co, row oh, columns
// ow0 .. ow0+7 of those inside the row.
fn store8(co: u32, oh: u32, ow0: u32, obase: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (co >= p.cout) {
    return;
  }
  let b = biasOf(co);
  let row = obase + co * p.oh * p.ow + oh * p.ow;
  for (var j = 0u; j < 8u; j++) {
    let ow = ow0 + j;
    if (ow < p.ow) {
      var v = b;
      if (j < 4u) {
        v += lo[j];
      } else {
        v += hi[j - 4u];
      }
      put(row + ow, v);
    }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let nq = (p.ow + 7u) / 8u;
  let t = min(wg.x * 64u + li, p.oh * nq - 1u);
  let oh = t / nq;
  let ow0 = (t - oh * nq) * 8u;
  let co = wg.y * 8u;
  let n = wg.z;
  let ihb = i32(oh * SH) - p.pt;
  let iw0 = i32(ow0) - p.pl;
  let last = p.cout - 1u;
  var r0 = p.wb + min(co + 0u, last) * p.krow + p.kofs;
  var r1 = p.wb + min(co + 1u, last) * p.krow + p.kofs;
  var r2 = p.wb + min(co + 2u, last) * p.krow + p.kofs;
  var r3 = p.wb + min(co + 3u, last) * p.krow + p.kofs;
  var r4 = p.wb + min(co + 4u, last) * p.krow + p.kofs;
  var r5 = p.wb + min(co + 5u, last) * p.krow + p.kofs;
  var r6 = p.wb + min(co + 6u, last) * p.krow + p.kofs;
  var r7 = p.wb + min(co + 7u, last) * p.krow + p.kofs;
  var a0 = vec4<f32>(0.0);
  var b0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var b1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var b2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var b3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0);
  var b4 = vec4<f32>(0.0);
  var a5 = vec4<f32>(0.0);
  var b5 = vec4<f32>(0.0);
  var a6 = vec4<f32>(0.0);
  var b6 = vec4<f32>(0.0);
  var a7 = vec4<f32>(0.0);
  var b7 = vec4<f32>(0.0);
  var xc = i32(p.xb + n * p.xns);
  let hw = i32(p.h * p.w);
  for (var ci = 0u; ci < p.cin; ci++) {
    for (var kh = 0u; kh < KH; kh++) {
      let ih = ihb + i32(kh);
      let rok = ih >= 0 && ih < i32(p.h);
      let rb = xc + ih * i32(p.w);
      let x0 = xin(rb, rok, iw0);
      let x1 = xin(rb, rok, iw0 + 1);
      let x2 = xin(rb, rok, iw0 + 2);
      let x3 = xin(rb, rok, iw0 + 3);
      let x4 = xin(rb, rok, iw0 + 4);
      let x5 = xin(rb, rok, iw0 + 5);
      let x6 = xin(rb, rok, iw0 + 6);
      let x7 = xin(rb, rok, iw0 + 7);
      let x8 = xin(rb, rok, iw0 + 8);
      let x9 = xin(rb, rok, iw0 + 9);
      let l0 = vec4<f32>(x0, x1, x2, x3);
      let l1 = vec4<f32>(x1, x2, x3, x4);
      let l2 = vec4<f32>(x2, x3, x4, x5);
      let h0 = vec4<f32>(x4, x5, x6, x7);
      let h1 = vec4<f32>(x5, x6, x7, x8);
      let h2 = vec4<f32>(x6, x7, x8, x9);
      let k = kh * 3u;
      var w0: f32;
      var w1: f32;
      var w2: f32;
      w0 = weight(r0 + k);
      w1 = weight(r0 + k + 1u);
      w2 = weight(r0 + k + 2u);
      a0 += w0 * l0 + w1 * l1 + w2 * l2;
      b0 += w0 * h0 + w1 * h1 + w2 * h2;
      w0 = weight(r1 + k);
      w1 = weight(r1 + k + 1u);
      w2 = weight(r1 + k + 2u);
      a1 += w0 * l0 + w1 * l1 + w2 * l2;
      b1 += w0 * h0 + w1 * h1 + w2 * h2;
      w0 = weight(r2 + k);
      w1 = weight(r2 + k + 1u);
      w2 = weight(r2 + k + 2u);
      a2 += w0 * l0 + w1 * l1 + w2 * l2;
      b2 += w0 * h0 + w1 * h1 + w2 * h2;
      w0 = weight(r3 + k);
      w1 = weight(r3 + k + 1u);
      w2 = weight(r3 + k + 2u);
      a3 += w0 * l0 + w1 * l1 + w2 * l2;
      b3 += w0 * h0 + w1 * h1 + w2 * h2;
      w0 = weight(r4 + k);
      w1 = weight(r4 + k + 1u);
      w2 = weight(r4 + k + 2u);
      a4 += w0 * l0 + w1 * l1 + w2 * l2;
      b4 += w0 * h0 + w1 * h1 + w2 * h2;
      w0 = weight(r5 + k);
      w1 = weight(r5 + k + 1u);
      w2 = weight(r5 + k + 2u);
      a5 += w0 * l0 + w1 * l1 + w2 * l2;
      b5 += w0 * h0 + w1 * h1 + w2 * h2;
      w0 = weight(r6 + k);
      w1 = weight(r6 + k + 1u);
      w2 = weight(r6 + k + 2u);
      a6 += w0 * l0 + w1 * l1 + w2 * l2;
      b6 += w0 * h0 + w1 * h1 + w2 * h2;
      w0 = weight(r7 + k);
      w1 = weight(r7 + k + 1u);
      w2 = weight(r7 + k + 2u);
      a7 += w0 * l0 + w1 * l1 + w2 * l2;
      b7 += w0 * h0 + w1 * h1 + w2 * h2;
    }
    xc += hw;
    r0 += KK;
    r1 += KK;
    r2 += KK;
    r3 += KK;
    r4 += KK;
    r5 += KK;
    r6 += KK;
    r7 += KK;
  }
  if (wg.x * 64u + li >= p.oh * nq) {
    return;
  }
  let obase = p.ob + n * p.ons;
  store8(co + 0u, oh, ow0, obase, a0, b0);
  store8(co + 1u, oh, ow0, obase, a1, b1);
  store8(co + 2u, oh, ow0, obase, a2, b2);
  store8(co + 3u, oh, ow0, obase, a3, b3);
  store8(co + 4u, oh, ow0, obase, a4, b4);
  store8(co + 5u, oh, ow0, obase, a5, b5);
  store8(co + 6u, oh, ow0, obase, a6, b6);
  store8(co + 7u, oh, ow0, obase, a7, b7);
}
