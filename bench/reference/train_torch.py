"""PyTorch reference for bench/train.ts: tokens/s of pre-training a GPT-2-style model (same shapes, AdamW, clipping,
no dropout) with 2 threads. Prints one JSON object. Usage: train_torch.py L D H T V B STEPS"""
import json
import math
import resource
import sys
import time

import torch

L, D, H, T, V, B, STEPS = (int(x) for x in sys.argv[1:8])
torch.set_num_threads(2)
torch.manual_seed(0)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(D)
        self.c_attn = torch.nn.Linear(D, 3 * D)
        self.c_proj = torch.nn.Linear(D, D)
        self.ln_2 = torch.nn.LayerNorm(D)
        self.c_fc = torch.nn.Linear(D, 4 * D)
        self.mlp_proj = torch.nn.Linear(4 * D, D)
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

    def forward(self, x):
        q, k, v = self.c_attn(self.ln_1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in (q, k, v))
        w = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
        w = torch.where(self.mask, w, torch.tensor(torch.finfo(w.dtype).min))
        x = x + self.c_proj((torch.softmax(w, -1) @ v).transpose(1, 2).reshape(B, T, D))
        return x + self.mlp_proj(torch.nn.functional.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Embedding(V, D)
        self.wpe = torch.nn.Embedding(T, D)
        self.h = torch.nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = torch.nn.LayerNorm(D)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(T))
        for blk in self.h:
            x = blk(x)
        return self.ln_f(x) @ self.wte.weight.T


model = GPT()
opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
g = torch.Generator().manual_seed(1)
batches = [torch.randint(0, V, (B, T + 1), generator=g) for _ in range(4)]


def step(i):
    data = batches[i % len(batches)]
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(data[:, :-1]).reshape(-1, V), data[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


for i in range(2):
    step(i)
t0 = time.perf_counter()
for i in range(STEPS):
    step(i)
seconds = time.perf_counter() - t0
print(json.dumps({"tokens_per_s": B * T * STEPS / seconds, "ms_per_step": seconds / STEPS * 1000, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch": torch.__version__}))
