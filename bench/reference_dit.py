#!/usr/bin/env python3
"""The reference side of the GPU check (scripts/device-check), on the same GPU
in the same run as ltx-worker's own benchmarks:

  rates      the achieved bf16 GEMM rate (8192^3 products) and flash-attention
             rate (SDPA at the DiT's self-attention shapes), the rates that
             docs/performance.md's floor divides by;
  ltx-video  one forward of diffusers' LTXVideoTransformer3DModel (the 2B
             config, random weights, bf16) at a latent grid F x H x W;
  ltx2       the same for LTX2VideoTransformer3DModel (19B config; fewer
             layers with --layers), video and audio tokens as the pipeline
             derives them.

diffusers comes from the pinned source tree that device-deps packs (put its
src/ on PYTHONPATH); torch, transformers and safetensors from the host. Prints
CSV rows `measure,value,unit,detail` on stdout. Usage:

  reference_dit.py rates
  reference_dit.py ltx-video --grid 16 16 24 --batch 2 [--layers 28] [--steps 3]
  reference_dit.py ltx2 --grid 16 16 24 --audio-tokens 126 --batch 2 --layers 8
"""
import argparse
import sys
import time

import torch
import torch.nn.functional as F


def timed(fn, steps, warmup=1):
    """Mean seconds per call, by CUDA events after `warmup` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000.0 / steps


def row(measure, value, unit, detail=""):
    print(f"{measure},{value:.6g},{unit},{detail}", flush=True)


def rates(args):
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    s = timed(lambda: a @ b, 20, warmup=3)
    row("gemm_bf16_tflops", 2 * n ** 3 / s / 1e12, "TFLOP/s", f"{n}x{n}x{n}")
    for batch, heads, seq, dim in ((2, 32, 6144, 64), (2, 32, 6144, 128)):
        q, k, v = (torch.randn(batch, heads, seq, dim, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        s = timed(lambda: F.scaled_dot_product_attention(q, k, v), 10, warmup=2)
        row(f"attention_bf16_tflops_d{dim}", 4 * batch * heads * seq * seq * dim / s / 1e12, "TFLOP/s",
            f"sdpa b{batch} h{heads} s{seq} d{dim}")


def ltx_video(args):
    from diffusers import LTXVideoTransformer3DModel
    f, h, w = args.grid
    with torch.device("cuda"):  # initialised on the GPU: seconds, not a minute of CPU
        model = LTXVideoTransformer3DModel(num_layers=args.layers).to(torch.bfloat16).eval()
    b, n = args.batch, f * h * w
    kw = dict(
        hidden_states=torch.randn(b, n, 128, device="cuda", dtype=torch.bfloat16),
        encoder_hidden_states=torch.randn(b, args.text_len, 4096, device="cuda", dtype=torch.bfloat16),
        timestep=torch.full((b,), 500.0, device="cuda"),
        encoder_attention_mask=torch.ones(b, args.text_len, device="cuda", dtype=torch.long),
        num_frames=f, height=h, width=w, return_dict=False)
    with torch.no_grad():
        s = timed(lambda: model(**kw), args.steps)
    row("diffusers_ltx_video_step_s", s, "s", f"layers {args.layers} tokens {n} batch {b} bf16 eager")


def ltx2(args):
    from diffusers import LTX2VideoTransformer3DModel
    f, h, w = args.grid
    with torch.device("cuda"):
        model = LTX2VideoTransformer3DModel(num_layers=args.layers).to(torch.bfloat16).eval()
    c = model.config
    b, n, na = args.batch, f * h * w, args.audio_tokens
    video_ctx = c.caption_channels if c.use_prompt_embeddings else c.cross_attention_dim
    audio_ctx = c.caption_channels if c.use_prompt_embeddings else c.audio_cross_attention_dim
    kw = dict(
        hidden_states=torch.randn(b, n, c.in_channels, device="cuda", dtype=torch.bfloat16),
        audio_hidden_states=torch.randn(b, na, c.audio_in_channels, device="cuda", dtype=torch.bfloat16),
        encoder_hidden_states=torch.randn(b, args.text_len, video_ctx, device="cuda", dtype=torch.bfloat16),
        audio_encoder_hidden_states=torch.randn(b, args.text_len, audio_ctx, device="cuda", dtype=torch.bfloat16),
        timestep=torch.full((b,), 500.0, device="cuda"),
        encoder_attention_mask=torch.ones(b, args.text_len, device="cuda", dtype=torch.long),
        audio_encoder_attention_mask=torch.ones(b, args.text_len, device="cuda", dtype=torch.long),
        num_frames=f, height=h, width=w, fps=24.0, audio_num_frames=na, return_dict=False)
    with torch.no_grad():
        s = timed(lambda: model(**kw), args.steps)
    row("diffusers_ltx2_step_s", s, "s", f"layers {args.layers} video {n} audio {na} batch {b} bf16 eager")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["rates", "ltx-video", "ltx2"])
    p.add_argument("--grid", type=int, nargs=3, default=[16, 16, 24], metavar=("F", "H", "W"))
    p.add_argument("--audio-tokens", type=int, default=126)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--text-len", type=int, default=None)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.what == "rates":
        rates(args)
    elif args.what == "ltx-video":
        args.layers = args.layers or 28
        args.text_len = args.text_len or 128
        ltx_video(args)
    else:
        args.layers = args.layers or 48
        args.text_len = args.text_len or 1024
        ltx2(args)
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"# {sys.argv[1:]}: {time.time() - t0:.1f} s", file=sys.stderr)
    sys.exit(rc)
