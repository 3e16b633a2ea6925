/** A synthetic generator seen as a data source: rows are generated on demand, only for selected indices. */
import { TlabError, validChoices } from '../../util/errors.ts';
import { zodIssuesError } from '../config.ts';
import { GENERATORS } from '../synthetic/index.ts';
import type { AnyGenerator } from '../synthetic/types.ts';
import type {
  DataSource,
  SourceFingerprint,
  SourceRecord,
  SourceRow,
  SourceSplit,
  TaskDefaults,
} from './types.ts';

export class SyntheticSource implements DataSource {
  readonly splits: SourceSplit[];
  readonly columns: string[];
  readonly labels: string[] | undefined;
  readonly defaults: TaskDefaults;
  readonly details: Record<string, unknown>;

  private constructor(
    readonly description: string,
    private readonly generator: AnyGenerator,
    private readonly params: { splits: Record<string, number> },
    private readonly seed: number,
  ) {
    this.splits = Object.keys(params.splits).map((name) => ({
      name,
      numRows: generator.numRows(params, name),
    }));
    this.columns = generator.columns(params);
    this.labels = generator.labels(params);
    this.defaults = generator.defaults(params);
    this.details = { generator: { name: generator.name, version: generator.version, params, seed } };
  }

  /**
   * `name` is what follows `synthetic:`; `params` come from the task's `generator:` field and `where` names it
   * for errors (`config.yaml`, `tasks.t1.generator`).
   */
  static open(
    name: string,
    params: unknown,
    seed: number,
    where: { file: string; path: string[] },
  ): SyntheticSource {
    const generator = GENERATORS[name];
    if (!generator)
      throw new TlabError(
        `${where.file}: ${[...where.path.slice(0, -1), 'dataset'].join('.')}: unknown generator 'synthetic:${name}'`,
        `generators: ${validChoices(Object.keys(GENERATORS).map((g) => `synthetic:${g}`))}`,
      );
    const parsed = generator.params.safeParse(params ?? {});
    if (!parsed.success) throw zodIssuesError(where.file, where.path, parsed.error);
    return new SyntheticSource(
      `synthetic:${name}`,
      generator,
      parsed.data as { splits: Record<string, number> },
      seed,
    );
  }

  async *rows(split: string, selected?: Uint8Array): AsyncIterable<SourceRecord> {
    const n = this.generator.numRows(this.params, split);
    // Generate a few rows ahead concurrently (image rendering runs on libvips threads); yield in order.
    const ahead = 8;
    const pending: { index: number; row: Promise<SourceRow> }[] = [];
    for (let i = 0; i < n || pending.length > 0; ) {
      while (pending.length < ahead && i < n) {
        if (!selected || selected[i]) {
          const row = this.generator.row(this.params, this.seed, split, i);
          row.catch(() => {}); // surfaced when awaited below, not as an unhandled rejection meanwhile
          pending.push({ index: i, row });
        }
        i++;
      }
      const next = pending.shift();
      if (next) yield { index: next.index, row: await next.row };
    }
  }

  async fingerprint(): Promise<SourceFingerprint> {
    return {
      kind: 'synthetic',
      dataset: this.description,
      revision: `v${this.generator.version}`,
      files: [],
    };
  }

  async close(): Promise<void> {}
}
