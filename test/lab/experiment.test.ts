/**
 * A whole (tiny) study from one YAML: data, a shared tokenizer, a zoo of two pre-trained GPT-2s, full and LoRA
 * fine-tuning on two tasks, the eval grid, estimators against the real fine-tuned scores, the summary. Checks the
 * outputs, that a rerun does nothing, that changing one setting redoes exactly the runs it affects, that inline
 * and 2 workers give identical results, and that kill -9 at random moments followed by a rerun completes with
 * the results of an uninterrupted run, no run done twice and no file torn.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { readSafetensors } from '../../src/engine/io/safetensors.ts';
import { parseExperiment } from '../../src/lab/config/load.ts';
import { planExperiment } from '../../src/lab/plan/plan.ts';
import type { Plan } from '../../src/lab/plan/types.ts';
import type { RunRecord } from '../../src/lab/store.ts';
import { Rng } from '../../src/util/random.ts';
import { gridTask, tinyGpt2 } from './tiny-study.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-lab-'));
after(() => rmSync(root, { recursive: true, force: true }));

const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

const grid = gridTask;
const gpt2 = (task: string, n_embd: number) => tinyGpt2(task, n_embd, 8);

function experiment(out: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'tiny',
    out,
    tasks: { g1: grid(1, 60), g2: grid(2, 30) },
    tokenizers: { shared: { build: 'word', from_tasks: ['g1', 'g2'] } },
    models: { a: gpt2('g2', 16), b: gpt2('g1', 24) },
    finetuning: {
      strategies: ['full'],
      lora_ranks: [2],
      training: { max_steps: 10, batch_size: 16, lr: 0.003 },
    },
    evals: { nb_eval_samples: 6, inference: { max_tokens: 3 }, bootstrap: 50 },
    metrics: { estimators: ['logme', 'hscore', 'knn'], n_samples: [20, 'all'], seeds: [0, 1] },
    ...extra,
  };
}

function write(name: string, doc: Record<string, unknown>): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(file, YAML.stringify(doc));
  return file;
}

function records(out: string): RunRecord[] {
  return readdirSync(join(out, 'runs')).map((id) =>
    JSON.parse(readFileSync(join(out, 'runs', id, 'run.json'), 'utf8')),
  );
}

/** Every JSON / JSONL / safetensors file under `dir` parses (nothing torn). */
function checkFiles(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) n += checkFiles(path);
    else if (name.endsWith('.json')) {
      JSON.parse(readFileSync(path, 'utf8'));
      n++;
    } else if (name.endsWith('.jsonl')) {
      const text = readFileSync(path, 'utf8');
      if (text) assert.ok(text.endsWith('\n'), `${path}: torn last line`);
      for (const line of text.split('\n').filter(Boolean)) JSON.parse(line);
      n++;
    } else if (name.endsWith('.safetensors')) {
      readSafetensors(path);
      n++;
    }
  }
  return n;
}

const reference = join(root, 'inline');
let plan: Plan;

before(() => {
  const r = tlab(['run', write('inline', experiment(reference)), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  plan = JSON.parse(readFileSync(join(reference, 'plan.json'), 'utf8'));
});

describe('experiments', () => {
  test('one YAML runs the whole study: grid, transfer, estimators vs actual, tidy results, summary', () => {
    const stages = (s: string) => plan.runs.filter((r) => r.stage === s).length;
    assert.deepEqual(
      ['data', 'tokenizer', 'pretrain', 'finetune', 'eval', 'features', 'metrics', 'summary'].map(stages),
      [2, 1, 2, 8, 10, 4, 4, 1],
    );
    assert.ok(records(reference).every((r) => r.state === 'done'));
    const grid = JSON.parse(readFileSync(join(reference, 'eval_grid.json'), 'utf8'));
    assert.equal(grid.cells.length, 20, '10 models × 2 tasks');
    assert.equal(JSON.parse(readFileSync(join(reference, 'eval_grid_results.json'), 'utf8')).length, 20);
    const csv = readFileSync(join(reference, 'results.csv'), 'utf8').trim().split('\n');
    assert.equal(
      csv[0],
      'kind,model,finetuned_on,strategy,lora_rank,seed,task,metric,value,n_samples,low,high,run_id',
    );
    const kinds = csv.slice(1).map((l) => l.split(',')[0]);
    assert.equal(kinds.filter((k) => k === 'eval').length, 20);
    // A fine-tuned model's eval rows name its base, what it was fine-tuned on and how; a zoo model's are zero-shot.
    const evalRows = csv.slice(1).filter((l) => l.startsWith('eval,'));
    assert.deepEqual(
      evalRows
        .filter((l) => /^eval,a,g1,lora-r2,2,0,/.test(l))
        .map((l) => l.split(',')[6])
        .sort(),
      ['g1', 'g2'],
    );
    assert.equal(evalRows.filter((l) => l.split(',')[3] === 'zero-shot').length, 4, '2 zoo models × 2 tasks');
    // 2 models × 2 tasks × 3 estimators × (n=20 × 2 seeds + 'all' once, with the first seed).
    assert.equal(kinds.filter((k) => k === 'estimator').length, 36);
    assert.ok(existsSync(join(reference, 'results.parquet')));
    const summary = JSON.parse(readFileSync(join(reference, 'summary.json'), 'utf8'));
    assert.equal(summary.schema, 'transferlab-summary/1');
    assert.deepEqual(summary.transfer.tasks, ['g1', 'g2']);
    assert.equal(summary.actual_scores.length, 4, 'every zoo model fine-tuned (full) on every target');
    assert.ok(
      summary.best_estimator.every((b: { reliability: string }) =>
        /uninformative: 2 models/.test(b.reliability),
      ),
    );
    for (const f of [
      'transfer.json',
      'transferability_results.csv',
      'plots/learning_curves.svg',
      'experiment.yaml',
    ])
      assert.ok(existsSync(join(reference, f)), f);
    assert.ok(checkFiles(reference) > 50);
  });

  test('a rerun executes nothing; status reads the run files', () => {
    const r = tlab(['run', join(root, 'inline.yaml'), '--json', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).executed, 0);
    const s = tlab(['status', reference]);
    assert.equal(s.status, 0, s.stderr);
    assert.match(s.stdout, /finetune\s+8\s+0\s+0\s+0\s+0\s+8/);
  });

  test('changing one setting changes exactly the ids of the runs it affects and those downstream', async () => {
    const ids = async (doc: Record<string, unknown>) => {
      const p = await planExperiment(parseExperiment(doc, join(root, 'x.yaml')), {
        out: join(root, 'plan-only'),
      });
      return new Map(p.runs.map((r) => [`${r.stage}:${r.name}`, r.id]));
    };
    const before = await ids(experiment(reference));
    assert.deepEqual(before, await ids(experiment(reference)), 'ids are stable');
    const doc = experiment(reference);
    (doc.finetuning as { training: { lr: number } }).training.lr = 0.001;
    const after = await ids(doc);
    const changed = [...before].filter(([k, id]) => after.get(k) !== id).map(([k]) => k.split(':')[0]);
    assert.deepEqual([...new Set(changed)].sort(), ['eval', 'finetune', 'summary']);
    assert.equal(
      changed.filter((s) => s === 'eval').length,
      8,
      'the fine-tuned models only, not the zero-shot rows',
    );
    assert.ok(!existsSync(join(root, 'plan-only')), 'planning writes nothing');
  });

  test('inline and 2 workers give identical results', () => {
    const out = join(root, 'workers');
    const r = tlab([
      'run',
      write('workers', experiment(out, { executor: { kind: 'workers', workers: 2 } })),
      '--quiet',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      readFileSync(join(out, 'results.csv'), 'utf8'),
      readFileSync(join(reference, 'results.csv'), 'utf8'),
    );
    assert.ok(records(out).some((x) => x.executor?.kind === 'workers'));
    assert.ok(existsSync(join(out, 'runs', records(out)[0].id, 'log.txt')), 'each worker run has its log');
  });

  test('kill -9 at random moments, then a rerun: complete, the same results, nothing done twice, nothing torn', async () => {
    const out = join(root, 'killed');
    const file = write('killed', experiment(out));
    const rng = new Rng(7);
    const doneAt = new Map<string, string>();
    const snapshot = () => {
      if (!existsSync(join(out, 'runs'))) return;
      for (const r of records(out)) {
        const seen = doneAt.get(r.id);
        if (seen) assert.equal(r.finished_at, seen, `${r.stage}:${r.name} was done, then redone`);
        else if (r.state === 'done') doneAt.set(r.id, r.finished_at!);
      }
    };
    for (let trial = 0; trial < 5; trial++) {
      const child = spawn(process.execPath, ['bin/tlab.js', 'run', file, '--quiet'], { stdio: 'ignore' });
      const delay = 1500 + rng.int(6000);
      const exited = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(false);
        }, delay);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!exited) await new Promise((r) => child.once('exit', r));
      snapshot();
    }
    const r = tlab(['run', file, '--quiet', '--json']);
    assert.equal(r.status, 0, r.stderr);
    snapshot();
    assert.ok(records(out).every((x) => x.state === 'done'));
    assert.ok(doneAt.size > 0);
    const strip = (csv: string) => csv;
    assert.equal(
      strip(readFileSync(join(out, 'results.csv'), 'utf8')),
      strip(readFileSync(join(reference, 'results.csv'), 'utf8')),
    );
    checkFiles(out);
  });
});
