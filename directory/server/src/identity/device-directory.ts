/**
 * The one seam between identity and the key directory (CONTRACT "Seams between the directory
 * service and identity"): identity asks the directory to publish a person's device list (the
 * first device, after TOTP; or after a recovery with a backup code) and to remove all of a
 * person's devices when they are deprovisioned. The directory turns each call into a new
 * version of the account's value in the transparency log and returns a receipt.
 * @module
 */

/** One device as identity passes it on; the directory validates and encodes it. */
export interface DeviceEntry {
  /** Client-chosen device id, 1–64 characters `[A-Za-z0-9_-]`. */
  readonly deviceId: string;
  /** Ed25519 identity public key (32 bytes). */
  readonly identityKey: Uint8Array;
  /** X25519 key where separate (32 bytes). */
  readonly x25519Key?: Uint8Array | undefined;
}

/** Why identity may change the list: the directory records it in the device-list value. */
export type DeviceAuthorization =
  /** The person's first device, registered under a session that passed TOTP. */
  | { readonly kind: 'first-device'; readonly sessionId: string }
  /** A device added after a recovery with a backup code. */
  | { readonly kind: 'recovery'; readonly sessionId: string }
  /** Deprovisioning by SCIM or an administrator. */
  | { readonly kind: 'admin'; readonly actor: string };

/** What the directory hands back: enough for the audit log and for the caller to follow up. */
export interface DeviceReceipt {
  /** The account's value version that now holds the change. */
  readonly version: number;
  /** Directory-defined reference (epoch or queue id) to look the change up later. */
  readonly reference: string;
}

/** The account as the directory names it. */
export interface DirectoryAccount {
  readonly tenantId: string;
  /** Identity's stable account id. */
  readonly accountId: string;
  /** The person's lower-cased username (e-mail), the name others look up. */
  readonly username: string;
}

/**
 * What identity needs from the key directory. Implementations must be idempotent for
 * `removeAllDevices` (a deprovisioning is retried until it succeeds).
 */
export interface DeviceDirectory {
  /** Replaces the account's device list; the directory refuses an invalid list. */
  publishDevices(
    account: DirectoryAccount,
    devices: readonly DeviceEntry[],
    authorization: DeviceAuthorization,
  ): Promise<DeviceReceipt>;
  /** Publishes an empty device list for the account (device-key revocation). */
  removeAllDevices(
    account: DirectoryAccount,
    authorization: DeviceAuthorization,
  ): Promise<DeviceReceipt>;
}
