#include "pipeline/model/latents.h"

#include "common/check.h"

namespace ltx::pipeline {

at::Tensor pack_latents(const at::Tensor& latents) {
  LTX_CHECK(latents.dim() == 5, "latents must be [B, C, F, H, W], got ", latents.sizes());
  const int64_t b = latents.size(0), c = latents.size(1);
  return latents.permute({0, 2, 3, 4, 1}).reshape({b, -1, c}).contiguous();
}

at::Tensor unpack_latents(const at::Tensor& packed, const LatentGrid& g) {
  LTX_CHECK(packed.dim() == 3 && packed.size(1) == g.num_tokens(), "packed latents must be [B, ", g.num_tokens(),
            ", C], got ", packed.sizes());
  return packed.reshape({packed.size(0), g.frames, g.height, g.width, packed.size(2)})
      .permute({0, 4, 1, 2, 3})
      .contiguous();
}

}  // namespace ltx::pipeline
