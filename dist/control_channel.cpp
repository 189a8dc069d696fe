#include "dist/control_channel.h"

#include <sstream>

#include "common/call_check.h"
#include "common/logging.h"
#include "dist/group_abort.h"

namespace ltx::dist {

ControlChannel::ControlChannel(MPI_Comm parent) {
  LTX_MPI_CHECK(MPI_Comm_dup(parent, &comm_));
  LTX_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  LTX_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  LTX_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

ControlChannel::~ControlChannel() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

ControlChannel::Outcome ControlChannel::execute(const Command& command, const Handler& handler) {
  return execute_raw(encode_command(command, ++sequence_), handler);
}

ControlChannel::Outcome ControlChannel::execute_raw(const std::string& bytes,
                                                    const Handler& handler) {
  LTX_CHECK(rank_ == 0, "only rank 0 sends control commands (this is rank ", rank_, ")");
  Outcome outcome;
  if (bytes.size() > kMaxCommandBytes) {
    outcome.status = invalid_argument_error("control command of " + std::to_string(bytes.size()) +
                                            " bytes exceeds the limit of " +
                                            std::to_string(kMaxCommandBytes));
    return outcome;
  }
  uint64_t length = bytes.size();
  LTX_MPI_CHECK(MPI_Bcast(&length, 1, MPI_UINT64_T, 0, comm_));
  LTX_MPI_CHECK(MPI_Bcast(const_cast<char*>(bytes.data()), static_cast<int>(length), MPI_BYTE, 0, comm_));
  bool shutdown = false;
  Status local = run_locally(bytes, handler, &shutdown);
  settle(local);
  outcome.per_rank = report(local);
  for (size_t r = 0; r < outcome.per_rank.size(); ++r) {
    const Status& s = outcome.per_rank[r];
    if (!s.ok()) {
      outcome.status = r == 0 ? s : s.with_context("rank " + std::to_string(r));
      break;
    }
  }
  return outcome;
}

Status ControlChannel::serve(const Handler& handler) {
  LTX_CHECK(rank_ != 0, "rank 0 drives the group; it does not serve commands");
  while (true) {
    try {
      uint64_t length = 0;
      LTX_MPI_CHECK(MPI_Bcast(&length, 1, MPI_UINT64_T, 0, comm_));
      // Rank 0 never sends more than the limit; a larger length means the
      // stream is corrupt and continuing could hang the group.
      if (length > kMaxCommandBytes) {
        return internal_error("control channel: announced length " + std::to_string(length) +
                              " exceeds the limit; the channel is out of step");
      }
      std::string bytes(length, '\0');
      LTX_MPI_CHECK(MPI_Bcast(bytes.data(), static_cast<int>(length), MPI_BYTE, 0, comm_));
      bool shutdown = false;
      Status local = run_locally(bytes, handler, &shutdown);
      settle(local);
      report(local);
      if (shutdown) return Status();
    } catch (...) {
      return status_from_current_exception().with_context("control channel transport");
    }
  }
}

Status ControlChannel::run_locally(const std::string& bytes, const Handler& handler,
                                   bool* shutdown) {
  auto decoded = decode_command(bytes);
  if (!decoded.ok()) {
    LTX_LOG(kWarn) << "refused control command: " << decoded.status();
    return decoded.status();
  }
  const Command& cmd = decoded->command;
  *shutdown = std::holds_alternative<ShutdownCommand>(cmd);
  LTX_LOG(kTrace) << "control command #" << decoded->sequence << " "
                  << command_type_name(command_type(cmd));
  return catch_to_status([&] { return handler(cmd); });
}

void ControlChannel::settle(const Status& local) {
  if (local.ok()) {
    // Non-blocking on every rank: MPI matches a barrier only with its own kind.
    MPI_Request request = MPI_REQUEST_NULL;
    LTX_MPI_CHECK(MPI_Ibarrier(comm_, &request));
    LTX_MPI_CHECK(MPI_Wait(&request, MPI_STATUS_IGNORE));
    return;
  }
  if (barrier_within(comm_, fault_timeout_)) return;  // the peers ended their command too: report as usual
  std::ostringstream why;
  why << "rank " << rank_ << ": " << local.to_string() << "; the other ranks did not end the command within "
      << fault_timeout_.count() / 1000.0 << " s (they wait in a collective this rank left)";
  abort_group(why.str());
}

std::vector<Status> ControlChannel::report(const Status& local) {
  // Fixed-size part first (code, message length), then the messages.
  int32_t mine[2] = {static_cast<int32_t>(local.code()), static_cast<int32_t>(local.message().size())};
  std::vector<int32_t> all(rank_ == 0 ? 2 * size_ : 0);
  LTX_MPI_CHECK(MPI_Gather(mine, 2, MPI_INT32_T, all.data(), 2, MPI_INT32_T, 0, comm_));
  std::vector<int> counts, displs;
  std::string messages;
  if (rank_ == 0) {
    counts.resize(size_);
    displs.resize(size_);
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      counts[r] = all[2 * r + 1];
      displs[r] = total;
      total += counts[r];
    }
    messages.resize(total);
  }
  LTX_MPI_CHECK(MPI_Gatherv(const_cast<char*>(local.message().data()), mine[1], MPI_CHAR,
                            messages.data(), counts.data(), displs.data(), MPI_CHAR, 0, comm_));
  std::vector<Status> out;
  if (rank_ == 0) {
    for (int r = 0; r < size_; ++r) {
      int32_t code = all[2 * r];
      std::string msg = messages.substr(displs[r], counts[r]);
      out.emplace_back(is_known_status_code(code) ? static_cast<StatusCode>(code) : StatusCode::kInternal, msg);
    }
  }
  return out;
}

}  // namespace ltx::dist
