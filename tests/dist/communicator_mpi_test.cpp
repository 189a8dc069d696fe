#include "dist/communicator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

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

// Started all-to-alls (several in flight, waited in another order) move the
// same bytes as blocking ones, on every backend.
TEST(Communicator, StartedAllToAllsEqualBlockingOnes) {
  Communicator& c = comm();
  const int n = c.size();
  std::vector<at::Tensor> in, out, want;
  std::vector<std::unique_ptr<PendingCollective>> pending;
  for (int i = 0; i < 3; ++i) {
    in.push_back((at::arange(n * 6 * (i + 1), at::kFloat) + 1000 * c.rank() + 100 * i).view({n, -1}).to(c.device()));
    want.push_back(c.all_to_all(in.back()));
  }
  for (int i = 0; i < 3; ++i) {
    out.push_back(at::empty_like(in[i]));
    pending.push_back(c.start_all_to_all(in[i], out[i]));
  }
  for (int i = 2; i >= 0; --i) {
    pending[i]->wait();
    EXPECT_TRUE(at::equal(out[i].cpu(), want[i].cpu())) << "collective " << i;
  }
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

// "Did every rank succeed": the lowest failing rank's error reaches every
// rank; a failing rank keeps its own.
TEST(Communicator, AllOkAgreesOnTheFirstFailure) {
  Communicator& c = comm();
  EXPECT_TRUE(c.all_ok(Status()).ok());
  const int last = c.size() - 1;
  Status local = c.rank() == last ? not_found_error("no such file") : Status();
  Status agreed = c.all_ok(local);
  ASSERT_FALSE(agreed.ok());
  EXPECT_EQ(agreed.code(), StatusCode::kNotFound);
  if (c.rank() == last) {
    EXPECT_EQ(agreed.message(), "no such file");
  } else {
    EXPECT_EQ(agreed.message(), "rank " + std::to_string(last) + ": no such file");
  }
  // Two failures: the lower rank's message wins on the others.
  if (c.size() > 2) {
    Status two = c.rank() == 1 ? invalid_argument_error("one") : c.rank() == 2 ? internal_error("two") : Status();
    Status a = c.all_ok(two);
    if (c.rank() == 0) {
      EXPECT_EQ(a.message(), "rank 1: one");
    }
    if (c.rank() == 2) {
      EXPECT_EQ(a.message(), "two");
    }
  }
  c.barrier();
}

// "Rank 0's verdict to everyone": its status, and its payload when OK.
TEST(Communicator, RootVerdictReachesEveryRank) {
  Communicator& c = comm();
  static const char kBytes[] = "model dir\0with a nul";
  const std::string want(kBytes, sizeof(kBytes) - 1);  // the NUL inside travels too
  std::string payload = c.rank() == 0 ? want : "mine";
  Status v = c.root_verdict(Status(), &payload);
  ASSERT_TRUE(v.ok()) << v;
  EXPECT_EQ(payload, want);
  // A refusal on rank 0 is everyone's; payloads elsewhere are untouched.
  std::string other = c.rank() == 0 ? "ignored" : "kept";
  Status refused = c.root_verdict(c.rank() == 0 ? invalid_argument_error("--width must be positive")
                                                : Status(),
                                  &other);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.message(), "--width must be positive");
  if (c.rank() != 0) {
    EXPECT_EQ(other, "kept");
  }
  // A rank other than 0 that failed locally does not change the verdict.
  Status ok = c.root_verdict(c.rank() == 0 ? Status() : internal_error("ignored"));
  EXPECT_TRUE(ok.ok());
}

// Sub-groups: even and odd ranks, reversed by key; collectives stay inside.
TEST(Communicator, SplitFormsIndependentSubgroups) {
  Communicator& c = comm();
  const int color = c.rank() % 2;
  std::unique_ptr<Communicator> part = c.split(color, -c.rank());
  ASSERT_NE(part, nullptr);
  const int members = (c.size() + 1 - color) / 2;
  EXPECT_EQ(part->size(), members);
  EXPECT_EQ(part->device(), c.device());
  EXPECT_STREQ(part->backend_name(), c.backend_name());
  // Ranked by key: the highest world rank of the colour is the sub-group's rank 0.
  at::Tensor mine = at::full({1}, static_cast<int64_t>(c.rank()), at::TensorOptions().dtype(at::kLong).device(c.device()));
  at::Tensor all = part->all_gather(mine).cpu();
  ASSERT_EQ(all.numel(), members);
  for (int i = 0; i < members; ++i) {
    EXPECT_EQ(all[i].item<int64_t>() % 2, color);
    if (i > 0) {
      EXPECT_GT(all[i - 1].item<int64_t>(), all[i].item<int64_t>());
    }
  }
  EXPECT_EQ(all[part->rank()].item<int64_t>(), c.rank());
  // Agreement is per sub-group too.
  Status s = part->all_ok(color == 1 ? cancelled_error("odd ranks stop") : Status());
  EXPECT_EQ(s.ok(), color == 0);
  c.barrier();  // the parent group is still in step
}

}  // namespace
}  // namespace ltx::dist
