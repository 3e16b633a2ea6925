/**
 * Vision-token ablations for a LLaVA-style VLM on a grid-world image task (seed 003: bridge the image-only and
 * text-only settings step by step). Each prompt's image tokens are filled with:
 *  - `image`: the projector's features of the image (the model as trained);
 *  - `one-hot`: for the patch behind each image token, a one-hot encoding of the object in the grid cell that
 *    patch covers (index in the task's vocabulary; border patches and a CLS token get zeros);
 *  - `cell-text`: the decoder's own token embedding of that object's word;
 *  - `zeros`: nothing (a control).
 * For each mode: answer accuracy (every answer token the argmax under teacher forcing) and the last prompt
 * token's states at every decoder layer, whose geometry (ID, ARI against the answers) the runner profiles.
 */
import { loadTaskSplit, openTask } from '../data/read.ts';
import { Graph, type Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { Program } from '../engine/runtime/session.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { ImagePixels, visionPreprocessorFor } from '../eval/images.ts';
import { encodeTaskPrompt, referenceAnswer } from '../eval/task-prompt.ts';
import { type Matrix, matrix } from '../linalg/matrix.ts';
import type { ModelFolder } from '../models/hf/model-folder.ts';
import { expandImagePlaceholders, spliceImageFeatures } from '../models/vlm.ts';
import { ParamBuilder } from '../nn/module.ts';
import { TlabError } from '../util/errors.ts';
import { cellPatches, gridLayoutOf, parseGridText } from './patch-probes.ts';

export const ABLATION_MODES = ['image', 'one-hot', 'cell-text', 'zeros'] as const;
export type AblationMode = (typeof ABLATION_MODES)[number];

export interface AblationResult {
  mode: AblationMode;
  accuracy: number;
  n: number;
  /** Last prompt token states per decoder layer (0..L), N×D. */
  states: Matrix[];
  /** Answer class of each sample (sorted answer strings). */
  answers: Int32Array;
}

function embeddingTable(folder: ModelFolder): HostTensor {
  for (const name of ['language_model.wte.weight', 'language_model.model.embed_tokens.weight']) {
    const t = folder.weights.get(name);
    if (t) return t;
  }
  throw new TlabError(`${folder.dir}: no token embedding table found for the cell-text ablation`);
}

export async function runAblations(
  folder: ModelFolder,
  options: {
    task: string;
    split: string;
    limit?: number;
    modes: readonly AblationMode[];
    batchSize?: number;
  },
): Promise<AblationResult[]> {
  if (folder.kind !== 'vlm')
    throw new TlabError(`${folder.dir}: vision-token ablations need a VLM, this is a ${folder.kind}`);
  const tokenizer = folder.tokenizer;
  if (!tokenizer) throw new TlabError(`${folder.dir}: no tokenizer.json`);
  const vlm = folder.model;
  const task = openTask(options.task);
  let examples = await loadTaskSplit(task.dir, options.split);
  if (options.limit) examples = examples.slice(0, options.limit);
  if (examples.length === 0) throw new TlabError(`${task.dir}: split '${options.split}' is empty`);
  const vocab = (task.manifest.generator?.params.vocab as string[] | undefined) ?? [];
  const d = vlm.hiddenSize;
  if (vocab.length > d)
    throw new TlabError(`one-hot ablation: ${vocab.length} objects need at most ${d} dimensions`);
  const enc = vlm.encoder;
  const grid = Math.round(Math.sqrt(enc.numPatches));
  const width = examples[0].metadata.images[0]?.width;
  if (!width) throw new TlabError(`${task.dir}: example ${examples[0].uid} has no image`);
  const layout = gridLayoutOf(task.manifest, width, task.dir);
  const cellOfPatch = new Int32Array(enc.numPatches).fill(-1);
  cellPatches(layout, grid).forEach((ps, c) => {
    for (const p of ps) cellOfPatch[p] = c;
  });
  const offset = vlm.imageTokens - enc.numPatches;
  const pixels = new ImagePixels(enc, visionPreprocessorFor(folder.preprocessorConfig, enc));
  const table = embeddingTable(folder);
  const tableData = table.data as Float32Array;

  // prompts (image placeholders expanded) + answers
  const rows = examples.map((e) => {
    const p = encodeTaskPrompt(tokenizer, e, task.dir);
    const answer = referenceAnswer(e);
    if (answer === undefined) throw new TlabError(`example ${e.uid} has no answer`);
    const prompt = expandImagePlaceholders(p.ids, vlm.imageTokenId, vlm.imageTokens);
    const cont = tokenizer.encode(answer);
    const text = e.metadata.fields.grid_text;
    if (typeof text !== 'string')
      throw new TlabError(`example ${e.uid}: no grid_text metadata (a grid-world task is needed)`);
    return { prompt, cont, answer, image: p.images[0], cells: parseGridText(text).flat() };
  });
  for (const r of rows)
    if (r.prompt.length + r.cont.length > vlm.maxPositions)
      throw new TlabError(
        `a prompt with its answer has ${r.prompt.length + r.cont.length} tokens, more than the context`,
      );
  const answerClasses = [...new Set(rows.map((r) => r.answer))].sort();
  const answers = Int32Array.from(rows, (r) => answerClasses.indexOf(r.answer));
  const len = Math.max(...rows.map((r) => r.prompt.length + r.cont.length));
  const batch = options.batchSize ?? 8;
  const L = vlm.numLayers;
  const c = enc.numChannels;
  const s = enc.imageSize;

  // one program: image features (for 'image') and the decoder with spliced features
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const pix = graph.input('pixel_values', 'float32', [batch, c, s, s]);
  const useImage = graph.input('use_image', 'float32', [batch, 1, 1]);
  const given = graph.input('features', 'float32', [batch, vlm.imageTokens, d]);
  const ids = graph.input('ids', 'int64', [batch, len]);
  const mask = graph.input('attention_mask', 'int64', [batch, len]);
  const targets = graph.input('targets', 'int64', [batch, len]);
  const at = graph.input('last_prompt', 'float32', [batch, 1, len]);
  const projected = vlm.imageFeatures(pb, pix);
  // use_image = 1 takes the projector's output, 0 the given features
  const features = T.add(T.mul(projected, useImage), T.mul(given, T.sub(T.scalar(useImage, 1), useImage)));
  const out = pb.scope('language_model', () =>
    vlm.decoder.forward(pb, {
      ids,
      attentionMask: mask,
      editEmbeds: (e: Value) => spliceImageFeatures(e, ids, features, vlm.imageTokenId),
    }),
  );
  const outputs: Record<string, Value> = { greedy: T.equal(T.argmax(out.logits, -1), targets) };
  for (let l = 0; l <= L; l++) outputs[`h${l}`] = T.reshape(T.matmul(at, out.hiddenStates[l]), [batch, d]);
  const weights = new Map([...pb.specs.keys()].map((name) => [name, folder.weights.get(name) as HostTensor]));
  const program = await Program.compile(graph, { outputs, bind: weights });
  const results: AblationResult[] = [];
  try {
    for (const mode of options.modes) {
      const states = Array.from({ length: L + 1 }, () => matrix(rows.length, d));
      let correct = 0;
      for (let start = 0; start < rows.length; start += batch) {
        const part = rows.slice(start, start + batch);
        const px = new Float32Array(batch * c * s * s);
        const feats = new Float32Array(batch * vlm.imageTokens * d);
        const idv = new BigInt64Array(batch * len);
        const mv = new BigInt64Array(batch * len);
        const tv = new BigInt64Array(batch * len);
        const lp = new Float32Array(batch * len);
        for (const [i, r] of part.entries()) {
          if (mode === 'image') px.set(await pixels.file(r.image), i * c * s * s);
          for (let t = 0; t < vlm.imageTokens && mode !== 'image' && mode !== 'zeros'; t++) {
            const p = t - offset;
            const cell = p >= 0 ? cellOfPatch[p] : -1;
            if (cell < 0) continue;
            const word = r.cells[cell];
            const o = (i * vlm.imageTokens + t) * d;
            if (mode === 'one-hot') {
              const k = vocab.indexOf(word);
              if (k < 0) throw new TlabError(`one-hot ablation: '${word}' is not in the task's vocabulary`);
              feats[o + k] = 1;
            } else {
              const tok = tokenizer.encode(word)[0];
              feats.set(tableData.subarray(tok * d, (tok + 1) * d), o);
            }
          }
          const seq = [...r.prompt, ...r.cont];
          seq.forEach((v, t) => {
            idv[i * len + t] = BigInt(v);
            mv[i * len + t] = 1n;
            if (t + 1 < seq.length) tv[i * len + t] = BigInt(seq[t + 1]);
          });
          lp[i * len + r.prompt.length - 1] = 1;
        }
        const res = await program.run({
          pixel_values: { dtype: 'float32', shape: [batch, c, s, s], data: px },
          use_image: {
            dtype: 'float32',
            shape: [batch, 1, 1],
            data: new Float32Array(batch).fill(mode === 'image' ? 1 : 0),
          },
          features: { dtype: 'float32', shape: [batch, vlm.imageTokens, d], data: feats },
          ids: { dtype: 'int64', shape: [batch, len], data: idv },
          attention_mask: { dtype: 'int64', shape: [batch, len], data: mv },
          targets: { dtype: 'int64', shape: [batch, len], data: tv },
          last_prompt: { dtype: 'float32', shape: [batch, 1, len], data: lp },
        });
        const greedy = res.greedy.data as Uint8Array;
        for (const [i, r] of part.entries()) {
          let ok = true;
          // positions prompt−1 .. prompt+cont−2 predict the answer tokens
          for (let t = r.prompt.length - 1; t < r.prompt.length + r.cont.length - 1; t++)
            ok &&= greedy[i * len + t] === 1;
          if (ok) correct++;
          for (let l = 0; l <= L; l++)
            states[l].data.set(
              (res[`h${l}`].data as Float32Array).subarray(i * d, (i + 1) * d),
              (start + i) * d,
            );
        }
      }
      results.push({ mode, accuracy: correct / rows.length, n: rows.length, states, answers });
    }
  } finally {
    await program.release();
  }
  return results;
}
