/**
 * What a model is asked for a task example: the conversation up to its last assistant turn, rendered with the
 * tokenizer's chat template (with the generation prompt) when it has one — a template that fails to render is an
 * error, never a silent fall-back — else the prompt's text parts one per line. Image parts stay in place as the
 * tokenizer's image placeholder, one per image, and their files are listed in order.
 */
import { join } from 'node:path';
import type { TaskExample, ChatMessage as TaskMessage } from '../data/task-format.ts';
import type { ChatMessage, TextTokenizer } from '../tokenize/types.ts';
import { TlabError } from '../util/errors.ts';

/** The messages before the example's last assistant turn (all of them when it has none). */
export function promptMessages(example: TaskExample): TaskMessage[] {
  const end = example.messages.findLastIndex((m) => m.role === 'assistant');
  return example.messages.slice(0, end < 0 ? example.messages.length : end);
}

/** The reference answer: the example's `answer`, else its last assistant turn's text. */
export function referenceAnswer(example: TaskExample): string | undefined {
  if (example.answer !== undefined) return example.answer;
  const last = example.messages.findLast((m) => m.role === 'assistant');
  return last?.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n');
}

/** Image files of messages, relative to the task folder, in order. */
export function imageFiles(messages: readonly TaskMessage[]): string[] {
  return messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'image' ? [p.image] : [])));
}

/** Task messages as the tokenizer's chat messages (image parts become the template's placeholders). */
export function toChatMessages(messages: readonly TaskMessage[]): ChatMessage[] {
  return messages.map((m) => ({
    role: m.role,
    content: m.content.map((p) =>
      p.type === 'text' ? { type: 'text' as const, text: p.text } : { type: 'image' as const },
    ),
  }));
}

export interface EncodedPrompt {
  /** Token ids, one image placeholder token per image. */
  ids: number[];
  /** Absolute paths of the prompt's images, in placeholder order. */
  images: string[];
  /** Rendered with the chat template (false: the text parts one per line). */
  chat: boolean;
  /** Image parts left out (`images: 'drop'`, for a text-only model). */
  dropped: number;
}

export interface EncodeOptions {
  /** 'keep' (default) places each image part as the image placeholder; 'drop' leaves image parts out (text models). */
  images?: 'keep' | 'drop';
}

/** Encodes messages (task layout) for a tokenizer; `where` names the example in errors. */
export function encodeMessages(
  tokenizer: TextTokenizer,
  messages: readonly TaskMessage[],
  taskDir: string,
  where: string,
  options: EncodeOptions = {},
): EncodedPrompt {
  let dropped = 0;
  if (options.images === 'drop') {
    dropped = imageFiles(messages).length;
    messages = messages.map((m) => ({ ...m, content: m.content.filter((p) => p.type !== 'image') }));
  }
  const images = imageFiles(messages).map((f) => join(taskDir, f));
  if (tokenizer.hasChatTemplate) {
    try {
      return {
        ids: tokenizer.encodeChat(toChatMessages(messages), { addGenerationPrompt: true }),
        images,
        chat: true,
        dropped,
      };
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      throw new TlabError(`${where}: the chat template failed to render the prompt (${message})`);
    }
  }
  if (images.length > 0)
    throw new TlabError(
      `${where}: the prompt has ${images.length} image(s) but the tokenizer has no chat template to place them`,
      'add a chat_template (and image_token) to tokenizer_config.json',
    );
  const text = messages
    .flatMap((m) => m.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])))
    .join('\n');
  return { ids: tokenizer.encode(text), images, chat: false, dropped };
}

/** Encodes an example's prompt (see the module comment). */
export function encodeTaskPrompt(
  tokenizer: TextTokenizer,
  example: TaskExample,
  taskDir: string,
  options: EncodeOptions = {},
): EncodedPrompt {
  return encodeMessages(tokenizer, promptMessages(example), taskDir, `example ${example.uid}`, options);
}
