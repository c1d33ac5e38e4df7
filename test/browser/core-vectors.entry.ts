/**
 * Browser entry for the Chromium vector run (STYLE.md §2, jose `tap/.browsers.sh`): runs the
 * `@keytrail/core` known-answer vectors inside a real browser, with the pure noble backend.
 *
 * `core-vectors.test.ts` bundles this file with esbuild (platform browser) and injects every
 * JSON file of `directory/core/test/vectors/` as the virtual module `keytrail:core-vectors`. Each
 * file needs a runner below; a file without one is reported as a failure, so new vector files
 * cannot silently skip the browser. Small vectors that live inline in the Node tests
 * (commitments, epoch record) are repeated here with their sources.
 *
 * Results are left in `globalThis.__keytrailCoreVectors` for the test to read.
 * @module
 */
import {
  bytes,
  checkpoint,
  commitment,
  cosignature,
  epoch,
  getCryptoBackend,
  KtError,
  merkle,
  note,
  prefixTree,
  vrf,
} from '@keytrail/core';
import vectorFiles from 'keytrail:core-vectors';

const { fromBase64, fromHex, toHex, utf8, fromUtf8 } = bytes;

/** One named check and its outcome. */
export interface VectorResult {
  /** The vector file the check comes from, or `inline`. */
  readonly file: string;
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: string;
}

const results: VectorResult[] = [];
let currentFile = 'inline';

function check(name: string, fn: () => void): void {
  try {
    fn();
    results.push({ file: currentFile, name, ok: true });
  } catch (err) {
    const detail = err instanceof KtError ? `${err.code}: ${err.message}` : String(err);
    results.push({ file: currentFile, name, ok: false, detail });
  }
}

function same(got: unknown, want: unknown, what: string): void {
  const g = typeof got === 'string' ? got : JSON.stringify(got);
  const w = typeof want === 'string' ? want : JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

function throwsCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof KtError && err.code === code) return;
    throw new Error(`expected ${code}, got ${err instanceof KtError ? err.code : String(err)}`, {
      cause: err,
    });
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

// ---- ecvrf-rfc9381.json ----------------------------------------------------------------------

interface EcvrfDoc {
  vectors: {
    desc: string;
    sk: string;
    pk: string;
    alpha: string;
    pi: string;
    beta: string;
    h?: string;
    ctr?: number;
  }[];
}

function runEcvrf(doc: EcvrfDoc): void {
  for (const v of doc.vectors) {
    check(`ecvrf: ${v.desc}`, () => {
      const sk = fromHex(v.sk);
      const alpha = fromHex(v.alpha);
      same(toHex(vrf.publicKey(sk)), v.pk, 'public key');
      same(toHex(vrf.prove(sk, alpha)), v.pi, 'proof');
      same(toHex(vrf.verify(fromHex(v.pk), alpha, fromHex(v.pi))), v.beta, 'beta');
      same(toHex(vrf.proofToHash(fromHex(v.pi))), v.beta, 'proofToHash');
      if (v.h !== undefined) {
        const h = vrf.encodeToCurveTai(fromHex(v.pk), alpha);
        same(toHex(h.h), v.h, 'H');
        same(h.ctr, v.ctr, 'ctr');
      }
      const tampered = fromHex(v.pi);
      tampered[40] = (tampered[40] as number) ^ 1;
      throwsCode(() => vrf.verify(fromHex(v.pk), alpha, tampered), 'ERR_VRF_INVALID');
    });
  }
}

// ---- prefix-tree.json ------------------------------------------------------------------------

type HexResult =
  | { type: 'inclusion' | 'nonInclusionParent'; depth: number }
  | { type: 'nonInclusionLeaf'; depth: number; leaf: { key: string; commitment: string } };

interface PrefixDoc {
  vectors: {
    desc: string;
    entries: { key: string; commitment: string }[];
    searches: { key: string; commitment?: string }[];
    want: { root: string; results: HexResult[]; elements: string[]; proof: string };
  }[];
  tampered: { base: string; cases: { desc: string; proof: string; wantErr: string }[] };
}

function runPrefixTree(doc: PrefixDoc): void {
  for (const v of doc.vectors) {
    check(`prefix-tree: ${v.desc}`, () => {
      const tree = new prefixTree.PrefixTree();
      for (const e of v.entries) tree.insert(fromHex(e.key), fromHex(e.commitment));
      same(toHex(tree.root()), v.want.root, 'root');
      const proof = tree.proveMany(v.searches.map((s) => fromHex(s.key)));
      same(toHex(prefixTree.encodeProof(proof)), v.want.proof, 'proof');
      const searches = v.searches.map((s) =>
        s.commitment === undefined
          ? { key: fromHex(s.key) }
          : { key: fromHex(s.key), commitment: fromHex(s.commitment) },
      );
      const out = prefixTree.verifyMany(
        fromHex(v.want.root),
        searches,
        prefixTree.decodeProof(fromHex(v.want.proof)),
      );
      same(
        out.map((r) => r.included),
        v.want.results.map((r) => r.type === 'inclusion'),
        'included',
      );
    });
  }
  const base = doc.vectors.find((v) => v.desc === doc.tampered.base);
  for (const c of doc.tampered.cases) {
    check(`prefix-tree tampered: ${c.desc}`, () => {
      if (base === undefined) throw new Error('missing base vector');
      const s = base.searches[0];
      if (s?.commitment === undefined) throw new Error('base vector has no commitment');
      const commitmentBytes = fromHex(s.commitment);
      throwsCode(
        () =>
          prefixTree.verify(
            fromHex(base.want.root),
            fromHex(s.key),
            prefixTree.decodeProof(fromHex(c.proof)),
            commitmentBytes,
          ),
        c.wantErr,
      );
    });
  }
}

// ---- merkle-rfc6962.json ---------------------------------------------------------------------

interface MerkleDoc {
  hasher_vectors: Record<string, string>;
  leaf_inputs_hex: string[];
  leaf_hashes_hex: string[];
  roots_by_size_hex: Record<string, string>;
  published_inclusion_proofs: {
    leaf_index_0based: number;
    tree_size: number;
    path_hex: string[];
  }[];
  derived_all_inclusion_proofs_sizes_1_8: {
    vectors: { leaf_index: number; tree_size: number; path_hex: string[] }[];
  };
  published_consistency_proofs: { size1: number; size2: number; proof_hex: string[] }[];
  derived_all_consistency_proofs_sizes_1_8: {
    vectors: { size1: number; size2: number; proof_hex: string[] }[];
  };
}

function runMerkle(doc: MerkleDoc): void {
  const leaves = doc.leaf_inputs_hex.map((h) => merkle.leafHash(fromHex(h)));
  check('merkle: RFC 6962 hasher vectors, leaf hashes and roots of sizes 0..8', () => {
    same(toHex(merkle.emptyRoot()), doc.hasher_vectors.empty_tree, 'empty tree');
    same(toHex(merkle.leafHash(utf8('L123456'))), doc.hasher_vectors["leaf 'L123456'"], 'leaf');
    same(leaves.map(toHex), doc.leaf_hashes_hex, 'leaf hashes');
    for (let n = 0; n <= leaves.length; n++) {
      same(
        toHex(merkle.rootHash(leaves.slice(0, n))),
        doc.roots_by_size_hex[String(n)],
        `root ${n}`,
      );
    }
  });
  const inclusion = [
    ...doc.published_inclusion_proofs.map((v) => ({
      index: v.leaf_index_0based,
      size: v.tree_size,
      path: v.path_hex,
    })),
    ...doc.derived_all_inclusion_proofs_sizes_1_8.vectors.map((v) => ({
      index: v.leaf_index,
      size: v.tree_size,
      path: v.path_hex,
    })),
  ];
  for (const { index, size, path } of inclusion) {
    check(`merkle: inclusion of leaf ${index} in size ${size}`, () => {
      const prefix = leaves.slice(0, size);
      same(merkle.inclusionProof(prefix, index).map(toHex), path, 'proof');
      merkle.verifyInclusion(
        leaves[index] as Uint8Array,
        index,
        size,
        path.map(fromHex),
        merkle.rootHash(prefix),
      );
    });
  }
  const consistency = [
    ...doc.published_consistency_proofs,
    ...doc.derived_all_consistency_proofs_sizes_1_8.vectors,
  ];
  for (const { size1, size2, proof_hex } of consistency) {
    check(`merkle: consistency ${size1} → ${size2}`, () => {
      same(merkle.consistencyProof(leaves.slice(0, size2), size1).map(toHex), proof_hex, 'proof');
      merkle.verifyConsistency(
        size1,
        size2,
        proof_hex.map(fromHex),
        merkle.rootHash(leaves.slice(0, size1)),
        merkle.rootHash(leaves.slice(0, size2)),
      );
    });
  }
}

// ---- merkle-probes.json ----------------------------------------------------------------------

interface Probe {
  kind: 'inclusion' | 'consistency';
  file: string;
  proof: string[] | null;
  wantErr: string | null;
  leafIdx?: number;
  treeSize?: number;
  leafHash?: string;
  root?: string;
  size1?: number;
  size2?: number;
  root1?: string;
  root2?: string;
}

function runMerkleProbes(doc: { probes: Probe[] }): void {
  for (const p of doc.probes) {
    check(`merkle probe: ${p.kind} ${p.file}`, () => {
      const proof = (p.proof ?? []).map(fromBase64);
      const run = (): void => {
        if (p.kind === 'inclusion') {
          merkle.verifyInclusion(
            fromBase64(p.leafHash ?? ''),
            Number(p.leafIdx),
            Number(p.treeSize),
            proof,
            fromBase64(p.root ?? ''),
          );
        } else {
          merkle.verifyConsistency(
            Number(p.size1),
            Number(p.size2),
            proof,
            fromBase64(p.root1 ?? ''),
            fromBase64(p.root2 ?? ''),
          );
        }
      };
      if (p.wantErr === null) run();
      else throwsCode(run, p.wantErr);
    });
  }
}

// ---- tlog-c2sp.json (signed notes, checkpoints, cosignatures) --------------------------------

interface TlogDoc {
  signed_notes: { id: string; vkeys: string[]; note: string }[];
  checkpoints: {
    id: string;
    vkey?: string;
    vkey_derived?: string;
    note?: string;
    notes?: string[];
    notes_by_size?: string[];
    entries_utf8_in_order?: string[];
    consistency_proof_5_to_8_hex?: string[];
  }[];
  cosignatures: {
    id: string;
    vkey_0x04?: string;
    checkpoint_text: string;
    signature_line?: string;
    timestamp?: number;
    signed_message?: string;
    expect: string;
  }[];
}

// A vkey is name+hash+base64(type || key); neither name nor hash contains '+'.
const keyType = (vkey: string): number => fromBase64(vkey.split('+').slice(2).join('+'))[0] ?? -1;

function runTlog(doc: TlogDoc): void {
  const go = doc.signed_notes.find((n) => n.vkeys.length === 2);
  if (go !== undefined) {
    check(`note: ${go.id} (both keys, one key, no known key)`, () => {
      const [peter, enoch] = go.vkeys.map((k) => note.parseVerifierKey(k));
      if (peter === undefined || enoch === undefined) throw new Error('missing keys');
      same(note.open(go.note, [peter, enoch]).verified.length, 2, 'verified with both');
      const one = note.open(go.note, [peter]);
      same([one.verified.length, one.unverified.length], [1, 1], 'verified/unverified with one');
      throwsCode(() => note.open(go.note, []), 'ERR_NOTE_NO_VERIFIED_SIGNATURE');
    });
  }
  for (const n of doc.signed_notes.filter((x) => x.vkeys.length === 1)) {
    check(`note: ${n.id}`, () => {
      const v = note.parseVerifierKey(n.vkeys[0] as string);
      same(note.open(n.note, [v]).verified.length, 1, 'verified');
    });
  }
  for (const c of doc.checkpoints) {
    const vkey = c.vkey ?? c.vkey_derived;
    if (vkey === undefined) continue;
    if (keyType(vkey) !== note.ED25519_TYPE) {
      check(`checkpoint: ${c.id} (unsupported log key type is refused)`, () => {
        throwsCode(() => note.parseVerifierKey(vkey), 'ERR_VKEY_UNSUPPORTED_TYPE');
      });
      continue;
    }
    check(`checkpoint: ${c.id}`, () => {
      const v = note.parseVerifierKey(vkey);
      const notes = [
        ...(c.note === undefined ? [] : [c.note]),
        ...(c.notes ?? []),
        ...(c.notes_by_size ?? []),
      ];
      if (notes.length === 0) throw new Error('no notes');
      const parsed = notes.map((n) => {
        const opened = note.open(n, [v]);
        same(opened.verified.length, 1, 'verified');
        const cp = checkpoint.parse(opened.text);
        same(checkpoint.format(cp), opened.text, 'format(parse)');
        return cp;
      });
      if (c.entries_utf8_in_order !== undefined) {
        const leaves = c.entries_utf8_in_order.map((e) => merkle.leafHash(utf8(e)));
        for (const cp of parsed) {
          same(
            toHex(cp.root),
            toHex(merkle.rootHash(leaves.slice(0, cp.size))),
            `root of size ${cp.size}`,
          );
        }
      }
      if (c.consistency_proof_5_to_8_hex !== undefined) {
        const [a, b] = parsed;
        if (a === undefined || b === undefined) throw new Error('two notes expected');
        merkle.verifyConsistency(
          a.size,
          b.size,
          c.consistency_proof_5_to_8_hex.map(fromHex),
          a.root,
          b.root,
        );
      }
    });
  }
  for (const c of doc.cosignatures) {
    const { vkey_0x04: vkey, signature_line: line, timestamp, signed_message: msg } = c;
    if (vkey === undefined || line === undefined || timestamp === undefined || msg === undefined)
      continue;
    if (c.expect !== 'valid') continue;
    check(`cosignature: ${c.id}`, () => {
      const w = cosignature.parseVerifierKey(vkey);
      same(fromUtf8(cosignature.message(c.checkpoint_text, timestamp)), msg, 'signed message');
      const text = `${c.checkpoint_text}\n${line.endsWith('\n') ? line : `${line}\n`}`;
      const sig = note.parse(text).signatures[0];
      if (sig === undefined) throw new Error('no signature line');
      same(cosignature.verify(c.checkpoint_text, sig, w), { timestamp }, 'verify');
      same(note.open(text, [w]).verified.length, 1, 'as a note verifier');
    });
  }
}

// ---- inline vectors: commitments and the epoch record ----------------------------------------

// Generated by katie (Bren2010/katie at 00da52541f6ae6a7f3905181e2ba9de8ec0d6cdc) for
// draft-ietf-keytrans-protocol-05 §11.6, as published in OR13/kt interop/vectors/commitment.json;
// the same values as directory/core/test/commitment.test.ts.
const COMMITMENTS = [
  [
    '',
    '000102030405060708090a0b0c0d0e0f',
    '',
    0,
    '1ca642a2380c1d7b8b9904be90f31b4f356390a133ae079d77a4b351bc20971e',
  ],
  [
    '616c696365406578616d706c652e636f6d',
    '101112131415161718191a1b1c1d1e1f',
    '6b65792d6d6174657269616c2d31',
    0,
    'd59be42d9c42be3f4f3c24870b2dcb1dafa6022f2ac64eee904e4e577257f125',
  ],
  [
    '616c696365406578616d706c652e636f6d',
    '101112131415161718191a1b1c1d1e1f',
    '6b65792d6d6174657269616c2d32',
    1,
    '480bd9422e842df3ca3ff274488f393d4105a89da508df92b5a665a8d618f878',
  ],
  [
    '626f62406578616d706c652e636f6d',
    '202122232425262728292a2b2c2d2e2f',
    '6b',
    4294967295,
    'be1782f33de56f269ee994fc11171f309ae1d934b93297c496458225a38cd7bd',
  ],
  [
    '61'.repeat(255),
    '303132333435363738393a3b3c3d3e3f',
    '76',
    7,
    'a48889712624b1746c18d783407878b1d8637b4803748b99c6d5e2ddd9c2cc55',
  ],
  [
    '6361726f6c',
    '404142434445464748494a4b4c4d4e4f',
    '000100ff',
    3,
    '69ff8afbb9edd644af83a239bdb71a98557ce4b8651fb764e638ddb415078d39',
  ],
] as const;

function runInline(): void {
  COMMITMENTS.forEach(([label, opening, value, version, want], i) => {
    check(`commitment: katie vector ${i + 1}`, () => {
      const args = [fromHex(opening), fromHex(label), version, fromHex(value)] as const;
      same(toHex(commitment.commit(...args)), want, 'commitment');
      commitment.verify(fromHex(want), ...args);
      const wrong = fromHex(opening);
      wrong[0] = (wrong[0] as number) ^ 1;
      throwsCode(() => {
        commitment.verify(fromHex(want), wrong, args[1], version, args[3]);
      }, 'ERR_COMMITMENT_INVALID');
    });
  });
  check('epoch record: encoding and inserts digest (computed independently)', () => {
    const record = {
      epoch: 7,
      timestampMs: 1_700_000_000_123,
      prefixRoot: Uint8Array.from({ length: 32 }, (_, i) => i),
      insertCount: 3,
      insertsDigest: new Uint8Array(32).fill(0xee),
    };
    const hex =
      '0100000000000000070000018bcfe5687b000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00000003' +
      'ee'.repeat(32);
    same(toHex(epoch.encodeEpochRecord(record)), hex, 'record');
    same(JSON.stringify(epoch.decodeEpochRecord(fromHex(hex))), JSON.stringify(record), 'decoded');
    const digest = epoch.insertsDigest([
      { label: fromHex('80' + '00'.repeat(31)), commitment: new Uint8Array(32).fill(1) },
      { label: fromHex('01' + '00'.repeat(31)), commitment: new Uint8Array(32).fill(2) },
      { label: new Uint8Array(32).fill(0x7f), commitment: new Uint8Array(32).fill(3) },
    ]);
    same(
      toHex(digest),
      '79358c2fe31821a358759faf467a629ad1f353ecc0191294a0f08f5c345d9a7f',
      'digest',
    );
  });
}

// ---- dispatch --------------------------------------------------------------------------------

const runners: Record<string, (doc: never) => void> = {
  'ecvrf-rfc9381.json': runEcvrf,
  'prefix-tree.json': runPrefixTree,
  'merkle-rfc6962.json': runMerkle,
  'merkle-probes.json': runMerkleProbes,
  'tlog-c2sp.json': runTlog,
};

for (const [file, doc] of Object.entries(vectorFiles)) {
  currentFile = file;
  const run = runners[file];
  if (run === undefined) {
    results.push({
      file,
      name: `${file}: no browser runner in test/browser/core-vectors.entry.ts`,
      ok: false,
    });
    continue;
  }
  try {
    run(doc as never);
  } catch (err) {
    results.push({ file, name: `${file}: runner crashed`, ok: false, detail: String(err) });
  }
}
currentFile = 'inline';
runInline();

(globalThis as { __keytrailCoreVectors?: unknown }).__keytrailCoreVectors = {
  files: Object.keys(vectorFiles),
  backend: getCryptoBackend().name,
  results,
};
