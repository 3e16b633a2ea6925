/**
 * The external-trainer plumbing end to end, with `tlab finetune` as the external command: the finetune stage
 * writes the config, launches the trainer as a subprocess, and brings its model (and a LoRA run's PEFT adapter)
 * back into finetuned_checkpoints/ — with the same weights as the in-process trainer, since both train the same
 * TrainConfig. Trainers that fail, cannot start, or finish without a model fail the run saying which; a stopped
 * run stops its trainer's whole process group.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import YAML from 'yaml';
import { loadExperiment } from '../../src/lab/config/load.ts';
import { runLogged } from '../../src/lab/external/process.ts';
import { runExperiment } from '../../src/lab/run.ts';
import { RunStore } from '../../src/lab/store.ts';
import { initModelFolder, presetConfig } from '../../src/models/hf/init-folder.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-external-run-'));
after(() => rmSync(root, { recursive: true, force: true }));
// A random-initialised GPT-2 whose byte-level tokenizer encodes any task, with room for the grid-world prompts.
initModelFolder(presetConfig('gpt2-tiny'), join(root, 'gpt2'), { seed: 0 });
// Give it a plain chat template of its own (fine-tuning on chat tasks needs one).
const tokenizerConfig = join(root, 'gpt2', 'tokenizer_config.json');
writeFileSync(
  tokenizerConfig,
  JSON.stringify({
    ...JSON.parse(readFileSync(tokenizerConfig, 'utf8')),
    chat_template:
      "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}",
  }),
);

function experiment(name: string, external: string | null): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
out: ${join(root, name)}
tasks:
  grid:
    dataset: 'synthetic:grid-world'
    generator: { splits: { train: 32, test: 4 }, rows: 1, cols: 1, vocab_subset_size: 4, modality: text, questions_per_image: 1 }
    dedupe: false
models:
  gpt2: { path: gpt2 }
finetuning:
  strategies: [full]
  lora_ranks: [4]
  training: { max_steps: 12, batch_size: 8, lr: 0.003 }
  seq_len: 192
${external ? `  external: ${external}\n` : ''}report: false
`,
  );
  return file;
}

const quietRun = (file: string, only = ['data', 'finetune']) =>
  runExperiment(loadExperiment(file), { only, quiet: true });

test('tlab finetune as the external trainer: same weights and adapter as in-process, config and log kept', async () => {
  const inProcess = await quietRun(experiment('inproc', null));
  const external = await quietRun(experiment('ext', '{ trainer: tlab }'));
  for (const report of [inProcess, external])
    for (const r of report.rows.filter((x) => x.stage === 'finetune')) assert.equal(r.state, 'done', r.name);
  const runs = external.plan.runs.filter((r) => r.stage === 'finetune');
  assert.deepEqual(runs.map((r) => r.name).sort(), ['gpt2__grid__full__s0', 'gpt2__grid__lora-r4__s0']);
  const store = new RunStore(external.plan.out);
  for (const run of runs) {
    const file = (out: string, sub = '') =>
      readFileSync(
        join(
          out,
          'finetuned_checkpoints',
          `${run.name}${sub}`,
          sub ? 'adapter_model.safetensors' : 'model.safetensors',
        ),
      );
    assert.deepEqual(file(external.plan.out), file(inProcess.plan.out), `${run.name}: same weights`);
    const work = join(external.plan.out, 'external', run.name);
    const config = YAML.parse(readFileSync(join(work, 'tlab.yaml'), 'utf8'));
    assert.equal(config.name, run.name);
    assert.equal(config.training.max_steps, 12);
    assert.ok(existsSync(join(work, 'trainer.log')));
    assert.ok(existsSync(join(external.plan.out, 'finetune_logs', run.name, 'metrics.jsonl')));
    const result = store.read(run.id)!.result as { trainer: string; command: string; train_loss: number };
    assert.equal(result.trainer, 'tlab');
    assert.match(result.command, / finetune .*tlab\.yaml --quiet$/);
    assert.ok(result.train_loss > 0, 'it trained on answer tokens');
  }
  // A LoRA run's adapter comes back in PEFT's layout beside the merged model.
  const lora = join(external.plan.out, 'finetuned_checkpoints', 'gpt2__grid__lora-r4__s0-adapter');
  assert.ok(existsSync(join(lora, 'adapter_config.json')));
  assert.deepEqual(
    readFileSync(join(lora, 'adapter_model.safetensors')),
    readFileSync(
      join(
        inProcess.plan.out,
        'finetuned_checkpoints',
        'gpt2__grid__lora-r4__s0-adapter',
        'adapter_model.safetensors',
      ),
    ),
  );
  // The external setting is part of the runs' identity: another trainer is another run.
  const ids = (r: typeof external) => r.plan.runs.filter((x) => x.stage === 'finetune').map((x) => x.id);
  assert.notDeepEqual(ids(external), ids(inProcess));
});

test('a trainer that fails, cannot start, or ends without a model fails the run with the reason and log', async () => {
  const node = JSON.stringify(process.execPath);
  const cases: [string, string, RegExp][] = [
    [
      'fails',
      `{ trainer: trl, command: [${node}, -e, "console.error('CUDA out of memory'); process.exit(3)"] }`,
      /external trainer trl: .* exited with code 3; log .*trainer\.log/,
    ],
    [
      'missing',
      '{ trainer: trl, command: [/nonexistent/trl] }',
      /cannot start '\/nonexistent\/trl' \(not found on PATH\)/,
    ],
    [
      'empty',
      `{ trainer: trl, command: [${node}, -e, "0"] }`,
      /trl sft exited 0 but .* holds neither a model \(config\.json\) nor a PEFT adapter/,
    ],
  ];
  for (const [name, external, message] of cases) {
    const report = await quietRun(experiment(`bad-${name}`, external));
    const failed = report.rows.filter((r) => r.stage === 'finetune' && r.state === 'failed');
    assert.equal(failed.length, 2, name);
    const record = new RunStore(report.plan.out).read(failed[0].id)!;
    assert.match(record.error!, message, name);
    if (name === 'fails') assert.match(record.error!, /CUDA out of memory/);
    // The dataset and config were written before the launch.
    const work = join(report.plan.out, 'external', failed[0].name);
    assert.ok(existsSync(join(work, 'train.jsonl')) && existsSync(join(work, 'trl.yaml')), name);
  }
});

test('stopping a run stops its trainer and the processes it started', async () => {
  const pids = join(root, 'pids.txt');
  const script = `const { spawn } = require('node:child_process'); const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); require('node:fs').writeFileSync(${JSON.stringify(pids)}, process.pid + ' ' + c.pid); setInterval(() => {}, 1000);`;
  const controller = new AbortController();
  const running = runLogged([process.execPath, '-e', script], {
    cwd: root,
    logPath: join(root, 'stop.log'),
    what: 'trainer',
    signal: controller.signal,
  });
  for (let i = 0; i < 200 && !existsSync(pids); i++) await new Promise((r) => setTimeout(r, 50));
  const [parent, grandchild] = readFileSync(pids, 'utf8').split(' ').map(Number);
  controller.abort('SIGUSR2');
  await assert.rejects(running, /trainer: stopped \(SIGUSR2\)/);
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 100 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(parent), false);
  assert.equal(alive(grandchild), false, 'the trainer’s own child went with it');
});
