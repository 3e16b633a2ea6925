"""PyTorch reference for bench/train.ts: tokens/s of pre-training a GPT-2-style model (same shapes, AdamW, clipping,
no dropout) with 2 threads. Prints one JSON object. Usage: train_torch.py L D H T V B STEPS"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_torch import GPT  # noqa: E402

L, D, H, T, V, B, STEPS = (int(x) for x in sys.argv[1:8])
torch.set_num_threads(2)
torch.manual_seed(0)


model = GPT(V, T, D, L, H, T)
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
