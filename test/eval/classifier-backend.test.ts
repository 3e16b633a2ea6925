/**
 * The classifier inference backend: a request's image (or text, for a sequence classifier) → the predicted
 * label's name. The expected label is computed independently in the test: the head applied by hand (float64)
 * to the features the classifier reads (ViT: its layernormed CLS; a sequence classifier: the final hidden state
 * of the last prompt token), argmax, id2label. The eval grid then grades classifiers by exact match like any
 * model, and skips what they cannot answer (an image classifier on a text-only task) with the reason.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadTaskSplit } from '../../src/data/read.ts';
import { resolveGridConfig } from '../../src/eval/grid/config.ts';
import { openDefaultBackend, runEvalGrid } from '../../src/eval/grid/run.ts';
import { inferenceMessages, loadTaskSamples } from '../../src/eval/grid/samples.ts';
import { ClassifierBackend, classifierKindOf } from '../../src/eval/inference/classifier-backend.ts';
import { GREEDY } from '../../src/eval/inference/types.ts';
import { extractTaskFeatures } from '../../src/eval/task-features.ts';
import { imageFiles, promptMessages } from '../../src/eval/task-prompt.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import { type ClassifierFixture, classifierFixture } from './classifier-fixture.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-classifier-backend-'));
after(() => rmSync(root, { recursive: true, force: true }));
let fx: ClassifierFixture;
before(async () => {
  fx = await classifierFixture(root);
});

/** argmax_c (f · W[c] + b[c]) per row, in float64, mapped to the folder's id2label. */
function headByHand(dir: string, features: Float32Array, d: number, head: 'classifier' | 'score'): string[] {
  const folder = loadModelFolder(dir);
  const w = folder.weights.get(`${head}.weight`)!.data as Float32Array;
  const b = folder.weights.get(`${head}.bias`)?.data as Float32Array | undefined;
  const c = w.length / d;
  return Array.from({ length: features.length / d }, (_, i) => {
    let best = -1;
    let bestValue = -Infinity;
    for (let k = 0; k < c; k++) {
      let z = b ? b[k] : 0;
      for (let j = 0; j < d; j++) z += features[i * d + j] * w[k * d + j];
      if (z > bestValue) [best, bestValue] = [k, z];
    }
    return folder.config.id2label![String(best)];
  });
}

async function requestsOf(taskDir: string) {
  const examples = await loadTaskSplit(taskDir, 'test');
  return examples.map((e) => {
    const prompt = promptMessages(e);
    const sample = { uid: e.uid, prompt, images: imageFiles(prompt), reference: e.answer };
    return { example: e, request: { messages: inferenceMessages(sample, taskDir), params: GREEDY } };
  });
}

describe('classifier backend', () => {
  test('an image classifier answers the label its head gives the image’s features', async () => {
    assert.equal(classifierKindOf(fx.vit), 'image-classifier');
    assert.equal(classifierKindOf(fx.lm), null);
    const backend = ClassifierBackend.open(fx.vit, { name: 'vit', batchSize: 5 });
    try {
      assert.deepEqual(backend.capabilities, {
        maxImages: 1,
        minImages: 1,
        loglik: false,
        contextLength: null,
      });
      const rows = await requestsOf(fx.imageTask);
      const answers = await backend.chat(rows.map((r) => r.request));
      const f = await extractTaskFeatures(loadModelFolder(fx.vit), fx.imageTask, {
        split: 'test',
        pooling: 'pooled',
      });
      const expected = headByHand(fx.vit, f.features.data as Float32Array, 32, 'classifier');
      assert.deepEqual(
        answers.map((a) => a.text),
        expected,
      );
      const correct = answers.filter((a, i) => a.text === rows[i].example.answer).length;
      assert.ok(correct / rows.length >= 0.75, `accuracy ${correct / rows.length}`);
      // The same image as bytes gives the same answer; stop strings cut the label.
      const bytes = new Uint8Array(
        readFileSync(
          join(fx.imageTask, rows[0].example.messages[0].content.find((p) => p.type === 'image')!.image),
        ),
      );
      const [byBytes] = await backend.chat([
        {
          messages: [
            { role: 'user', content: [{ type: 'image', image: { bytes, mediaType: 'image/png' } }] },
          ],
          params: { ...GREEDY, stop: [answers[0].text.slice(2)] },
        },
      ]);
      assert.equal(byBytes.text, answers[0].text.slice(0, 2));
      await assert.rejects(
        backend.chat([
          { messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], params: GREEDY },
        ]),
        /vit: request 0: has 0 images; an image classifier answers exactly one image per request/,
      );
      await assert.rejects(
        backend.loglik([{ context: 'a', continuation: 'b' }]),
        /vit: a classifier gives no log-likelihood/,
      );
    } finally {
      await backend.close();
    }
  });

  test('a sequence classifier answers the label of its score head on the prompt’s last token', async () => {
    const backend = await openDefaultBackend({
      name: 'seq',
      dir: fx.sequence,
      base: null,
      trainTask: null,
      strategy: null,
      server: null,
    });
    try {
      assert.ok(
        backend instanceof ClassifierBackend,
        'openDefaultBackend opens classifier folders as classifiers',
      );
      assert.equal(backend.capabilities.maxImages, 0);
      const rows = await requestsOf(fx.textTask);
      const answers = await backend.chat(rows.map((r) => r.request));
      const f = await extractTaskFeatures(loadModelFolder(fx.sequence), fx.textTask, {
        split: 'test',
        pooling: 'last',
      });
      assert.deepEqual(
        answers.map((a) => a.text),
        headByHand(fx.sequence, f.features.data as Float32Array, 32, 'score'),
      );
      assert.ok(answers.every((a) => a.promptTokens > 5));
    } finally {
      await backend.close();
    }
  });

  test('the eval grid grades classifiers by exact match and skips tasks they cannot read', async () => {
    const file = join(root, 'grid.yaml');
    const config = resolveGridConfig(
      {
        out: join(root, 'grid'),
        bootstrap: 0,
        models: { vit: { path: fx.vit }, seq: { path: fx.sequence } },
        tasks: { image: { path: fx.imageTask }, text: { path: fx.textTask } },
      },
      file,
    );
    const grid = await runEvalGrid(config, { quiet: true });
    const cell = (m: string, t: string) => grid.cells.find((c) => c.model === m && c.task === t)!;
    assert.equal(cell('vit', 'image').status, 'done');
    assert.equal(cell('vit', 'image').topline_metric, 'exact_match');
    assert.ok(cell('vit', 'image').score! >= 0.75, `vit on its task: ${cell('vit', 'image').score}`);
    assert.equal(cell('seq', 'text').status, 'done');
    assert.ok(cell('seq', 'text').score! >= 0.8, `seq on its task: ${cell('seq', 'text').score}`);
    assert.equal(cell('vit', 'text').status, 'skipped');
    assert.match(cell('vit', 'text').reason!, /prompts with 0 image\(s\) and 'vit' needs 1 per request/);
    assert.equal(cell('seq', 'image').status, 'skipped');
    const samples = await loadTaskSamples(config.tasks[0], null, 0, 'image');
    assert.equal(cell('vit', 'image').n, samples.samples.length);
  });
});
