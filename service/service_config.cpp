#include "service/service_config.h"

#include <boost/asio/ip/address.hpp>
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/cuda_device.h"

namespace ltx::service {

Status ServiceConfig::validate() const {
  auto bad = [](const std::string& what) { return invalid_argument_error(what); };
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec) return bad("host must be an IP address, got '" + host + "' (" + ec.message() + ")");
  if (port < 0 || port > 65535) return bad("port must be in [0, 65535], got " + std::to_string(port));
  if (io_threads < 1 || io_threads > 64) return bad("io_threads must be in [1, 64]");
  if (io_timeout_s < 1) return bad("io_timeout_s must be at least 1");
  if (max_body_bytes < 1024) return bad("max_body_bytes must be at least 1024");
  if (max_queue < 1) return bad("max_queue must be at least 1");
  if (max_sessions < 1) return bad("max_sessions must be at least 1");
  if (max_client_work < 0) return bad("max_client_work must be >= 0 (0 = no per-client limit)");
  if (max_pixel_frames != 0 && max_pixel_frames < 32 * 32 * 9) {
    return bad("max_pixel_frames must be 0 (sized to the host) or at least 32*32*9");
  }
  if (max_finished_jobs < 1) return bad("max_finished_jobs must be at least 1");
  if (session_idle_s < 1) return bad("session_idle_s must be at least 1");
  if (max_kv_bytes_per_rank < -1) return bad("max_kv_bytes_per_rank must be >= 0, or -1 for no budget");
  if (retry_after_s < 1) return bad("retry_after_s must be at least 1");
  if (!(fault_timeout_s >= 0.1 && fault_timeout_s <= 3600)) return bad("fault_timeout_s must be between 0.1 and 3600 seconds");
  if (!(job_slice_s >= 0)) return bad("job_slice_s must be >= 0");
  if (state_max_bytes < 0) return bad("state_max_bytes must be >= 0");
  if (state_max_age_s < 0) return bad("state_max_age_s must be >= 0");
  if (max_connections < 16) return bad("max_connections must be at least 16");
  if (!api_key.empty() && api_key.size() < 16) return bad("api_key must have at least 16 characters");
  for (char ch : api_key) {
    if (ch <= ' ' || ch > '~') return bad("api_key must be printable ASCII without spaces");
  }
  for (const auto& h : allowed_hosts) {
    if (h.empty() || h.find_first_of(" /:") != std::string::npos) {
      return bad("allowed_hosts: '" + h + "' is not a host name (no scheme, port or path)");
    }
  }
  for (const auto& o : allowed_origins) {
    if (!(o.rfind("http://", 0) == 0 || o.rfind("https://", 0) == 0) || o.back() == '/') {
      return bad("allowed_origins: '" + o + "' must be scheme://host[:port] with no path (e.g. https://app.example.com)");
    }
  }
  return placement.validate();
}

void ServiceConfig::size_to_host(int64_t available_bytes, int ranks_on_host) {
  if (max_pixel_frames == 0) {
    max_pixel_frames = available_bytes > 0
                           ? std::max<int64_t>(32 * 32 * 9, std::min(kMaxPixelFramesCap, available_bytes / 2 / kRank0BytesPerPixelFrame))
                           : kMaxPixelFramesCap;
  }
  if (max_kv_bytes_per_rank == 0) {
    max_kv_bytes_per_rank = available_bytes > 0 ? std::max<int64_t>(1, available_bytes / std::max(1, ranks_on_host) / 4) : -1;
  }
}

void ServiceConfig::size_to_devices(int64_t denoiser_free_min, int64_t decoder_free, bool kv_auto, bool pixels_auto) {
  if (kv_auto && denoiser_free_min > 0) {
    const int64_t gpu = std::max<int64_t>(1, denoiser_free_min / 4);
    max_kv_bytes_per_rank = max_kv_bytes_per_rank > 0 ? std::min(max_kv_bytes_per_rank, gpu) : gpu;
  }
  if (pixels_auto && decoder_free > 0) {
    const int64_t gpu = std::max<int64_t>(32 * 32 * 9, decoder_free / 2 / kRank0BytesPerPixelFrame);
    max_pixel_frames = max_pixel_frames > 0 ? std::min(max_pixel_frames, gpu) : std::min(kMaxPixelFramesCap, gpu);
  }
}

int64_t device_available_memory(const at::Device& device) {
#ifdef LTX_WITH_CUDA
  if (device.is_cuda()) {
    size_t free_bytes = 0, total_bytes = 0;
    ltx::CudaDeviceGuard guard(device.has_index() ? device.index() : 0);
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) return static_cast<int64_t>(free_bytes);
    cudaGetLastError();
  }
#else
  (void)device;
#endif
  return 0;
}

int64_t host_available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

Status merge_service_config_json(const std::string& path, ServiceConfig* c) {
  std::ifstream in(path);
  if (!in) return not_found_error("config file " + path + " cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument_error("config file " + path + " is not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    auto need = [&](bool ok, const char* type) -> Status {
      return ok ? Status() : invalid_argument_error("config file " + path + ": " + k + " must be " + type);
    };
    Status s;
    std::string* text = k == "host"             ? &c->host
                        : k == "model"          ? &c->model
                        : k == "dtype"          ? &c->placement.dtype
                        : k == "text_device"    ? &c->placement.text_device
                        : k == "text_dtype"     ? &c->placement.text_dtype
                        : k == "denoiser_dtype" ? &c->placement.denoiser_dtype
                        : k == "decoder_device" ? &c->placement.decoder_device
                        : k == "decoder_dtype"  ? &c->placement.decoder_dtype
                        : k == "step_graphs"    ? &c->placement.step_graphs
                        : k == "decode_parallel"   ? &c->placement.decode_parallel
                        : k == "guidance_parallel" ? &c->placement.guidance_parallel
                                                : nullptr;
    if (k == "api_key") text = &c->api_key;
    if (text != nullptr) {
      if ((s = need(v.is_string(), "a string")).ok()) *text = v.get<std::string>();
    } else if (k == "link_bandwidth_gbps" || k == "link_latency_us") {
      // The link the scaling model assumes (docs/scaling.md); numbers.
      if ((s = need(v.is_number(), "a number")).ok()) {
        std::ostringstream number;
        number.precision(17);
        number << v.get<double>();
        (k == "link_bandwidth_gbps" ? c->placement.link_bandwidth_gbps : c->placement.link_latency_us) = number.str();
      }
    } else if (k == "ring_size") {
      // "auto" or a whole number.
      if ((s = need(v.is_string() || v.is_number_integer(), "\"auto\" or a whole number")).ok()) {
        c->placement.ring_size = v.is_string() ? v.get<std::string>() : std::to_string(v.get<int64_t>());
      }
    } else if (k == "state_dir") {
      if ((s = need(v.is_string(), "a string")).ok()) c->state_dir = v.get<std::string>();
    } else if (k == "port" || k == "io_threads" || k == "io_timeout_s" || k == "session_idle_s" || k == "retry_after_s" ||
               k == "max_client_work") {
      if ((s = need(v.is_number_integer(), "an integer")).ok()) {
        int x = v.get<int>();
        if (k == "max_client_work") c->max_client_work = x;
        if (k == "port") c->port = x;
        if (k == "io_threads") c->io_threads = x;
        if (k == "io_timeout_s") c->io_timeout_s = x;
        if (k == "session_idle_s") c->session_idle_s = x;
        if (k == "retry_after_s") c->retry_after_s = x;
      }
    } else if (k == "max_body_bytes" || k == "max_queue" || k == "max_sessions" || k == "max_finished_jobs" ||
               k == "state_inline_bytes") {
      if ((s = need(v.is_number_unsigned(), "a non-negative integer")).ok()) {
        size_t x = v.get<size_t>();
        if (k == "max_body_bytes") c->max_body_bytes = x;
        if (k == "max_queue") c->max_queue = x;
        if (k == "max_sessions") c->max_sessions = x;
        if (k == "max_finished_jobs") c->max_finished_jobs = x;
        if (k == "state_inline_bytes") c->state_inline_bytes = x;
      }
    } else if (k == "allowed_hosts" || k == "allowed_origins") {
      bool strings = v.is_array();
      for (const auto& e : v) strings = strings && e.is_string();
      if ((s = need(strings, "an array of strings")).ok()) {
        (k == "allowed_hosts" ? c->allowed_hosts : c->allowed_origins) = v.get<std::vector<std::string>>();
      }
    } else if (k == "max_connections") {
      if ((s = need(v.is_number_unsigned(), "a non-negative integer")).ok()) c->max_connections = v.get<size_t>();
    } else if (k == "job_slice_s" || k == "fault_timeout_s") {
      if ((s = need(v.is_number(), "a number")).ok()) (k == "job_slice_s" ? c->job_slice_s : c->fault_timeout_s) = v.get<double>();
    } else if (k == "max_pixel_frames" || k == "max_kv_bytes_per_rank" || k == "state_max_bytes" ||
               k == "state_max_age_s") {
      if ((s = need(v.is_number_integer(), "an integer")).ok()) {
        if (k == "max_pixel_frames") c->max_pixel_frames = v.get<int64_t>();
        if (k == "max_kv_bytes_per_rank") c->max_kv_bytes_per_rank = v.get<int64_t>();
        if (k == "state_max_bytes") c->state_max_bytes = v.get<int64_t>();
        if (k == "state_max_age_s") c->state_max_age_s = v.get<int64_t>();
      }
    } else {
      s = invalid_argument_error("config file " + path + ": " + k + " is not a known setting");
    }
    if (!s.ok()) return s;
  }
  return Status();
}

}  // namespace ltx::service
