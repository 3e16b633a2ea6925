#!/usr/bin/env python3
"""numpy/scipy side of bench/metrics.ts: times each estimator, written as the reference repositories write it
(thuml LogME with an SVD of FᵀF, TLlib H-score with np.cov + pinv, scipy spearmanr for PARC, ...), on the same
.npy files. Prints one JSON object {metric: {"ms": .., "score": ..}}."""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures', 'metrics'))
import make_metrics as ref  # noqa: E402


def main():
    d = sys.argv[1]
    only = set(sys.argv[2].split(',')) if len(sys.argv) > 2 else None
    f = np.load(os.path.join(d, 'features.npy'))
    y = np.load(os.path.join(d, 'labels.npy'))
    theta = np.load(os.path.join(d, 'probs.npy'))
    jobs = {
        'logme': lambda: ref.logme_fixed_point(f, y, compat=False)[0],
        'leep': lambda: ref.leep(theta, y),
        'nleep': lambda: ref.nleep(f, y, seed=0),
        'nce': lambda: ref.nce(np.argmax(theta, axis=1), y),
        'hscore': lambda: ref.h_score(f, y),
        'shrinkage-hscore': lambda: ref.shrinkage_h_score(f, y)[0],
        'gbc': lambda: ref.gbc(f, y),
        'knn': lambda: ref.knn(f, y, 1),
        'parc': lambda: ref.parc(f, y),
        'transrate': lambda: ref.transrate(f, y),
        'sfda': lambda: ref.sfda(f, y),
    }
    out = {}
    for name, fn in jobs.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        score = fn()
        out[name] = {'ms': (time.perf_counter() - t0) * 1000, 'score': float(score)}
        print(name, out[name], file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
