/**
 * The in-process inference backend: this project's models (causal LMs and LLaVA-style VLMs from model folders)
 * answering chat and log-likelihood requests in batches through the KV-cached Generator and the ForwardRunner.
 * Conversations are rendered with the tokenizer's chat template; generation stops at the template's end-of-turn
 * token (and the tokenizer's EOS) unless the request's stop strings end it first.
 */
import { TlabError } from '../../util/errors.ts';
import { encodePair } from '../loglik.ts';
import { imagesOf, renderChatPrompt } from './chat-render.ts';
import { LocalModel, type LocalModelOptions } from './local-model.ts';
import { checkResponseFormat } from './response-format.ts';
import type {
  BackendCapabilities,
  ChatRequest,
  ChatResult,
  InferenceBackend,
  LoglikRequest,
  LoglikResult,
} from './types.ts';

export class LocalBackend implements InferenceBackend {
  constructor(readonly local: LocalModel) {}

  /** Loads a model folder (causal LM or VLM, with tokenizer.json and a chat template for chat requests). */
  static open(dir: string, options: LocalModelOptions = {}): LocalBackend {
    return new LocalBackend(LocalModel.load(dir, options));
  }

  get model(): string {
    return this.local.name;
  }

  get capabilities(): BackendCapabilities {
    return this.local.capabilities;
  }

  async chat(
    requests: readonly ChatRequest[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<ChatResult[]> {
    const items = requests.map((r, i) => ({
      prompt: this.local.encodeChat(r.messages, `${this.model}: request ${i}`),
      params: r.params,
    }));
    const t0 = performance.now();
    const outputs = await this.local.generate(items, onProgress);
    // Batched in-process: every request's latency is the wall time of the call that answered it.
    const latencyMs = performance.now() - t0;
    return outputs.map((o, i) => {
      const result: ChatResult = {
        text: o.text,
        finishReason: o.finishReason,
        promptTokens: o.promptTokens,
        completionTokens: o.completionTokens,
        latencyMs,
      };
      const format = checkResponseFormat(o.text, requests[i].params.responseFormat);
      if (format) result.format = format;
      return result;
    });
  }

  async loglik(
    requests: readonly LoglikRequest[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<LoglikResult[]> {
    const tokenizer = this.local.tokenizer;
    const pairs = requests.map((r, i) => {
      const where = `${this.model}: loglik request ${i}`;
      const images = 'messages' in r ? imagesOf(r.messages) : [];
      this.local.checkImageCount(images.length, where);
      const context = 'messages' in r ? renderChatPrompt(tokenizer, r.messages) : r.context;
      const pair = encodePair(tokenizer, context, r.continuation, false);
      if (pair.continuation.length === 0)
        throw new TlabError(`${where}: the continuation ${JSON.stringify(r.continuation)} has no tokens`);
      return { ...pair, images };
    });
    const scored = await this.local.loglik(pairs, onProgress);
    return scored.map((s) => ({ logprob: s.loglik, greedy: s.isGreedy, tokens: s.tokens }));
  }

  async close(): Promise<void> {
    await this.local.release();
  }
}
