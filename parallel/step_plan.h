// Step plans: how a group of N ranks splits one denoising step, and the
// scaling model that picks between them (docs/scaling.md, the same
// equations as scripts/scaling-model).
//
//   sequence  Ulysses over all N ranks: every rank runs every guidance pass
//             (batched) for its 1/N of the tokens; per layer one all-to-all
//             carries q, k and v to the head shards and one brings the
//             attention output back.
//   guidance  G sub-groups of N/G ranks each run 1/G of the passes with
//             Ulysses inside, and exchange their predictions once per step
//             (an all-gather among the G ranks that hold the same tokens).
//
// Per-rank compute is the same in both (the same tokens x passes per rank),
// so the choice rests on communication; with B passes, S tokens, width D,
// L layers, C latent channels, e bytes per element and a link of bandwidth
// bw and latency alpha:
//
//   layer(n, b)  = 2 alpha + 4 b (S/n) D e (n-1)/n / bw      (0 when n = 1)
//   sequence(N)  = L layer(N, B)
//   guidance(N, G) = L layer(N/G, B/G) + alpha + (G-1) (B/G) (S G/N) C e / bw
//
// A group whose sequence plan is Ulysses x ring (R ring members of U = N/R
// ranks, parallel/ring_attention.h: usp_attention) pays per layer its
// sub-group's all-to-alls and R - 1 shifts of a key and value block:
//
//   ring_layer(N, R, b) = layer(U, b) restricted to U's share (S/N tokens per
//                         rank) + (R-1) (alpha + 2 b (S/R) (D/U) e / bw)
//
// A plan is feasible when G divides N and B, and N/G divides the heads (the
// guidance sub-groups run Ulysses alone).
// Pure arithmetic; no collective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace ltx::parallel {

// A link's all-to-all bandwidth per rank and its latency.
struct LinkFigures {
  double bandwidth_gbps = 0;  // GB/s (1e9 bytes)
  double latency_us = 0;
  // The defaults per communicator backend: "nccl" NVLink 4 (370 GB/s usable
  // per GPU for all-to-all, 10 us, to be confirmed per host); "mpi" this
  // project's CPU host over shared memory (15 GB/s, 6 us: docs/data/
  // comm_bench_cpu_np2.csv). Overridden per host (docs/operations.md).
  static LinkFigures for_backend(const std::string& backend);
  Status validate() const;
};

// One step's sizes.
struct StepShape {
  int64_t tokens = 0;    // S, the latent tokens of the call
  int64_t width = 0;     // D, the transformer's inner dimension
  int64_t layers = 0;    // L
  int64_t channels = 0;  // C, latent channels (the predictions exchanged)
  int64_t heads = 0;     // attention heads (Ulysses splits them)
  int64_t passes = 1;    // B, guidance passes per step (2 for CFG)
  int64_t element_bytes = 4;
  int max_groups = 0;    // the most sub-groups the caller can run; 0: as many as the passes
  int ring = 1;          // the group's sequence plan: Ulysses x a ring of this many members
};

// The ring size a group of `ranks` runs for `heads`: `asked` when given (it
// must divide the ranks, and ranks / asked the heads), else 1 when the heads
// split over the ranks, else the smallest ring that makes them split.
// INVALID_ARGUMENT names --ring-size.
Result<int> resolve_ring_size(int asked, int ranks, int64_t heads);

// auto: the model picks; off: sequence parallel only; on: the guidance plan
// with the most sub-groups the group and the request allow.
enum class GuidanceParallel { kAuto, kOff, kOn };
Result<GuidanceParallel> parse_guidance_parallel(const std::string& text);  // "" means auto
const char* guidance_parallel_name(GuidanceParallel mode);

struct StepPlan {
  int guidance_groups = 1;    // G; 1 is the sequence plan
  double comm_seconds = 0;    // the model's communication time per step
  std::string name() const;   // "sequence" or "guidance x2"
};

// Sub-group counts G (ascending) this group can run for the shape; 1 always
// (the group's own head split is checked when the model loads).
std::vector<int> feasible_guidance_groups(int ranks, const StepShape& shape);
// The model's communication seconds per step for G sub-groups.
double predicted_comm_seconds(int ranks, int groups, const StepShape& shape, const LinkFigures& link);
// The plan for one step: under kAuto the fastest feasible plan (the sequence
// plan on ties), under kOn the most sub-groups feasible, under kOff G = 1.
StepPlan choose_step_plan(int ranks, const StepShape& shape, const LinkFigures& link, GuidanceParallel mode);

}  // namespace ltx::parallel
