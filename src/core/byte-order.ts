/** A UTF-16 surrogate: only strings with one compare differently by code units and by UTF-8 bytes. */
const SURROGATE = /[\ud800-\udfff]/;

/**
 * `items` sorted by the UTF-8 bytes of `key` (the order of tar members and tree digests), with
 * each key computed once and encoded only when some key needs it.
 */
export function sortedByBytes<T>(items: Iterable<T>, key: (item: T) => string): T[] {
  const keyed = Array.from(items, (item) => ({ item, key: key(item) }));
  if (keyed.some((x) => SURROGATE.test(x.key))) {
    return keyed
      .map(({ item, key: k }) => ({ item, bytes: Buffer.from(k) }))
      .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
      .map((x) => x.item);
  }
  // Without surrogates, UTF-16 code-unit order is code-point order, which is UTF-8 byte order.
  return keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((x) => x.item);
}
