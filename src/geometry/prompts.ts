/**
 * What a geometry condition feeds the model: a task split's examples with 0..k few-shot turns (the example's own
 * built shots cut to the first k, or k solved examples drawn from another split, seeded by the example's uid), and
 * the label sets the analyses compare clusters with: the task's class ("label"), the reference answer ("answer"),
 * or a metadata field ("field:<name>").
 */
import type { ChatMessage, TaskExample } from '../data/task-format.ts';
import { referenceAnswer } from '../eval/task-prompt.ts';
import { TlabError } from '../util/errors.ts';
import { Rng } from '../util/random.ts';

/** The example's messages split into an optional system turn, (user, assistant) shot pairs, and the rest. */
function splitShots(e: TaskExample): { head: ChatMessage[]; shots: ChatMessage[][]; tail: ChatMessage[] } {
  const m = e.messages;
  let i = 0;
  const head: ChatMessage[] = [];
  if (m[0]?.role === 'system') head.push(m[i++]);
  const lastUser = m.findLastIndex((x) => x.role === 'user');
  const shots: ChatMessage[][] = [];
  while (i + 1 < lastUser && m[i].role === 'user' && m[i + 1].role === 'assistant') {
    shots.push([m[i], m[i + 1]]);
    i += 2;
  }
  return { head, shots, tail: m.slice(i) };
}

/** Built shots of an example (how many solved turns precede its question). */
export function builtShots(e: TaskExample): number {
  return splitShots(e).shots.length;
}

export interface ShotOptions {
  /** Solved examples before each question. Undefined keeps what the task was built with. */
  shots?: number;
  /** Draw shots from these examples (another split) when the example has fewer built ones. */
  pool?: readonly TaskExample[];
  /** For errors (the task folder). */
  where: string;
}

function shotPair(e: TaskExample): ChatMessage[] {
  const { tail } = splitShots(e);
  const user = tail.find((x) => x.role === 'user');
  const answer = referenceAnswer(e);
  if (!user || answer === undefined)
    throw new TlabError(`example ${e.uid}: has no question and answer to serve as a few-shot turn`);
  return [user, { role: 'assistant', content: [{ type: 'text', text: answer }] }];
}

/** The example with exactly `shots` solved turns before its question. */
export function withShots(e: TaskExample, options: ShotOptions): TaskExample {
  if (options.shots === undefined) return e;
  const k = options.shots;
  const { head, shots, tail } = splitShots(e);
  if (k <= shots.length) return { ...e, messages: [...head, ...shots.slice(0, k).flat(), ...tail] };
  if (!options.pool)
    throw new TlabError(
      `${options.where}: example ${e.uid} has ${shots.length} built few-shot turns, ${k} were asked for`,
      'build the task with few_shot: {k: ...} at least that large, or give shot_split to draw shots from another split',
    );
  const others = options.pool.filter((p) => p.uid !== e.uid);
  if (others.length < k)
    throw new TlabError(
      `${options.where}: the shot split has ${others.length} other examples, ${k} shots were asked for`,
    );
  const picked = Rng.at(e.uid, 'geometry-shots').sampleIndices(others.length, k);
  return { ...e, messages: [...head, ...picked.flatMap((i) => shotPair(others[i])), ...tail] };
}

export interface LabelSet {
  name: string;
  classes: string[];
  values: Int32Array;
}

/** Values of one label spec per example (strings; missing values are an error naming the example). */
function labelStrings(spec: string, examples: readonly TaskExample[], where: string): string[] {
  return examples.map((e) => {
    let v: unknown;
    if (spec === 'label') v = e.label;
    else if (spec === 'answer') v = referenceAnswer(e);
    else if (spec.startsWith('field:')) v = e.metadata?.fields?.[spec.slice(6)];
    else
      throw new TlabError(
        `${where}: label set '${spec}' is not one of label, answer, field:<metadata field>`,
      );
    if (v === undefined || v === null)
      throw new TlabError(
        `${where}: example ${e.uid} has no ${spec === 'label' ? 'class label' : spec}`,
        spec.startsWith('field:')
          ? `its metadata fields: ${Object.keys(e.metadata?.fields ?? {}).join(', ')}`
          : undefined,
      );
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}

/** Integer-coded label sets (classes sorted). */
export function labelSets(
  specs: readonly string[],
  examples: readonly TaskExample[],
  where: string,
): LabelSet[] {
  return specs.map((spec) => {
    const strings = labelStrings(spec, examples, where);
    const classes = [...new Set(strings)].sort();
    const index = new Map(classes.map((c, i) => [c, i]));
    return {
      name: spec.replace(/^field:/, ''),
      classes,
      values: Int32Array.from(strings, (s) => index.get(s) as number),
    };
  });
}
