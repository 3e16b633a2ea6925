/**
 * Reads TensorBoard event files (ours or any other writer's), validating both CRCs of every record: for tests
 * and for the dashboard, which must not depend on TensorFlow.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TlabError } from '../../util/errors.ts';
import { DT_DOUBLE, DT_FLOAT, decodeEvent, type TensorBoardEvent, type TensorData } from './event-proto.ts';
import { readRecords } from './tfrecord.ts';

export interface ScalarPoint {
  tag: string;
  step: number;
  value: number;
  wallTime: number;
}

export interface TensorBoardFile {
  path: string;
  events: TensorBoardEvent[];
  /** Byte offset of an incomplete last record (the writer crashed while writing it); it is skipped. */
  tornTailOffset?: number;
}

/** The event files under `path`: the file itself, or every file whose name contains "tfevents" in the folder, by name. */
export function eventFilesIn(path: string): string[] {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path);
  } catch {
    throw new TlabError(`${path}: no such TensorBoard event file or folder`);
  }
  if (stats.isFile()) return [path];
  return readdirSync(path)
    .filter((name) => name.includes('tfevents'))
    .sort()
    .map((name) => join(path, name));
}

export function readTensorBoardFile(path: string): TensorBoardFile {
  const bytes = new Uint8Array(readFileSync(path));
  const { records, tornTailOffset } = readRecords(bytes, path);
  const events = records.map((record, i) => {
    try {
      return decodeEvent(record);
    } catch (error) {
      throw new TlabError(`${path}: record ${i} is not an Event protobuf: ${(error as Error).message}`);
    }
  });
  return { path, events, tornTailOffset };
}

/**
 * Every scalar in an event file or a folder of them, in file order. Reads both the classic simple_value and
 * the TF2 form (a rank-0 float tensor whose tag's first value carries plugin "scalars").
 */
export function readTensorBoardScalars(path: string): ScalarPoint[] {
  const points: ScalarPoint[] = [];
  for (const file of eventFilesIn(path)) {
    // TF2 writers attach plugin metadata only to a tag's first value; later values inherit it.
    const pluginOfTag = new Map<string, string | undefined>();
    for (const event of readTensorBoardFile(file).events) {
      for (const value of event.summary ?? []) {
        if (!pluginOfTag.has(value.tag) || value.pluginName !== undefined)
          pluginOfTag.set(value.tag, value.pluginName);
        let scalar = value.simpleValue;
        if (scalar === undefined && value.tensor && pluginOfTag.get(value.tag) === 'scalars') {
          scalar = scalarOfTensor(value.tensor);
        }
        if (scalar !== undefined)
          points.push({ tag: value.tag, step: event.step, value: scalar, wallTime: event.wallTime });
      }
    }
  }
  return points;
}

function scalarOfTensor(tensor: TensorData): number | undefined {
  if (tensor.dtype === DT_FLOAT) {
    if (tensor.floatVal.length > 0) return tensor.floatVal[0];
    if (tensor.content && tensor.content.byteLength >= 4) {
      return new DataView(tensor.content.buffer, tensor.content.byteOffset).getFloat32(0, true);
    }
  }
  if (tensor.dtype === DT_DOUBLE) {
    if (tensor.doubleVal.length > 0) return tensor.doubleVal[0];
    if (tensor.content && tensor.content.byteLength >= 8) {
      return new DataView(tensor.content.buffer, tensor.content.byteOffset).getFloat64(0, true);
    }
  }
  return undefined;
}
