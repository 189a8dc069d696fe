#include "pipeline/io/video_file.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}
#include <png.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <unistd.h>

#include "common/check.h"

namespace ltx::pipeline {
namespace {

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

Status check_frames(const at::Tensor& frames) {
  if (frames.dim() != 4 || frames.size(1) != 3) {
    return invalid_argument_error("frames must be [F, 3, H, W], got " + c10::str(frames.sizes()));
  }
  if (frames.size(0) < 1) return invalid_argument_error("no frames to write");
  return Status();
}

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

}  // namespace

at::Tensor frames_to_rgb8(const at::Tensor& frames) {
  return (frames.to(at::kFloat).clamp(0.0, 1.0) * 255.0).round().to(at::kByte).permute({0, 2, 3, 1}).contiguous();
}

Status write_mp4(const std::string& path, const at::Tensor& frames, double fps) {
  LTX_RETURN_IF_ERROR(check_frames(frames));
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
  }
  LTX_RETURN_IF_ERROR(drain(enc.get(), fmt.get(), st, nullptr, path));
  rc = av_write_trailer(fmt.get());
  if (rc < 0) return internal_error(path + ": av_write_trailer: " + av_error(rc));
  return Status();
}

Result<std::string> encode_mp4(const at::Tensor& frames, double fps) {
  // MP4 needs a seekable output for its index: encode to a private temp file.
  char tmpl[] = "/tmp/ltx-video-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return unavailable_error("cannot create a temporary file for MP4 encoding");
  close(fd);
  const std::string path = std::string(tmpl) + ".mp4";
  std::rename(tmpl, path.c_str());
  Status st = write_mp4(path, frames, fps);
  std::string bytes;
  if (st.ok()) {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::remove(path.c_str());
  LTX_RETURN_IF_ERROR(st);
  return bytes;
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

}  // namespace ltx::pipeline
