#include "parallel/ulysses_attention.h"

#include <cmath>
#include <limits>

#include "common/check.h"
#include "common/torch_compat.h"

namespace ltx::parallel {
namespace {

// Builds the additive bias [B|1, H', Sq, Skv] in fp32 from the options, for the
// heads [head_begin, head_begin + heads). Returns nullopt when nothing masks.
std::optional<at::Tensor> combined_bias(const AttentionOptions& o, int64_t batch, int64_t prefix,
                                        int64_t head_begin, int64_t heads,
                                        const at::TensorOptions& like) {
  std::optional<at::Tensor> bias;
  if (o.bias.has_value()) {
    at::Tensor b = o.bias->to(like.device()).to(at::kFloat);
    while (b.dim() < 4) b = b.unsqueeze(0);
    if (b.size(1) != 1) b = b.narrow(1, head_begin, heads);
    bias = b;
  }
  if (o.key_padding_mask.has_value()) {
    at::Tensor m = o.key_padding_mask->to(like.device()).to(at::kBool);
    if (m.dim() == 1) m = m.unsqueeze(0);
    LTX_CHECK(m.dim() == 2 && (m.size(0) == batch || m.size(0) == 1),
              "key_padding_mask must be [B, S] or [S], got ", m.sizes());
    if (prefix > 0) {
      m = at::cat({at::ones({m.size(0), prefix}, m.options()), m}, 1);
    }
    at::Tensor pad = at::zeros(m.sizes(), like.dtype(at::kFloat))
                         .masked_fill_(m.logical_not(), -std::numeric_limits<float>::infinity())
                         .view({m.size(0), 1, 1, m.size(1)});
    bias = bias.has_value() ? *bias + pad : pad;
  }
  return bias;
}

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const AttentionOptions& o, int64_t head_begin) {
  // q/k/v: [B, S, h, D] -> [B, h, S, D]
  const int64_t batch = q.size(0), heads = q.size(2), dim = q.size(3);
  at::Tensor kk = k, vv = v;
  int64_t prefix = 0;
  if (o.prefix_k.has_value()) {
    LTX_CHECK(o.prefix_v.has_value(), "prefix_k given without prefix_v");
    LTX_CHECK(o.prefix_k->dim() == 4 && o.prefix_k->size(0) == batch &&
                  o.prefix_k->size(2) == heads && o.prefix_k->size(3) == dim,
              "prefix_k must be [B, P, local heads, D] = [", batch, ", P, ", heads, ", ", dim,
              "], got ", o.prefix_k->sizes());
    LTX_CHECK(o.prefix_v->sizes() == o.prefix_k->sizes(), "prefix_v shape ", o.prefix_v->sizes(),
              " differs from prefix_k ", o.prefix_k->sizes());
    prefix = o.prefix_k->size(1);
    kk = at::cat({o.prefix_k->to(k.dtype()), k}, 1);
    vv = at::cat({o.prefix_v->to(v.dtype()), v}, 1);
  } else {
    LTX_CHECK(!o.prefix_v.has_value(), "prefix_v given without prefix_k");
  }
  auto bias = combined_bias(o, batch, prefix, head_begin, heads, q.options());
  if (o.valid_keys.has_value() && *o.valid_keys < k.size(1)) {
    // Tail padding: attend the prefix and the real keys only (no mask).
    kk = kk.narrow(1, 0, prefix + *o.valid_keys);
    vv = vv.narrow(1, 0, prefix + *o.valid_keys);
    if (bias.has_value() && bias->size(-1) != 1) bias = bias->narrow(-1, 0, prefix + *o.valid_keys);
  }
  const double scale = o.scale.value_or(1.0 / std::sqrt(static_cast<double>(dim)));
  at::Tensor out = compat::scaled_dot_product_attention(q.transpose(1, 2), kk.transpose(1, 2),
                                                        vv.transpose(1, 2), bias, scale);
  return out.transpose(1, 2);  // [B, S, h, D]
}

// q [B, Sq, H, D]; k, v [B, Skv, H, D] (Skv = Sq for self-attention; any
// length for cross-attention).
void check_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  LTX_CHECK(q.dim() == 4, "q must be [B, S, H, D], got ", q.sizes());
  LTX_CHECK(k.dim() == 4 && k.size(0) == q.size(0) && k.size(2) == q.size(2) && k.size(3) == q.size(3) &&
                v.sizes() == k.sizes(),
            "q, k, v shapes do not match: ", q.sizes(), " ", k.sizes(), " ", v.sizes());
}

}  // namespace

Status validate_head_split(int64_t num_heads, int group_size) {
  if (group_size < 1) return invalid_argument_error("group size must be at least 1");
  if (num_heads % group_size != 0) {
    return invalid_argument_error("a group of " + std::to_string(group_size) +
                                  " ranks cannot split " + std::to_string(num_heads) +
                                  " attention heads evenly; use a group size that divides " +
                                  std::to_string(num_heads));
  }
  return Status();
}

UlyssesAttention::UlyssesAttention(dist::Communicator& comm, int64_t num_heads)
    : comm_(comm), num_heads_(num_heads) {
  throw_if_error(validate_head_split(num_heads, comm.size()));
}

at::Tensor UlyssesAttention::sequence_to_heads(const at::Tensor& x) const {
  const int64_t n = comm_.size();
  LTX_CHECK(x.dim() == 4 && x.size(2) == num_heads_, "expected [B, s, ", num_heads_, ", D], got ",
            x.sizes());
  if (n == 1) return x;
  const int64_t b = x.size(0), s = x.size(1), d = x.size(3), h = num_heads_ / n;
  // [B, s, N, h, D] -> [N, B, s, h, D]: chunk i (heads of rank i) goes to rank i.
  at::Tensor send = x.reshape({b, s, n, h, d}).permute({2, 0, 1, 3, 4}).contiguous();
  at::Tensor recv = comm_.all_to_all(send);  // [N(source rank = sequence shard), B, s, h, D]
  return recv.permute({1, 0, 2, 3, 4}).reshape({b, n * s, h, d});
}

std::vector<at::Tensor> UlyssesAttention::sequence_to_heads(const std::vector<at::Tensor>& xs) const {
  LTX_CHECK(!xs.empty(), "sequence_to_heads needs at least one tensor");
  const int64_t n = comm_.size();
  const at::Tensor& x0 = xs.front();
  LTX_CHECK(x0.dim() == 4 && x0.size(2) == num_heads_, "expected [B, s, ", num_heads_, ", D], got ",
            x0.sizes());
  for (const at::Tensor& x : xs) {
    LTX_CHECK(x.sizes() == x0.sizes() && x.scalar_type() == x0.scalar_type(),
              "tensors sent together must share shape and dtype: ", x0.sizes(), " ",
              x0.scalar_type(), " against ", x.sizes(), " ", x.scalar_type());
  }
  if (n == 1) return xs;
  const int64_t m = static_cast<int64_t>(xs.size());
  const int64_t b = x0.size(0), s = x0.size(1), d = x0.size(3), h = num_heads_ / n;
  // One send buffer [N, m, B, s, h, D]: row i carries rank i's heads of every
  // tensor. Each tensor is written into it by one strided copy.
  at::Tensor send = at::empty({n, m, b, s, h, d}, x0.options());
  for (int64_t j = 0; j < m; ++j) {
    send.select(1, j).copy_(xs[j].reshape({b, s, n, h, d}).permute({2, 0, 1, 3, 4}));
  }
  at::Tensor recv = comm_.all_to_all(send);  // [N(source rank = sequence shard), m, B, s, h, D]
  std::vector<at::Tensor> out;
  out.reserve(xs.size());
  for (int64_t j = 0; j < m; ++j) {
    out.push_back(recv.select(1, j).permute({1, 0, 2, 3, 4}).reshape({b, n * s, h, d}));
  }
  return out;
}

at::Tensor UlyssesAttention::heads_to_sequence(const at::Tensor& x) const {
  const int64_t n = comm_.size();
  LTX_CHECK(x.dim() == 4 && x.size(2) == num_heads_ / n && x.size(1) % n == 0,
            "expected [B, N*s, ", num_heads_ / n, ", D], got ", x.sizes());
  if (n == 1) return x;
  const int64_t b = x.size(0), s = x.size(1) / n, h = x.size(2), d = x.size(3);
  // [B, N, s, h, D] -> [N, B, s, h, D]: sequence shard i goes back to rank i.
  at::Tensor send = x.reshape({b, n, s, h, d}).permute({1, 0, 2, 3, 4}).contiguous();
  at::Tensor recv = comm_.all_to_all(send);  // [N(source rank = head group), B, s, h, D]
  return recv.permute({1, 2, 0, 3, 4}).reshape({b, s, n * h, d});
}

at::Tensor UlyssesAttention::forward(const at::Tensor& q, const at::Tensor& k,
                                     const at::Tensor& v, const AttentionOptions& options,
                                     LocalHeadKv* kv_out) const {
  check_qkv(q, k, v);
  if (overlap_ && comm_.size() > 1 && q.size(0) > 1 && q.sizes() == k.sizes() &&
      q.scalar_type() == k.scalar_type() && v.scalar_type() == k.scalar_type()) {
    return forward_pipelined(q, k, v, options, kv_out);
  }
  at::Tensor qh, kh, vh;
  if (q.sizes() == k.sizes() && q.scalar_type() == k.scalar_type() &&
      v.scalar_type() == k.scalar_type()) {
    auto heads = sequence_to_heads(std::vector<at::Tensor>{q, k, v});
    qh = heads[0], kh = heads[1], vh = heads[2];
  } else {
    qh = sequence_to_heads(q);
    if (v.scalar_type() == k.scalar_type()) {
      auto heads = sequence_to_heads(std::vector<at::Tensor>{k, v});
      kh = heads[0], vh = heads[1];
    } else {
      kh = sequence_to_heads(k);
      vh = sequence_to_heads(v);
    }
  }
  if (options.valid_keys.has_value()) {
    LTX_CHECK(*options.valid_keys >= 1 && *options.valid_keys <= kh.size(1), "valid_keys ", *options.valid_keys,
              " outside [1, ", kh.size(1), "] gathered keys");
  }
  if (options.key_padding_mask.has_value()) {
    LTX_CHECK(options.key_padding_mask->size(-1) == kh.size(1), "key_padding_mask covers ",
              options.key_padding_mask->size(-1), " keys, the gathered sequence has ", kh.size(1));
  }
  if (kv_out != nullptr) {
    kv_out->k = kh;
    kv_out->v = vh;
  }
  at::Tensor out = attend(qh, kh, vh, options, first_local_head());
  return heads_to_sequence(out.contiguous());
}

namespace {
// Sample j's share of per-batch options (tensors with a batch dim of B).
AttentionOptions sample_options(const AttentionOptions& o, int64_t j, int64_t batch) {
  AttentionOptions s = o;
  auto take = [&](std::optional<at::Tensor>& t, int64_t batch_dim_rank) {
    if (t.has_value() && t->dim() == batch_dim_rank && t->size(0) == batch) t = t->narrow(0, j, 1);
  };
  take(s.key_padding_mask, 2);
  take(s.bias, 4);
  take(s.prefix_k, 4);
  take(s.prefix_v, 4);
  return s;
}
}  // namespace

at::Tensor UlyssesAttention::forward_pipelined(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                               const AttentionOptions& options, LocalHeadKv* kv_out) const {
  const int64_t n = comm_.size(), b = q.size(0), s = q.size(1), d = q.size(3), h = num_heads_ / n;
  LTX_CHECK(q.size(2) == num_heads_, "expected [B, s, ", num_heads_, ", D], got ", q.sizes());
  // Every sample's q/k/v leave at once, each in its own all-to-all.
  std::vector<at::Tensor> send(b), recv(b), out_send(b), out_recv(b);
  std::vector<std::unique_ptr<dist::PendingCollective>> arriving(b), leaving(b);
  for (int64_t j = 0; j < b; ++j) {
    send[j] = at::empty({n, 3, 1, s, h, d}, q.options());
    int64_t i = 0;
    for (const at::Tensor* x : {&q, &k, &v}) {
      send[j].select(1, i++).copy_(x->narrow(0, j, 1).reshape({1, s, n, h, d}).permute({2, 0, 1, 3, 4}));
    }
    recv[j] = at::empty_like(send[j]);
    arriving[j] = comm_.start_all_to_all(send[j], recv[j]);
  }
  if (options.valid_keys.has_value()) {
    LTX_CHECK(*options.valid_keys >= 1 && *options.valid_keys <= n * s, "valid_keys ", *options.valid_keys,
              " outside [1, ", n * s, "] gathered keys");
  }
  std::vector<at::Tensor> own_k, own_v;
  for (int64_t j = 0; j < b; ++j) {
    arriving[j]->wait();
    auto heads = [&](int64_t i) { return recv[j].select(1, i).permute({1, 0, 2, 3, 4}).reshape({1, n * s, h, d}); };
    at::Tensor qh = heads(0), kh = heads(1), vh = heads(2);
    if (options.key_padding_mask.has_value()) {
      LTX_CHECK(options.key_padding_mask->size(-1) == kh.size(1), "key_padding_mask covers ",
                options.key_padding_mask->size(-1), " keys, the gathered sequence has ", kh.size(1));
    }
    if (kv_out != nullptr) {
      own_k.push_back(kh);
      own_v.push_back(vh);
    }
    at::Tensor out = attend(qh, kh, vh, sample_options(options, j, b), first_local_head());
    // [1, N*s, h, D] -> [N, 1, s, h, D]: sequence shard i goes back to rank i.
    out_send[j] = out.reshape({1, n, s, h, d}).permute({1, 0, 2, 3, 4}).contiguous();
    out_recv[j] = at::empty_like(out_send[j]);
    leaving[j] = comm_.start_all_to_all(out_send[j], out_recv[j]);
  }
  if (kv_out != nullptr) {
    kv_out->k = at::cat(own_k, 0);
    kv_out->v = at::cat(own_v, 0);
  }
  std::vector<at::Tensor> result(b);
  for (int64_t j = 0; j < b; ++j) {
    leaving[j]->wait();
    result[j] = out_recv[j].permute({1, 2, 0, 3, 4}).reshape({1, s, n * h, d});
  }
  return at::cat(result, 0);
}

at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const AttentionOptions& options) {
  check_qkv(q, k, v);
  return attend(q, k, v, options, 0);
}

at::Tensor gather_sequence(dist::Communicator& comm, const SequenceShard& shard,
                           const at::Tensor& local, int64_t dim) {
  const int64_t d = dim < 0 ? dim + local.dim() : dim;
  LTX_CHECK(local.size(d) == shard.shard_len, "local tensor has ", local.size(d),
            " rows along dim ", dim, ", the shard has ", shard.shard_len);
  at::Tensor front = local.movedim(d, 0).contiguous();
  at::Tensor all = comm.all_gather(front).movedim(0, d);
  return shard.unpad(all, d).contiguous();
}

}  // namespace ltx::parallel
