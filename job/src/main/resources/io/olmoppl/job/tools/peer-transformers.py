"""olmo-ppl bench's transformers peer (README "Performance"): what a user would write instead of olmo-ppl.

Hugging Face transformers on PyTorch CPU, fp32, torch.inference_mode(), windows sorted by length and batched, the
output projection and log-softmax only at scored positions. The bench writes the exact windows it scores (token ids
with the prefix, and each window's first scored position), so tokenization cannot differ, and starts this script
once; then, per line on stdin naming a workload, the script scores it and answers one JSON line on stdout:
{"workload", "seconds", "scored_tokens", "nll": [per document, nats]}. The first line it writes is
{"ready": true, "torch", "transformers", "threads"}, or {"ready": false, "error"} when torch or transformers
cannot be imported or the model cannot be loaded.

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
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(a.threads)
        torch.set_num_interop_threads(1)
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, local_files_only=True).eval()
        with open(a.windows) as f:
            workloads = json.load(f)
    except Exception as e:  # noqa: BLE001 - reported to the bench, which skips the peer
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
