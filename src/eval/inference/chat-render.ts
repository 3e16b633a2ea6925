/**
 * Conversations of the inference interface rendered with a tokenizer's chat template: the prompt text and ids the
 * assistant's answer continues, the images in placeholder order, and the ids that end an assistant turn (the
 * tokenizer's stop ids plus the special token the template writes after an assistant message).
 */
import type { ChatMessage, ContentPart, TextTokenizer } from '../../tokenize/types.ts';
import { TlabError } from '../../util/errors.ts';
import type { ImageSource, InferenceMessage } from './types.ts';

/** The messages as the tokenizer's template takes them; image parts become placeholders (no pixels). */
export function toChatMessages(messages: readonly InferenceMessage[]): ChatMessage[] {
  return messages.map((m) => ({
    role: m.role,
    content: m.content.map((p): ContentPart => (p.type === 'text' ? p : { type: 'image' })),
  }));
}

/** The images of a conversation, in the order their placeholders appear in the rendered prompt. */
export function imagesOf(messages: readonly InferenceMessage[]): ImageSource[] {
  return messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'image' ? [p.image] : [])));
}

/** The prompt text that the assistant's answer continues (the template with its generation prompt). */
export function renderChatPrompt(tokenizer: TextTokenizer, messages: readonly InferenceMessage[]): string {
  if (messages.length === 0)
    throw new TlabError('messages: empty; a conversation needs at least one message');
  return tokenizer.applyChatTemplate(toChatMessages(messages), { addGenerationPrompt: true });
}

const SENTINEL = 'tlabendofturnprobe';

/**
 * The special token a chat template writes right after an assistant message (ChatML's <|im_end|>, Llama 3's
 * <|eot_id|>, the built-in template's <|end|>), found by rendering a probe conversation; undefined when the
 * tokenizer has no template or the template ends turns with plain text.
 */
export function endOfTurnId(tokenizer: TextTokenizer): number | undefined {
  let text: string;
  try {
    text = tokenizer.applyChatTemplate([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: SENTINEL },
    ]);
  } catch (error) {
    if (error instanceof TlabError) return undefined; // no template, or one that rejects the probe
    throw error;
  }
  const at = text.lastIndexOf(SENTINEL);
  if (at < 0) return undefined;
  const after = text.slice(at + SENTINEL.length);
  if (after.length === 0) return undefined;
  let ids: number[];
  try {
    ids = tokenizer.encode(after, { addSpecialTokens: false });
  } catch (error) {
    if (error instanceof TlabError) return undefined;
    throw error;
  }
  const first = ids[0];
  if (first === undefined) return undefined;
  // A special token decodes to nothing when special tokens are skipped, and to its text otherwise.
  const isSpecial =
    tokenizer.decode([first], { skipSpecialTokens: true }) === '' &&
    tokenizer.decode([first], { skipSpecialTokens: false }) !== '';
  return isSpecial ? first : undefined;
}

/** The ids that end generation of an assistant turn: the tokenizer's stop ids and the template's end-of-turn token. */
export function chatStopIds(tokenizer: TextTokenizer): number[] {
  const eot = endOfTurnId(tokenizer);
  return [...new Set([...tokenizer.stopIds, ...(eot === undefined ? [] : [eot])])];
}
