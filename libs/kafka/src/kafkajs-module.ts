/**
 * Gives a kafkajs internal module other exports through Node's module cache. kafkajs modules
 * capture their dependencies when they load, so the replacement only takes if `capturedBy` (the
 * module that requires `module`) has not loaded yet. Answers whether the exports were replaced.
 * Used by the record decoder and CRC-32C patches (see their files for why each exists).
 */
export function replaceKafkajsModule(
  module: string,
  capturedBy: string,
  exports: unknown,
): boolean {
  const cache = require.cache;
  if (cache[capturedBy] !== undefined) return false;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loads it into the cache
  require(module);
  const entry = cache[module];
  if (entry === undefined) return false;
  entry.exports = exports;
  return true;
}
