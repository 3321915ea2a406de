package nn

import "encoding/json"

// SD15UNetConfig is the UNet config of Stable Diffusion 1.5
// (runwayml/stable-diffusion-v1-5 unet/config.json): 320/640/1280/1280
// channels, 8 heads, cross-attention 768.
func SD15UNetConfig() UNet2DConditionConfig {
	var c UNet2DConditionConfig
	if err := json.Unmarshal([]byte(sd15UNetJSON), &c); err != nil {
		panic(err)
	}
	return c
}

// SD15VAEConfig is the VAE config of Stable Diffusion 1.5.
func SD15VAEConfig() AutoencoderKLConfig {
	var c AutoencoderKLConfig
	if err := json.Unmarshal([]byte(sd15VAEJSON), &c); err != nil {
		panic(err)
	}
	return c
}

const sd15UNetJSON = `{
  "_class_name": "UNet2DConditionModel",
  "act_fn": "silu",
  "attention_head_dim": 8,
  "block_out_channels": [320, 640, 1280, 1280],
  "center_input_sample": false,
  "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1,
  "flip_sin_to_cos": true,
  "freq_shift": 0,
  "in_channels": 4,
  "layers_per_block": 2,
  "mid_block_scale_factor": 1,
  "norm_eps": 1e-05,
  "norm_num_groups": 32,
  "out_channels": 4,
  "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
}`

const sd15VAEJSON = `{
  "_class_name": "AutoencoderKL",
  "act_fn": "silu",
  "block_out_channels": [128, 256, 512, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "in_channels": 3,
  "latent_channels": 4,
  "layers_per_block": 2,
  "norm_num_groups": 32,
  "out_channels": 3,
  "sample_size": 512,
  "scaling_factor": 0.18215,
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
}`
