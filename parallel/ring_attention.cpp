#include "parallel/ring_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/check.h"
#include "parallel/ulysses_attention.h"

namespace ltx::parallel {

at::Tensor ring_attention(dist::Communicator& ring, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const RingOptions& o) {
  LTX_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
            "ring attention needs q, k, v of one shape [B, s, H, D], got ", q.sizes(), " ", k.sizes(), " ",
            v.sizes());
  const int n = ring.size(), me = ring.rank();
  const int64_t b = q.size(0), s = q.size(1), h = q.size(2), d = q.size(3);
  LTX_CHECK(o.block_valid.empty() || static_cast<int>(o.block_valid.size()) == n, "block_valid has ",
            o.block_valid.size(), " entries for a ring of ", n);
  at::Tensor mask;
  if (o.key_mask.has_value()) {
    mask = o.key_mask->to(q.device()).to(at::kBool);
    if (mask.dim() == 1) mask = mask.unsqueeze(0);
    LTX_CHECK(mask.dim() == 2 && (mask.size(0) == b || mask.size(0) == 1) && mask.size(1) == n * s,
              "key_mask must be [B, ", n * s, "] or [", n * s, "], got ", o.key_mask->sizes());
  }
  const double scale = o.scale.value_or(1.0 / std::sqrt(static_cast<double>(d)));
  const auto f32 = q.options().dtype(at::kFloat);
  at::Tensor qf = q.to(at::kFloat).transpose(1, 2);  // [B, H, s, D]
  at::Tensor out = at::zeros({b, h, s, d}, f32);
  at::Tensor row_max = at::full({b, h, s, 1}, -std::numeric_limits<float>::infinity(), f32);
  at::Tensor row_sum = at::zeros({b, h, s, 1}, f32);

  // The block in hand travels as one tensor [2, B, s, H, D] (keys, values).
  at::Tensor block = at::stack({k, v}).contiguous();
  at::Tensor incoming = at::empty_like(block);
  for (int step = 0; step < n; ++step) {
    const int owner = ((me - step) % n + n) % n;  // whose keys are in hand
    const int64_t valid = o.block_valid.empty() ? s : o.block_valid[owner];
    if (valid > 0) {
      at::Tensor kb = block[0].narrow(1, 0, valid).to(at::kFloat).transpose(1, 2);  // [B, H, valid, D]
      at::Tensor vb = block[1].narrow(1, 0, valid).to(at::kFloat).transpose(1, 2);
      at::Tensor scores = at::matmul(qf, kb.transpose(-2, -1)) * scale;  // [B, H, s, valid]
      if (mask.defined()) {
        at::Tensor m = mask.narrow(1, owner * s, valid).view({mask.size(0), 1, 1, valid});
        scores = scores.masked_fill(m.logical_not(), -std::numeric_limits<float>::infinity());
      }
      // Online softmax: rescale what we have to the new running maximum.
      at::Tensor new_max = at::maximum(row_max, std::get<0>(scores.max(-1, /*keepdim=*/true)));
      const at::Tensor finite = at::isfinite(new_max);
      at::Tensor safe_max = at::where(finite, new_max, at::zeros_like(new_max));
      at::Tensor p = at::exp(scores - safe_max);  // exp(-inf) = 0 for masked keys
      at::Tensor keep = at::where(finite, at::exp(row_max - safe_max), at::zeros_like(row_max));
      row_sum = row_sum * keep + p.sum(-1, /*keepdim=*/true);
      out = out * keep + at::matmul(p, vb);
      row_max = new_max;
    }
    if (step + 1 < n) {
      ring.send_recv(block, (me + 1) % n, incoming, (me - 1 + n) % n);
      std::swap(block, incoming);
    }
  }
  // Rows with no attended key have a zero sum: they stay zero.
  at::Tensor result = at::where(row_sum > 0, out / row_sum, at::zeros_like(out));
  return result.transpose(1, 2).to(q.scalar_type()).contiguous();  // [B, s, H, D]
}

at::Tensor usp_attention(dist::Communicator& ulysses, dist::Communicator& ring, const SequenceShard& shard,
                         const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::optional<double> scale) {
  const int u = ulysses.size(), r = ring.size();
  LTX_CHECK(shard.world_size == u * r, "the shard is over ", shard.world_size, " ranks, the grid is ", u, " x ", r);
  UlyssesAttention heads(ulysses, q.size(2));
  auto gathered = heads.sequence_to_heads(std::vector<at::Tensor>{q, k, v});  // [B, U*s, H/U, D]
  // The ring's blocks are the sub-groups' gathered sequences: block j holds
  // the padded positions [j*U*s, (j+1)*U*s), of which the real ones count.
  RingOptions o;
  o.scale = scale;
  const int64_t block_len = static_cast<int64_t>(u) * shard.shard_len;
  for (int j = 0; j < r; ++j) {
    o.block_valid.push_back(std::clamp<int64_t>(shard.seq_len - j * block_len, 0, block_len));
  }
  at::Tensor out = ring_attention(ring, gathered[0], gathered[1], gathered[2], o);
  return heads.heads_to_sequence(out.contiguous());
}

}  // namespace ltx::parallel
