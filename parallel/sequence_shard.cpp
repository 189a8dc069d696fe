#include "parallel/sequence_shard.h"

#include "common/check.h"

namespace ltx::parallel {

SequenceShard SequenceShard::make(int64_t seq_len, int world_size, int rank) {
  LTX_CHECK(seq_len >= 0, "sequence length must be non-negative, got ", seq_len);
  LTX_CHECK(world_size >= 1, "group size must be at least 1, got ", world_size);
  LTX_CHECK(rank >= 0 && rank < world_size, "rank ", rank, " outside a group of ", world_size);
  SequenceShard s;
  s.seq_len = seq_len;
  s.world_size = world_size;
  s.rank = rank;
  s.shard_len = (seq_len + world_size - 1) / world_size;
  s.padded_len = s.shard_len * world_size;
  s.begin = s.shard_len * rank;
  s.valid = std::max<int64_t>(0, std::min<int64_t>(s.shard_len, seq_len - s.begin));
  return s;
}

at::Tensor SequenceShard::take(const at::Tensor& full, int64_t dim) const {
  const int64_t d = dim < 0 ? dim + full.dim() : dim;
  LTX_CHECK(d >= 0 && d < full.dim(), "dim ", dim, " out of range for a ", full.dim(), "-d tensor");
  LTX_CHECK(full.size(d) == seq_len, "tensor has ", full.size(d), " rows along dim ", dim,
            ", the sequence has ", seq_len);
  at::Tensor part = full.narrow(d, std::min(begin, seq_len), valid);
  if (valid == shard_len) return part.contiguous();
  auto sizes = full.sizes().vec();
  sizes[d] = shard_len;
  at::Tensor out = at::zeros(sizes, full.options());
  out.narrow(d, 0, valid).copy_(part);
  return out;
}

at::Tensor SequenceShard::key_padding_mask(const at::Device& device) const {
  at::Tensor mask = at::zeros({padded_len}, at::TensorOptions().dtype(at::kBool).device(device));
  mask.narrow(0, 0, seq_len).fill_(true);
  return mask;
}

at::Tensor SequenceShard::unpad(const at::Tensor& padded, int64_t dim) const {
  const int64_t d = dim < 0 ? dim + padded.dim() : dim;
  LTX_CHECK(d >= 0 && d < padded.dim(), "dim ", dim, " out of range");
  LTX_CHECK(padded.size(d) == padded_len, "gathered tensor has ", padded.size(d),
            " rows along dim ", dim, ", expected the padded length ", padded_len);
  return padded.narrow(d, 0, seq_len);
}

}  // namespace ltx::parallel
