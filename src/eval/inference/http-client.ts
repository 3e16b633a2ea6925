/**
 * JSON over HTTP for the OpenAI-compatible client (Node's fetch): a concurrency limit shared by all requests,
 * a timeout per attempt, and retries with exponential backoff and jitter on 429, 5xx and network failures
 * (a server's Retry-After is honoured up to the backoff cap). Other 4xx answers fail at once with the server's
 * own message, which is what the user needs to fix the request.
 */
import { TlabError } from '../../util/errors.ts';

export interface HttpClientOptions {
  /** Sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Requests in flight at once; default 8. */
  concurrency?: number;
  /** Retries after the first attempt; default 4. */
  maxRetries?: number;
  /** Time limit of one attempt in milliseconds; default 120 000. */
  timeoutMs?: number;
  /** First backoff delay in milliseconds (doubled per retry, with jitter); default 500. */
  retryBaseMs?: number;
  /** Longest backoff delay in milliseconds; default 20 000. */
  retryMaxMs?: number;
  /** Name of the client in error messages, e.g. "openai backend 'm' at http://..." */
  label?: string;
}

/** Counts permits; `run` waits for one, so at most `limit` tasks run at once. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new TlabError(`concurrency: expected a positive integer, got ${limit}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** An HTTP answer that is not a success; `retryable` for 429 and 5xx. */
export class HttpStatusError extends TlabError {
  constructor(
    message: string,
    readonly status: number,
    readonly serverMessage: string,
  ) {
    super(message);
  }
}

/** The message of an error body: OpenAI's {error: {message}}, {message}, {detail}, or the text itself. */
export function serverMessageOf(text: string): string {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const error = body.error;
    if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string')
      return (error as { message: string }).message;
    if (typeof error === 'string') return error;
    if (typeof body.message === 'string') return body.message;
    if (typeof body.detail === 'string') return body.detail;
  } catch {
    // not JSON: the text is the message
  }
  return text.trim().slice(0, 2000) || '(empty body)';
}

export class HttpClient {
  private readonly semaphore: Semaphore;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly label: string;
  private readonly closing = new AbortController();

  constructor(private readonly options: HttpClientOptions = {}) {
    this.semaphore = new Semaphore(options.concurrency ?? 8);
    this.maxRetries = options.maxRetries ?? 4;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.retryBaseMs = options.retryBaseMs ?? 500;
    this.retryMaxMs = options.retryMaxMs ?? 20_000;
    this.label = options.label ?? 'http client';
    for (const [key, value, min] of [
      ['maxRetries', this.maxRetries, 0],
      ['timeoutMs', this.timeoutMs, 1],
      ['retryBaseMs', this.retryBaseMs, 0],
      ['retryMaxMs', this.retryMaxMs, 0],
    ] as const)
      if (!Number.isFinite(value) || value < min)
        throw new TlabError(`${this.label}: ${key}: expected a number >= ${min}, got ${value}`);
  }

  /** GET and parse JSON. */
  getJson(url: string): Promise<unknown> {
    return this.request('GET', url, undefined);
  }

  /** POST a JSON body and parse the JSON answer. */
  postJson(url: string, body: unknown): Promise<unknown> {
    return this.request('POST', url, JSON.stringify(body));
  }

  /** Aborts requests in flight and refuses new ones. */
  close(): void {
    this.closing.abort();
  }

  private request(method: string, url: string, body: string | undefined): Promise<unknown> {
    return this.semaphore.run(async () => {
      for (let attempt = 0; ; attempt++) {
        const outcome = await this.attempt(method, url, body);
        if (outcome.ok) return outcome.value;
        const last = attempt >= this.maxRetries;
        if (!outcome.retryable || last || this.closing.signal.aborted) {
          const tries = attempt + 1;
          const suffix = outcome.retryable && tries > 1 ? ` (after ${tries} attempts)` : '';
          throw outcome.status === undefined
            ? new TlabError(`${this.label}: ${method} ${url}: ${outcome.message}${suffix}`)
            : new HttpStatusError(
                `${this.label}: ${method} ${url}: HTTP ${outcome.status}: ${outcome.message}${suffix}`,
                outcome.status,
                outcome.message,
              );
        }
        await this.sleep(this.delay(attempt, outcome.retryAfterMs));
      }
    });
  }

  private async attempt(
    method: string,
    url: string,
    body: string | undefined,
  ): Promise<
    | { ok: true; value: unknown }
    | { ok: false; retryable: boolean; status?: number; message: string; retryAfterMs?: number }
  > {
    if (this.closing.signal.aborted) return { ok: false, retryable: false, message: 'the client is closed' };
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers,
        body,
        signal: AbortSignal.any([timeout, this.closing.signal]),
      });
      text = await response.text();
    } catch (error) {
      if (this.closing.signal.aborted)
        return { ok: false, retryable: false, message: 'the client was closed' };
      if (timeout.aborted)
        return {
          ok: false,
          retryable: true,
          message: `no answer within the timeout of ${this.timeoutMs} ms`,
        };
      return { ok: false, retryable: true, message: `network error: ${describeNetworkError(error)}` };
    }
    if (response.ok) {
      try {
        return { ok: true, value: JSON.parse(text) };
      } catch {
        return {
          ok: false,
          retryable: false,
          status: response.status,
          message: `the answer is not JSON: ${text.slice(0, 200)}`,
        };
      }
    }
    const retryable = response.status === 429 || response.status >= 500;
    return {
      ok: false,
      retryable,
      status: response.status,
      message: serverMessageOf(text),
      retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
    };
  }

  /** Exponential backoff with "equal jitter": half the step fixed, half random, so clients spread out. */
  private delay(attempt: number, retryAfter: number | undefined): number {
    const step = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt);
    const jittered = step / 2 + Math.random() * (step / 2);
    return retryAfter === undefined ? jittered : Math.min(this.retryMaxMs, Math.max(retryAfter, jittered));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.closing.signal;
      function done() {
        signal.removeEventListener('abort', done);
        clearTimeout(timer);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/** Retry-After in milliseconds (seconds or an HTTP date), or undefined. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** fetch's "fetch failed" hides the reason in `cause` (ECONNREFUSED, ECONNRESET, ...). */
function describeNetworkError(error: unknown): string {
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message ?? 'fetch failed'} (${cause})` : (e.message ?? String(error));
}
