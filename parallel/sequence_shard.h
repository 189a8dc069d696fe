// SequenceShard: the contiguous slice of a token sequence one rank holds.
//
// A sequence of S tokens is split into N equal shards of ceil(S/N) tokens; the
// tail is zero-padded so the padded length P = N*ceil(S/N) divides. Rank r holds
// padded positions [r*P/N, (r+1)*P/N); its first `valid` tokens are real.
// Padding never leaks: attention masks padded keys (key_padding_mask) and
// gathers drop padded rows (unpad). Pure value type; no communication here,
// safe anywhere.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace ltx::parallel {

struct SequenceShard {
  int64_t seq_len = 0;     // S: real tokens in the whole sequence
  int64_t padded_len = 0;  // P: S rounded up to a multiple of world_size
  int64_t shard_len = 0;   // P / N: tokens (real + padding) on each rank
  int64_t begin = 0;       // first padded position of this rank
  int64_t valid = 0;       // real tokens on this rank (0 .. shard_len)
  int world_size = 1;
  int rank = 0;

  // Throws ltx::Error (INVALID_ARGUMENT) for S < 0, N < 1 or rank outside [0, N).
  static SequenceShard make(int64_t seq_len, int world_size, int rank);

  int64_t padding() const { return shard_len - valid; }
  int64_t end() const { return begin + shard_len; }

  // This rank's rows of `full` along `dim` (full has S rows there), zero-padded
  // to shard_len rows. Returns a contiguous tensor.
  at::Tensor take(const at::Tensor& full, int64_t dim) const;

  // [P] bool, true for real tokens of the whole padded sequence: the key mask
  // attention over the gathered (padded) sequence needs.
  at::Tensor key_padding_mask(const at::Device& device) const;

  // Drops the padding of a gathered sequence: `padded` has P rows along `dim`,
  // the result its first S.
  at::Tensor unpad(const at::Tensor& padded, int64_t dim) const;
};

}  // namespace ltx::parallel
