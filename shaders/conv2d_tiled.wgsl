// Conv2d NCHW as an implicit GEMM (M = output channels, N = output pixels,
// K = Cin·KH·KW) with workgroup-memory tiles, for real GPUs. A workgroup of
// 16×16 invocations computes 64 output channels × 64 output pixels; per step
// of 16 along K it stages the weight tile and the gathered input tile (the
// im2col tile exists only in workgroup memory, with zero padding applied as
// it is gathered), then each invocation accumulates 4 channels × 4 pixels.
//
// Specialised by: KH, KW, SH, SW (u32 kernel size and stride), WF16, BF16
// (weights / bias are f16 packed two per u32, else f32 bits), BOUNDS
// (unused). Parameters and channel-group accumulation are as in
// conv2d_reg.wgsl.
//#include conv2d_f_inc
//#include conv2d_out_inc

var<workgroup> ta: array<f32, 1024>; // [16 k][64 channels]
var<workgroup> tb: array<f32, 1024>; // [16 k][64 pixels]

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let ohw = p.oh * p.ow;
  let co0 = wg.y * 64u;
  let p0 = wg.x * 64u;
  let n = wg.z;
  let tx = li % 16u;
  let ty = li / 16u;
  let kdim = p.cin * KK;
  let xs = p.xb + n * p.xns;
  // The input column this invocation gathers (the same for its 4 loads).
  let pb = p0 + li % 64u;
  let pok = pb < ohw;
  let pc = min(pb, ohw - 1u);
  let oh = pc / p.ow;
  let ihb = i32(oh * SH) - p.pt;
  let iwb = i32((pc - oh * p.ow) * SW) - p.pl;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var kt = 0u; kt < kdim; kt += 16u) {
    for (var r = 0u; r < 4u; r++) {
      // weights: k = li % 16, channel m = li / 16 + 16r
      let m = ty + 16u * r;
      let ka = kt + tx;
      var wv = 0.0;
      if (ka < kdim && co0 + m < p.cout) {
        wv = weight(p.wb + (co0 + m) * p.krow + p.kofs + ka);
      }
      ta[tx * 64u + m] = wv;
      // inputs: k = li / 64 + 4r, pixel column li % 64
      let kr = li / 64u + 4u * r;
      let kb = kt + kr;
      var xv = 0.0;
      if (kb < kdim && pok) {
        let ci = kb / KK;
        let rr = kb - ci * KK;
        let kh = rr / KW;
        let ih = ihb + i32(kh);
        let iw = iwb + i32(rr - kh * KW);
        if (ih >= 0 && ih < i32(p.h) && iw >= 0 && iw < i32(p.w)) {
          xv = x[xs + ci * p.h * p.w + u32(ih) * p.w + u32(iw)];
        }
      }
      tb[kr * 64u + li % 64u] = xv;
    }
    workgroupBarrier();
    for (var k = 0u; k < 16u; k++) {
      let wa = vec4<f32>(ta[k * 64u + ty * 4u], ta[k * 64u + ty * 4u + 1u], ta[k * 64u + ty * 4u + 2u], ta[k * 64u + ty * 4u + 3u]);
      let xq = vec4<f32>(tb[k * 64u + tx], tb[k * 64u + tx + 16u], tb[k * 64u + tx + 32u], tb[k * 64u + tx + 48u]);
      a0 += wa.x * xq;
      a1 += wa.y * xq;
      a2 += wa.z * xq;
      a3 += wa.w * xq;
    }
    workgroupBarrier();
  }
  let obase = p.ob + n * p.ons;
  let co = co0 + ty * 4u;
  store(co, p0 + tx, 16u, ohw, obase, a0);
  store(co + 1u, p0 + tx, 16u, ohw, obase, a1);
  store(co + 2u, p0 + tx, 16u, ohw, obase, a2);
  store(co + 3u, p0 + tx, 16u, ohw, obase, a3);
}
