#!/usr/bin/env python3
"""Reference for bench/logistic-regression.ts: scikit-learn LogisticRegression(multinomial, lbfgs) on the same
features and labels (.npy in the folder given), with tol scaled to the same stopping rule (sklearn 1.2 tests the
gradient of the summed objective; transferlab tests the summed objective's gradient divided by n).
Prints one JSON line: {"ms", "iterations", "train_accuracy"}."""
import json
import sys
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression

folder, C, tol, max_iter = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
x = np.load(f'{folder}/features.npy').astype(np.float64)
y = np.load(f'{folder}/labels.npy')
clf = LogisticRegression(multi_class='multinomial', solver='lbfgs', C=C, tol=tol * len(y), max_iter=max_iter)
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    clf.fit(x, y)
ms = (time.perf_counter() - t0) * 1000
print(json.dumps({'ms': ms, 'iterations': int(clf.n_iter_.max()), 'train_accuracy': float((clf.predict(x) == y).mean())}))
