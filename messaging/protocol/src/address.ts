/**
 * Device addresses: an account name (as the directory names it) and a device id. Sesame
 * (Signal, rev. 2 §2) keys every session by such an address.
 * @module
 */
import { fromUtf8, utf8 } from './bytes.ts';
import type { Reader, Writer } from './codec.ts';
import { MalformedError } from './errors.ts';

/** One device of one account. */
export interface Address {
  /** The account name: 1–255 bytes of UTF-8. */
  readonly account: string;
  /** The device id: an integer 1 … 2^32 − 1. */
  readonly device: number;
}

/** Longest account name in UTF-8 bytes. */
export const MAX_ACCOUNT_LENGTH = 255;

/**
 * Checks an address and returns it.
 * @throws MalformedError `ERR_ADDRESS_INVALID`
 */
export function checkAddress(address: Address): Address {
  const n = utf8(address.account).length;
  if (n === 0 || n > MAX_ACCOUNT_LENGTH) {
    throw new MalformedError('ERR_ADDRESS_INVALID', 'account name must be 1-255 UTF-8 bytes');
  }
  if (!Number.isInteger(address.device) || address.device < 1 || address.device > 0xffffffff) {
    throw new MalformedError('ERR_ADDRESS_INVALID', 'device id must be 1 … 2^32-1');
  }
  return address;
}

/** A string key for maps: `device:account` (unambiguous because the device id is digits). */
export function addressKey(address: Address): string {
  return `${address.device}:${address.account}`;
}

/** True when both name the same device. */
export function sameAddress(a: Address, b: Address): boolean {
  return a.account === b.account && a.device === b.device;
}

/** Writes `opaque8 account ‖ u32 device`. */
export function writeAddress(w: Writer, address: Address): void {
  checkAddress(address);
  w.opaque8(utf8(address.account)).u32(address.device);
}

/**
 * Reads `opaque8 account ‖ u32 device`.
 * @throws MalformedError `ERR_ADDRESS_INVALID`, `ERR_ENCODING_MALFORMED`
 */
export function readAddress(r: Reader): Address {
  const account = fromUtf8(r.opaque8());
  const device = r.u32();
  return checkAddress({ account, device });
}
