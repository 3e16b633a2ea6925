/**
 * TFRecord framing, the container of TensorBoard event files: each record is
 * uint64 length (LE) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data.
 */
import { TlabError } from '../../util/errors.ts';
import { maskedCrc32c } from './crc32c.ts';

const HEADER_BYTES = 12;
const FOOTER_BYTES = 4;

export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + data.length + FOOTER_BYTES);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, HEADER_BYTES);
  view.setUint32(HEADER_BYTES + data.length, maskedCrc32c(data), true);
  return out;
}

export interface ReadRecordsResult {
  records: Uint8Array[];
  /** Byte offset of an incomplete record at the end (a writer that crashed mid-record), if any. */
  tornTailOffset?: number;
}

/**
 * Splits a TFRecord file into its records, checking both CRCs of each. An incomplete final record is reported
 * (not an error: it is what a crash mid-write leaves); a checksum mismatch anywhere is an error naming the
 * file and byte offset.
 */
export function readRecords(bytes: Uint8Array, source: string): ReadRecordsResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < HEADER_BYTES) return { records, tornTailOffset: offset };
    const length = view.getBigUint64(offset, true);
    if (view.getUint32(offset + 8, true) !== maskedCrc32c(bytes.subarray(offset, offset + 8))) {
      throw new TlabError(
        `${source}: record at byte ${offset}: length checksum mismatch (not a TFRecord file, or corrupted)`,
      );
    }
    const end = offset + HEADER_BYTES + Number(length) + FOOTER_BYTES;
    if (length > BigInt(bytes.length) || end > bytes.length) return { records, tornTailOffset: offset };
    const data = bytes.subarray(offset + HEADER_BYTES, end - FOOTER_BYTES);
    if (view.getUint32(end - FOOTER_BYTES, true) !== maskedCrc32c(data)) {
      throw new TlabError(`${source}: record at byte ${offset}: data checksum mismatch (corrupted)`);
    }
    records.push(data);
    offset = end;
  }
  return { records };
}
