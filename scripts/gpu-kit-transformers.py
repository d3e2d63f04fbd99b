#!/usr/bin/env python3
"""The GPU kit's second reference (README "GPUs"): the machine's own `transformers` scores what olmo-ppl scored.

  refcases:   check 4. Every reference case in fp32 (eager attention, TF32 off), each text with the EOS prefix at
              the case's context, window = stride (the scoring contract of README "Scoring contract"), against
              olmo-ppl's log-probs (--ours, written by GpuCheck) and against the case's expected values.
  throughput: checks 5-6. The checkpoint, precision and batch shapes of GpuCheck's throughput run (--bench):
              scored tokens/s, MFU with the same model FLOPs per token, peak device memory against weight bytes.
Models load as the bench's transformers peer loads them (its load_model: transformers' own classes, the allenai hf_olmo
layout converted with the rule of transformers' convert_olmo_weights_to_hf.py).
"""
import argparse
import importlib.util
import json
import math
import os
import sys
import time

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402


def _peer_script():
    """The bench peer's script: in the kit beside this one (olmo_peer.py), in the repository a job resource."""
    here = os.path.dirname(os.path.abspath(__file__))
    for f in (os.path.join(here, "olmo_peer.py"),
              os.path.join(here, "..", "job", "src", "main", "resources", "io", "olmoppl", "job", "tools",
                           "peer-transformers.py")):
        if os.path.isfile(f):
            spec = importlib.util.spec_from_file_location("olmo_peer", f)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise SystemExit(f"{here}: neither olmo_peer.py (the kit) nor the job's peer-transformers.py (the repository)")


load_model = _peer_script().load_model

TOKEN_TOL = 1e-4
MEAN_NLL_TOL = 1e-5


def load(d, dtype, device, attn):
    return load_model(d, dtype, attn).to(device).eval()


def score(model, x, window, device):
    """Per-target log-probs of x[1:], window = stride: blocks of `window` targets, each predicted from the (at most
    `window`) tokens before its last target."""
    lps = []
    n = len(x)
    s = 1
    while s < n:
        e = min(s + window, n) - 1 if s == 1 else min(s + window - 1, n - 1)
        lo = max(0, e - window)
        inp = torch.tensor([x[lo:e]], device=device)
        with torch.no_grad():
            lp = torch.log_softmax(model(inp).logits[0].float(), dim=-1)
        for j in range(s, e + 1):
            lps.append(lp[j - 1 - lo, x[j]].item())
        s = e + 1
    return lps


def refcases(a):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if a.device == "gpu" else "cpu"
    ours = None
    if a.ours:
        with open(a.ours) as f:
            ours = json.load(f)["cases"]
    print(f"check 4: transformers {transformers.__version__} (torch {torch.__version__}), fp32, eager attention,"
          f" TF32 off, on {device}; bounds: per token {TOKEN_TOL:g}, mean NLL {MEAN_NLL_TOL:g}")
    ok = True
    for name in sorted(os.listdir(a.refcases)):
        d = os.path.join(a.refcases, name)
        if not os.path.isfile(os.path.join(d, "expected.json")):
            continue
        with open(os.path.join(d, "expected.json")) as f:
            exp = json.load(f)
        eos = exp["dims"]["eos_token_id"]
        model = load(d, torch.float32, device, "eager")
        worst = {"ours": [0.0, 0.0], "ref": [0.0, 0.0]}
        window = None
        for t in exp["texts"]:
            w = next(w for w in t["windows"] if w["prefix"] == "eos" and w["L"] == w["S"])
            window = w["L"]
            if w["n_scored"] == 0:
                continue
            lps = score(model, [eos] + t["ids"], window, device)
            mean = -sum(lps) / len(lps)
            others = {"ref": (w.get("token_logprobs"), w["mean_nll"])}
            if ours is not None:
                o = ours[name]["texts"][t["key"]]
                others["ours"] = (o["token_logprobs"], -sum(o["token_logprobs"]) / len(o["token_logprobs"]))
            for k, (tl, mn) in others.items():
                if tl is not None:
                    if len(tl) != len(lps):
                        raise SystemExit(f"{name}/{t['key']}: {len(lps)} targets here, {len(tl)} in {k}")
                    worst[k][0] = max([worst[k][0]] + [abs(p - q) if math.isfinite(p - q) else math.inf
                                                       for p, q in zip(lps, tl)])
                worst[k][1] = max(worst[k][1], abs(mean - mn) if math.isfinite(mean - mn) else math.inf)
        line = f"  {name:34s} {type(model).__name__:19s} window {window}:"
        for k in ("ours", "ref") if ours is not None else ("ref",):
            good = worst[k][0] <= TOKEN_TOL and worst[k][1] <= MEAN_NLL_TOL
            ok &= good
            label = "olmo-ppl" if k == "ours" else "expected"
            line += (f" vs {label} max |d log p| {worst[k][0]:.2e}, |d mean NLL| {worst[k][1]:.2e}"
                     f" {'PASS' if good else 'FAIL'};")
        print(line.rstrip(";"), flush=True)
        del model
    return ok


def throughput(a):
    with open(a.bench) as f:
        b = json.load(f)
    device = "cuda" if a.device == "gpu" else "cpu"
    dtype = torch.float16 if b["precision"] == "fp16" else torch.float32
    model = load(b["checkpoint"], dtype, device, "sdpa")
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bsz, window, windows = b["batch"], b["window"], b["windows"]
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, 50280, (windows, window + 1), generator=g)

    def step(x):
        x = x.to(device)
        logits = model(x[:, :-1]).logits
        lp = torch.log_softmax(logits.float(), dim=-1).gather(-1, x[:, 1:, None]).squeeze(-1)
        return lp.sum(dim=-1).cpu()  # waits for the device

    finite = 0
    with torch.no_grad():
        step(ids[:bsz])  # warm-up
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for i in range(0, windows - bsz + 1, bsz):
            finite += int(torch.isfinite(step(ids[i:i + bsz])).sum())
        secs = time.perf_counter() - t0
    tokens = (windows // bsz) * bsz * window
    tps = tokens / secs
    flops = b["flops_per_token"]
    peak = b["peak_tflops"] * 1e12
    print(f"check 5: transformers {transformers.__version__} {type(model).__name__} {b['precision']} sdpa,"
          f" torch.no_grad(), window {window}, batch {bsz} x {window}: {tokens:,} tokens in {secs:.2f} s ="
          f" {tps:,.0f} tokens/s -> {tps * flops / 1e12:.1f} TFLOP/s = MFU {100 * tps * flops / peak:.1f}% of"
          f" {b['peak_tflops']:.0f} TFLOP/s; finite scores {finite}/{tokens // window}")
    if "ours_tokens_per_s" in b:
        print(f"  side by side: olmo-ppl {b['ours_tokens_per_s']:,.0f} tokens/s, transformers {tps:,.0f} tokens/s"
              f" (olmo-ppl / transformers = {b['ours_tokens_per_s'] / tps:.2f})")
    if device == "cuda":
        alloc, reserved = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()
        gib = 1 << 30
        print(f"check 6: transformers weights {weight_bytes / gib:.2f} GiB; peak allocated {alloc / gib:.2f} GiB"
              f" = {alloc / weight_bytes:.2f} x, peak reserved {reserved / gib:.2f} GiB = {reserved / weight_bytes:.2f}"
              f" x the weight bytes")
        if b.get("ours_peak_bytes", -1) > 0:
            print(f"  side by side: olmo-ppl peak {b['ours_peak_bytes'] / gib:.2f} GiB ="
                  f" {b['ours_peak_bytes'] / b['ours_weight_bytes']:.2f} x its weight bytes")
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("phase", choices=["refcases", "throughput"])
    p.add_argument("--refcases")
    p.add_argument("--ours")
    p.add_argument("--bench")
    p.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    a = p.parse_args()
    sys.exit(0 if (refcases(a) if a.phase == "refcases" else throughput(a)) else 1)


if __name__ == "__main__":
    main()
