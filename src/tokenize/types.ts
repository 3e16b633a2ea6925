/**
 * The project's tokenizer interface: what models, data builders and the trainer call, whatever the tokenizer's
 * origin (a Hugging Face tokenizer.json, or a character/word tokenizer built for a synthetic task).
 */

export interface EncodeOptions {
  /** Add the tokens of the tokenizer's post-processor (e.g. BOS, or [CLS] ... [SEP]); default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (added tokens marked special) from the text; default false. */
  skipSpecialTokens?: boolean;
}

export type Side = 'left' | 'right';

export interface BatchEncodeOptions extends EncodeOptions {
  /** 'longest' pads to the longest row; 'max_length' pads every row to `maxLength`. Default 'longest'. */
  padding?: 'longest' | 'max_length';
  /** Which side the padding goes on; decoder-only generation wants 'left'. Default 'right'. */
  paddingSide?: Side;
  /** Cut rows longer than this (needs `truncation`), and the target length for padding 'max_length'. */
  maxLength?: number;
  /** Cut rows longer than `maxLength`; default true when `maxLength` is given. */
  truncation?: boolean;
  /** Which end is cut; default 'right' (keep the start). */
  truncationSide?: Side;
  /** Overrides the pad id (default: the tokenizer's pad token, else its EOS token). */
  padId?: number;
}

/** A padded batch in row-major [batchSize, length] layout, ready to become int tensors. */
export interface BatchEncoding {
  ids: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
  batchSize: number;
  length: number;
  /** Unpadded length of each row after truncation. */
  lengths: number[];
}

/** An OpenAI-style content part. Image parts carry no pixels here; they become placeholder tokens in text. */
export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image'; image?: unknown }
  | { type: 'image_url'; image_url?: { url: string } };

export interface ChatMessage {
  role: string;
  content: string | ContentPart[] | null;
  /** Other fields (tool_calls, name, tool_call_id, ...) are passed to the template as they are. */
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the assistant turn header so the model continues as the assistant; default false. */
  addGenerationPrompt?: boolean;
  /** Tool (function) descriptions, JSON-schema style, for templates that render them. */
  tools?: readonly Record<string, unknown>[];
  /** Pick one of several named templates (tokenizer_config.json may hold a list); default "default". */
  templateName?: string;
  /**
   * Leave content-part lists for the template to render (templates written for VLMs, e.g. Qwen2-VL, loop over
   * parts themselves). Default false: parts are flattened to text, images becoming the image placeholder.
   */
  keepContentParts?: boolean;
  /** Further variables for the template (e.g. enable_thinking). */
  extra?: Record<string, unknown>;
}

export interface TextTokenizer {
  /** Largest token id + 1 (base vocabulary and added tokens): the embedding table needs at least this many rows. */
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number | undefined;
  readonly unkId: number | undefined;
  /** Ids that end generation: EOS plus any extra ones from generation_config.json. */
  readonly stopIds: readonly number[];
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  encodeBatch(texts: readonly string[], options?: BatchEncodeOptions): BatchEncoding;
  /** The tokenizer has a chat template (applyChatTemplate throws without one). */
  readonly hasChatTemplate: boolean;
  /** Renders messages with the tokenizer's chat template into the prompt text. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
  /** Renders and encodes a chat without adding special tokens again (the template already wrote them). */
  encodeChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions): number[];
}
