#!/usr/bin/env python3
"""numpy/scipy/scikit-learn side of bench/geometry.ts: the DADApy pipeline as DADApy computes it, on the same .npy
file — exact kNN with scikit-learn's NearestNeighbors (brute force, float64, as DADApy's compute_distances),
TwoNN (scipy curve_fit through the origin, 90% of the ratios), GRIDE at doubling scales (DADApy's bisection),
the kNN log-density at the n1=16 ID, and ADP clustering (DADApy's pure-Python compute_clustering_ADP_pure_python,
written out here with numpy). Prints one JSON object with the time of each step, the results and the peak RSS."""
import json
import math
import resource
import sys
import time

import numpy as np
from scipy.optimize import curve_fit
from scipy.special import gammaln
from sklearn.neighbors import NearestNeighbors


def twonn(dist, fraction=0.9):
    mus = dist[:, 2] / dist[:, 1]
    n = len(mus)
    n_eff = int(n * fraction)
    x = np.sort(np.log(mus))[:n_eff]
    y = -np.log(1 - np.arange(1, n_eff + 1) / n)
    return float(curve_fit(lambda x, m: m * x, x, y)[0][0])


def gride(dist, range_max=64, d0=0.001, d1=1000, eps=1e-7):
    steps = int(math.log(min(dist.shape[0], range_max), 2))
    ranks = np.array([2 ** i for i in range(steps + 1)])
    mus_all = dist[:, ranks[1:]] / dist[:, ranks[:-1]]
    ids = []
    for i in range(mus_all.shape[1]):
        n1, n2 = 2 ** i, 2 ** (i + 1)
        mus = mus_all[:, i].copy()
        mus[mus == 1] += 10 * np.finfo(float).eps
        q3, q2 = np.percentile(mus, [95, 50])
        mus = mus[mus < 20 * (q3 - q2) + q2]
        n = len(mus)
        lo, hi = d0, d1

        def score(d):
            one = 1.0 - mus ** (-d)
            one[one < 2 * eps] = 2 * eps
            return np.sum(((1 - n2 + n1) / one + n2 - 1.0) * np.log(mus)) - (n - 1) / d

        l1 = score(hi)
        while abs(lo - hi) > eps:
            m = (lo + hi) / 2
            if score(m) * l1 > 0:
                hi = m
            else:
                lo = m
        ids.append((lo + hi) / 2)
    return ids


def knn_density(dist, d, k):
    n = dist.shape[0]
    prefactor = np.exp(d / 2.0 * np.log(np.pi) - gammaln((d + 2) / 2))
    return np.log(k) - (np.log(prefactor) + d * np.log(dist[:, k])) - np.log(n), np.full(n, 1 / np.sqrt(k))


def adp(ind, log_den, err, kstar, Z=1.6):
    """DADApy's compute_clustering_ADP_pure_python (halo=False)."""
    N, w = ind.shape
    maxk = w - 1
    log_den_c = log_den - np.min(log_den - Z * err) + 1
    g = log_den_c - err
    centers = [i for i in range(N) if not np.any(g[i] < g[ind[i, 1:kstar[i] + 1]])]
    removed = []
    for c in list(centers):
        l, m = np.where(ind == c)
        mask = m <= kstar[l]
        l = l[mask]
        best = l[np.argmax(g[l])]
        if g[best] > g[c]:
            if removed:
                hit = np.where(np.array(removed)[:, 0] == best)[0]
                if hit.size > 0:
                    best = removed[hit[0]][1]
            removed.append([c, best])
            centers.remove(c)
    removed = np.array(removed).reshape(-1, 2)
    cl = [-1] * N
    for k, c in enumerate(centers):
        cl[c] = k
    for e in np.argsort(-g):
        nn = 0
        while cl[e] == -1 and nn < w - 1:
            nn += 1
            cl[e] = cl[ind[e, nn]]
        if cl[e] == -1:
            _, _, hit = np.intersect1d(ind[e], removed[:, 0], return_indices=True)
            cand = removed[hit, 1]
            cl[e] = cl[cand[np.argmax(g[cand])]]
    nc = len(centers)
    members = [[j for j in range(N) if cl[j] == i] for i in range(nc)]
    center_set = set(centers)
    bord = np.zeros((nc, nc))
    bord_err = np.zeros((nc, nc))
    bidx = -np.ones((nc, nc), dtype=int)
    for c in range(nc):
        for p1 in members[c]:
            pp = -1
            if p1 not in center_set:
                for k in range(1, kstar[p1] + 1):
                    p2 = ind[p1, k]
                    pp = -1
                    if cl[p2] != c:
                        pp, cp = p2, cl[p2]
                        break
            if pp != -1:
                for k in range(1, maxk):
                    po = ind[pp, k]
                    if po == p1:
                        break
                    if cl[po] == c:
                        pp = -1
                        break
            if pp != -1 and g[p1] > bord[c][cp]:
                bord[c][cp] = bord[cp][c] = g[p1]
                bidx[c][cp] = bidx[cp][c] = p1
    for i in range(nc - 1):
        for j in range(i + 1, nc):
            if bidx[i][j] != -1:
                bord[i][j] = bord[j][i] = log_den_c[bidx[i][j]]
                bord_err[i][j] = bord_err[j][i] = err[bidx[i][j]]
    np.fill_diagonal(bord, -1.0)
    np.fill_diagonal(bord_err, 0.0)
    alive = [1] * nc
    while True:
        pos, ip, jp = [], [], []
        for i in range(nc - 1):
            for j in range(i + 1, nc):
                a1 = log_den_c[centers[i]] - bord[i][j]
                a2 = log_den_c[centers[j]] - bord[i][j]
                e1 = Z * (err[centers[i]] + bord_err[i][j])
                e2 = Z * (err[centers[j]] + bord_err[i][j])
                if a1 < e1 or a2 < e2:
                    pos.append(bord[i][j])
                    ip.append(i)
                    jp.append(j)
        if not pos:
            break
        b = pos.index(max(pos))
        i, j = ip[b], jp[b]
        c1 = (log_den_c[centers[i]] - bord[i][j]) / (err[centers[i]] + bord_err[i][j])
        c2 = (log_den_c[centers[j]] - bord[i][j]) / (err[centers[j]] + bord_err[i][j])
        if c1 < c2:
            i, j = j, i
        alive[j] = 0
        bord[i][j] = bord[j][i] = -1.0
        bord_err[i][j] = bord_err[j][i] = 0.0
        members[i].extend(members[j])
        members[j] = []
        for k in range(nc):
            if k != i and k != j:
                if bord[i][k] < bord[j][k]:
                    bidx[i][k] = bidx[k][i] = bidx[j][k]
                    bord[i][k] = bord[k][i] = bord[j][k]
                    bord_err[i][k] = bord_err[k][i] = bord_err[j][k]
                bord[j][k] = bord[k][j] = -1
                bord_err[j][k] = bord_err[k][j] = 0
    return sum(alive)


def main():
    x = np.load(sys.argv[1])
    maxk = int(sys.argv[2])
    out = {}
    t0 = time.perf_counter()
    nn = NearestNeighbors(n_neighbors=maxk + 1, algorithm='brute', metric='euclidean').fit(x)
    dist, ind = nn.kneighbors(x)
    t1 = time.perf_counter()
    out['twonn'] = twonn(dist)
    t2 = time.perf_counter()
    ids = gride(dist, range_max=64)
    out['gride'] = ids
    t3 = time.perf_counter()
    log_den, err = knn_density(dist, ids[4], 16)
    out['clusters'] = adp(ind, log_den, err, np.full(x.shape[0], 16), Z=1.6)
    t4 = time.perf_counter()
    out['ms'] = {'knn': (t1 - t0) * 1e3, 'twonn': (t2 - t1) * 1e3, 'gride': (t3 - t2) * 1e3,
                 'density+adp': (t4 - t3) * 1e3, 'total': (t4 - t0) * 1e3}
    out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == '__main__':
    main()
