#include "dist/agreement.h"

#include <climits>
#include <cstdint>

#include "common/call_check.h"
#include "common/check.h"

namespace ltx::dist {
namespace {

// Root's status and text (its payload when OK, else its message) to everyone.
Status broadcast_status(MPI_Comm comm, int root, const Status& local, std::string* text) {
  int rank = 0;
  LTX_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  int32_t code = static_cast<int32_t>(local.code());
  LTX_MPI_CHECK(MPI_Bcast(&code, 1, MPI_INT32_T, root, comm));
  std::string bytes;
  if (rank == root) bytes = local.ok() ? (text != nullptr ? *text : std::string()) : local.message();
  int64_t n = static_cast<int64_t>(bytes.size());
  LTX_MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm));
  LTX_CHECK(n >= 0 && n <= INT_MAX, "a verdict of ", n, " bytes is larger than one MPI message");
  bytes.resize(static_cast<size_t>(n));
  if (n > 0) LTX_MPI_CHECK(MPI_Bcast(bytes.data(), static_cast<int>(n), MPI_CHAR, root, comm));
  if (code != 0) {
    return Status(is_known_status_code(code) ? static_cast<StatusCode>(code) : StatusCode::kInternal, bytes);
  }
  if (text != nullptr) *text = std::move(bytes);
  return Status();
}

}  // namespace

Status agree_all_ok(MPI_Comm comm, const Status& local) {
  int rank = 0, size = 1;
  LTX_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  LTX_MPI_CHECK(MPI_Comm_size(comm, &size));
  // The lowest failing rank, or `size` when none failed.
  int mine = local.ok() ? size : rank, first = size;
  LTX_MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm));
  if (first == size) return Status();
  Status theirs = broadcast_status(comm, first, local, nullptr);
  if (!local.ok()) return local;
  return Status(theirs.code(), "rank " + std::to_string(first) + ": " + theirs.message());
}

Status share_root_verdict(MPI_Comm comm, const Status& local, std::string* payload, int root) {
  return broadcast_status(comm, root, local, payload);
}

MPI_Comm split_comm(MPI_Comm comm, int color, int key) {
  LTX_CHECK(color >= 0, "split: color must be non-negative, got ", color);
  MPI_Comm part = MPI_COMM_NULL;
  LTX_MPI_CHECK(MPI_Comm_split(comm, color, key, &part));
  return part;
}

}  // namespace ltx::dist
