#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "common/logging.h"
#include "dist/world.h"

namespace ltx::dist {
namespace {

World& world() {
  static World w(nullptr, nullptr);  // MPI is already up (mpi_test_main); this only reads the group.
  return w;
}

TEST(World, EveryRankKnowsTheGroup) {
  const WorldInfo& info = world().info();
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(info.size, size);
  EXPECT_GE(info.size, 2) << "this suite runs under mpirun -n 2 and -n 4";
  EXPECT_TRUE(info.launched_by_mpirun);
  EXPECT_EQ(log_rank(), info.rank);

  std::vector<int> ranks(info.size), locals(info.size), local_sizes(info.size);
  MPI_Allgather(&info.rank, 1, MPI_INT, ranks.data(), 1, MPI_INT, MPI_COMM_WORLD);
  MPI_Allgather(&info.local_rank, 1, MPI_INT, locals.data(), 1, MPI_INT, MPI_COMM_WORLD);
  MPI_Allgather(&info.local_size, 1, MPI_INT, local_sizes.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::set<int> distinct(ranks.begin(), ranks.end());
  EXPECT_EQ(distinct.size(), static_cast<size_t>(info.size));
  EXPECT_EQ(*distinct.begin(), 0);
  EXPECT_EQ(*distinct.rbegin(), info.size - 1);
  // One node here: local ranks are 0..size-1 too.
  std::set<int> local_set(locals.begin(), locals.end());
  EXPECT_EQ(local_set.size(), static_cast<size_t>(info.size));
  for (int ls : local_sizes) EXPECT_EQ(ls, info.size);
}

}  // namespace
}  // namespace ltx::dist
