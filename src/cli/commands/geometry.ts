/** `tlab geometry`: score a geometry measure on feature files, list the measures, or run a geometry config. */
import type { Command } from 'commander';
import { loadGeometryConfig } from '../../geometry/config.ts';
import { runGeometry } from '../../geometry/run.ts';
import { GEOMETRY_METRICS, type ScoreOptions, scoreGeometry } from '../../geometry/score.ts';
import { readLabelFile, readMatrixFile } from '../../metrics/features.ts';
import { TlabError } from '../../util/errors.ts';
import { Progress } from '../../util/progress.ts';
import { printJson } from '../options.ts';

function parseOption(value: string, previous: ScoreOptions): ScoreOptions {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new TlabError(`--option ${value}: expected key=value (e.g. k=30)`);
  const key = value.slice(0, eq);
  const raw = value.slice(eq + 1);
  let v: string | number | boolean | null = raw;
  if (raw === 'true' || raw === 'false') v = raw === 'true';
  else if (raw === 'null') v = null;
  else if (raw.trim() !== '' && Number.isFinite(Number(raw))) v = Number(raw);
  return { ...previous, [key]: v };
}

export function registerGeometryCommands(program: Command): void {
  const geometry = program
    .command('geometry')
    .description(
      'representation geometry: intrinsic dimension, density-peak clusters, overlaps, CKA, probes',
    );

  geometry
    .command('score')
    .description('one geometry measure on features computed anywhere')
    .requiredOption('--features <file>', 'N×D features: .npy, .safetensors[#tensor] or .parquet#column')
    .option('--features-b <file>', 'a second N×D′ representation of the same samples (overlap, cka-*)')
    .option('--labels <file>', 'N integer labels (adp-ari, label-overlap, probe)')
    .requiredOption('--metric <name>', `one of ${Object.keys(GEOMETRY_METRICS).join(', ')}`)
    .option('--option <key=value>', 'metric option, repeatable (e.g. k=30, z=1.6)', parseOption, {})
    .option('--json', 'print {"metric", "value", "n", "d", ...} as JSON')
    .action(
      async (opts: {
        features: string;
        featuresB?: string;
        labels?: string;
        metric: string;
        option: ScoreOptions;
        json?: boolean;
      }) => {
        if (!GEOMETRY_METRICS[opts.metric])
          throw new TlabError(
            `--metric ${opts.metric}: unknown geometry metric`,
            `valid: ${Object.keys(GEOMETRY_METRICS).join(', ')}`,
          );
        const features = await readMatrixFile(opts.features);
        const featuresB = opts.featuresB ? await readMatrixFile(opts.featuresB) : undefined;
        const labels = opts.labels ? await readLabelFile(opts.labels) : undefined;
        const record = await scoreGeometry(
          opts.metric,
          {
            features,
            featuresB,
            labels: labels?.labels,
            names: { features: features.name, featuresB: featuresB?.name, labels: labels?.name },
          },
          opts.option,
        );
        if (opts.json) printJson(record);
        else {
          const extra = Object.entries(record)
            .filter(([k, v]) => !['metric', 'value', 'n', 'd'].includes(k) && typeof v !== 'object')
            .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(6)) : v}`)
            .join(', ');
          process.stdout.write(
            `${record.metric} = ${record.value} (n=${record.n}, d=${record.d}${extra ? `, ${extra}` : ''})\n`,
          );
        }
      },
    );

  geometry
    .command('list')
    .description('list the geometry measures and their options')
    .option('--json', 'print as JSON')
    .action((opts: { json?: boolean }) => {
      const rows = Object.entries(GEOMETRY_METRICS).map(([name, s]) => ({
        name,
        needs: s.needs,
        options: s.options,
        description: s.description,
      }));
      if (opts.json) printJson(rows);
      else
        for (const r of rows)
          process.stdout.write(
            `${r.name.padEnd(14)} ${r.description}${Object.keys(r.options).length ? ` [options: ${Object.keys(r.options).join(', ')}]` : ''}\n`,
          );
    });

  geometry
    .command('run')
    .description(
      'extract per-layer representations of each condition and write profiles, overlaps, CKA, probes and plots',
    )
    .argument('<config>', 'geometry config (YAML or JSON): task, split, conditions, analyses')
    .requiredOption(
      '--out <dir>',
      'output folder (geometry/*.json, geometry/plots/, geometry/representations/)',
    )
    .option('--force', 're-extract representations that exist')
    .option('--quiet', 'no progress output')
    .option('--json', 'print the summary as JSON')
    .action(async (path: string, opts: { out: string; force?: boolean; quiet?: boolean; json?: boolean }) => {
      const config = loadGeometryConfig(path);
      let bar: Progress | null = null;
      let stage = '';
      let last = 0;
      const summary = await runGeometry(config, {
        outDir: opts.out,
        force: opts.force,
        onProgress: (s, done, total) => {
          if (opts.quiet) return;
          if (s !== stage) {
            bar?.finish();
            stage = s;
            last = 0;
            bar = new Progress({ total, label: s, unit: s.startsWith('extract') ? 'samples' : 'layers' });
          }
          if (done > last) bar?.tick(done - last);
          last = done;
        },
      });
      (bar as Progress | null)?.finish();
      if (opts.json) printJson(summary);
      else {
        for (const [name, rows] of Object.entries(summary.profiles))
          process.stdout.write(
            `${name}: ID by layer ${rows.map((r) => `${r.layer}:${r.id.toFixed(1)}`).join(' ')}\n`,
          );
        process.stdout.write(`results: ${summary.files.length} files, plots in ${opts.out}/geometry/plots\n`);
      }
    });
}
