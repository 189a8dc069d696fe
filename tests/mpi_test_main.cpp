// main() of the MPI test executables: one World for the process, gtest output
// from rank 0 only (other ranks still report their failures), and every rank's
// verdict combined so mpirun's exit code fails if any rank failed.
#include <gtest/gtest.h>

#include "dist/world.h"

namespace {

class QuietListener : public ::testing::EmptyTestEventListener {
 public:
  explicit QuietListener(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed()) {
      fprintf(stderr, "[rank %d] FAILED %s:%d\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
              r.line_number(), r.summary());
    }
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ltx::dist::World world(&argc, &argv);
  if (!world.is_root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new QuietListener(world.rank()));
  }
  int local = RUN_ALL_TESTS();
  int any = 0;
  MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, world.comm());
  if (world.is_root() && any != 0 && local == 0) {
    fprintf(stderr, "a test failed on another rank (see its [rank r] FAILED lines)\n");
  }
  return any;
}
