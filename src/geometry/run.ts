/**
 * `tlab geometry run`: extract every condition's representations (reused when the folder's fingerprint matches),
 * then per layer: the ID / clustering / label-overlap profile, neighbourhood overlaps between conditions, CKA
 * between the layers of two conditions, linear probes, and a VLM's per-grid-cell patch probes. Writes
 * <out>/geometry/*.json and <out>/geometry/plots/*.{svg,png}; callable in-process (runGeometry) as a stage.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openTask } from '../data/read.ts';
import { type Matrix, selectRows } from '../linalg/matrix.ts';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import { runAblations } from './ablations.ts';
import { ckaMatrix } from './cka.ts';
import type { GeometryConfig } from './config.ts';
import { type ExtractSpec, extractRepresentations, openRepresentations, replaceFolder } from './extract.ts';
import { loadConditionModel } from './model-source.ts';
import { neighbourTable } from './neighbours.ts';
import { neighbourhoodOverlap } from './overlap.ts';
import {
  type GridLayout,
  gridLayoutOf,
  type PatchProbeResult,
  parseGridText,
  probeGridCells,
} from './patch-probes.ts';
import { analysePoints, type PointAnalysis } from './pipeline.ts';
import { saveHeatmap, saveProfilePlot } from './plots.ts';
import { findDuplicates, intersectSorted, pick } from './points.ts';
import { linearProbe, type ProbeResult } from './probes.ts';

export type GeometryProgress = (stage: string, done: number, total: number) => void;

export interface RunOptions {
  outDir: string;
  onProgress?: GeometryProgress;
  /** Re-extract even when a matching folder exists. */
  force?: boolean;
}

export interface LayerProfile extends Omit<PointAnalysis, 'assignment' | 'kept'> {
  layer: number;
}

export interface GeometrySummary {
  name: string;
  conditions: string[];
  files: string[];
  plots: string[];
  profiles: Record<string, LayerProfile[]>;
  overlap?: { pair: [string, string]; k: number; layers: { layer: number; value: number; n: number }[] }[];
  cka?: { pair: [string, string]; layersA: number[]; layersB: number[]; values: number[][] }[];
  probes?: Record<string, { layer: number; label: string; result: ProbeResult }[]>;
  patchProbe?: { condition: string; where: string; results: PatchProbeResult[] };
  ablations?: {
    condition: string;
    modes: { mode: string; accuracy: number; n: number; layers: LayerProfile[] }[];
  };
}

/** What a folder of representations depends on: the spec, the task manifest, and the weight files' size and time. */
function fingerprint(spec: ExtractSpec): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(spec));
  const manifest = join(spec.task, 'manifest.json');
  if (existsSync(manifest)) h.update(readFileSync(manifest));
  for (const dir of [spec.model, spec.adapter])
    if (dir && existsSync(dir))
      for (const f of readdirSync(dir).sort())
        if (/\.(safetensors|json)$/.test(f)) {
          const st = statSync(join(dir, f));
          h.update(`${f}:${st.size}:${st.mtimeMs}`);
        }
  return h.digest('hex').slice(0, 16);
}

/** Extracts into <dir>.tmp and moves it into place, or reuses a complete folder with the same fingerprint. */
async function ensureRepresentations(
  spec: ExtractSpec,
  dir: string,
  label: string,
  options: RunOptions,
): Promise<ReturnType<typeof openRepresentations>> {
  const fp = fingerprint(spec);
  const meta = join(dir, 'metadata.json');
  if (!options.force && existsSync(meta)) {
    const opened = openRepresentations(dir);
    if (opened.manifest.fingerprint === fp) return opened;
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await extractRepresentations(spec, tmp, {
      fingerprint: fp,
      where: label,
      onProgress: (d, t) => options.onProgress?.(`extract ${label}`, d, t),
    });
    replaceFolder(tmp, dir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  return openRepresentations(dir);
}

function specOf(config: GeometryConfig, c: GeometryConfig['conditions'][number]): ExtractSpec {
  return {
    model: c.model,
    adapter: c.adapter,
    task: config.task,
    split: config.split,
    limit: config.limit,
    shots: c.shots,
    shotSplit: c.shot_split,
    token: config.token,
    states: config.states,
    layers: config.layers === 'all' ? undefined : config.layers,
    labels: config.labels,
    batchSize: config.batch_size,
  };
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

export async function runGeometry(config: GeometryConfig, options: RunOptions): Promise<GeometrySummary> {
  const root = join(options.outDir, 'geometry');
  const plotsDir = join(root, 'plots');
  const files: string[] = [];
  const plots: string[] = [];
  const progress = options.onProgress ?? (() => {});
  const reps = new Map<string, ReturnType<typeof openRepresentations>>();
  for (const c of config.conditions)
    reps.set(
      c.name,
      await ensureRepresentations(specOf(config, c), join(root, 'representations', c.name), c.name, options),
    );

  // profiles
  const a = config.analysis;
  const profiles: Record<string, LayerProfile[]> = {};
  for (const c of config.conditions) {
    const rep = reps.get(c.name)!;
    const labels = Object.fromEntries(rep.labels.map((l) => [l.name, l.values]));
    const layers = rep.manifest.layers.map((r) => r.layer);
    const rows: LayerProfile[] = [];
    for (const [i, l] of layers.entries()) {
      progress(`profile ${c.name}`, i, layers.length);
      const data = rep.layer(l);
      if (data.kept.length < a.density_k + 2) continue; // a layer where (almost) all rows coincide, e.g. embeddings at a shared token
      const r = await analysePoints(data.x, labels, {
        maxk: a.maxk,
        rangeMax: a.range_max,
        idScale: a.id_scale,
        densityK: a.density_k,
        z: a.z,
        classFraction: a.class_fraction,
        name: `${c.name} layer ${l}`,
      });
      const { assignment: _a, kept: _k, ...rest } = r;
      rows.push({ layer: l, ...rest });
    }
    progress(`profile ${c.name}`, layers.length, layers.length);
    profiles[c.name] = rows;
    const path = join(root, `profile_${safe(c.name)}.json`);
    writeJsonAtomic(path, { condition: c.name, manifest: rep.manifest, layers: rows });
    files.push(path);
  }
  const series = (pick: (p: LayerProfile) => number | undefined) =>
    config.conditions.map((c) => ({
      name: c.name,
      points: profiles[c.name].flatMap((p) => {
        const v = pick(p);
        return v === undefined || !Number.isFinite(v) ? [] : [{ x: p.layer, y: v }];
      }),
    }));
  const idPlot = await saveProfilePlot(
    join(plotsDir, 'id_vs_layer'),
    `intrinsic dimension (GRIDE, n1=${a.id_scale}) vs layer`,
    'ID',
    series((p) => p.id),
  );
  plots.push(idPlot.svg, idPlot.png);
  for (const label of reps.get(config.conditions[0].name)!.labels.map((l) => l.name)) {
    const p = await saveProfilePlot(
      join(plotsDir, `ari_vs_layer_${safe(label)}`),
      `ARI of density-peak clusters (Z=${a.z}) against '${label}' vs layer`,
      'ARI',
      series((x) => x.labels?.[label]?.ari),
    );
    plots.push(p.svg, p.png);
  }

  const summary: GeometrySummary = {
    name: config.name,
    conditions: config.conditions.map((c) => c.name),
    files,
    plots,
    profiles,
  };

  // neighbourhood overlap between conditions, on the samples distinct in both
  if (config.overlap || config.conditions.length > 1) {
    const k = config.overlap?.k ?? 30;
    const first = config.conditions[0].name;
    const pairs =
      config.overlap?.pairs ?? config.conditions.slice(1).map((c) => [first, c.name] as [string, string]);
    summary.overlap = [];
    for (const pair of pairs) {
      const [ra, rb] = [reps.get(pair[0])!, reps.get(pair[1])!];
      const common = ra.manifest.layers
        .map((r) => r.layer)
        .filter((l) => rb.manifest.layers.some((x) => x.layer === l));
      const layers: { layer: number; value: number; n: number }[] = [];
      for (const [i, l] of common.entries()) {
        progress(`overlap ${pair.join('/')}`, i, common.length);
        const la = ra.layer(l);
        const lb = rb.layer(l);
        const keep = intersectSorted(la.kept, lb.kept);
        if (keep.length <= k + 1) continue;
        const ta = await neighbourTable(selectRows(la.x, keep), k);
        const tb = await neighbourTable(selectRows(lb.x, keep), k);
        layers.push({ layer: l, value: neighbourhoodOverlap(ta, tb, k), n: keep.length });
      }
      progress(`overlap ${pair.join('/')}`, common.length, common.length);
      summary.overlap.push({ pair, k, layers });
    }
    const path = join(root, 'overlap.json');
    writeJsonAtomic(path, summary.overlap);
    files.push(path);
    const p = await saveProfilePlot(
      join(plotsDir, 'overlap_vs_layer'),
      `neighbourhood overlap χ_${k} vs layer`,
      `χ_${k}`,
      summary.overlap.map((o) => ({
        name: `${o.pair[0]} / ${o.pair[1]}`,
        points: o.layers.map((x) => ({ x: x.layer, y: x.value })),
      })),
    );
    plots.push(p.svg, p.png);
  }

  if (config.cka) {
    summary.cka = [];
    for (const pair of config.cka.pairs) {
      progress(`cka ${pair.join('/')}`, 0, 1);
      const [ra, rb] = [reps.get(pair[0])!, reps.get(pair[1])!];
      const la = ra.manifest.layers.map((r) => r.layer);
      const lb = rb.manifest.layers.map((r) => r.layer);
      let keep: Int32Array | null = null;
      const load = (rep: typeof ra, ls: number[]) => ls.map((l) => rep.layer(l));
      const da = load(ra, la);
      const db = load(rb, lb);
      for (const d of [...da, ...db]) keep = keep ? intersectSorted(keep, d.kept) : d.kept;
      // layers whose rows all coincide (embeddings at a shared token) carry no similarity structure
      const usable = (ds: typeof da, ls: number[]) =>
        ls.filter((_, i) => findDuplicates(ds[i].x).kept.length > 1);
      const ua = usable(da, la);
      const ub = usable(db, lb);
      const rows = keep && keep.length > 3 ? keep : Int32Array.from({ length: da[0].x.rows }, (_, i) => i);
      const sel = (ds: typeof da, ls: number[], us: number[]): Matrix[] =>
        us.map((l) => selectRows(ds[ls.indexOf(l)].x, rows));
      const values = await ckaMatrix(sel(da, la, ua), sel(db, lb, ub), {
        kernel: config.cka.kernel,
        debiased: config.cka.debiased,
        threshold: config.cka.threshold,
      });
      summary.cka.push({ pair, layersA: ua, layersB: ub, values });
      const hm = await saveHeatmap(join(plotsDir, `cka_${safe(pair[0])}__${safe(pair[1])}`), {
        title: `${config.cka.debiased ? 'debiased ' : ''}${config.cka.kernel} CKA between layers`,
        x: `${pair[1]} layer`,
        y: `${pair[0]} layer`,
        values,
        rowLabels: ua.map(String),
        colLabels: ub.map(String),
        domain: [0, 1],
      });
      plots.push(hm.svg, hm.png);
    }
    const path = join(root, 'cka.json');
    writeJsonAtomic(path, summary.cka);
    files.push(path);
  }

  if (config.probes) {
    summary.probes = {};
    for (const c of config.conditions) {
      const rep = reps.get(c.name)!;
      const wanted = config.probes.labels ?? rep.labels.map((l) => l.name);
      const out: { layer: number; label: string; result: ProbeResult }[] = [];
      for (const [i, rec] of rep.manifest.layers.entries()) {
        progress(`probes ${c.name}`, i, rep.manifest.layers.length);
        const data = rep.layer(rec.layer);
        if (data.kept.length < 4) continue;
        for (const name of wanted) {
          const set = rep.labels.find((l) => l.name === name);
          if (!set)
            throw new TlabError(
              `probes.labels: no label set '${name}' (extracted: ${rep.labels.map((l) => l.name).join(', ')})`,
            );
          if (new Set(pick(set.values, data.kept)).size < 2) continue;
          out.push({
            layer: rec.layer,
            label: name,
            // distinct rows only: a duplicate on both sides of the split would leak
            result: linearProbe(selectRows(data.x, data.kept), pick(set.values, data.kept), {
              testFraction: config.probes.test_fraction,
              folds: config.probes.folds,
              c: config.probes.c,
              name: `${c.name} layer ${rec.layer}`,
            }),
          });
        }
      }
      progress(`probes ${c.name}`, rep.manifest.layers.length, rep.manifest.layers.length);
      summary.probes[c.name] = out;
    }
    const path = join(root, 'probes.json');
    writeJsonAtomic(path, summary.probes);
    files.push(path);
    const labelsSeen = [...new Set(Object.values(summary.probes).flatMap((r) => r.map((x) => x.label)))];
    for (const label of labelsSeen) {
      const p = await saveProfilePlot(
        join(plotsDir, `probe_vs_layer_${safe(label)}`),
        `linear probe held-out accuracy for '${label}' vs layer`,
        'accuracy',
        config.conditions.map((c) => ({
          name: c.name,
          points: summary
            .probes![c.name].filter((r) => r.label === label)
            .map((r) => ({ x: r.layer, y: r.result.accuracy })),
        })),
      );
      plots.push(p.svg, p.png);
    }
  }

  if (config.patch_probe) {
    const pp = config.patch_probe;
    const cond = config.conditions.find((c) => c.name === pp.condition)!;
    const spec: ExtractSpec = {
      ...specOf(config, cond),
      token: pp.where === 'vision' ? 'vision-patches' : 'projector-patches',
      layers: pp.layers,
      labels: ['field:grid_text'],
    };
    const rep = await ensureRepresentations(
      spec,
      join(root, 'representations', `${cond.name}-${pp.where}-patches`),
      `${cond.name} patches`,
      options,
    );
    const task = openTask(config.task);
    const grids = Array.from(rep.labels[0].values, (v) => parseGridText(rep.labels[0].classes[v]));
    const width = await firstImageWidth(task.dir, config.split);
    const layout: GridLayout = gridLayoutOf(task.manifest, width, task.dir);
    const results: PatchProbeResult[] = [];
    for (const [i, rec] of rep.manifest.layers.entries()) {
      progress(`patch probes ${cond.name}`, i, rep.manifest.layers.length);
      const data = rep.layer(rec.layer);
      results.push(
        probeGridCells(data.x, data.patches as number, grids, layout, rec.layer, {
          testFraction: pp.test_fraction,
          folds: pp.folds,
          c: pp.folds > 1 ? undefined : pp.c,
        }),
      );
    }
    progress(`patch probes ${cond.name}`, rep.manifest.layers.length, rep.manifest.layers.length);
    summary.patchProbe = { condition: cond.name, where: pp.where, results };
    const path = join(root, 'patch_probes.json');
    writeJsonAtomic(path, summary.patchProbe);
    files.push(path);
    for (const r of results) {
      const hm = await saveHeatmap(join(plotsDir, `patch_probe_${pp.where}_layer_${r.layer}`), {
        title: `probe accuracy per grid cell (${pp.where} patches, layer ${r.layer}, ${r.images} images)`,
        x: 'column',
        y: 'row',
        values: r.accuracy,
        domain: [0, 1],
        annotate: true,
      });
      plots.push(hm.svg, hm.png);
    }
  }

  if (config.ablations) {
    const ab = config.ablations;
    const cond = config.conditions.find((c) => c.name === ab.condition)!;
    progress(`ablations ${cond.name}`, 0, ab.modes.length);
    const results = await runAblations(loadConditionModel({ model: cond.model, adapter: cond.adapter }), {
      task: config.task,
      split: config.split,
      limit: ab.limit ?? config.limit,
      modes: ab.modes,
      batchSize: config.batch_size,
    });
    const modes: NonNullable<GeometrySummary['ablations']>['modes'] = [];
    for (const [i, r] of results.entries()) {
      progress(`ablations ${cond.name}`, i + 1, ab.modes.length);
      const layers: LayerProfile[] = [];
      for (const [l, x] of r.states.entries()) {
        if (findDuplicates(x).kept.length < a.density_k + 2) continue;
        const p = await analysePoints(
          x,
          { answer: r.answers },
          {
            maxk: a.maxk,
            rangeMax: a.range_max,
            idScale: a.id_scale,
            densityK: a.density_k,
            z: a.z,
            classFraction: a.class_fraction,
            name: `${cond.name} ablation ${r.mode} layer ${l}`,
          },
        );
        const { assignment: _a, kept: _k, ...rest } = p;
        layers.push({ layer: l, ...rest });
      }
      modes.push({ mode: r.mode, accuracy: r.accuracy, n: r.n, layers });
    }
    summary.ablations = { condition: cond.name, modes };
    const path = join(root, 'ablations.json');
    writeJsonAtomic(path, summary.ablations);
    files.push(path);
    const lines = (pick: (p: LayerProfile) => number | undefined) =>
      modes.map((m) => ({
        name: `${m.mode} (accuracy ${m.accuracy.toFixed(2)})`,
        points: m.layers.flatMap((p) => {
          const v = pick(p);
          return v === undefined || !Number.isFinite(v) ? [] : [{ x: p.layer, y: v }];
        }),
      }));
    for (const [file, title, y, pick] of [
      [
        'ablation_id_vs_layer',
        'ID of the last prompt token vs layer, per image-token ablation',
        'ID',
        (p: LayerProfile) => p.id,
      ],
      [
        'ablation_ari_vs_layer',
        'ARI of density-peak clusters against the answer vs layer, per ablation',
        'ARI',
        (p: LayerProfile) => p.labels?.answer?.ari,
      ],
    ] as const) {
      const plot = await saveProfilePlot(join(plotsDir, file), title, y, lines(pick));
      plots.push(plot.svg, plot.png);
    }
  }

  writeJsonAtomic(join(root, 'summary.json'), { ...summary, profiles: undefined });
  files.push(join(root, 'summary.json'));
  return summary;
}

async function firstImageWidth(taskDir: string, split: string): Promise<number> {
  const { readTaskSplit } = await import('../data/read.ts');
  for await (const e of readTaskSplit(taskDir, split)) {
    const w = e.metadata.images[0]?.width;
    if (w) return w;
  }
  throw new TlabError(`${taskDir}: split '${split}' has no image to read the grid layout from`);
}
