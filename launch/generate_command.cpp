#include "launch/generate_command.h"

#include "launch/launch_support.h"

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "common/check.h"
#include "common/logging.h"
#include "dist/agreement.h"
#include "dist/backend.h"
#include "dist/communicator.h"
#include "pipeline/runtime/prompt_encoder.h"
#include "pipeline/runtime/stream_session.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/video_file.h"
#include "pipeline/registry/model_registry.h"

namespace ltx::launch {
namespace po = boost::program_options;

namespace {

struct GenerateOptions {
  pipeline::GenerationRequest request;
  bool stream = false;
  int64_t chunks = 3;
  int64_t chunk_frames = 2;
  int64_t window = 4;
  std::string model;
  std::string out = "video.mp4";
  std::string png_dir;
  std::string latents_out;
  std::string backend = "auto";
  pipeline::PlacementChoice placement;
};

pipeline::StreamSettings stream_settings(const GenerateOptions& o) {
  pipeline::StreamSettings s = o.request;  // every request field carries over
  s.chunk_frames = o.chunk_frames;
  s.window_chunks = o.window;
  return s;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

int run_generate(dist::World& world, const std::vector<std::string>& args) {
  GenerateOptions o;
  auto& r = o.request;
  po::options_description desc("ltx-worker generate");
  desc.add_options()("help,h", "show this help")
      ("prompt", po::value(&r.prompt), "what the video shows (required)")
      ("negative-prompt", po::value(&r.negative_prompt), "what it should not show")
      ("model", po::value(&o.model), "model folder (diffusers layout), checkpoint file or builtin:NAME; default: builtin:ltx-video")
      ("width", po::value(&r.width)->default_value(r.width), "a multiple of the model's spatial compression (32)")
      ("height", po::value(&r.height)->default_value(r.height), "a multiple of the model's spatial compression (32)")
      ("frames", po::value(&r.num_frames)->default_value(r.num_frames), "tk+1 for the model's temporal compression t (8k+1)")
      ("steps", po::value(&r.num_steps)->default_value(r.num_steps), "denoising steps")
      ("guidance", po::value(&r.guidance_scale)->default_value(r.guidance_scale), "classifier-free guidance scale (>= 0)")
      ("seed", po::value(&r.seed)->default_value(r.seed), "noise seed")
      ("fps", po::value(&r.fps), "frames per second (default: the model's, 25; LTX-2 24)")
      ("pipeline", po::value(&r.pipeline)->default_value(r.pipeline),
       "models with sound (LTX-2): one-stage, or distilled (two stages, fixed sigmas: no --steps)")
      ("no-audio", "models with sound: do not decode the sound (the MP4 has no audio track)")
      ("audio-guidance", po::value(&r.audio_guidance_scale)->default_value(r.audio_guidance_scale),
       "models with sound: the audio stream's guidance scale")
      ("out", po::value(&o.out)->default_value(o.out), "file to write: .mp4 (with sound when the model makes it), .wav (the sound alone), or none (time it; --png-dir or --latents-out still write)")
      ("png-dir", po::value(&o.png_dir), "also write every frame as PNG into this folder")
      ("latents-out", po::value(&o.latents_out), "also write the final latents (video_latents, audio_latents) as safetensors")
      ("backend", po::value(&o.backend)->default_value(o.backend), "mpi|nccl|auto")
      ("stream", po::bool_switch(&o.stream), "make the video chunk by chunk with the KV cache (--frames is ignored)")
      ("chunks", po::value(&o.chunks)->default_value(o.chunks), "chunks to make with --stream")
      ("chunk-frames", po::value(&o.chunk_frames)->default_value(o.chunk_frames), "latent frames per chunk (8 video frames each)")
      ("window", po::value(&o.window)->default_value(o.window), "chunks the KV cache keeps");
  add_placement_options(desc, &o.placement);
  po::variables_map vm;
  Status parsed;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    parsed = invalid_argument_error(e.what());
  }
  if (vm.count("help")) {
    if (world.is_root()) std::cout << desc;
    return 0;
  }

  // Rank 0 validates the arguments before the first collective of the job
  // (the sizes, which depend on the model, once it is loaded: below).
  std::string shared;
  Status verdict = parsed;
  if (world.is_root() && verdict.ok()) {
    verdict = o.placement.validate();
    if (verdict.ok() && o.stream && (o.chunks < 1 || o.chunks > 1000)) {
      verdict = invalid_argument_error("--chunks must be in [1, 1000], got " + std::to_string(o.chunks));
    }
    if (verdict.ok() && !ends_with(o.out, ".mp4") && !ends_with(o.out, ".wav") && o.out != "none") {
      verdict = invalid_argument_error("--out must name an .mp4 or a .wav file, or be none, got '" + o.out + "'");
    }
    if (verdict.ok() && !dist::parse_backend(o.backend)) verdict = invalid_argument_error("--backend must be mpi, nccl or auto");
    if (verdict.ok()) {
      auto spec = check_model_spec(o.model);
      verdict = spec.status();
      if (spec.ok()) shared = *spec + "\n" + encode_placement(o.placement);
    }
  }
  verdict = dist::share_root_verdict(world.comm(), verdict, &shared);
  if (!verdict.ok()) {
    if (world.is_root()) std::fprintf(stderr, "ltx-worker generate: %s\n", verdict.message().c_str());
    return verdict.code() == StatusCode::kInvalidArgument || verdict.code() == StatusCode::kNotFound ? 2 : 1;
  }
  const std::string model_spec = shared.substr(0, shared.find('\n'));
  o.placement = value_or_throw(decode_placement(shared.substr(shared.find('\n') + 1)));

  set_rank_threads(world);
  bool bad_request = false;
  Status done = catch_to_status([&]() -> Status {
    LTX_ASSIGN_OR_RETURN(auto comm, dist::make_communicator(world, *dist::parse_backend(o.backend)));
    LTX_ASSIGN_OR_RETURN(pipeline::Model model, pipeline::load_model(model_spec, *comm, o.placement));
    // What the user left out takes the model family's default (every rank
    // parses the same arguments).
    const pipeline::GenerationRequest defaults = pipeline::default_request(model.geometry);
    if (!vm.count("fps")) r.fps = defaults.fps;
    r.guidance_rescale = defaults.guidance_rescale;
    r.decode_timestep = defaults.decode_timestep;
    r.decode_noise_scale = defaults.decode_noise_scale;
    r.audio = vm.count("no-audio") == 0;
    // The sizes follow the model's compression factors: rank 0 checks them
    // now, and every rank takes its verdict before the first step.
    Status valid;
    if (world.is_root()) {
      valid = pipeline::validate_request(r, model.geometry);
      if (valid.ok() && r.pipeline == "distilled" && !vm["steps"].defaulted()) {
        valid = invalid_argument_error("--steps: the distilled pipeline's sigmas are fixed (8 steps at half size, 3 at "
                                       "full size); leave --steps out");
      }
      const bool sound = model.geometry.makes_sound();
      if (valid.ok() && !sound && (vm.count("no-audio") || !vm["pipeline"].defaulted() || !vm["audio-guidance"].defaulted())) {
        valid = invalid_argument_error("--no-audio, --pipeline and --audio-guidance are for models that make sound (LTX-2); " +
                                       model.name + " is " + model.family);
      }
      if (valid.ok() && ends_with(o.out, ".wav") && (!sound || !r.audio)) {
        valid = invalid_argument_error("--out " + o.out + ": a .wav needs the sound of a model that makes it (LTX-2) "
                                       "and no --no-audio");
      }
      if (valid.ok() && o.stream) valid = pipeline::validate_stream_settings(stream_settings(o), model.geometry);
      if (valid.ok() && o.stream && r.pipeline != "one-stage") {
        valid = invalid_argument_error("--pipeline " + r.pipeline + ": streams run the one-stage pipeline chunk by chunk");
      }
    }
    valid = comm->root_verdict(valid);
    bad_request = !valid.ok();
    LTX_RETURN_IF_ERROR(valid);
    pipeline::PromptEncoder prompts(*comm, std::move(model.text));
    std::unique_ptr<pipeline::VideoPipeline> pipe = pipeline::make_video_pipeline(model, *comm, prompts);
    if (world.is_root()) {
      LTX_LOG(kInfo) << "generating " << r.width << "x" << r.height << ", " << r.num_frames << " frames, "
                     << (model.geometry.makes_sound() && r.pipeline == "distilled" ? std::string("distilled 8+3")
                                                                                    : std::to_string(r.num_steps))
                     << " steps on " << comm->size() << " rank(s) (" << comm->backend_name()
                     << "), model " << model.name << " (" << model.family << "; " << model.placement.to_string() << ")";
    }
    auto progress = [&](int64_t i, int64_t n, double s) {
      if (world.is_root()) std::fprintf(stderr, "step %lld/%lld  %.2fs\n", static_cast<long long>(i + 1), static_cast<long long>(n), s);
    };
    Result<pipeline::GeneratedVideo> video = internal_error("not generated");
    if (o.stream) {
      pipeline::KvBudget budget;
      LTX_ASSIGN_OR_RETURN(auto session, pipeline::open_stream("cli", stream_settings(o), model, *comm, prompts, &budget));
      pipeline::GeneratedVideo out;
      std::vector<at::Tensor> parts, sound;
      int64_t rate = 0;
      for (int64_t c = 0; c < o.chunks; ++c) {
        auto t0 = std::chrono::steady_clock::now();
        LTX_ASSIGN_OR_RETURN(auto chunk, session->next_chunk(c, progress, {}));
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        out.denoise_seconds += secs;
        if (world.is_root()) {
          parts.push_back(chunk.frames);
          if (!chunk.audio.empty()) {
            sound.push_back(chunk.audio.samples);
            rate = chunk.audio.sample_rate;
          }
          std::fprintf(stderr, "chunk %lld/%lld: frames %lld..%lld%s, %.2fs, KV %lld bytes on rank 0\n",
                       static_cast<long long>(c + 1), static_cast<long long>(o.chunks),
                       static_cast<long long>(chunk.first_frame),
                       static_cast<long long>(chunk.first_frame + chunk.frames.size(0) - 1),
                       chunk.audio.empty() ? "" : " with sound", secs, static_cast<long long>(session->kv_bytes()));
        }
      }
      if (world.is_root()) {
        out.frames = at::cat(parts, 0);
        if (!sound.empty()) out.audio = pipeline::AudioTrack{at::cat(sound, 1), rate};
      }
      video = out;
    } else {
      auto stage = [&](const std::string& name) {
        if (world.is_root()) std::fprintf(stderr, "%s\n", name.c_str());
      };
      video = pipe->generate(r, progress, {}, stage);
    }
    LTX_RETURN_IF_ERROR(video.status());
    if (!world.is_root()) return Status();
    if (!o.latents_out.empty()) {
      std::vector<std::pair<std::string, at::Tensor>> tensors = {{"video_latents", video->latents}};
      if (video->audio_latents.defined()) tensors.emplace_back("audio_latents", video->audio_latents);
      LTX_RETURN_IF_ERROR(pipeline::write_safetensors(o.latents_out, tensors));
    }
    if (!o.png_dir.empty()) LTX_RETURN_IF_ERROR(pipeline::write_png_frames(o.png_dir, video->frames));
    if (o.out == "none") {  // timing runs, or --png-dir / --latents-out alone (builds without FFmpeg)
      std::printf("made %lldx%lld, %lld frames (no file written); denoise %.2fs, decode %.2fs\n",
                  static_cast<long long>(video->frames.size(3)), static_cast<long long>(video->frames.size(2)),
                  static_cast<long long>(video->frames.size(0)), video->denoise_seconds, video->decode_seconds);
      return Status();
    }
    if (ends_with(o.out, ".wav")) {
      LTX_RETURN_IF_ERROR(pipeline::write_wav(o.out, video->audio));
      std::printf("wrote %s: %lld channel(s), %lld samples at %lld Hz (%.3f s); denoise %.2fs, decode %.2fs\n",
                  o.out.c_str(), static_cast<long long>(video->audio.samples.size(0)),
                  static_cast<long long>(video->audio.samples.size(1)), static_cast<long long>(video->audio.sample_rate),
                  video->audio.seconds(), video->denoise_seconds, video->decode_seconds);
      return Status();
    }
    LTX_RETURN_IF_ERROR(pipeline::write_mp4(o.out, video->frames, r.fps, &video->audio));
    LTX_ASSIGN_OR_RETURN(auto info, pipeline::probe_video(o.out));
    std::string sound = "no sound";
    if (info.audio_streams > 0) {
      char buf[128];
      std::snprintf(buf, sizeof(buf), "%s %lld Hz x%lld, %.3f s", info.audio_codec.c_str(),
                    static_cast<long long>(info.audio_sample_rate), static_cast<long long>(info.audio_channels),
                    info.audio_seconds);
      sound = buf;
    }
    std::printf("wrote %s: %lldx%lld, %lld frames at %.3g fps (%s, %.3f s; %s); denoise %.2fs, decode %.2fs\n",
                o.out.c_str(), static_cast<long long>(info.width), static_cast<long long>(info.height),
                static_cast<long long>(info.frames), info.fps, info.codec.c_str(), info.seconds, sound.c_str(),
                video->denoise_seconds, video->decode_seconds);
    return Status();
  });
  // Every rank leaves with rank 0's verdict (and its own error if it had one).
  std::string unused;
  Status final_status = dist::share_root_verdict(world.comm(), done, &unused);
  if (!done.ok() && bad_request) {
    if (world.is_root()) std::fprintf(stderr, "ltx-worker generate: %s\n", done.message().c_str());
  } else if (!done.ok()) {
    std::fprintf(stderr, "ltx-worker generate [rank %d]: %s\n", world.rank(), done.to_string().c_str());
  } else if (!final_status.ok() && world.is_root()) {
    std::fprintf(stderr, "ltx-worker generate: %s\n", final_status.to_string().c_str());
  }
  if (bad_request) return 2;
  return done.ok() && final_status.ok() ? 0 : 1;
}

}  // namespace ltx::launch
