/**
 * Character- and word-level tokenizers built from task examples, with the chat template and role tokens every
 * model trained here from scratch uses: from one task's training split (a model of its own), or from several
 * tasks at once, so a whole zoo shares one vocabulary and no model meets unknown tokens on a sibling task.
 */
import type { TaskExample } from '../data/task-format.ts';
import { CharTokenizer, WordTokenizer } from '../tokenize/simple-tokenizer.ts';

/** Role markers of the built-in chat template used by tokenizers built from the data. */
export const SIMPLE_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
export const ROLE_TOKENS = ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<image>'];

/** Every text part of the examples' messages. */
export function messageTexts(examples: readonly TaskExample[]): string[] {
  return examples.flatMap((e) =>
    e.messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'text' ? [p.text] : []))),
  );
}

export function buildDataTokenizer(
  kind: 'char' | 'word',
  examples: readonly TaskExample[],
): CharTokenizer | WordTokenizer {
  const common = {
    corpus: messageTexts(examples),
    extraSpecialTokens: ROLE_TOKENS,
    chatTemplate: SIMPLE_CHAT_TEMPLATE,
  };
  return kind === 'char'
    ? CharTokenizer.build(common)
    : WordTokenizer.build({ ...common, splitPunctuation: true });
}
