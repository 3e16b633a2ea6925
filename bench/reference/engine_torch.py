"""PyTorch reference for bench/engine.ts: training-step time of (a) one GPT-2 block and (b) a 4-layer GPT-2 on the
same shapes as the engine, plus the machine's sgemm peak measured with numpy. Prints one JSON object.

Run by the benchmark with Debian's python3 and OMP_NUM_THREADS=2 (2 threads, OpenBLAS).
"""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_torch import GPT, Block  # noqa: E402

B, T, D, H, V, L = (int(x) for x in sys.argv[1:7])
STEPS = int(sys.argv[7]) if len(sys.argv) > 7 else 10
torch.set_num_threads(2)
torch.manual_seed(0)


def sgemm_peak():
    n = 2048
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def time_steps(model, loss_fn, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


block = Block(D, H, T)
x = torch.randn(B, T, D)
block_ms = time_steps(block, lambda: (block(x) ** 2).mean(), STEPS)
gpt = GPT(V, T, D, L, H, T)
ids = torch.randint(0, V, (B, T))
targets = torch.randint(0, V, (B, T))
gpt_ms = time_steps(gpt, lambda: torch.nn.functional.cross_entropy(gpt(ids).reshape(-1, V), targets.reshape(-1)), STEPS)
print(json.dumps({"block_ms": block_ms, "gpt_ms": gpt_ms, "sgemm_gflops": sgemm_peak(), "torch": torch.__version__}))
