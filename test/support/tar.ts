import tar from 'tar-stream';

/** A tar entry for {@link makeTar}: tar-stream's header fields and an optional body. */
export type TarEntry = Partial<tar.Header> & { name: string; body?: string };

/** Builds a tar archive in memory, exactly as given (no sanitising: tests feed unsafe entries on purpose). */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const { body, ...header } of entries) {
    await new Promise<void>((resolve, reject) =>
      pack.entry(header as tar.Header, body ?? '', (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
