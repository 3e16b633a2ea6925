/**
 * Chat templates: Jinja programs shipped with a tokenizer that turn a list of messages into the prompt text the
 * model was trained on. Rendered with @huggingface/jinja, the JavaScript port of the subset these templates use.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { TlabError, validChoices } from '../util/errors.ts';
import { describeJson, isJsonObject, readJsonObject } from '../util/json-file.ts';
import type { ChatMessage, ContentPart } from './types.ts';

/** What one image part of a message becomes in the text. */
export interface ImagePlaceholder {
  /** The token whose embeddings the model replaces with image features, e.g. "<image>". */
  token: string;
  /** Copies of `token` per image (the number of image features the projector emits); default 1. */
  count?: number;
  /** Text around the copies, e.g. "<|vision_start|>" and "<|vision_end|>" for Qwen2-VL. */
  before?: string;
  after?: string;
}

/** One template, with where it came from (used in error messages). */
class CompiledTemplate {
  private compiled: Template | undefined;

  constructor(
    readonly source: string,
    readonly origin: string,
  ) {}

  /** Parses on first use, so a broken template only fails the tokenizers that render chats. */
  render(variables: Record<string, unknown>): string {
    if (!this.compiled) {
      try {
        this.compiled = new Template(this.source);
      } catch (error) {
        throw new TlabError(`${this.origin}: chat template does not parse: ${(error as Error).message}`);
      }
    }
    // Template.render() declares its own raise_exception, indistinguishable from the library's runtime errors,
    // so the environment is built here with the same globals and a raise_exception of ours.
    const env = new Environment();
    for (const [name, value] of Object.entries({ ...templateGlobals(), ...variables })) env.set(name, value);
    try {
      return String(new Interpreter(env).run(this.compiled.parsed).value);
    } catch (error) {
      if (error instanceof TemplateRaised) {
        throw new TlabError(`${this.origin}: the chat template rejected the messages: ${error.message}`);
      }
      throw new TlabError(
        `${this.origin}: chat template failed while rendering: ${(error as Error).message}`,
      );
    }
  }
}

class TemplateRaised extends Error {}

/** The globals @huggingface/jinja's Template.render() provides (its setupGlobals is not exported). */
function templateGlobals(): Record<string, unknown> {
  return {
    true: true,
    false: false,
    none: null,
    True: true,
    False: false,
    None: null,
    raise_exception: (message: unknown) => {
      throw new TemplateRaised(String(message));
    },
    range: (start: number, stop?: number, step = 1): number[] => {
      const [from, to] = stop === undefined ? [0, start] : [start, stop];
      if (step === 0) throw new Error('range() step must not be zero');
      const out: number[] = [];
      for (let i = from; step > 0 ? i < to : i > to; i += step) out.push(i);
      return out;
    },
    strftime_now: (format: string) => strftime(new Date(), format),
  };
}

/** The strftime subset chat templates use (Llama 3.x writes "Today Date: %d %b %Y"). */
function strftime(date: Date, format: string): string {
  const pad2 = (n: number) => String(n).padStart(2, '0');
  const month = (style: 'long' | 'short') => new Intl.DateTimeFormat('en-US', { month: style }).format(date);
  const fields: Record<string, () => string> = {
    '%Y': () => String(date.getFullYear()),
    '%m': () => pad2(date.getMonth() + 1),
    '%d': () => pad2(date.getDate()),
    '%b': () => month('short'),
    '%B': () => month('long'),
    '%H': () => pad2(date.getHours()),
    '%M': () => pad2(date.getMinutes()),
    '%S': () => pad2(date.getSeconds()),
    '%%': () => '%',
  };
  return format.replace(/%[YmdbBHMS%]/g, (token) => fields[token]());
}

/** The named chat templates of one tokenizer folder ("default" when there is a single one). */
export class ChatTemplates {
  private readonly templates = new Map<string, CompiledTemplate>();

  add(name: string, source: string, origin: string): void {
    this.templates.set(name, new CompiledTemplate(source, origin));
  }

  get names(): string[] {
    return [...this.templates.keys()];
  }

  get size(): number {
    return this.templates.size;
  }

  entries(): { name: string; template: string }[] {
    return [...this.templates].map(([name, compiled]) => ({ name, template: compiled.source }));
  }

  /** Picks the template to render: the named one, else "default", else the only one. */
  select(name: string | undefined, folder: string): CompiledTemplate {
    if (this.templates.size === 0) {
      throw new TlabError(
        `${folder}: the tokenizer has no chat template`,
        'add "chat_template" to tokenizer_config.json, or a chat_template.jinja file beside it',
      );
    }
    const wanted = name ?? 'default';
    const found =
      this.templates.get(wanted) ??
      (name === undefined && this.templates.size === 1 ? [...this.templates.values()][0] : undefined);
    if (!found) {
      throw new TlabError(
        `${folder}: no chat template named "${wanted}"; valid: ${validChoices(this.templates.keys())}`,
      );
    }
    return found;
  }
}

/**
 * Collects a folder's chat templates, most specific first as transformers does: chat_template.jinja, then
 * chat_template.json (a processor's template, usually the one that knows about images), then the
 * "chat_template" key of tokenizer_config.json (a string, a list of {name, template}, or an object name → template).
 */
export function loadChatTemplates(folder: string, tokenizerConfig: Record<string, unknown>): ChatTemplates {
  const jinjaPath = join(folder, 'chat_template.jinja');
  if (existsSync(jinjaPath)) {
    const templates = new ChatTemplates();
    templates.add('default', readFileSync(jinjaPath, 'utf8'), jinjaPath);
    return templates;
  }
  const jsonPath = join(folder, 'chat_template.json');
  if (existsSync(jsonPath)) {
    return chatTemplatesFromValue(readJsonObject(jsonPath).chat_template, `${jsonPath}: chat_template`);
  }
  return chatTemplatesFromValue(
    tokenizerConfig.chat_template,
    `${join(folder, 'tokenizer_config.json')}: chat_template`,
  );
}

/** Templates from a "chat_template" value: absent, a string, a list of {name, template}, or an object name → template. */
export function chatTemplatesFromValue(value: unknown, origin: string): ChatTemplates {
  const templates = new ChatTemplates();
  if (value !== undefined && value !== null) addTemplateValue(templates, value, origin);
  return templates;
}

function addTemplateValue(templates: ChatTemplates, value: unknown, origin: string): void {
  const invalid = (what: string): never => {
    throw new TlabError(
      `${origin}${what} is ${describeJson(value)}`,
      'valid: a template string, a list of {"name", "template"}, or an object name → template',
    );
  };
  if (typeof value === 'string') {
    templates.add('default', value, origin);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((entry, i) => {
      if (!isJsonObject(entry) || typeof entry.name !== 'string' || typeof entry.template !== 'string') {
        throw new TlabError(
          `${origin}[${i}] is ${describeJson(entry)}; valid: {"name": string, "template": string}`,
        );
      }
      templates.add(entry.name, entry.template, `${origin}[${i}] ("${entry.name}")`);
    });
    return;
  }
  if (isJsonObject(value)) {
    for (const [name, template] of Object.entries(value)) {
      if (typeof template !== 'string') invalid(`.${name}`);
      templates.add(name, template as string, `${origin}.${name}`);
    }
    return;
  }
  invalid('');
}

/** The text one image becomes. */
export function imagePlaceholderText(placeholder: ImagePlaceholder): string {
  return `${placeholder.before ?? ''}${placeholder.token.repeat(placeholder.count ?? 1)}${placeholder.after ?? ''}`;
}

/**
 * Replaces content-part lists by plain strings: text parts concatenated, image parts replaced by the image
 * placeholder. Templates written for text-only models expect string content.
 */
export function flattenContentParts(
  messages: readonly ChatMessage[],
  placeholder: ImagePlaceholder | undefined,
): ChatMessage[] {
  return messages.map((message, m) => {
    if (!Array.isArray(message.content)) return message;
    const text = message.content
      .map((part: ContentPart, p) => {
        if (part.type === 'text') return part.text;
        if (part.type === 'image' || part.type === 'image_url') {
          if (!placeholder) {
            throw new TlabError(
              `messages[${m}].content[${p}] is an image, but the tokenizer has no image placeholder`,
              'pass imagePlaceholder when loading the tokenizer (e.g. {token: "<image>"}), or give image_token in tokenizer_config.json',
            );
          }
          return imagePlaceholderText(placeholder);
        }
        throw new TlabError(
          `messages[${m}].content[${p}].type "${(part as { type: unknown }).type}" is not supported; valid: text, image, image_url`,
        );
      })
      .join('');
    return { ...message, content: text };
  });
}
