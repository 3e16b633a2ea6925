import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { HfTextTokenizer, loadTokenizer, saveChatTemplate } from '../../src/tokenize/hf-tokenizer.ts';
import type { ChatMessage } from '../../src/tokenize/types.ts';
import {
  tinyByteLevelBpe,
  tinyByteLevelBpeConfig,
  tinyWordPiece,
  tinyWordPieceConfig,
  writeTokenizerFolder,
} from './tiny-tokenizers.ts';

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Uses bos/eos and rejects system messages through raise_exception, as Gemma-style templates do. */
const STRICT =
  "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" +
  '[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}';

/** Loops over content parts itself, as Qwen2-VL's template does. */
const PARTS =
  '{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content is string %}{{ m.content }}{% else %}' +
  "{% for p in m.content %}{% if p.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% elif p.type == 'text' %}{{ p.text }}{% endif %}{% endfor %}" +
  '{% endif %}<|im_end|>\n{% endfor %}';

const TOOLS =
  "{% if tools %}tools:{% for t in tools %} {{ t.name }}{% endfor %}{{ '\\n' }}{% endif %}{{ messages[0].content }}";

const chat: ChatMessage[] = [
  { role: 'user', content: 'hi' },
  { role: 'assistant', content: 'hello world' },
];

test('renders chat_template from tokenizer_config.json, with and without the generation prompt', () => {
  const tok = HfTextTokenizer.fromJson(tinyByteLevelBpe(), {
    ...tinyByteLevelBpeConfig,
    chat_template: CHATML,
  });
  const expected = '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello world<|im_end|>\n';
  assert.equal(tok.applyChatTemplate(chat), expected);
  assert.equal(
    tok.applyChatTemplate(chat, { addGenerationPrompt: true }),
    `${expected}<|im_start|>assistant\n`,
  );
});

test('bos_token/eos_token reach the template; raise_exception becomes an error naming the template', () => {
  const dir = writeTokenizerFolder({
    'tokenizer.json': tinyByteLevelBpe(),
    'tokenizer_config.json': { ...tinyByteLevelBpeConfig, chat_template: STRICT },
  });
  const tok = loadTokenizer(dir);
  assert.equal(
    tok.applyChatTemplate(chat),
    '<|endoftext|>[user] hi<|endoftext|>[assistant] hello world<|endoftext|>',
  );
  // encodeChat adds no special tokens of its own: the template wrote them.
  assert.deepEqual(tok.encodeChat([{ role: 'assistant', content: 'hello world' }]), [
    265,
    ...tok.encode('[assistant] hello world'),
    265,
  ]);
  assert.throws(() => tok.applyChatTemplate([{ role: 'system', content: 'x' }]), {
    name: 'TlabError',
    message: `${join(dir, 'tokenizer_config.json')}: chat_template: the chat template rejected the messages: System role not supported`,
  });
});

test('named templates (a list in tokenizer_config.json) and a clear error for a missing name or no template', () => {
  const tok = HfTextTokenizer.fromJson(tinyByteLevelBpe(), {
    chat_template: [
      { name: 'default', template: CHATML },
      { name: 'tool_use', template: TOOLS },
    ],
  });
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { templateName: 'tool_use' }), 'hi');
  assert.equal(
    tok.applyChatTemplate([{ role: 'user', content: 'hi' }], {
      templateName: 'tool_use',
      tools: [{ name: 'search' }, { name: 'add' }],
    }),
    'tools: search add\nhi',
  );
  assert.throws(
    () => tok.applyChatTemplate(chat, { templateName: 'rag' }),
    /no chat template named "rag"; valid: default, tool_use/,
  );
  const plain = HfTextTokenizer.fromJson(tinyByteLevelBpe(), {});
  assert.throws(() => plain.applyChatTemplate(chat), /the tokenizer has no chat template/);
});

test('chat_template.jinja beside the tokenizer wins over tokenizer_config.json; chat_template.json is read too', () => {
  const dir = writeTokenizerFolder({
    'tokenizer.json': tinyByteLevelBpe(),
    'tokenizer_config.json': { ...tinyByteLevelBpeConfig, chat_template: CHATML },
  });
  saveChatTemplate(dir, '{{ messages | length }} messages');
  assert.equal(loadTokenizer(dir).applyChatTemplate(chat), '2 messages');
  const jsonDir = writeTokenizerFolder({
    'tokenizer.json': tinyByteLevelBpe(),
    'chat_template.json': { chat_template: STRICT },
  });
  assert.match(loadTokenizer(jsonDir).applyChatTemplate(chat), /^\[user\] hi/);
});

test('a template that does not parse names the file and key', () => {
  const dir = writeTokenizerFolder({
    'tokenizer.json': tinyByteLevelBpe(),
    'tokenizer_config.json': { chat_template: '{% for m in messages %}{{ m.content }}' },
  });
  const tok = loadTokenizer(dir); // templates parse lazily: loading still works for plain encoding
  assert.deepEqual(tok.encode('hi'), [71, 72]);
  assert.throws(
    () => tok.applyChatTemplate(chat),
    /tokenizer_config\.json: chat_template: chat template does not parse: /,
  );
  const badShape = writeTokenizerFolder({
    'tokenizer.json': tinyByteLevelBpe(),
    'tokenizer_config.json': { chat_template: 5 },
  });
  assert.throws(() => loadTokenizer(badShape), /tokenizer_config\.json: chat_template is number 5/);
});

test('image content parts become the configured placeholder; text parts are joined', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is this?' }] },
    { role: 'assistant', content: 'a cat' },
  ];
  const dir = writeTokenizerFolder({
    'tokenizer.json': tinyByteLevelBpe(),
    'tokenizer_config.json': { ...tinyByteLevelBpeConfig, chat_template: CHATML },
  });
  const tok = loadTokenizer(dir, { imagePlaceholder: { token: '<image>', count: 2, after: '\n' } });
  assert.equal(
    tok.applyChatTemplate(messages),
    '<|im_start|>user\n<image><image>\nWhat is this?<|im_end|>\n<|im_start|>assistant\na cat<|im_end|>\n',
  );
  assert.throws(
    () => loadTokenizer(dir).applyChatTemplate(messages),
    /messages\[0\]\.content\[0\] is an image, but the tokenizer has no image placeholder/,
  );
  // image_token in tokenizer_config.json is the default placeholder (LLaVA processors store it there).
  const withToken = writeTokenizerFolder({
    'tokenizer.json': tinyByteLevelBpe(),
    'tokenizer_config.json': { chat_template: CHATML, image_token: '<img>' },
  });
  assert.match(loadTokenizer(withToken).applyChatTemplate(messages), /user\n<img>What is this\?/);
  assert.throws(
    () => tok.applyChatTemplate([{ role: 'user', content: [{ type: 'audio' } as never] }]),
    /messages\[0\]\.content\[0\]\.type "audio" is not supported; valid: text, image, image_url/,
  );
});

test('keepContentParts hands part lists to templates that render them (Qwen2-VL style)', () => {
  const tok = HfTextTokenizer.fromJson(tinyWordPiece(), { ...tinyWordPieceConfig, chat_template: PARTS });
  const messages: ChatMessage[] = [
    { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'the cat' }] },
  ];
  assert.equal(
    tok.applyChatTemplate(messages, { keepContentParts: true }),
    '<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>the cat<|im_end|>\n',
  );
  // encodeChat does not wrap the rendered text in [CLS] ... [SEP] again.
  const ids = tok.encodeChat([{ role: 'user', content: 'the cat' }]);
  assert.notEqual(ids[0], 2);
  assert.notEqual(ids.at(-1), 3);
  assert.ok(ids.includes(5) && ids.includes(6));
});
