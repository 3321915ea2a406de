package nn

import "retrace/nn/safetensors"

// Float16 converts f to IEEE half precision bits (round to nearest even),
// saturating to ±Inf beyond the half range.
func Float16(f float32) uint16 { return safetensors.Float16(f) }

// Float16To32 converts half precision bits to float32 (exact).
func Float16To32(h uint16) float32 { return safetensors.Float16To32(h) }

// BFloat16To32 converts bfloat16 bits to float32 (exact).
func BFloat16To32(h uint16) float32 { return safetensors.BFloat16To32(h) }
