#include "dist/communicator.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/check.h"
#include "dist/world.h"
#include "tests/mpi_test_util.h"

namespace ltx::dist {
namespace {

// The backend under test: LTX_TEST_BACKEND=mpi (default) or nccl (on a GPU machine).
Communicator& comm() { return testing::mpi_group(); }

// Rank r's block: values that encode (rank, destination, position) exactly.
at::Tensor block(int rank, int dest, int64_t rows, at::ScalarType dtype) {
  at::Tensor t = at::arange(rows * 3, at::kLong).view({rows, 3}) + rank * 1000 + dest * 100;
  return t.to(dtype).to(comm().device());
}

class Collectives : public ::testing::TestWithParam<at::ScalarType> {};

TEST_P(Collectives, MoveTheRightBytes) {
  const at::ScalarType dtype = GetParam();
  Communicator& c = comm();
  const int n = c.size(), r = c.rank();
  const int64_t rows = 5;

  // broadcast from every root
  for (int root = 0; root < n; ++root) {
    at::Tensor t = block(r, 0, rows, dtype);
    c.broadcast(t, root);
    EXPECT_TRUE(at::equal(t.cpu(), block(root, 0, rows, dtype).cpu())) << "root " << root;
  }
  // all_to_all: rows for rank d come from block(r, d)
  std::vector<at::Tensor> parts;
  for (int d = 0; d < n; ++d) parts.push_back(block(r, d, rows, dtype));
  at::Tensor out = c.all_to_all(at::cat(parts, 0));
  ASSERT_EQ(out.size(0), n * rows);
  for (int src = 0; src < n; ++src) {
    EXPECT_TRUE(at::equal(out.narrow(0, src * rows, rows).cpu(), block(src, r, rows, dtype).cpu()))
        << "from " << src;
  }
  // all_gather and gather
  at::Tensor all = c.all_gather(block(r, 0, rows, dtype));
  at::Tensor gathered = c.gather(block(r, 0, rows, dtype), n - 1);
  EXPECT_EQ(gathered.defined(), r == n - 1);
  for (int src = 0; src < n; ++src) {
    at::Tensor want = block(src, 0, rows, dtype).cpu();
    EXPECT_TRUE(at::equal(all.narrow(0, src * rows, rows).cpu(), want));
    if (gathered.defined()) {
      EXPECT_TRUE(at::equal(gathered.narrow(0, src * rows, rows).cpu(), want));
    }
  }
  c.barrier();
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Collectives,
                         ::testing::Values(at::kFloat, at::kBFloat16, at::kLong),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

TEST(Communicator, NonContiguousInputsAndInPlaceBroadcast) {
  Communicator& c = comm();
  at::Tensor base = at::arange(4 * c.size() * 6, at::kFloat).view({6, 4 * c.size()}).to(c.device());
  at::Tensor strided = base.t();  // [4N, 6], non-contiguous
  ASSERT_FALSE(strided.is_contiguous());
  at::Tensor out = c.all_to_all(strided);
  EXPECT_EQ(out.sizes(), strided.sizes());
  // Every rank sent the same tensor, so chunk i of the output is chunk r of the input.
  for (int src = 0; src < c.size(); ++src) {
    EXPECT_TRUE(at::equal(out.narrow(0, src * 4, 4), strided.narrow(0, c.rank() * 4, 4)));
  }
  at::Tensor view = at::zeros({3, 4}, at::TensorOptions().device(c.device())).t();  // non-contiguous
  if (c.rank() == 0) view.copy_(at::arange(12, at::kFloat).view({4, 3}));
  c.broadcast(view, 0);
  EXPECT_TRUE(at::equal(view.cpu(), at::arange(12, at::kFloat).view({4, 3})));
}

TEST(Communicator, LargeMessage) {
  Communicator& c = comm();
  // 8 MiB per rank of bf16, all-to-all and back.
  at::Tensor x = at::randn({c.size() * 1024, 4096}, at::TensorOptions().dtype(at::kBFloat16).device(c.device()));
  at::Tensor there = c.all_to_all(x);
  at::Tensor back = c.all_to_all(there);
  EXPECT_TRUE(at::equal(back, x));
}

TEST(Communicator, CallerErrorsAreCleanAndLocal) {
  Communicator& c = comm();
  // Checked before any collective, identically on every rank.
  at::Tensor odd = at::zeros({c.size() + 1, 2}, at::TensorOptions().device(c.device()));
  if (c.size() > 1) {
    EXPECT_THROW(c.all_to_all(odd), Error);
  }
  at::Tensor t = at::zeros({2}, at::TensorOptions().device(c.device()));
  EXPECT_THROW(c.broadcast(t, c.size()), Error);
  EXPECT_THROW(c.broadcast(t, -1), Error);
  at::Tensor in = at::zeros({c.size() * 2, 3}, at::TensorOptions().device(c.device()));
  at::Tensor wrong = at::zeros({c.size() * 2, 4}, at::TensorOptions().device(c.device()));
  EXPECT_THROW(c.all_to_all_into(in, wrong), Error);
  c.barrier();  // still in step
}

TEST(Communicator, AllToAllIntoReusesTheCallersBuffer) {
  Communicator& c = comm();
  at::Tensor in = (at::arange(c.size() * 6, at::kFloat) + 100 * c.rank()).view({c.size() * 2, 3}).to(c.device());
  at::Tensor out = at::empty_like(in);
  void* before = out.data_ptr();
  c.all_to_all_into(in, out);
  EXPECT_EQ(out.data_ptr(), before);
  EXPECT_TRUE(at::equal(out, c.all_to_all(in)));
}

}  // namespace
}  // namespace ltx::dist
