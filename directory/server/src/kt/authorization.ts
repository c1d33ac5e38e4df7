/**
 * Who may change an account's device list (directory/PROTOCOL.md §3). One interface,
 * {@link UpdateAuthorizer}, with two grants today:
 * - a signature by a device already in the account's current list, Ed25519 over the canonical
 *   `DeviceListUpdate` message (`@keytrail/client` `deviceListUpdateMessage`), which binds the
 *   tenant, account, new version and the whole new list (so it cannot be replayed);
 * - an administrator grant: the operator's bearer token, compared in constant time.
 * The identity service adds signed-in sessions and backup-code recovery behind the same
 * interface.
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ed25519Verify } from '@keytrail/core';
import {
  deviceListUpdateMessage,
  type AccountRef,
  type DeviceList,
  type AuthorizationKind,
} from '@keytrail/client';
import { HttpError } from '@keytrail/server-kit';

/** A proposed change: the account, the version it will get, the current and the new list. */
export interface DeviceListChange {
  readonly ref: AccountRef;
  readonly version: number;
  /** The list at `version - 1`, or undefined for the first version. */
  readonly previous: DeviceList | undefined;
  readonly next: DeviceList;
}

/** What the caller presented. */
export type Credential =
  | { readonly kind: 'device-signature'; readonly deviceId: string; readonly signature: Uint8Array }
  | { readonly kind: 'bearer'; readonly token: string }
  /** A grant made in-process by a trusted service (identity); never built from a request. */
  | { readonly kind: 'internal'; readonly grant: Grant }
  | { readonly kind: 'none' };

/** An accepted authorisation, recorded with the version. */
export interface Grant {
  readonly kind: AuthorizationKind;
  /** Who: a device id, `operator`, or an identity-service principal. */
  readonly actor: string;
  /** The device signature, when there is one. */
  readonly signature?: Uint8Array;
}

/** Decides whether a change is authorised. */
export interface UpdateAuthorizer {
  /**
   * @returns the grant, or undefined when this authorizer does not handle the credential.
   * @throws HttpError 401/403 when it handles the credential and refuses it.
   */
  authorize(change: DeviceListChange, credential: Credential): Promise<Grant | undefined>;
}

/** An existing device's Ed25519 signature over the new list. */
export const deviceSignatureAuthorizer: UpdateAuthorizer = {
  authorize(change, credential) {
    if (credential.kind !== 'device-signature') return Promise.resolve(undefined);
    const signer = change.previous?.find((d) => d.id === credential.deviceId);
    if (signer === undefined) {
      throw new HttpError(
        403,
        'ERR_FORBIDDEN',
        'the signing device is not in the current device list',
      );
    }
    const message = deviceListUpdateMessage(change.ref, change.version, change.next);
    if (!ed25519Verify(credential.signature, message, signer.identityKey)) {
      throw new HttpError(403, 'ERR_BAD_SIGNATURE', 'the device signature does not verify');
    }
    return Promise.resolve({
      kind: 'device',
      actor: credential.deviceId,
      signature: credential.signature,
    });
  },
};

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** True when `presented` equals `expected`, in time independent of the contents. */
export function tokenMatches(presented: string, expected: string): boolean {
  // Hashing first gives equal lengths, so timingSafeEqual leaks neither length nor content.
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The operator's bearer token; without a configured token, no admin grant exists. */
export function adminTokenAuthorizer(adminToken: string | undefined): UpdateAuthorizer {
  return {
    authorize(_change, credential) {
      if (credential.kind !== 'bearer') return Promise.resolve(undefined);
      if (adminToken === undefined || !tokenMatches(credential.token, adminToken)) {
        throw new HttpError(401, 'ERR_UNAUTHORIZED', 'invalid bearer token');
      }
      return Promise.resolve({ kind: 'admin', actor: 'operator' });
    },
  };
}

/** Accepts grants made in-process by a trusted service (the identity service's sessions). */
export const internalAuthorizer: UpdateAuthorizer = {
  authorize(_change, credential) {
    return Promise.resolve(credential.kind === 'internal' ? credential.grant : undefined);
  },
};

/** Tries each authorizer in turn; refuses with 401 when none handles the credential. */
export function composeAuthorizers(...authorizers: readonly UpdateAuthorizer[]): UpdateAuthorizer {
  return {
    async authorize(change, credential) {
      for (const a of authorizers) {
        const grant = await a.authorize(change, credential);
        if (grant !== undefined) return grant;
      }
      throw new HttpError(
        401,
        'ERR_UNAUTHORIZED',
        'a device signature or an administrator grant is required',
      );
    },
  };
}
