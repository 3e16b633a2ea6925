"""Reference for bench/lab: the same grid as a LoCoMoSeT-style cartesian product of run configs, each
content-addressed by the SHA-256 of its canonical JSON (itertools.product + json.dumps(sort_keys) + hashlib), and
the status read back from the run.json files that the TypeScript planner wrote. Prints one JSON line last."""
import hashlib
import itertools
import json
import os
import sys
import time

MODELS, TASKS, RANKS, SEEDS = 25, 10, [4, 8, 16], [0, 1, 2, 3, 4]


def run_id(stage, config, deps):
    text = json.dumps({"v": 1, "stage": stage, "config": config, "deps": sorted(deps)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


t0 = time.perf_counter()
runs = {}
data = {t: run_id("data", {"task": f"task{t}", "spec": {"rows": 1, "cols": 1 + t % 3}}, []) for t in range(TASKS)}
zoo = {m: run_id("pretrain", {"model": f"model{m}", "task": f"task{m % TASKS}", "n_layer": 1 + m % 4}, [data[m % TASKS]]) for m in range(MODELS)}
runs.update({f"data{t}": i for t, i in data.items()})
runs.update({f"pretrain{m}": i for m, i in zoo.items()})
variants = [{"kind": "full"}] + [{"kind": "lora", "r": r, "alpha": 2 * r} for r in RANKS]
for m, t, v, s in itertools.product(range(MODELS), range(TASKS), variants, SEEDS):
    ft = run_id("finetune", {"model": f"model{m}", "task": f"task{t}", "strategy": v, "seed": s, "training": {"max_steps": 100}}, [zoo[m], data[t]])
    runs[f"ft{m}-{t}-{v}-{s}"] = ft
    runs[f"eval{m}-{t}-{v}-{s}"] = run_id("eval", {"model": ft, "tasks": list(range(TASKS))}, [ft] + list(data.values()))
for m, t in itertools.product(range(MODELS), range(TASKS)):
    f = run_id("features", {"model": m, "task": t}, [zoo[m], data[t]])
    runs[f"features{m}-{t}"] = f
    runs[f"metrics{m}-{t}"] = run_id("metrics", {"model": m, "task": t, "estimators": ["logme", "hscore"]}, [f])
runs["summary"] = run_id("summary", {}, list(runs.values()))
plan = time.perf_counter() - t0

t0 = time.perf_counter()
root = sys.argv[1]
states = {}
for rid in os.listdir(root):
    with open(os.path.join(root, rid, "run.json")) as fh:
        states[rid] = json.load(fh)["state"]
status = time.perf_counter() - t0
print(json.dumps({"runs": len(runs), "plan": plan, "status": status, "read": len(states)}))
