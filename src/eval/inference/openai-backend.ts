/**
 * The inference backend for any OpenAI-compatible server (vLLM, llama.cpp, TGI, `tlab serve`): chat completions
 * with image parts as data URLs, response_format, max_tokens, seed, stop, temperature/top_p and vLLM's top_k;
 * log-likelihood through /v1/completions with echo + logprobs, as lm-evaluation-harness's local-completions does.
 *
 * Log-likelihood: the prompt is context + continuation (trailing spaces of the context moved to the
 * continuation, as the in-process scorer does), sent with max_tokens 1 and logprobs 1; the continuation's tokens
 * are the prompt tokens whose text_offset lies at or past the context's end, and the answer is greedy when each
 * of them is the most likely token at its position. Conversation contexts are rendered with a local copy of the
 * model's tokenizer and chat template (option `tokenizer`); without one only raw-text contexts can be scored.
 * With `loglikPrompts: 'tokens'` the client sends token ids it encoded itself (exactly the in-process pairs).
 */
import { loadTokenizer } from '../../tokenize/hf-tokenizer.ts';
import type { TextTokenizer } from '../../tokenize/types.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import { encodePair } from '../loglik.ts';
import { imagesOf, renderChatPrompt } from './chat-render.ts';
import { HttpClient, type HttpClientOptions } from './http-client.ts';
import { imageDataUrl } from './image-source.ts';
import { checkResponseFormat } from './response-format.ts';
import type {
  BackendCapabilities,
  ChatRequest,
  ChatResult,
  InferenceBackend,
  InferenceMessage,
  LoglikRequest,
  LoglikResult,
  ResponseFormat,
} from './types.ts';

export interface OpenAiBackendOptions extends Omit<HttpClientOptions, 'label'> {
  /** The server, with or without the /v1 suffix: http://127.0.0.1:8000 or http://127.0.0.1:8000/v1. */
  baseUrl: string;
  /** The served model id requests name. */
  model: string;
  /**
   * The model's tokenizer (a loaded one, or a folder with tokenizer.json and the chat template), to render
   * conversation contexts for log-likelihood locally; without it only raw-text contexts can be scored.
   */
  tokenizer?: TextTokenizer | string;
  /** Log-likelihood prompts as text with text_offset (default, any server) or as token ids (needs `tokenizer`). */
  loglikPrompts?: 'text' | 'tokens';
  /** Images per request the server's model takes; default what /v1/models says, else 1 (vLLM's default limit). */
  maxImages?: number;
  /** Context length; default what /v1/models says (max_model_len), else unknown. */
  contextLength?: number | null;
}

/** What the client reads from a /v1/models entry. */
interface ModelCard {
  id: string;
  max_model_len?: number;
  /** `tlab serve` extension: images per request the model takes. */
  max_images?: number;
}

/** A chat completions answer, as far as the client reads it. */
interface ChatCompletion {
  choices?: { message?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

interface CompletionLogprobs {
  tokens?: string[];
  token_logprobs?: (number | null)[];
  top_logprobs?: (Record<string, number> | null)[] | null;
  text_offset?: number[];
}

interface Completion {
  choices?: { logprobs?: CompletionLogprobs | null }[];
  usage?: { prompt_tokens?: number };
}

export class OpenAiBackend implements InferenceBackend {
  readonly model: string;
  readonly capabilities: BackendCapabilities;
  /** The server root without /v1. */
  readonly baseUrl: string;
  private readonly http: HttpClient;
  private readonly tokenizer: TextTokenizer | null;
  private readonly loglikPrompts: 'text' | 'tokens';

  constructor(options: OpenAiBackendOptions, card?: ModelCard) {
    this.model = options.model;
    this.baseUrl = normaliseBaseUrl(options.baseUrl);
    this.http = new HttpClient({ ...options, label: `openai backend '${options.model}' at ${this.baseUrl}` });
    this.tokenizer =
      typeof options.tokenizer === 'string' ? loadTokenizer(options.tokenizer) : (options.tokenizer ?? null);
    this.loglikPrompts = options.loglikPrompts ?? 'text';
    if (this.loglikPrompts === 'tokens' && !this.tokenizer)
      throw new TlabError(
        `openai backend '${this.model}': loglikPrompts 'tokens' needs the tokenizer option`,
      );
    this.capabilities = {
      maxImages: options.maxImages ?? card?.max_images ?? 1,
      loglik: this.tokenizer !== null,
      contextLength: options.contextLength ?? card?.max_model_len ?? null,
    };
  }

  /** Checks that the server serves `model` (GET /v1/models) and takes its context length from there. */
  static async connect(options: OpenAiBackendOptions): Promise<OpenAiBackend> {
    const probe = new HttpClient({
      ...options,
      label: `openai backend at ${normaliseBaseUrl(options.baseUrl)}`,
    });
    const list = (await probe.getJson(`${normaliseBaseUrl(options.baseUrl)}/v1/models`)) as {
      data?: ModelCard[];
    };
    probe.close();
    const cards = Array.isArray(list?.data) ? list.data : [];
    const card = cards.find((c) => c.id === options.model);
    if (!card)
      throw new TlabError(
        `openai backend at ${normaliseBaseUrl(options.baseUrl)}: the server does not serve model '${options.model}'`,
        `served: ${validChoices(cards.map((c) => String(c.id))) || '(none)'}`,
      );
    return new OpenAiBackend(options, card);
  }

  async chat(
    requests: readonly ChatRequest[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<ChatResult[]> {
    requests.forEach((r, i) => {
      const n = imagesOf(r.messages).length;
      if (n > this.capabilities.maxImages)
        throw new TlabError(
          `openai backend '${this.model}': request ${i} has ${n} images; the model takes at most ${this.capabilities.maxImages} per request`,
        );
    });
    let done = 0;
    return Promise.all(
      requests.map(async (r, i) => {
        const body = {
          model: this.model,
          messages: await this.wireMessages(r.messages, i),
          ...samplingFields(r.params),
        };
        const t0 = performance.now();
        const answer = (await this.http.postJson(
          `${this.baseUrl}/v1/chat/completions`,
          body,
        )) as ChatCompletion;
        const latencyMs = performance.now() - t0;
        const choice = answer?.choices?.[0];
        const text = choice?.message?.content;
        if (typeof text !== 'string')
          throw new TlabError(
            `openai backend '${this.model}': request ${i}: the answer has no choices[0].message.content`,
          );
        const result: ChatResult = {
          text,
          finishReason: choice?.finish_reason === 'length' ? 'length' : 'stop',
          promptTokens: answer.usage?.prompt_tokens ?? 0,
          completionTokens: answer.usage?.completion_tokens ?? 0,
          latencyMs,
        };
        const format = checkResponseFormat(text, r.params.responseFormat);
        if (format) result.format = format;
        onProgress?.(++done, requests.length);
        return result;
      }),
    );
  }

  async loglik(
    requests: readonly LoglikRequest[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<LoglikResult[]> {
    const prepared = requests.map((r, i) => this.loglikPrompt(r, i));
    let done = 0;
    return Promise.all(
      prepared.map(async (p, i) => {
        const body = {
          model: this.model,
          prompt: p.prompt,
          max_tokens: 1,
          temperature: 0,
          logprobs: 1,
          echo: true,
          // The prompt is complete as it is (a chat template writes its own special tokens).
          add_special_tokens: false,
        };
        const answer = (await this.http.postJson(`${this.baseUrl}/v1/completions`, body)) as Completion;
        const result = this.sumContinuation(answer, p, i);
        onProgress?.(++done, requests.length);
        return result;
      }),
    );
  }

  async close(): Promise<void> {
    this.http.close();
  }

  /** OpenAI message layout: plain string content for text-only messages, parts with data URLs otherwise. */
  private async wireMessages(messages: readonly InferenceMessage[], i: number): Promise<unknown[]> {
    return Promise.all(
      messages.map(async (m, j) => {
        if (m.content.every((p) => p.type === 'text'))
          return { role: m.role, content: m.content.map((p) => (p.type === 'text' ? p.text : '')).join('') };
        const content = await Promise.all(
          m.content.map(async (p, k) =>
            p.type === 'text'
              ? { type: 'text', text: p.text }
              : {
                  type: 'image_url',
                  image_url: {
                    url: await imageDataUrl(p.image, `request ${i} messages[${j}].content[${k}]`),
                  },
                },
          ),
        );
        return { role: m.role, content };
      }),
    );
  }

  /** The prompt to send and where its continuation starts (in code points of text, or in tokens). */
  private loglikPrompt(
    r: LoglikRequest,
    i: number,
  ): { prompt: string | number[]; contextChars: number; contextTokens: number; continuationTokens: number } {
    const where = `openai backend '${this.model}': loglik request ${i}`;
    let context: string;
    if ('messages' in r) {
      if (!this.tokenizer)
        throw new TlabError(
          `${where}: scoring a conversation needs its chat template rendered locally; give the backend the model's tokenizer (option tokenizer)`,
        );
      if (imagesOf(r.messages).length > 0)
        throw new TlabError(
          `${where}: /v1/completions takes no images, so image contexts cannot be scored over HTTP`,
        );
      context = renderChatPrompt(this.tokenizer, r.messages);
    } else context = r.context;
    if (this.loglikPrompts === 'tokens') {
      const pair = encodePair(this.tokenizer!, context, r.continuation, false);
      if (pair.continuation.length === 0)
        throw new TlabError(`${where}: the continuation ${JSON.stringify(r.continuation)} has no tokens`);
      return {
        prompt: [...pair.context, ...pair.continuation],
        contextChars: 0,
        contextTokens: pair.context.length,
        continuationTokens: pair.continuation.length,
      };
    }
    let continuation = r.continuation;
    if (context === '') {
      // As the in-process scorer: an empty context becomes the BOS (else EOS) token.
      const prefix = this.tokenizer?.bosId ?? this.tokenizer?.eosId;
      const token = prefix === undefined ? undefined : this.tokenizer?.idToToken(prefix);
      if (token === undefined)
        throw new TlabError(
          `${where}: an empty context needs the model's BOS or EOS token; give the backend the model's tokenizer`,
        );
      context = token;
    }
    const spaces = context.length - context.trimEnd().length;
    if (spaces > 0) {
      continuation = context.slice(-spaces) + continuation;
      context = context.slice(0, -spaces);
    }
    return {
      prompt: context + continuation,
      contextChars: [...context].length,
      contextTokens: -1,
      continuationTokens: -1,
    };
  }

  private sumContinuation(
    answer: Completion,
    p: { contextChars: number; contextTokens: number },
    i: number,
  ): LoglikResult {
    const where = `openai backend '${this.model}': loglik request ${i}`;
    const lp = answer?.choices?.[0]?.logprobs;
    const logprobs = lp?.token_logprobs;
    const offsets = lp?.text_offset;
    if (!Array.isArray(logprobs) || (p.contextTokens < 0 && !Array.isArray(offsets)))
      throw new TlabError(
        `${where}: the server's /v1/completions answer has no logprobs.token_logprobs/text_offset; it must support echo with logprobs (vLLM does)`,
      );
    // The last token is the one generated (max_tokens 1) unless usage says how many the prompt had.
    const promptTokens = answer.usage?.prompt_tokens ?? logprobs.length - 1;
    let logprob = 0;
    let greedy = true;
    let tokens = 0;
    for (let t = 0; t < promptTokens; t++) {
      const inContinuation = p.contextTokens >= 0 ? t >= p.contextTokens : offsets![t] >= p.contextChars;
      if (!inContinuation) continue;
      const value = logprobs[t];
      if (typeof value !== 'number')
        throw new TlabError(`${where}: the server gave no log-probability for prompt token ${t}`);
      logprob += value;
      tokens++;
      const top = lp?.top_logprobs?.[t];
      if (top) greedy &&= value >= Math.max(...Object.values(top));
      else greedy = false;
    }
    if (tokens === 0)
      throw new TlabError(
        `${where}: no prompt token starts inside the continuation (it merged into the context's last token)`,
      );
    return { logprob, greedy, tokens };
  }
}

/** The request fields of decoding parameters (top_k as vLLM's extra field, sent only when on). */
export function samplingFields(p: ChatRequest['params']): Record<string, unknown> {
  const body: Record<string, unknown> = {
    max_tokens: p.maxTokens,
    temperature: p.temperature,
    top_p: p.topP,
    seed: p.seed,
  };
  if (p.topK > 0) body.top_k = p.topK;
  if (p.stop.length > 0) body.stop = p.stop;
  const format = wireResponseFormat(p.responseFormat);
  if (format) body.response_format = format;
  return body;
}

function wireResponseFormat(format: ResponseFormat | undefined): Record<string, unknown> | null {
  if (!format || format.type === 'text') return null;
  if (format.type === 'json_object') return { type: 'json_object' };
  return { type: 'json_schema', json_schema: { name: format.name, schema: format.schema } };
}

function normaliseBaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TlabError(`openai backend: baseUrl '${url}' is not a URL (e.g. http://127.0.0.1:8000/v1)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new TlabError(`openai backend: baseUrl '${url}': valid protocols are http and https`);
  return url.replace(/\/+$/, '').replace(/\/v1$/, '');
}
