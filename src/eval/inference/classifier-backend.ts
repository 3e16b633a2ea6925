/**
 * The inference backend of a classifier folder: a chat request's image (image classifiers: exactly one per
 * request) or its text (sequence classifiers, encoded as in training) → the predicted label's name as the answer
 * text. The eval grid, transfer matrix and summary then treat a classifier like any model: a task whose answer is
 * its label is graded by exact match against the prediction. Classifiers score no text, so there is no
 * log-likelihood; decoding settings do not apply (the answer is the argmax class), stop strings still cut it.
 */
import { join } from 'node:path';
import { sha256Hex } from '../../data/hash.ts';
import { parseHfConfig } from '../../models/hf/configs.ts';
import { loadModelFolder } from '../../models/hf/model-folder.ts';
import { kindFromArchitectures } from '../../models/hf/registry.ts';
import { TlabError } from '../../util/errors.ts';
import { readJsonFile } from '../../util/json-file.ts';
import {
  argmaxRows,
  type ClassifierFolder,
  ClassifierRunner,
  classifierPromptIds,
  isClassifierFolder,
} from '../classifier-forward.ts';
import { imagesOf } from './chat-render.ts';
import { readImageSource } from './image-source.ts';
import { checkResponseFormat } from './response-format.ts';
import type {
  BackendCapabilities,
  ChatRequest,
  ChatResult,
  InferenceBackend,
  LoglikRequest,
  LoglikResult,
} from './types.ts';

/** The classifier kind a folder's config.json names (architectures), or null for any other model or no config. */
export function classifierKindOf(dir: string): 'image-classifier' | 'sequence-classifier' | null {
  let kind: string | null;
  try {
    kind = kindFromArchitectures(
      parseHfConfig(readJsonFile(join(dir, 'config.json')), join(dir, 'config.json')),
    );
  } catch {
    return null; // not a readable model folder: whoever opens it reports why
  }
  return kind === 'image-classifier' || kind === 'sequence-classifier' ? kind : null;
}

export interface ClassifierBackendOptions {
  /** The name requests address the model by; default the folder's path. */
  name?: string;
  /** Requests per forward pass; default 16. */
  batchSize?: number;
}

export class ClassifierBackend implements InferenceBackend {
  readonly model: string;

  constructor(
    readonly runner: ClassifierRunner,
    name: string,
  ) {
    this.model = name;
  }

  /** Loads a classifier folder (ViT/CLIP image classifier, or GPT-2/Llama/Qwen2 sequence classifier). */
  static open(dir: string, options: ClassifierBackendOptions = {}): ClassifierBackend {
    const folder = loadModelFolder(dir);
    if (!isClassifierFolder(folder))
      throw new TlabError(`${dir}: holds a ${folder.kind}, not an image or sequence classifier`);
    return new ClassifierBackend(
      new ClassifierRunner(folder, { batchSize: options.batchSize }),
      options.name ?? dir,
    );
  }

  get folder(): ClassifierFolder {
    return this.runner.folder;
  }

  get capabilities(): BackendCapabilities {
    const image = this.folder.kind === 'image-classifier';
    return image
      ? { maxImages: 1, minImages: 1, loglik: false, contextLength: null }
      : {
          maxImages: 0,
          loglik: false,
          contextLength:
            this.folder.kind === 'sequence-classifier' ? this.folder.model.decoder.maxPositions : null,
        };
  }

  async chat(
    requests: readonly ChatRequest[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<ChatResult[]> {
    const t0 = performance.now();
    let logits: Float32Array;
    let promptTokens: number[];
    if (this.folder.kind === 'image-classifier') {
      const pixels = this.runner.pixels!;
      const images = await Promise.all(
        requests.map(async (r, i) => {
          const where = `${this.model}: request ${i}`;
          const sources = imagesOf(r.messages);
          if (sources.length !== 1)
            throw new TlabError(
              `${where}: has ${sources.length} images; an image classifier answers exactly one image per request`,
            );
          const source = sources[0];
          if ('path' in source) return pixels.file(source.path);
          const { bytes } = await readImageSource(source, where);
          return pixels.bytes(bytes, sha256Hex(bytes), where);
        }),
      );
      logits = await this.runner.imageLogits(images);
      promptTokens = requests.map(() => 0);
    } else {
      const tokenizer = this.runner.tokenizer();
      const ids = requests.map((r, i) => {
        if (imagesOf(r.messages).length > 0)
          throw new TlabError(
            `${this.model}: request ${i} has images; a sequence classifier reads text only`,
          );
        return classifierPromptIds(tokenizer, r.messages);
      });
      logits = await this.runner.textLogits(ids);
      promptTokens = ids.map((x) => Math.min(x.length, this.capabilities.contextLength ?? x.length));
    }
    const predicted = argmaxRows(logits, this.runner.numLabels);
    // One batched call: every request's latency is the wall time of the call that answered it.
    const latencyMs = performance.now() - t0;
    onProgress?.(requests.length, requests.length);
    return requests.map((r, i) => {
      const text = cutAtStop(this.runner.labels[predicted[i]], r.params.stop);
      const result: ChatResult = {
        text,
        finishReason: 'stop',
        promptTokens: promptTokens[i],
        completionTokens: 0,
        latencyMs,
      };
      const format = checkResponseFormat(text, r.params.responseFormat);
      if (format) result.format = format;
      return result;
    });
  }

  async loglik(_requests: readonly LoglikRequest[]): Promise<LoglikResult[]> {
    throw new TlabError(
      `${this.model}: a classifier gives no log-likelihood of text (it predicts one of its labels); use a grader that compares its answer (exact match)`,
    );
  }

  async close(): Promise<void> {
    await this.runner.release();
  }
}

/** The text before the first stop string (all of it when none occurs). */
function cutAtStop(text: string, stop: readonly string[]): string {
  let end = text.length;
  for (const s of stop) {
    const at = s ? text.indexOf(s) : -1;
    if (at >= 0 && at < end) end = at;
  }
  return text.slice(0, end);
}
