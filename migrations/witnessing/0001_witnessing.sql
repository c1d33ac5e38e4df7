-- The directory's side of C2SP tlog-witness: what each configured witness last cosigned for
-- this log (so requests start at the right `old` size after a restart), and every cosignature
-- collected, so the history of who vouched for which checkpoint, and when, is kept.
-- Applied by the directory after `directory` (migrate(db, 'witnessing')).

CREATE TABLE witnessing_witnesses (
  -- The witness's cosignature/v1 verifier key: its identity.
  vkey text PRIMARY KEY,
  -- The tree size the witness holds for this log, as last learned (200 or 409 text/x.tlog.size).
  tree_size bigint NOT NULL DEFAULT 0 CHECK (tree_size >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE witnessing_cosignatures (
  tree_size bigint NOT NULL CHECK (tree_size >= 0),
  root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
  vkey text NOT NULL,
  -- The signature line as returned and verified: `— <name> <base64>`, with its newline.
  line text NOT NULL,
  -- The cosignature timestamp, POSIX seconds (the newest kept per size and witness).
  cosigned_at bigint NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tree_size, vkey)
);
