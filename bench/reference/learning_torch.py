"""PyTorch side of bench/learning.ts: trains a GPT-2 of the same shape on exactly the batches the engine saw
(batches.safetensors), AdamW with the same warmup + cosine schedule, clipping and dropout, then evaluates on the
same evaluation batches. Prints one JSON object."""
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_torch import GPT  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures"))
from safetensors_io import read_safetensors  # noqa: E402

torch.set_num_threads(2)
torch.manual_seed(0)
data = {k: torch.from_numpy(np.array(v)) for k, v in read_safetensors(sys.argv[1]).items()}
s = json.load(open(sys.argv[2]))
V, P, D, L, H = s["vocab"], s["positions"], s["d"], s["layers"], s["heads"]
_, B, T = data["ids"].shape
drop = s["dropout"]


model = GPT(V, P, D, L, H, T, drop)
decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": s["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}], lr=s["lr"])


def lr_at(step):
    if step < s["warmup"]:
        return (step + 1) / s["warmup"]
    progress = min(1.0, (step - s["warmup"]) / max(1, s["steps"] - s["warmup"]))
    return s["min_ratio"] + (1 - s["min_ratio"]) * 0.5 * (1 + math.cos(math.pi * progress))


t0 = time.perf_counter()
model.train()
for step in range(s["steps"]):
    for g in opt.param_groups:
        g["lr"] = s["lr"] * lr_at(step)
    logits = model(data["ids"][step], data["mask"][step])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), data["targets"][step].reshape(-1), ignore_index=-100)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if s["clip"]:
        torch.nn.utils.clip_grad_norm_(model.parameters(), s["clip"])
    opt.step()
seconds = time.perf_counter() - t0
model.eval()
loss_sum, count, correct = 0.0, 0, 0
with torch.no_grad():
    for i in range(data["eval_ids"].shape[0]):
        logits = model(data["eval_ids"][i], data["eval_mask"][i])
        tgt = data["eval_targets"][i].reshape(-1)
        loss_sum += torch.nn.functional.cross_entropy(logits.reshape(-1, V), tgt, ignore_index=-100, reduction="sum").item()
        valid = tgt != -100
        count += int(valid.sum())
        correct += int(((logits.reshape(-1, V).argmax(-1) == tgt) & valid).sum())
print(json.dumps({"seconds": seconds, "eval_loss": loss_sum / count, "eval_accuracy": correct / count}))
