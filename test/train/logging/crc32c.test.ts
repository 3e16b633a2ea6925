import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c, maskCrc, maskedCrc32c } from '../../../src/train/logging/crc32c.ts';

test('crc32c matches the standard check value and the RFC 3720 (iSCSI) test vectors', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

test('the TFRecord mask rotates right by 15 and adds 0xa282ead8 modulo 2^32', () => {
  assert.equal(maskCrc(0), 0xa282ead8);
  assert.equal(maskCrc(0x00008000), (1 + 0xa282ead8) >>> 0);
  assert.equal(maskCrc(0xffffffff), (0xffffffff + 0xa282ead8) >>> 0);
  // The length header of a 24-byte record as PyTorch's SummaryWriter wrote it (fixture file, bytes 8..11).
  const header = new Uint8Array([0x18, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(maskedCrc32c(header), 0x224b7fa3);
});
