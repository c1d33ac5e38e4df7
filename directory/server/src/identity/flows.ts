/**
 * Sign-in flows: the short-lived server state between "start sign-in" and "tokens issued".
 * The client that started a flow holds its 256-bit secret (only the hash is stored); every
 * later step presents it, which binds the IdP response to the browser that asked for it and
 * defeats login CSRF: a response injected into someone else's browser advances a flow they
 * cannot continue. Stages move forward only, by compare-and-swap.
 * @module
 */
import type { Queryable } from '@keytrail/server-kit';
import { identityError } from './errors.ts';
import { randomId, randomToken, sha256 } from './secrets.ts';

/** Stage of a flow. */
export type FlowStage = 'idp' | 'mfa' | 'done' | 'failed';

/** Failed second-factor attempts after which a flow is dead. */
export const FLOW_MAX_ATTEMPTS = 5;

/** A flow as loaded. */
export interface Flow {
  readonly id: string;
  readonly tenantId: string;
  readonly idpId: string;
  readonly stage: FlowStage;
  readonly state: Readonly<Record<string, string>>;
  readonly accountId: string | null;
  readonly attempts: number;
}

/** Creates a flow at stage `idp`; returns its public id and the secret for the client. */
export async function createFlow(
  db: Queryable,
  f: {
    tenantId: string;
    idpId: string;
    state: Record<string, string>;
    nowMs: number;
    ttlSec: number;
  },
): Promise<{ id: string; secret: string }> {
  const id = randomId();
  const secret = randomToken();
  await db.query(
    `INSERT INTO identity_flows (id, secret_hash, tenant_id, idp_id, stage, state, created_at, expires_at)
     VALUES ($1, $2, $3, $4, 'idp', $5, $6, $7)`,
    [
      id,
      sha256(secret),
      f.tenantId,
      f.idpId,
      JSON.stringify(f.state),
      new Date(f.nowMs),
      new Date(f.nowMs + f.ttlSec * 1000),
    ],
  );
  return { id, secret };
}

type FlowRaw = {
  id: string;
  tenant_id: string;
  idp_id: string;
  stage: FlowStage;
  state: Record<string, string>;
  account_id: string | null;
  attempts: number;
};

function toFlow(r: FlowRaw): Flow {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    idpId: r.idp_id,
    stage: r.stage,
    state: r.state,
    accountId: r.account_id,
    attempts: r.attempts,
  };
}

/**
 * Loads a live flow of the tenant by its secret, at the expected stage.
 * @throws HttpError ERR_IDENTITY_FLOW_INVALID (unknown, expired, other tenant, wrong stage)
 */
export async function flowBySecret(
  db: Queryable,
  q: { tenantId: string; secret: string; stage: FlowStage; nowMs: number },
): Promise<Flow> {
  const r = await db.query<FlowRaw>(
    `SELECT id, tenant_id, idp_id, stage, state, account_id, attempts FROM identity_flows
     WHERE secret_hash = $1 AND tenant_id = $2 AND expires_at > $3`,
    [sha256(q.secret), q.tenantId, new Date(q.nowMs)],
  );
  const row = r.rows[0];
  if (row?.stage !== q.stage)
    throw identityError('ERR_IDENTITY_FLOW_INVALID', 'sign-in flow not valid');
  return toFlow(row);
}

/**
 * Loads a live flow by its public id (SAML RelayState), at stage `idp`, for the IdP.
 * @throws HttpError ERR_IDENTITY_FLOW_INVALID
 */
export async function flowById(
  db: Queryable,
  q: { tenantId: string; idpId: string; id: string; nowMs: number },
): Promise<Flow> {
  const r = await db.query<FlowRaw>(
    `SELECT id, tenant_id, idp_id, stage, state, account_id, attempts FROM identity_flows
     WHERE id = $1 AND tenant_id = $2 AND idp_id = $3 AND stage = 'idp' AND expires_at > $4`,
    [q.id, q.tenantId, q.idpId, new Date(q.nowMs)],
  );
  const row = r.rows[0];
  if (!row) throw identityError('ERR_IDENTITY_FLOW_INVALID', 'sign-in flow not valid');
  return toFlow(row);
}

/**
 * Moves a flow forward by compare-and-swap.
 * @throws HttpError ERR_IDENTITY_FLOW_INVALID when it was not at `from` (used twice, raced)
 */
export async function advanceFlow(
  db: Queryable,
  q: { id: string; from: FlowStage; to: FlowStage; accountId?: string | undefined },
): Promise<void> {
  const r = await db.query(
    `UPDATE identity_flows SET stage = $3, account_id = COALESCE($4, account_id), state = '{}'::jsonb
     WHERE id = $1 AND stage = $2`,
    [q.id, q.from, q.to, q.accountId ?? null],
  );
  if (r.rowCount !== 1) throw identityError('ERR_IDENTITY_FLOW_INVALID', 'sign-in flow not valid');
}

/** Counts a failed second-factor attempt; the flow fails at {@link FLOW_MAX_ATTEMPTS}. */
export async function countFlowFailure(db: Queryable, flowId: string): Promise<void> {
  await db.query(
    `UPDATE identity_flows SET attempts = attempts + 1,
       stage = CASE WHEN attempts + 1 >= $2 THEN 'failed' ELSE stage END
     WHERE id = $1`,
    [flowId, FLOW_MAX_ATTEMPTS],
  );
}

/** Deletes flows that expired before `nowMs` (housekeeping). */
export async function purgeFlows(db: Queryable, nowMs: number): Promise<number> {
  const r = await db.query('DELETE FROM identity_flows WHERE expires_at < $1', [new Date(nowMs)]);
  return r.rowCount;
}
