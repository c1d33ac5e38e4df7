/**
 * The virtual module that `core-vectors.test.ts` injects into the browser bundle: every JSON
 * file of `directory/core/test/vectors/`, keyed by file name.
 * @module
 */
declare module 'keytrail:core-vectors' {
  const files: Readonly<Record<string, unknown>>;
  export default files;
}
