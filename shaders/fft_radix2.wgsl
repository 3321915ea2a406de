// One radix-2 Stockham pass of a 1-D FFT along one axis of complex data
// stored as two f32 arrays (real, imaginary). log2(N) passes with s = 1, 2,
// 4, … N/2 transform every line in natural order (no bit reversal); the
// caller ping-pongs between buffers. Each invocation does one butterfly:
//   a = x[q + s·p], b = x[q + s·(p + m)], m = N/(2s), p < m, q < s
//   y[q + s·2p] = a + b,  y[q + s·(2p+1)] = (a − b)·ω^(p·s),  ω = e^(∓2πi/N)
// No barriers and no workgroup memory (fast on CPU adapters).
struct P {
  lines: u32,   // lines in this dispatch
  n: u32,       // axis length N (a power of two)
  s: u32,       // Stockham stride of this pass
  inner: u32,   // line → first element: (line / inner)·outer + line % inner
  outer: u32,
  stride: u32,  // element stride along the axis
  ir: u32,      // element bases of the bindings
  ii: u32,
  or_: u32,
  oi: u32,
  ot: u32,
  nx: u32,      // workgroups along x (flat id = x + y·nx)
  scale: f32,   // output scale (1/N on an inverse transform's last pass)
  sign: f32,    // −1 forward, +1 inverse: ω = cos θ + i·sign·|sin θ|
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xr: array<f32>;
@group(0) @binding(2) var<storage, read> xi: array<f32>;
@group(0) @binding(3) var<storage, read> tw: array<f32>;  // (cos, −sin) of 2πk/N, k < N
@group(0) @binding(4) var<storage, read_write> yr: array<f32>;
@group(0) @binding(5) var<storage, read_write> yi: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let id = (wg.x + wg.y * p.nx) * 256u + li;
  let half = p.n / 2u;
  if (id >= p.lines * half) { return; }
  let line = id / half;
  let t = id % half;
  let q = t % p.s;
  let k = t / p.s;          // p in the formula
  let m = half / p.s;
  let base = (line / p.inner) * p.outer + line % p.inner;
  let ia = base + (q + p.s * k) * p.stride;
  let ib = base + (q + p.s * (k + m)) * p.stride;
  let ar = xr[p.ir + ia];
  let ai = xi[p.ii + ia];
  let br = xr[p.ir + ib];
  let bi = xi[p.ii + ib];
  let wi = 2u * (k * p.s);
  let c = tw[p.ot + wi];
  let sn = -p.sign * tw[p.ot + wi + 1u];  // tw holds −sin; forward keeps it
  let dr = ar - br;
  let di = ai - bi;
  let j0 = base + (q + p.s * 2u * k) * p.stride;
  let j1 = j0 + p.s * p.stride;
  yr[p.or_ + j0] = (ar + br) * p.scale;
  yi[p.oi + j0] = (ai + bi) * p.scale;
  yr[p.or_ + j1] = (dr * c - di * sn) * p.scale;
  yi[p.oi + j1] = (dr * sn + di * c) * p.scale;
}
