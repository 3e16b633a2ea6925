/**
 * The `tlab geometry run` config (YAML or JSON; the experiment runner passes the same object in-process): the
 * task split, how representations are taken, the conditions (models, adapters, shot counts), and which analyses
 * to run. Strict: an unknown key is an error that names the closest valid one.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { TlabError } from '../util/errors.ts';
import { ABLATION_MODES } from './ablations.ts';
import { STATES, TOKENS } from './extract.ts';

const name = z.string().regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, dot, dash or underscore');
const fraction = z.number().gt(0).lt(1);

export const ConditionSchema = z
  .object({
    name,
    /** Hugging Face model folder (base or fine-tuned). */
    model: z.string().min(1),
    /** PEFT LoRA adapter folder merged into `model`. */
    adapter: z.string().min(1).optional(),
    /** Few-shot turns before each question (default: as the task was built). */
    shots: z.int().min(0).optional(),
    /** Split to draw shots from when the examples have fewer built ones. */
    shot_split: z.string().min(1).optional(),
  })
  .strict();

const pair = z.tuple([name, name]);

export const GeometryConfigSchema = z
  .object({
    name: name.default('geometry'),
    /** A task folder built by `tlab data build`. */
    task: z.string().min(1),
    split: z.string().min(1).default('test'),
    limit: z.int().min(1).optional(),
    token: z.enum(['last', 'mean', 'first']).default('last'),
    states: z.enum(STATES).default('residual'),
    layers: z.union([z.literal('all'), z.array(z.int())]).default('all'),
    /** Label sets: label (the task's class), answer, field:<metadata field>. */
    labels: z.array(z.string().min(1)).default(['label']),
    batch_size: z.int().min(1).default(8),
    conditions: z.array(ConditionSchema).min(1),
    analysis: z
      .object({
        maxk: z.int().min(2).default(100),
        range_max: z.int().min(2).default(64),
        id_scale: z.int().min(1).default(16),
        density_k: z.int().min(1).default(16),
        z: z.number().gt(0).default(1.6),
        class_fraction: z.number().gt(0).max(1).default(0.3),
      })
      .strict()
      .default({ maxk: 100, range_max: 64, id_scale: 16, density_k: 16, z: 1.6, class_fraction: 0.3 }),
    /** Neighbourhood overlap per layer between conditions (default: every condition against the first). */
    overlap: z
      .object({ k: z.int().min(1).default(30), pairs: z.array(pair).optional() })
      .strict()
      .optional(),
    /** CKA between every layer of one condition and every layer of another. */
    cka: z
      .object({
        kernel: z.enum(['linear', 'rbf']).default('linear'),
        debiased: z.boolean().default(false),
        threshold: z.number().gt(0).default(1),
        pairs: z.array(pair).min(1),
      })
      .strict()
      .optional(),
    /** Linear probes per layer for each label set. */
    probes: z
      .object({
        labels: z.array(z.string().min(1)).optional(),
        test_fraction: fraction.default(0.2),
        folds: z.int().min(0).default(3),
        c: z.number().gt(0).optional(),
      })
      .strict()
      .optional(),
    /** Probe a VLM condition's image patches for the object at each grid cell (grid-world tasks). */
    patch_probe: z
      .object({
        condition: name,
        where: z.enum(['vision', 'projector']).default('vision'),
        layers: z.array(z.int()).optional(),
        test_fraction: fraction.default(0.25),
        folds: z.int().min(0).default(0),
        c: z.number().gt(0).default(1),
      })
      .strict()
      .optional(),
    /** Vision-token ablations of a VLM condition on a grid-world image task. */
    ablations: z
      .object({
        condition: name,
        modes: z.array(z.enum(ABLATION_MODES)).min(1).default(['image', 'one-hot', 'cell-text', 'zeros']),
        limit: z.int().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = c.conditions.map((x) => x.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i)
        ctx.addIssue({ code: 'custom', path: ['conditions', i, 'name'], message: `'${n}' appears twice` });
    });
    const check = (p: [string, string][] | undefined, field: string) => {
      for (const [i, pr] of (p ?? []).entries())
        for (const [j, n] of pr.entries())
          if (!names.includes(n))
            ctx.addIssue({
              code: 'custom',
              path: [field, 'pairs', i, j],
              message: `no condition '${n}' (conditions: ${names.join(', ')})`,
            });
    };
    check(c.overlap?.pairs, 'overlap');
    check(c.cka?.pairs, 'cka');
    if (c.ablations && !names.includes(c.ablations.condition))
      ctx.addIssue({
        code: 'custom',
        path: ['ablations', 'condition'],
        message: `no condition '${c.ablations.condition}'`,
      });
    if (c.patch_probe && !names.includes(c.patch_probe.condition))
      ctx.addIssue({
        code: 'custom',
        path: ['patch_probe', 'condition'],
        message: `no condition '${c.patch_probe.condition}'`,
      });
  });

export type GeometryConfig = z.infer<typeof GeometryConfigSchema>;
export type GeometryConfigInput = z.input<typeof GeometryConfigSchema>;
export { TOKENS };

function levenshtein(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

/** Keys valid at a path of the schema (for did-you-mean). */
function keysAt(path: readonly PropertyKey[]): string[] {
  const shapes: Record<string, string[]> = {
    '': [
      'name',
      'task',
      'split',
      'limit',
      'token',
      'states',
      'layers',
      'labels',
      'batch_size',
      'conditions',
      'analysis',
      'overlap',
      'cka',
      'probes',
      'patch_probe',
    ],
    conditions: Object.keys(ConditionSchema.shape),
    analysis: ['maxk', 'range_max', 'id_scale', 'density_k', 'z', 'class_fraction'],
    overlap: ['k', 'pairs'],
    cka: ['kernel', 'debiased', 'threshold', 'pairs'],
    probes: ['labels', 'test_fraction', 'folds', 'c'],
    patch_probe: ['condition', 'where', 'layers', 'test_fraction', 'folds', 'c'],
  };
  const head = path.find((p) => typeof p === 'string') as string | undefined;
  return shapes[head ?? ''] ?? [];
}

/** Validates a config object; `file` names it in errors. */
export function parseGeometryConfig(raw: unknown, file = 'geometry config'): GeometryConfig {
  const parsed = GeometryConfigSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue.path.map(String).join('.') || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const valid = keysAt(issue.path);
    const key = issue.keys[0];
    const near = valid.map((v) => ({ v, d: levenshtein(key, v) })).sort((a, b) => a.d - b.d)[0];
    throw new TlabError(
      `${file}: ${where}: unknown field '${key}'${near && near.d <= 3 ? ` (did you mean '${near.v}'?)` : ''}`,
      `valid fields: ${valid.join(', ')}`,
    );
  }
  throw new TlabError(`${file}: ${where}: ${issue.message}`, z.prettifyError(parsed.error));
}

/** Reads a YAML/JSON config; relative paths in it are resolved against its folder. */
export function loadGeometryConfig(path: string): GeometryConfig {
  let raw: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    raw = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (error) {
    throw new TlabError(`${path}: cannot read geometry config (${(error as Error).message.split('\n')[0]})`);
  }
  const config = parseGeometryConfig(raw, basename(path));
  return resolvePaths(config, dirname(resolve(path)));
}

export function resolvePaths(config: GeometryConfig, base: string): GeometryConfig {
  const at = (p: string) => (isAbsolute(p) ? p : join(base, p));
  return {
    ...config,
    task: at(config.task),
    conditions: config.conditions.map((c) => ({
      ...c,
      model: at(c.model),
      ...(c.adapter ? { adapter: at(c.adapter) } : {}),
    })),
  };
}
