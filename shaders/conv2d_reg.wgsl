// Conv2d NCHW as an implicit GEMM (M = output channels, N = output pixels,
// K = Cin·KH·KW), register-tiled and barrier-free (fast on CPU adapters).
// Each invocation computes 4 output channels × 4 output pixels; the 64
// invocations of a workgroup share the 4 channels and take consecutive
// pixels (pixel j of invocation li is wg.x·256 + j·64 + li), so neighbouring
// lanes read neighbouring inputs. No im2col buffer: input taps are gathered
// with their zero-padding test.
//
// Specialised by: KH, KW, SH, SW (u32 kernel size and stride), WF16, BF16
// (weights / bias are f16 packed two per u32, else f32 bits), BOUNDS (false
// only for 1×1 stride-1 unpadded convs: the input index is the pixel index).
//
// One dispatch covers samples wg.z, output channels [0, cout) of its output
// binding and input channels [0, cin) of its x binding; a channel group of a
// larger input adds into the output (flags bit 1) instead of writing it.
//#include conv2d_f_inc
//#include conv2d_out_inc
//#include conv2d_pix4_inc

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let ohw = p.oh * p.ow;
  let co = wg.y * 4u;
  let n = wg.z;
  let px = pixels(wg, li, ohw);
  let hi = vec4<i32>(i32(p.h));
  let wi = vec4<i32>(i32(p.w));
  let last = p.cout - 1u;
  var r0 = p.wb + min(co, last) * p.krow + p.kofs;
  var r1 = p.wb + min(co + 1u, last) * p.krow + p.kofs;
  var r2 = p.wb + min(co + 2u, last) * p.krow + p.kofs;
  var r3 = p.wb + min(co + 3u, last) * p.krow + p.kofs;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var xc = p.xb + n * p.xns;
  let hw = p.h * p.w;
  for (var ci = 0u; ci < p.cin; ci++) {
    for (var kh = 0u; kh < KH; kh++) {
      let ih = px.ihb + vec4<i32>(i32(kh));
      let rok = (ih >= vec4<i32>(0)) & (ih < hi);
      let rowb = vec4<i32>(i32(xc)) + ih * wi;
      for (var kw = 0u; kw < KW; kw++) {
        let xv = xtaps(xc, px, rok, rowb, kw);
        let k = kh * KW + kw;
        a0 += weight(r0 + k) * xv;
        a1 += weight(r1 + k) * xv;
        a2 += weight(r2 + k) * xv;
        a3 += weight(r3 + k) * xv;
      }
    }
    xc += hw;
    r0 += KK;
    r1 += KK;
    r2 += KK;
    r3 += KK;
  }
  let obase = p.ob + n * p.ons;
  store(co, px.pbase, 64u, ohw, obase, a0);
  store(co + 1u, px.pbase, 64u, ohw, obase, a1);
  store(co + 2u, px.pbase, 64u, ohw, obase, a2);
  store(co + 3u, px.pbase, 64u, ohw, obase, a3);
}
