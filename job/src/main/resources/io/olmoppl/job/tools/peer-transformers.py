"""olmo-ppl bench's transformers peer (README "Performance"): what a user would write instead of olmo-ppl.

Hugging Face transformers on PyTorch CPU, fp32, torch.inference_mode(), windows sorted by length and batched, the
output projection and log-softmax only at scored positions. The bench writes the exact windows it scores (token ids
with the prefix, and each window's first scored position), so tokenization cannot differ, and starts this script
once; then, per line on stdin naming a workload, the script scores it and answers one JSON line on stdout:
{"workload", "seconds", "scored_tokens", "nll": [per document, nats]}. The first line it writes is
{"ready": true, "torch", "transformers", "threads"}, or {"ready": false, "error"} when torch or transformers
cannot be imported or the model cannot be loaded.

The model: transformers' own classes for the layouts it loads as stored (NATIVE_LAYOUTS); the allenai hf_olmo layout
converted by the rule of transformers' convert_olmo_weights_to_hf.py (hf_olmo_model). The GPU kit's transformers
check loads its models with load_model too.

usage: python3 peer-transformers.py --model DIR --windows FILE --threads N [--batch-tokens N]
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

LOGIT_ROWS = 1024  # scored rows per output-projection chunk: bounds the logits' memory

# the checkpoint layouts transformers loads as they are stored (its own model types); hf_olmo is converted
NATIVE_LAYOUTS = ("olmo", "olmo2", "olmo3", "olmoe", "flex_olmo")


def load_model(d, dtype, attn=None):
    """The transformers model of checkpoint folder d (not yet moved to a device); attn: an attn_implementation, or
    None for transformers' default."""
    from transformers import AutoModelForCausalLM

    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    kind = c.get("model_type")
    if kind in NATIVE_LAYOUTS:
        extra = {} if attn is None else {"attn_implementation": attn}
        return AutoModelForCausalLM.from_pretrained(d, dtype=dtype, local_files_only=True, **extra)
    if kind == "hf_olmo":
        return hf_olmo_model(d, c, dtype, attn)
    raise ValueError(f"model_type {json.dumps(kind)} is not an OLMo layout transformers loads (it loads"
                     f" {', '.join(NATIVE_LAYOUTS)}, and hf_olmo converted)")


def hf_olmo_model(d, c, dtype, attn):
    """An allenai hf_olmo checkpoint as transformers' OlmoForCausalLM, by convert_olmo_weights_to_hf.py's rule: att_proj
    split into q, k, v; ff_proj's first half up, second half gate. OlmoForCausalLM computes OLMo-1's released blocks
    only (weightless LayerNorm before each sub-layer, no biases, unscaled logits), so an hf_olmo config asking for
    anything else is refused. Defaults are olmo/config.py's ModelConfig, as olmo-ppl reads them."""
    import torch
    from safetensors.torch import load_file
    from transformers import OlmoConfig, OlmoForCausalLM

    h, heads, layers = c.get("d_model", 768), c.get("n_heads", 12), c.get("n_layers", 12)
    kv = c.get("n_kv_heads") or (1 if c.get("multi_query_attention") else heads)
    hd = h // heads
    fused = c.get("mlp_hidden_size") or c.get("mlp_ratio", 4) * h
    # each switch: olmo/config.py's default, and the values OlmoForCausalLM computes
    switches = {"layer_norm_type": ("default", ("default", "low_precision")),
                "layer_norm_with_affine": (True, (False,)), "include_bias": (True, (False,)),
                "norm_after": (False, (False,)), "scale_logits": (False, (False,))}
    other = [f"{k} {json.dumps(c.get(k, d0))}" for k, (d0, ok) in switches.items() if c.get(k, d0) not in ok]
    if other:
        raise ValueError(f"transformers' OlmoForCausalLM cannot compute this hf_olmo model ("
                         f"{', '.join(other)}; it computes OLMo-1's weightless LayerNorm, no biases, unscaled logits)")
    conf = OlmoConfig(hidden_size=h, intermediate_size=fused // 2, num_attention_heads=heads,
                      num_key_value_heads=kv, num_hidden_layers=layers,
                      vocab_size=c.get("embedding_size") or c.get("vocab_size", 50257),
                      max_position_embeddings=c.get("max_sequence_length", 1024),
                      rope_theta=c.get("rope_theta", 10000.0), clip_qkv=c.get("clip_qkv"),
                      tie_word_embeddings=c.get("weight_tying", True), attention_bias=False,
                      pad_token_id=c.get("pad_token_id"), eos_token_id=c.get("eos_token_id", 50256),
                      bos_token_id=None, **({} if attn is None else {"attn_implementation": attn}))
    index = os.path.join(d, "model.safetensors.index.json")
    files = ["model.safetensors"]
    if os.path.isfile(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    sd = {}
    for name in files:
        sd.update(load_file(os.path.join(d, name)))
    p = "model.transformer."
    out = {"model.embed_tokens.weight": sd[p + "wte.weight"]}
    for i in range(layers):
        b, o = f"{p}blocks.{i}.", f"model.layers.{i}."
        q, k, v = torch.split(sd[b + "att_proj.weight"], [h, hd * kv, hd * kv], dim=0)
        up, gate = torch.chunk(sd[b + "ff_proj.weight"], 2, dim=0)
        out.update({o + "self_attn.q_proj.weight": q, o + "self_attn.k_proj.weight": k,
                    o + "self_attn.v_proj.weight": v, o + "self_attn.o_proj.weight": sd[b + "attn_out.weight"],
                    o + "mlp.gate_proj.weight": gate, o + "mlp.up_proj.weight": up,
                    o + "mlp.down_proj.weight": sd[b + "ff_out.weight"]})
    out["lm_head.weight"] = sd.get(p + "ff_out.weight", sd[p + "wte.weight"])
    m = OlmoForCausalLM(conf)
    m.load_state_dict({k: v.to(torch.float32) for k, v in out.items()}, strict=True)
    return m.to(dtype)


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def score(torch, model, docs, batch_tokens):
    """Per-document NLL (sum of -log p, nats) of windows [{"ids": [...], "first": k}]: inputs ids[:-1], targets
    ids[p + 1] for p >= first."""
    items = [(d, w["ids"], w["first"]) for d, doc in enumerate(docs) for w in doc]
    items.sort(key=lambda t: len(t[1]), reverse=True)
    nll = [0.0] * len(docs)
    tokens = 0
    i = 0
    while i < len(items):
        width = len(items[i][1]) - 1  # the longest input of the batch (sorted)
        batch = items[i:i + max(1, batch_tokens // width)]
        i += len(batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        rows, cols, targets, owner = [], [], [], []
        for r, (d, w, first) in enumerate(batch):
            n = len(w) - 1
            ids[r, :n] = torch.tensor(w[:n])
            rows += [r] * (n - first)
            cols += range(first, n)
            targets += w[first + 1:]
            owner += [d] * (n - first)
        # right padding under the causal mask: no real position attends to a padded one, so no attention mask
        hidden = model.model(input_ids=ids).last_hidden_state[torch.tensor(rows), torch.tensor(cols)]
        targets = torch.tensor(targets)
        lps = []
        for s in range(0, hidden.shape[0], LOGIT_ROWS):
            logits = model.lm_head(hidden[s:s + LOGIT_ROWS])
            lps.append(torch.log_softmax(logits, dim=-1).gather(1, targets[s:s + LOGIT_ROWS, None])[:, 0])
        for d, lp in zip(owner, torch.cat(lps).double().tolist()):
            nll[d] -= lp
        tokens += len(owner)
    return nll, tokens


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--windows", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--batch-tokens", type=int, default=4096)
    a = p.parse_args()
    try:
        import torch
        import transformers

        torch.set_num_threads(a.threads)
        torch.set_num_interop_threads(1)
        model = load_model(a.model, torch.float32).eval()
        with open(a.windows) as f:
            workloads = json.load(f)
    except Exception as e:  # noqa: BLE001 - reported to the bench, which stops before it measures
        say({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return 3
    say({"ready": True, "torch": torch.__version__, "transformers": transformers.__version__,
         "threads": torch.get_num_threads()})
    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        with torch.inference_mode():
            t0 = time.perf_counter()
            nll, tokens = score(torch, model, workloads[name], a.batch_tokens)
            secs = time.perf_counter() - t0
        say({"workload": name, "seconds": secs, "scored_tokens": tokens, "nll": nll})
    return 0


if __name__ == "__main__":
    sys.exit(main())
