"""Greedy KV-cache decoding of a GPT-2 model folder in plain PyTorch, written from Hugging Face's modeling_gpt2.py
(Conv1D weights [in, out], tanh GELU, pre-LayerNorm blocks, tied LM head, past keys/values concatenated per
step), reading the same model.safetensors that transferlab serves. Used by bench/eval.ts as the reference.

    python3 bench/reference/eval_torch.py <model-folder> <prompts.json> <new-tokens> <batch> <repeats>

prompts.json is a list of token-id lists of equal length. Prints one JSON line: the greedy tokens of every prompt,
the best wall time over `repeats` runs of the whole prompt set in batches, and tokens/s.
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F16": np.float16}


def read_safetensors(path):
    """The safetensors format: 8-byte little-endian header length, a JSON header, then the raw tensors."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=DTYPES[meta["dtype"]]).reshape(meta["shape"])
        out[name.removeprefix("transformer.")] = torch.from_numpy(array.astype(np.float32))
    return out


class Gpt2:
    def __init__(self, folder):
        config = json.load(open(os.path.join(folder, "config.json")))
        self.layers, self.heads = config["n_layer"], config["n_head"]
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        self.w = read_safetensors(os.path.join(folder, "model.safetensors"))
        self.d = self.w["wte.weight"].shape[1]

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, (self.d,), self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def conv1d(self, x, name):
        return torch.addmm(self.w[f"{name}.bias"], x.reshape(-1, x.shape[-1]), self.w[f"{name}.weight"]).reshape(
            *x.shape[:-1], -1
        )

    def forward(self, ids, past):
        """Next-token logits [B, V] of the last position and the grown cache (list of (k, v) per layer)."""
        b, t = ids.shape
        start = 0 if past is None else past[0][0].shape[2]
        x = self.w["wte.weight"][ids] + self.w["wpe.weight"][start : start + t]
        hd = self.d // self.heads
        grown = []
        for i in range(self.layers):
            p = f"h.{i}"
            q, k, v = self.conv1d(self.ln(x, f"{p}.ln_1"), f"{p}.attn.c_attn").split(self.d, dim=2)
            q, k, v = (z.view(b, t, self.heads, hd).transpose(1, 2) for z in (q, k, v))
            if past is not None:
                k = torch.cat([past[i][0], k], dim=2)
                v = torch.cat([past[i][1], v], dim=2)
            grown.append((k, v))
            w = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            if t > 1:  # prefill: causal mask over the new positions (decode steps see the whole cache)
                s = k.shape[2]
                mask = torch.ones(t, s, dtype=torch.bool).tril(s - t)
                w = torch.where(mask, w, torch.tensor(torch.finfo(w.dtype).min))
            y = (torch.softmax(w, -1) @ v).transpose(1, 2).reshape(b, t, self.d)
            x = x + self.conv1d(y, f"{p}.attn.c_proj")
            h = self.conv1d(self.ln(x, f"{p}.ln_2"), f"{p}.mlp.c_fc")
            x = x + self.conv1d(torch.nn.functional.gelu(h, approximate="tanh"), f"{p}.mlp.c_proj")
        last = self.ln(x[:, -1], "ln_f")
        return last @ self.w["wte.weight"].T, grown

    def greedy(self, prompts, new_tokens):
        ids = torch.tensor(prompts, dtype=torch.long)
        logits, past = self.forward(ids, None)
        out = []
        for step in range(new_tokens):
            nxt = logits.argmax(-1)
            out.append(nxt)
            if step + 1 < new_tokens:
                logits, past = self.forward(nxt[:, None], past)
        return torch.stack(out, 1).tolist()


def main():
    folder, prompts_path, new_tokens, batch, repeats = sys.argv[1:6]
    new_tokens, batch, repeats = int(new_tokens), int(batch), int(repeats)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    prompts = json.load(open(prompts_path))
    model = Gpt2(folder)
    with torch.no_grad():
        run = lambda: [t for i in range(0, len(prompts), batch) for t in model.greedy(prompts[i : i + batch], new_tokens)]
        tokens = run()  # warm-up (allocator, kernels)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "tokens": tokens,
                "seconds": best,
                "tok_s": len(prompts) * new_tokens / best,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
