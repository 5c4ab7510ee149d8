import { describe, expect, it } from 'vitest';
import { decodePathStat, demuxDockerStream } from './container-archive.js';

describe('decodePathStat', () => {
  const header = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64');
  it('decodes the Go file modes the engine sends (values observed from Docker 20.10)', () => {
    expect(decodePathStat(header({ name: 'x', size: 4096, mode: 2147484141, linkTarget: '' }))).toEqual({
      name: 'x',
      size: 4096,
      type: 'directory',
      mode: 0o755,
      linkTarget: '',
    });
    expect(decodePathStat(header({ name: 'l', size: 1, mode: 134218239, linkTarget: '/x/f' }))).toMatchObject(
      {
        type: 'symlink',
        mode: 0o777,
        linkTarget: '/x/f',
      },
    );
    expect(decodePathStat(header({ name: 'f', size: 3, mode: 0o644 }))).toMatchObject({
      type: 'file',
      mode: 0o644,
    });
    // setuid (Go bit 23) maps to 04000.
    expect(decodePathStat(header({ name: 's', size: 3, mode: 2 ** 23 + 0o755 })).mode).toBe(0o4755);
    // A named pipe (Go bit 25) is neither file nor directory.
    expect(decodePathStat(header({ name: 'p', size: 0, mode: 2 ** 25 + 0o644 })).type).toBe('other');
  });
});

describe('demuxDockerStream', () => {
  const frame = (kind: number, s: string) => {
    const body = Buffer.from(s);
    const h = Buffer.alloc(8);
    h[0] = kind;
    h.writeUInt32BE(body.length, 4);
    return Buffer.concat([h, body]);
  };
  it('splits the multiplexed stream and keeps the interleaving in `all`', () => {
    expect(
      demuxDockerStream(Buffer.concat([frame(1, 'out1\n'), frame(2, 'err\n'), frame(1, 'out2\n')])),
    ).toEqual({
      stdout: 'out1\nout2\n',
      stderr: 'err\n',
      all: 'out1\nerr\nout2\n',
    });
  });
  it('returns a TTY (raw) stream as it is', () => {
    expect(demuxDockerStream(Buffer.from('plain text\n'))).toEqual({
      stdout: 'plain text\n',
      stderr: '',
      all: 'plain text\n',
    });
  });
});
