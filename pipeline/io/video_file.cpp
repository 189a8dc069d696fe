#include "pipeline/io/video_file.h"

extern "C" {
#ifdef LTX_WITH_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#endif
}
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <unistd.h>

#include "common/check.h"

namespace ltx::pipeline {
namespace {

#ifdef LTX_WITH_FFMPEG
std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

struct FormatContextDeleter {
  void operator()(AVFormatContext* c) const {
    if (c == nullptr) return;
    if (c->pb != nullptr && !(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

#endif  // LTX_WITH_FFMPEG

Status check_frames(const at::Tensor& frames) {
  if (frames.dim() != 4 || frames.size(1) != 3) {
    return invalid_argument_error("frames must be [F, 3, H, W], got " + c10::str(frames.sizes()));
  }
  if (frames.size(0) < 1) return invalid_argument_error("no frames to write");
  return Status();
}

#ifdef LTX_WITH_FFMPEG
// Sends one frame (or nullptr to flush) and writes every packet that comes out.
Status drain(AVCodecContext* enc, AVFormatContext* fmt, AVStream* st, AVFrame* frame, const std::string& where) {
  int rc = avcodec_send_frame(enc, frame);
  if (rc < 0) return internal_error(where + ": avcodec_send_frame: " + av_error(rc));
  std::unique_ptr<AVPacket, PacketDeleter> pkt(av_packet_alloc());
  while (true) {
    rc = avcodec_receive_packet(enc, pkt.get());
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return Status();
    if (rc < 0) return internal_error(where + ": avcodec_receive_packet: " + av_error(rc));
    av_packet_rescale_ts(pkt.get(), enc->time_base, st->time_base);
    pkt->stream_index = st->index;
    rc = av_interleaved_write_frame(fmt, pkt.get());
    if (rc < 0) return internal_error(where + ": writing a packet: " + av_error(rc));
  }
}

#endif  // LTX_WITH_FFMPEG

Status check_audio(const AudioTrack& a, const std::string& where) {
  if (a.empty()) return invalid_argument_error(where + ": no audio samples");
  if (a.samples.dim() != 2 || a.samples.size(0) < 1 || a.samples.size(0) > 8) {
    return invalid_argument_error(where + ": audio must be [channels (1..8), samples], got " + c10::str(a.samples.sizes()));
  }
  if (a.sample_rate < 8000 || a.sample_rate > 192000) {
    return invalid_argument_error(where + ": audio sample rate must be in [8000, 192000], got " + std::to_string(a.sample_rate));
  }
  return Status();
}

#ifdef LTX_WITH_FFMPEG
// The AAC track of an MP4 being written: its encoder, and the fitted
// waveform it feeds in codec frames as the video advances.
class AacTrack {
 public:
  Status open(AVFormatContext* fmt, const AudioTrack& audio, int64_t total_samples, const std::string& where) {
    where_ = where;
    const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (codec == nullptr) return unavailable_error(where + ": this FFmpeg has no AAC encoder");
    st_ = avformat_new_stream(fmt, nullptr);
    enc_.reset(avcodec_alloc_context3(codec));
    if (st_ == nullptr || !enc_) return resource_exhausted_error(where + ": out of memory setting up the AAC encoder");
    const int channels = static_cast<int>(audio.samples.size(0));
    enc_->sample_fmt = AV_SAMPLE_FMT_FLTP;
    enc_->sample_rate = static_cast<int>(audio.sample_rate);
    av_channel_layout_default(&enc_->ch_layout, channels);
    enc_->bit_rate = 96000 * channels;
    enc_->time_base = AVRational{1, enc_->sample_rate};
    if (fmt->oformat->flags & AVFMT_GLOBALHEADER) enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(enc_.get(), codec, nullptr);
    if (rc < 0) return internal_error(where + ": avcodec_open2 (AAC): " + av_error(rc));
    rc = avcodec_parameters_from_context(st_->codecpar, enc_.get());
    if (rc < 0) return internal_error(where + ": avcodec_parameters_from_context (AAC): " + av_error(rc));
    st_->time_base = enc_->time_base;
    // Fit the waveform to the video: trim, or pad with silence.
    at::Tensor w = audio.samples.to(at::kFloat).clamp(-1.0, 1.0).cpu();
    const int64_t have = w.size(1);
    if (have >= total_samples) {
      w = w.narrow(1, 0, total_samples);
    } else {
      w = at::cat({w, at::zeros({w.size(0), total_samples - have}, w.options())}, 1);
    }
    samples_ = w.contiguous();
    frame_size_ = enc_->frame_size > 0 ? enc_->frame_size : 1024;
    small_last_ = (codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME) != 0;
    return Status();
  }

  // Encodes whole codec frames until `until` samples are in (all of them at the end).
  Status feed(AVFormatContext* fmt, int64_t until) {
    until = std::min(until, samples_.size(1));
    while (next_ < until) {
      const int64_t n = std::min<int64_t>(frame_size_, samples_.size(1) - next_);
      if (n < frame_size_ && until < samples_.size(1)) break;  // a partial frame only at the very end
      std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
      if (!frame) return resource_exhausted_error(where_ + ": out of memory for an audio frame");
      frame->format = enc_->sample_fmt;
      frame->sample_rate = enc_->sample_rate;
      frame->nb_samples = static_cast<int>(small_last_ ? n : frame_size_);
      int rc = av_channel_layout_copy(&frame->ch_layout, &enc_->ch_layout);
      if (rc >= 0) rc = av_frame_get_buffer(frame.get(), 0);
      if (rc < 0) return resource_exhausted_error(where_ + ": audio frame buffer: " + av_error(rc));
      for (int64_t c = 0; c < samples_.size(0); ++c) {
        auto* dst = reinterpret_cast<float*>(frame->data[c]);
        std::memset(dst, 0, sizeof(float) * frame->nb_samples);
        std::memcpy(dst, samples_[c].data_ptr<float>() + next_, sizeof(float) * n);
      }
      frame->pts = next_;
      next_ += n;
      LTX_RETURN_IF_ERROR(drain(enc_.get(), fmt, st_, frame.get(), where_));
    }
    return Status();
  }

  Status finish(AVFormatContext* fmt) {
    LTX_RETURN_IF_ERROR(feed(fmt, samples_.size(1)));
    return drain(enc_.get(), fmt, st_, nullptr, where_);
  }

 private:
  std::string where_;
  AVStream* st_ = nullptr;
  std::unique_ptr<AVCodecContext, CodecContextDeleter> enc_;
  at::Tensor samples_;  // [channels, samples] fp32, fitted
  int64_t frame_size_ = 1024;
  bool small_last_ = false;
  int64_t next_ = 0;
};

#endif  // LTX_WITH_FFMPEG

#ifdef LTX_WITH_FFMPEG
// Reads a whole file into memory and removes it.
Result<std::string> slurp_and_remove(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const bool ok = static_cast<bool>(in) || in.eof();
  in.close();
  std::remove(path.c_str());
  if (!ok) return internal_error("cannot read back the encoded file");
  return bytes;
}

// A private temporary path ending in `suffix`.
Result<std::string> temp_path(const char* suffix) {
  char tmpl[] = "/tmp/ltx-media-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return unavailable_error("cannot create a temporary file for encoding");
  close(fd);
  const std::string path = std::string(tmpl) + suffix;
  if (std::rename(tmpl, path.c_str()) != 0) {
    std::remove(tmpl);
    return unavailable_error("cannot create a temporary file for encoding");
  }
  return path;
}

#endif  // LTX_WITH_FFMPEG

}  // namespace

at::Tensor frames_to_rgb8(const at::Tensor& frames) {
  return (frames.to(at::kFloat).clamp(0.0, 1.0) * 255.0).round().to(at::kByte).permute({0, 2, 3, 1}).contiguous();
}

#ifdef LTX_WITH_FFMPEG
Status write_mp4(const std::string& path, const at::Tensor& frames, double fps, const AudioTrack* audio) {
  LTX_RETURN_IF_ERROR(check_frames(frames));
  if (audio != nullptr && audio->empty()) audio = nullptr;
  if (audio != nullptr) LTX_RETURN_IF_ERROR(check_audio(*audio, path));
  av_log_set_level(AV_LOG_ERROR);  // libx264's statistics are not our log
  const int64_t n = frames.size(0), h = frames.size(2), w = frames.size(3);
  if (h % 2 != 0 || w % 2 != 0) return invalid_argument_error(path + ": H.264 needs even width and height, got " + std::to_string(w) + "x" + std::to_string(h));
  if (!(fps > 0 && fps <= 240)) return invalid_argument_error(path + ": fps must be in (0, 240], got " + std::to_string(fps));
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_H264);
  if (codec == nullptr) return unavailable_error(path + ": this FFmpeg has no H.264 encoder (install libavcodec with libx264)");

  AVFormatContext* raw = nullptr;
  int rc = avformat_alloc_output_context2(&raw, nullptr, "mp4", path.c_str());
  if (rc < 0 || raw == nullptr) return internal_error(path + ": avformat_alloc_output_context2: " + av_error(rc));
  std::unique_ptr<AVFormatContext, FormatContextDeleter> fmt(raw);
  AVStream* st = avformat_new_stream(fmt.get(), nullptr);
  std::unique_ptr<AVCodecContext, CodecContextDeleter> enc(avcodec_alloc_context3(codec));
  if (st == nullptr || !enc) return resource_exhausted_error(path + ": out of memory setting up the encoder");
  // A rational frame rate: 1/1000 s resolution covers fractional rates like 23.976.
  const AVRational rate = av_d2q(fps, 100000);
  enc->width = static_cast<int>(w);
  enc->height = static_cast<int>(h);
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = av_inv_q(rate);
  enc->framerate = rate;
  enc->gop_size = 12;
  if (fmt->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  av_opt_set(enc->priv_data, "preset", "fast", 0);
  av_opt_set(enc->priv_data, "crf", "18", 0);
  rc = avcodec_open2(enc.get(), codec, nullptr);
  if (rc < 0) return internal_error(path + ": avcodec_open2 (H.264): " + av_error(rc));
  rc = avcodec_parameters_from_context(st->codecpar, enc.get());
  if (rc < 0) return internal_error(path + ": avcodec_parameters_from_context: " + av_error(rc));
  st->time_base = enc->time_base;
  st->avg_frame_rate = rate;
  std::optional<AacTrack> aac;
  if (audio != nullptr) {
    aac.emplace();
    const int64_t total = std::llround(static_cast<double>(n) / av_q2d(rate) * static_cast<double>(audio->sample_rate));
    LTX_RETURN_IF_ERROR(aac->open(fmt.get(), *audio, total, path));
  }
  rc = avio_open(&fmt->pb, path.c_str(), AVIO_FLAG_WRITE);
  if (rc < 0) return invalid_argument_error(path + ": cannot open for writing: " + av_error(rc));
  rc = avformat_write_header(fmt.get(), nullptr);
  if (rc < 0) return internal_error(path + ": avformat_write_header: " + av_error(rc));

  std::unique_ptr<SwsContext, SwsDeleter> sws(sws_getContext(
      static_cast<int>(w), static_cast<int>(h), AV_PIX_FMT_RGB24, static_cast<int>(w), static_cast<int>(h),
      AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr, nullptr, nullptr));
  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  if (!sws || !frame) return resource_exhausted_error(path + ": out of memory setting up the scaler");
  frame->format = enc->pix_fmt;
  frame->width = enc->width;
  frame->height = enc->height;
  rc = av_frame_get_buffer(frame.get(), 0);
  if (rc < 0) return resource_exhausted_error(path + ": av_frame_get_buffer: " + av_error(rc));

  at::Tensor rgb = frames_to_rgb8(frames.cpu());
  for (int64_t i = 0; i < n; ++i) {
    rc = av_frame_make_writable(frame.get());
    if (rc < 0) return internal_error(path + ": av_frame_make_writable: " + av_error(rc));
    const uint8_t* src[1] = {rgb[i].data_ptr<uint8_t>()};
    const int stride[1] = {static_cast<int>(3 * w)};
    sws_scale(sws.get(), src, stride, 0, static_cast<int>(h), frame->data, frame->linesize);
    frame->pts = i;
    LTX_RETURN_IF_ERROR(drain(enc.get(), fmt.get(), st, frame.get(), path));
    if (aac) {  // the sound up to the end of this frame, so the tracks interleave
      LTX_RETURN_IF_ERROR(aac->feed(fmt.get(), std::llround(static_cast<double>(i + 1) / av_q2d(rate) *
                                                            static_cast<double>(audio->sample_rate))));
    }
  }
  LTX_RETURN_IF_ERROR(drain(enc.get(), fmt.get(), st, nullptr, path));
  if (aac) LTX_RETURN_IF_ERROR(aac->finish(fmt.get()));
  rc = av_write_trailer(fmt.get());
  if (rc < 0) return internal_error(path + ": av_write_trailer: " + av_error(rc));
  return Status();
}

Result<std::string> encode_mp4(const at::Tensor& frames, double fps, const AudioTrack* audio) {
  // MP4 needs a seekable output for its index: encode to a private temp file.
  LTX_ASSIGN_OR_RETURN(std::string path, temp_path(".mp4"));
  Status st = write_mp4(path, frames, fps, audio);
  if (!st.ok()) {
    std::remove(path.c_str());
    return st;
  }
  return slurp_and_remove(path);
}

#else  // no FFmpeg in this build
Status write_mp4(const std::string& path, const at::Tensor& frames, double fps, const AudioTrack* audio) {
  LTX_RETURN_IF_ERROR(check_frames(frames));
  return unimplemented_error(path + ": this build has no FFmpeg (LTX_WITH_FFMPEG=OFF), so no MP4; write PNG frames instead");
}

Result<std::string> encode_mp4(const at::Tensor& frames, double fps, const AudioTrack* audio) {
  LTX_RETURN_IF_ERROR(check_frames(frames));
  return unimplemented_error("this build has no FFmpeg (LTX_WITH_FFMPEG=OFF), so no MP4; ask for PNG frames instead");
}

#endif  // LTX_WITH_FFMPEG

Result<std::string> encode_wav(const AudioTrack& audio) {
  LTX_RETURN_IF_ERROR(check_audio(audio, "WAV"));
  // Interleaved little-endian 16-bit PCM.
  at::Tensor pcm = (audio.samples.to(at::kFloat).cpu().clamp(-1.0, 1.0) * 32767.0).round().to(at::kShort).t().contiguous();
  const uint32_t channels = static_cast<uint32_t>(audio.samples.size(0));
  const uint32_t rate = static_cast<uint32_t>(audio.sample_rate);
  const uint64_t data_bytes = static_cast<uint64_t>(pcm.numel()) * 2;
  if (data_bytes > 0xFFFFFFFFull - 36) return invalid_argument_error("WAV: the audio is too long for a WAV file");
  std::string out;
  auto u32 = [&out](uint32_t v) { for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF)); };
  auto u16 = [&out](uint16_t v) { for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF)); };
  out += "RIFF";
  u32(static_cast<uint32_t>(36 + data_bytes));
  out += "WAVEfmt ";
  u32(16);
  u16(1);  // PCM
  u16(static_cast<uint16_t>(channels));
  u32(rate);
  u32(rate * channels * 2);
  u16(static_cast<uint16_t>(channels * 2));
  u16(16);
  out += "data";
  u32(static_cast<uint32_t>(data_bytes));
  const int16_t* p = pcm.data_ptr<int16_t>();
  for (int64_t i = 0; i < pcm.numel(); ++i) u16(static_cast<uint16_t>(p[i]));
  return out;
}

Status write_wav(const std::string& path, const AudioTrack& audio) {
  LTX_ASSIGN_OR_RETURN(std::string bytes, encode_wav(audio));
  std::ofstream out(path, std::ios::binary);
  if (!out) return invalid_argument_error(path + ": cannot open for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return resource_exhausted_error(path + ": write failed");
  return Status();
}

Result<std::string> encode_png(const at::Tensor& frame) {
  if (frame.dim() != 3 || frame.size(0) != 3) return invalid_argument_error("a PNG frame must be [3, H, W]");
  at::Tensor rgb = frames_to_rgb8(frame.unsqueeze(0).cpu())[0];
  const int64_t h = rgb.size(0), w = rgb.size(1);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(w);
  image.height = static_cast<png_uint_32>(h);
  image.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, rgb.data_ptr<uint8_t>(), 0, nullptr)) {
    return internal_error(std::string("libpng: ") + image.message);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, rgb.data_ptr<uint8_t>(), 0, nullptr)) {
    return internal_error(std::string("libpng: ") + image.message);
  }
  out.resize(size);
  return out;
}

Status write_png_frames(const std::string& dir, const at::Tensor& frames) {
  LTX_RETURN_IF_ERROR(check_frames(frames));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return invalid_argument_error(dir + ": cannot create the folder: " + ec.message());
  for (int64_t i = 0; i < frames.size(0); ++i) {
    LTX_ASSIGN_OR_RETURN(std::string png, encode_png(frames[i]));
    char name[32];
    std::snprintf(name, sizeof(name), "/frame_%05lld.png", static_cast<long long>(i));
    std::ofstream out(dir + name, std::ios::binary);
    out.write(png.data(), static_cast<std::streamsize>(png.size()));
    if (!out) return resource_exhausted_error(dir + name + ": write failed");
  }
  return Status();
}

#ifdef LTX_WITH_FFMPEG
Result<VideoInfo> probe_video(const std::string& path) {
  AVFormatContext* raw = nullptr;
  int rc = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (rc < 0) return invalid_argument_error(path + ": cannot open: " + av_error(rc));
  std::unique_ptr<AVFormatContext, void (*)(AVFormatContext*)> fmt(raw, [](AVFormatContext* c) { avformat_close_input(&c); });
  rc = avformat_find_stream_info(fmt.get(), nullptr);
  if (rc < 0) return invalid_argument_error(path + ": no stream info: " + av_error(rc));
  const int idx = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (idx < 0) return invalid_argument_error(path + ": no video stream");
  AVStream* st = fmt->streams[idx];
  const AVCodec* dec = avcodec_find_decoder(st->codecpar->codec_id);
  if (dec == nullptr) return invalid_argument_error(path + ": no decoder for its codec");
  std::unique_ptr<AVCodecContext, CodecContextDeleter> ctx(avcodec_alloc_context3(dec));
  avcodec_parameters_to_context(ctx.get(), st->codecpar);
  rc = avcodec_open2(ctx.get(), dec, nullptr);
  if (rc < 0) return invalid_argument_error(path + ": cannot open the decoder: " + av_error(rc));
  VideoInfo info;
  info.width = st->codecpar->width;
  info.height = st->codecpar->height;
  info.fps = av_q2d(st->avg_frame_rate);
  info.codec = dec->name;
  auto seconds_of = [&](AVStream* s) {
    if (s->duration > 0) return static_cast<double>(s->duration) * av_q2d(s->time_base);
    return fmt->duration > 0 ? static_cast<double>(fmt->duration) / AV_TIME_BASE : 0.0;
  };
  info.seconds = seconds_of(st);
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    AVStream* a = fmt->streams[i];
    if (a->codecpar->codec_type != AVMEDIA_TYPE_AUDIO) continue;
    if (info.audio_streams++ > 0) continue;
    const AVCodec* adec = avcodec_find_decoder(a->codecpar->codec_id);
    info.audio_codec = adec != nullptr ? adec->name : "unknown";
    info.audio_sample_rate = a->codecpar->sample_rate;
    info.audio_channels = a->codecpar->ch_layout.nb_channels;
    info.audio_frame_size = a->codecpar->frame_size;
    info.audio_seconds = seconds_of(a);
  }
  std::unique_ptr<AVPacket, PacketDeleter> pkt(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  auto receive = [&] {
    while (avcodec_receive_frame(ctx.get(), frame.get()) == 0) ++info.frames;
  };
  while (av_read_frame(fmt.get(), pkt.get()) >= 0) {
    if (pkt->stream_index == idx && avcodec_send_packet(ctx.get(), pkt.get()) == 0) receive();
    av_packet_unref(pkt.get());
  }
  avcodec_send_packet(ctx.get(), nullptr);
  receive();
  return info;
}

#else  // no FFmpeg in this build
Result<VideoInfo> probe_video(const std::string& path) {
  return unimplemented_error(path + ": this build has no FFmpeg (LTX_WITH_FFMPEG=OFF) to read video with");
}
#endif  // LTX_WITH_FFMPEG

}  // namespace ltx::pipeline
