/** Named host tensors: model parameters and optimizer state, swapped in and out of training programs. */

import { TlabError, validChoices } from '../../util/errors.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { formatShape, sameShape } from '../ir/shape.ts';
import type { HostTensor } from '../tensor.ts';

export class ParameterStore {
  private readonly tensors = new Map<string, HostTensor>();

  constructor(initial?: Iterable<[string, HostTensor]>) {
    if (initial) for (const [k, v] of initial) this.tensors.set(k, v);
  }

  static load(path: string): ParameterStore {
    return new ParameterStore(readSafetensors(path));
  }

  save(path: string, names?: Iterable<string>, metadata?: Record<string, string>): void {
    const wanted = names ? [...names] : [...this.tensors.keys()];
    writeSafetensors(path, new Map(wanted.map((n) => [n, this.get(n)])), metadata);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The tensor named `name`; a missing one is an error that lists what the store holds. */
  get(name: string): HostTensor {
    const t = this.tensors.get(name);
    if (!t) {
      throw new TlabError(
        `parameter '${name}' is missing from the parameter store`,
        `present: ${validChoices(this.tensors.keys())}`,
      );
    }
    return t;
  }

  /** Replaces a tensor; the new one must keep the old dtype and shape unless `allowNew`. */
  set(name: string, value: HostTensor, allowNew = true): void {
    const old = this.tensors.get(name);
    if (old && (old.dtype !== value.dtype || !sameShape(old.shape, value.shape))) {
      throw new TlabError(
        `parameter '${name}': cannot replace ${old.dtype}${formatShape(old.shape)} with ${value.dtype}${formatShape(value.shape)}`,
      );
    }
    if (!old && !allowNew) throw new TlabError(`parameter '${name}' is not in the store`);
    this.tensors.set(name, value);
  }

  delete(name: string): void {
    this.tensors.delete(name);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  entries(): IterableIterator<[string, HostTensor]> {
    return this.tensors.entries();
  }

  get size(): number {
    return this.tensors.size;
  }

  /** Total bytes held. */
  byteLength(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.data.byteLength;
    return n;
  }

  clone(): ParameterStore {
    return new ParameterStore(
      [...this.tensors].map(([k, v]) => [k, { ...v, data: v.data.slice() }] as [string, HostTensor]),
    );
  }
}
