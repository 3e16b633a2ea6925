/**
 * One inference interface for the eval grid, whatever answers the requests: this project's models in-process
 * (batched, KV cache, VLM images) or any OpenAI-compatible server (vLLM, llama.cpp, TGI, `tlab serve`).
 * Requests are chat conversations in the task format's layout; images are files or encoded bytes, turned into
 * pixels by the local backend and into data URLs by the HTTP client.
 */

/** An image as a file on disk or as encoded bytes (PNG, JPEG, WebP). */
export type ImageSource = { path: string } | { bytes: Uint8Array; mediaType: string };

export type InferencePart = { type: 'text'; text: string } | { type: 'image'; image: ImageSource };

export interface InferenceMessage {
  role: 'system' | 'user' | 'assistant';
  content: InferencePart[];
}

/** Constrains the output: plain text, any JSON object, or JSON matching a schema (OpenAI's response_format). */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown> };

export interface DecodingParams {
  /** Most tokens to generate. */
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off. */
  topK: number;
  seed: number;
  /** Stop strings; the text is cut before the first one. */
  stop: string[];
  responseFormat?: ResponseFormat;
}

export const GREEDY: DecodingParams = {
  maxTokens: 64,
  temperature: 0,
  topP: 1,
  topK: 0,
  seed: 0,
  stop: [],
};

export interface ChatRequest {
  messages: InferenceMessage[];
  params: DecodingParams;
}

export type FinishReason = 'stop' | 'length';

export interface ChatResult {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Wall time from sending the request to its answer, in milliseconds. */
  latencyMs: number;
  /**
   * Set when the request asked for JSON (responseFormat json_object / json_schema): whether the text parses (and
   * matches the schema), checked after generation; the text itself is never repaired.
   */
  format?: { valid: boolean; error: string | null };
}

/**
 * log p(continuation | context). The context is either a conversation (rendered with the model's chat template
 * and its generation prompt, so the continuation is scored as the assistant's answer) or raw text.
 */
export type LoglikRequest =
  | { messages: InferenceMessage[]; continuation: string }
  | { context: string; continuation: string };

export interface LoglikResult {
  /** Sum of the continuation tokens' log-probabilities (natural log). */
  logprob: number;
  /** Every continuation token is the argmax at its position. */
  greedy: boolean;
  /** Continuation tokens scored. */
  tokens: number;
}

export interface BackendCapabilities {
  /** Images per request the model takes (0 = text only). */
  maxImages: number;
  /** Images every request must have (an image classifier: 1); default 0. */
  minImages?: number;
  /** Log-likelihood scoring is available (in-process, or a server with echo + logprobs on /v1/completions). */
  loglik: boolean;
  /** Context length in tokens, when known. */
  contextLength: number | null;
}

export interface InferenceBackend {
  /** The model's name as requests address it (a served model id, or the folder's name). */
  readonly model: string;
  readonly capabilities: BackendCapabilities;
  /** Answers in request order; `onProgress(done, total)` after each finished batch or response. */
  chat(
    requests: readonly ChatRequest[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<ChatResult[]>;
  /** Throws a TlabError naming the backend when `capabilities.loglik` is false. */
  loglik(
    requests: readonly LoglikRequest[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<LoglikResult[]>;
  /** Releases sessions, sockets or child processes. */
  close(): Promise<void>;
}
