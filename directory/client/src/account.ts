/**
 * Account identifiers and the KEYTRANS label of an account (draft-ietf-keytrans-protocol
 * §11.6–§11.7): the label is the byte string that goes into `VrfInput.label` and
 * `CommitmentValue.label`; it names the account, never a version.
 *
 * ```
 * struct {
 *   opaque tenant<1..63>;     // ASCII, ^[a-z0-9][a-z0-9-]{0,62}$
 *   opaque account<1..128>;   // ASCII, ^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$
 * } AccountLabel;             // at most 193 bytes, under KEYTRANS's 255
 * ```
 * @module
 */
import { encoding, bytes } from '@keytrail/core';

/** A tenant id: lower-case letters, digits and dashes, 1–63 characters. */
export const TENANT_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';
/** An account id within a tenant: 1–128 characters of `A-Za-z0-9._@+-`. */
export const ACCOUNT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@+\\-]{0,127}$';

const TENANT_RE = new RegExp(TENANT_ID_PATTERN);
const ACCOUNT_RE = new RegExp(ACCOUNT_ID_PATTERN);

/** An account: its tenant and its stable id within the tenant. */
export interface AccountRef {
  readonly tenant: string;
  readonly account: string;
}

/** True when `tenant` is a valid tenant id. */
export function isTenantId(tenant: string): boolean {
  return TENANT_RE.test(tenant);
}

/** True when `account` is a valid account id. */
export function isAccountId(account: string): boolean {
  return ACCOUNT_RE.test(account);
}

/**
 * The KEYTRANS label of an account.
 * @throws RangeError if the tenant or account id is not valid.
 */
export function accountLabel(ref: AccountRef): Uint8Array {
  if (!isTenantId(ref.tenant)) throw new RangeError('accountLabel: invalid tenant id');
  if (!isAccountId(ref.account)) throw new RangeError('accountLabel: invalid account id');
  return new encoding.Writer(2 + ref.tenant.length + ref.account.length)
    .opaque8(bytes.utf8(ref.tenant))
    .opaque8(bytes.utf8(ref.account))
    .finish();
}
