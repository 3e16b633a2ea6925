/**
 * Advanced Density Peaks clustering (d'Errico, Facco, Laio, Rodriguez, Inf. Sci. 560, 2021), following DADApy's
 * pure-Python implementation (its Cython one can return garbage assignments, DADApy #165):
 *  1. shift ln ρ so every ln ρ − Z ε is positive; g = ln ρᶜ − ε;
 *  2. putative centres: g_i ≥ g_j for all of i's first k*_i neighbours; a centre inside the k*-neighbourhood of
 *     a point of higher g is removed (remembering that point);
 *  3. points, in decreasing g, take the cluster of their nearest already-assigned neighbour (falling back to the
 *     removed-centre map); assignments start at −1 and none may remain −1;
 *  4. saddles: the densest border point between each pair of clusters;
 *  5. while some pair of peaks is not significant ((peak − saddle) < Z·(ε_peak + ε_saddle) for either peak),
 *     merge the pair with the densest saddle, the peak with the smaller normalised margin into the other.
 * Halo points (optional) are those below their cluster's densest saddle.
 */
import { TlabError } from '../util/errors.ts';
import type { Density } from './density.ts';
import type { NeighbourTable } from './neighbours.ts';

export interface AdpOptions {
  /** Merging threshold (higher = fewer clusters). DADApy's default 1.65; the geometry pipeline uses 1.6. */
  z?: number;
  /** Mark halo points −1. Default false. */
  halo?: boolean;
}

export interface AdpResult {
  clusters: number;
  /** Cluster of every point (0..clusters−1; −1 for halo points when halo is on). */
  assignment: Int32Array;
  /** The density peak (point index) of each cluster. */
  centers: number[];
  /** Saddle log-densities between clusters (clusters×clusters, de-shifted; −1 + shift on the diagonal and where none). */
  saddleLogDensity: Float64Array;
  /** Fraction of points that are not halo points (1 without halo). */
  coreFraction: number;
}

export function adpClustering(table: NeighbourTable, density: Density, options: AdpOptions = {}): AdpResult {
  const z = options.z ?? 1.65;
  const n = table.n;
  const w = table.maxk + 1;
  const { logDensity, error, kstar } = density;
  if (logDensity.length !== n || error.length !== n || kstar.length !== n)
    throw new TlabError(`ADP: densities for ${logDensity.length} points, neighbour table for ${n}`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(logDensity[i]) || !Number.isFinite(error[i]))
      throw new TlabError(`ADP: log-density of point ${i} is not finite (${logDensity[i]} ± ${error[i]})`);
    if (kstar[i] < 1 || kstar[i] > table.maxk)
      throw new TlabError(`ADP: k* of point ${i} is ${kstar[i]}, outside 1..${table.maxk}`);
  }
  const nb = table.indices;
  let shift = Infinity;
  for (let i = 0; i < n; i++) shift = Math.min(shift, logDensity[i] - z * error[i]);
  const den = Float64Array.from(logDensity, (v) => v - shift + 1);
  const g = Float64Array.from(den, (v, i) => v - error[i]);

  // 2. centres
  const isCenter = new Uint8Array(n);
  const centerList: number[] = [];
  for (let i = 0; i < n; i++) {
    let peak = true;
    for (let j = 1; j <= kstar[i]; j++)
      if (g[i] < g[nb[i * w + j]]) {
        peak = false;
        break;
      }
    if (peak) centerList.push(i);
  }
  // For each centre, the densest point among those whose k*-neighbourhood (self included) contains it.
  const densestAround = new Int32Array(n).fill(-1);
  const candidate = new Uint8Array(n);
  for (const c of centerList) candidate[c] = 1;
  for (let l = 0; l < n; l++)
    for (let m = 0; m <= kstar[l]; m++) {
      const c = nb[l * w + m];
      if (!candidate[c]) continue;
      const best = densestAround[c];
      // first maximum in row-major order of (l, m), as np.where + argmax picks it
      if (best < 0 || g[l] > g[best]) densestAround[c] = l;
    }
  const removedFrom: number[] = []; // removed centre
  const removedTo: number[] = []; // its denser point
  const removedIndex = new Map<number, number>();
  const centers: number[] = [];
  for (const c of centerList) {
    let target = densestAround[c];
    if (g[target] > g[c]) {
      const earlier = removedIndex.get(target);
      if (earlier !== undefined) target = removedTo[earlier];
      removedIndex.set(c, removedFrom.length);
      removedFrom.push(c);
      removedTo.push(target);
    } else {
      centers.push(c);
      isCenter[c] = 1;
    }
  }
  const nclus = centers.length;

  // 3. preliminary assignment
  const cluster = new Int32Array(n).fill(-1);
  centers.forEach((c, k) => {
    cluster[c] = k;
  });
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => g[b] - g[a] || a - b);
  for (const e of order) {
    for (let m = 1; cluster[e] === -1 && m < w; m++) cluster[e] = cluster[nb[e * w + m]];
    if (cluster[e] !== -1) continue;
    // No assigned point among the neighbours: the densest "denser point" of the removed centres around e.
    const around: number[] = [];
    for (let m = 0; m < w; m++) {
      const r = removedIndex.get(nb[e * w + m]);
      if (r !== undefined) around.push(nb[e * w + m]);
    }
    around.sort((a, b) => a - b); // np.intersect1d returns the common values sorted
    let best = -1;
    for (const c of around) {
      const t = removedTo[removedIndex.get(c) as number];
      if (best < 0 || g[t] > g[best]) best = t;
    }
    if (best >= 0) cluster[e] = cluster[best];
  }
  for (let i = 0; i < n; i++)
    if (cluster[i] === -1)
      throw new TlabError(
        `ADP: point ${i} could not be assigned to a cluster: none of its ${table.maxk} neighbours was assigned`,
        'use a neighbour table with more neighbours (maxk)',
      );

  // 4. saddles (g decides the border point; the stored value is ln ρᶜ)
  const bordG = new Float64Array(nclus * nclus);
  const bordIndex = new Int32Array(nclus * nclus).fill(-1);
  const members: number[][] = Array.from({ length: nclus }, () => []);
  for (let i = 0; i < n; i++) members[cluster[i]].push(i);
  for (let c = 0; c < nclus; c++)
    for (const p1 of members[c]) {
      if (isCenter[p1]) continue;
      let pp = -1;
      let cp = -1;
      for (let k = 1; k <= kstar[p1]; k++) {
        const p2 = nb[p1 * w + k];
        if (cluster[p2] !== c) {
          pp = p2;
          cp = cluster[p2];
          break;
        }
      }
      if (pp === -1) continue;
      // p1 must be p2's nearest member of c
      for (let k = 1; k < table.maxk; k++) {
        const po = nb[pp * w + k];
        if (po === p1) break;
        if (cluster[po] === c) {
          pp = -1;
          break;
        }
      }
      if (pp === -1) continue;
      if (g[p1] > bordG[c * nclus + cp]) {
        bordG[c * nclus + cp] = g[p1];
        bordG[cp * nclus + c] = g[p1];
        bordIndex[c * nclus + cp] = p1;
        bordIndex[cp * nclus + c] = p1;
      }
    }
  const bord = new Float64Array(nclus * nclus);
  const bordErr = new Float64Array(nclus * nclus);
  for (let i = 0; i < nclus; i++)
    for (let j = 0; j < nclus; j++) {
      const b = bordIndex[i * nclus + j];
      if (i !== j && b !== -1) {
        bord[i * nclus + j] = den[b];
        bordErr[i * nclus + j] = error[b];
      }
    }
  for (let i = 0; i < nclus; i++) {
    bord[i * nclus + i] = -1;
    bordErr[i * nclus + i] = 0;
  }

  // 5. merging
  const alive = new Uint8Array(nclus).fill(1);
  for (;;) {
    let bi = -1;
    let bj = -1;
    let best = -Infinity;
    for (let i = 0; i + 1 < nclus; i++)
      for (let j = i + 1; j < nclus; j++) {
        const s = bord[i * nclus + j];
        const se = bordErr[i * nclus + j];
        const a1 = den[centers[i]] - s;
        const a2 = den[centers[j]] - s;
        const e1 = z * (error[centers[i]] + se);
        const e2 = z * (error[centers[j]] + se);
        if ((a1 < e1 || a2 < e2) && s > best) {
          best = s;
          bi = i;
          bj = j;
        }
      }
    if (bi < 0) break;
    const s = bord[bi * nclus + bj];
    const se = bordErr[bi * nclus + bj];
    const c1 = (den[centers[bi]] - s) / (error[centers[bi]] + se);
    const c2 = (den[centers[bj]] - s) / (error[centers[bj]] + se);
    let keep = bi;
    let drop = bj;
    if (c1 < c2) {
      keep = bj;
      drop = bi;
    }
    alive[drop] = 0;
    bord[keep * nclus + drop] = -1;
    bord[drop * nclus + keep] = -1;
    bordErr[keep * nclus + drop] = 0;
    bordErr[drop * nclus + keep] = 0;
    for (const p of members[drop]) members[keep].push(p);
    members[drop] = [];
    for (let i = 0; i < nclus; i++) {
      if (i === keep || i === drop) continue;
      if (bord[keep * nclus + i] < bord[drop * nclus + i]) {
        bordIndex[keep * nclus + i] = bordIndex[drop * nclus + i];
        bordIndex[i * nclus + keep] = bordIndex[keep * nclus + i];
        bord[keep * nclus + i] = bord[drop * nclus + i];
        bord[i * nclus + keep] = bord[keep * nclus + i];
        bordErr[keep * nclus + i] = bordErr[drop * nclus + i];
        bordErr[i * nclus + keep] = bordErr[keep * nclus + i];
      }
      bord[drop * nclus + i] = -1;
      bord[i * nclus + drop] = -1;
      bordErr[drop * nclus + i] = 0;
      bordErr[i * nclus + drop] = 0;
    }
  }

  // 7. output, in the order of the surviving peaks
  const survivors: number[] = [];
  for (let j = 0; j < nclus; j++) if (alive[j]) survivors.push(j);
  const k = survivors.length;
  const assignment = new Int32Array(n);
  const saddle = new Float64Array(k * k);
  survivors.forEach((j, jj) => {
    for (const p of members[j]) assignment[p] = jj;
    survivors.forEach((l, ll) => {
      saddle[jj * k + ll] = bord[j * nclus + l];
    });
  });
  let core = n;
  if (options.halo) {
    for (let jj = 0; jj < k; jj++) {
      let top = -Infinity;
      for (let ll = 0; ll < k; ll++) top = Math.max(top, saddle[jj * k + ll]);
      for (const p of members[survivors[jj]])
        if (den[p] < top) {
          assignment[p] = -1;
          core--;
        }
    }
  }
  return {
    clusters: k,
    assignment,
    centers: survivors.map((j) => centers[j]),
    saddleLogDensity: saddle.map((v) => v + shift - 1),
    coreFraction: core / n,
  };
}
