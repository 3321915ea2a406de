// Shared by softmax and softmax_row: parameters and bindings.
struct P {
  rows: u32,  // rows in this dispatch
  d: u32,     // row length
  nx: u32,    // workgroups along x (flat id = x + y·nx)
  ox: u32,    // element base of x / out inside their bindings
  oo: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;

