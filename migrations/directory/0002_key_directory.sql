-- The key directory (directory/PROTOCOL.md): accounts, every accepted device-list version,
-- the epoch log and its checkpoints. Forward-only.

-- The directory's identity: its checkpoint origin and its two secret keys, created once on
-- first start. Kept in the database (not a key file) so that every process that can take over
-- the sequencer signs with the same keys; see README "Keys".
CREATE TABLE kt_settings (
  id smallint PRIMARY KEY CHECK (id = 1),
  origin text NOT NULL CHECK (length(origin) BETWEEN 1 AND 200),
  log_secret bytea NOT NULL CHECK (length(log_secret) = 32),
  vrf_secret bytea NOT NULL CHECK (length(vrf_secret) = 32),
  -- Writes join this epoch; the sequencer advances it (under the epoch lock) to close an epoch.
  open_epoch bigint NOT NULL CHECK (open_epoch >= 0),
  -- Last epoch committed; advanced only by compare-and-swap in the epoch's transaction.
  published_epoch bigint NOT NULL CHECK (published_epoch >= -1),
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (open_epoch BETWEEN published_epoch + 1 AND published_epoch + 2)
);

CREATE TABLE accounts (
  tenant_id text NOT NULL REFERENCES tenants (id),
  account_id text NOT NULL CHECK (account_id ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$'),
  display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 320),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, account_id)
);

-- One row per accepted change, durable before the write is acknowledged. The sequencer fills
-- the leaf columns in the transaction of the row's epoch.
CREATE TABLE kt_versions (
  tenant_id text NOT NULL,
  account_id text NOT NULL,
  version bigint NOT NULL CHECK (version BETWEEN 0 AND 4294967294),
  epoch bigint NOT NULL CHECK (epoch >= 0),
  value bytea NOT NULL,
  auth_kind text NOT NULL CHECK (auth_kind IN ('device', 'recovery', 'admin')),
  auth_actor text NOT NULL,
  auth_signature bytea,
  received_at timestamptz NOT NULL DEFAULT now(),
  label bytea UNIQUE CHECK (length(label) = 32),
  vrf_proof bytea CHECK (length(vrf_proof) = 80),
  opening bytea CHECK (length(opening) = 16),
  commitment bytea CHECK (length(commitment) = 32),
  -- The VRF of version + 1: the absent probe of this version's lookups, and the next
  -- version's label, so no lookup ever proves.
  next_label bytea CHECK (length(next_label) = 32),
  next_vrf_proof bytea CHECK (length(next_vrf_proof) = 80),
  PRIMARY KEY (tenant_id, account_id, version),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, account_id)
);
CREATE INDEX kt_versions_epoch_label ON kt_versions (epoch, label);

-- The epoch log: leaf i is the encoded EpochRecord of epoch i.
CREATE TABLE kt_epochs (
  epoch bigint PRIMARY KEY CHECK (epoch >= 0),
  record bytea NOT NULL CHECK (length(record) = 85),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Signed checkpoints by tree size; `note` gains witness cosignatures once collected.
CREATE TABLE kt_checkpoints (
  size bigint PRIMARY KEY CHECK (size >= 1),
  note text NOT NULL,
  released boolean NOT NULL DEFAULT false
);
