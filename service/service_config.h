// ServiceConfig: every setting of `ltx-worker serve`, with its default, filled
// from flags (then an optional JSON file) in launch/serve_command.cpp and
// checked by validate() in one place. Rank 0 reads it; the engine of other
// ranks only ever sees the plain commands rank 0 derives from requests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/model/placement.h"

namespace ltx::service {

struct ServiceConfig {
  std::string model;                     // folder, checkpoint or builtin:NAME ("" = builtin:ltx-video)
  pipeline::PlacementChoice placement;   // device and dtype per component ("" = the defaults)
  std::string host = "127.0.0.1";        // address the HTTP server binds
  int port = 8080;                       // 0 picks a free port
  int io_threads = 2;                    // HTTP I/O threads on rank 0
  int io_timeout_s = 30;                 // reading a request, writing a response
  size_t max_body_bytes = 8u << 20;      // larger request bodies get 413
  size_t max_queue = 16;                 // queued work items (jobs, chunks, exports) before 429
  size_t max_sessions = 8;               // open streaming sessions before 429
  int max_client_work = 8;               // one client's queued and running items (jobs, stream work) before 429; 0 = no limit
  int64_t max_pixel_frames = 0;          // width * height * frames of one job (or chunk); 0 = sized to the host
  size_t max_finished_jobs = 64;         // finished videos kept for download; the oldest go first
  int session_idle_s = 600;              // a stream unused this long is closed
  int64_t max_kv_bytes_per_rank = 0;     // KV cache budget of all sessions on a rank; 0 = sized to the host, -1 = none
  std::string state_dir;                 // blob folder for large continuation-state tensors ("" = inline only)
  size_t state_inline_bytes = 4u << 20;  // tensors up to this size travel inline (base64) in the state
  int64_t state_max_bytes = 10ll << 30;  // the blob store's size; the oldest blobs go beyond it (0 = no limit)
  int64_t state_max_age_s = 7 * 86400;   // blobs unused this long go (0 = no limit)
  int retry_after_s = 5;                 // the Retry-After of 429 and 503 answers
  double job_slice_s = 1.0;              // a video job pauses after this long when a stream waits (0 = never)
  size_t max_connections = 1024;         // open HTTP connections; past it the longest idle one makes room, else 503
  double fault_timeout_s = 10.0;         // a rank that failed alone waits this long for its peers, then aborts the group
  // Access (service/access_policy.h).
  std::string api_key;                       // "" = none; else every route but /, /index.html, /healthz needs it
  std::vector<std::string> allowed_hosts;    // Host names accepted besides IP literals and localhost ("*" = any)
  std::vector<std::string> allowed_origins;  // cross-site origins allowed (CORS on for them); "" = none

  // Every problem names the setting.
  Status validate() const;

  // Fills the limits left at 0 from the memory the host has, so no admissible
  // request can exhaust it: a job (or chunk) may use half of `available_bytes`
  // on rank 0 at kRank0BytesPerPixelFrame (capped at 1280x720x257), and each
  // of the host's `ranks_on_host` ranks a quarter of its share for KV caches.
  void size_to_host(int64_t available_bytes, int ranks_on_host);

  // Where the parts live on GPUs, their memory bounds the limits that were
  // sized automatically (after the weights are loaded, so they are counted):
  // KV caches, on each rank's denoiser device, get at most a quarter of the
  // smallest free memory among the group's (`denoiser_free_min`); a job's
  // decode, on rank 0's decoder device, at most half of its free memory
  // (`decoder_free`) at kRank0BytesPerPixelFrame. A value <= 0 (a CPU part)
  // changes nothing; explicit limits stay.
  void size_to_devices(int64_t denoiser_free_min, int64_t decoder_free, bool kv_auto, bool pixels_auto);
};

// Rank 0's peak memory per pixel-frame of a job (width * height * frames),
// measured with `ltx-worker generate` on one CPU rank, fp32, decode included
// (docs/benchmarks.md): 113-131 bytes, rounded up.
constexpr int64_t kRank0BytesPerPixelFrame = 140;
constexpr int64_t kMaxPixelFramesCap = 1280ll * 720 * 257;

// MemAvailable of /proc/meminfo in bytes (0 when unknown).
int64_t host_available_memory();

// Free memory of a CUDA device in bytes (cudaMemGetInfo on it); 0 for a CPU
// device or a build without CUDA.
int64_t device_available_memory(const at::Device& device);

// Reads a JSON object of the fields above (same names; the placement's as
// dtype, text_device, text_dtype, denoiser_dtype, decoder_device,
// decoder_dtype, step_graphs, decode_parallel, guidance_parallel, and the
// numbers link_bandwidth_gbps, link_latency_us, and ring_size) over `config`;
// unknown names and wrong types are errors naming the field.
Status merge_service_config_json(const std::string& path, ServiceConfig* config);

}  // namespace ltx::service
