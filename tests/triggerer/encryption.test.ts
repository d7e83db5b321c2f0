/**
 * Trigger kwargs at rest: sealed with AES-256-GCM when worker and triggerer share a key, so the
 * raw row never shows a secret, yet the task resumes normally; key rotation through the
 * KwargsCodec API; and a clear SecretKeyError for a key nobody configured.
 */
import { describe, expect, it } from 'vitest';
import { KwargsCodec, TaskState } from '../../core/index.ts';
import { SecretKeyError } from '../../core/triggers/secrets.ts';
import { counter, openGate, useDeferSuite } from './harness.ts';

const SECRET = 'super-secret-token-123';
const KEY_MESSAGE = /^trigger kwargs: sealed with key [0-9a-f]{8}, which is neither UPDRAFT_SECRET_KEY nor in UPDRAFT_SECRET_KEY_PREVIOUS; set the key it was written with \(every process must share one key\)$/;

describe('encrypted trigger kwargs', () => {
  const suite = useDeferSuite('defer-core');

  it('stores sealed kwargs that never show the secret, and the task still resumes with the event', async () => {
    const codec = new KwargsCodec('worker-and-triggerer-key');
    const stack = await suite.open({ worker: { codec }, triggerer: { codec } });
    const { runPk } = await stack.trigger('defer_secret');
    await stack.waitState(runPk, 'secret', TaskState.DEFERRED);
    await stack.wait(async () => counter('gate.secret.runs') === 1, 'the triggerer to run the trigger');

    const rows = await stack.triggerRows();
    expect(rows).toHaveLength(1);
    expect(rows[0].name).toBe('test.GateTrigger');
    expect(rows[0].kwargs.startsWith('enc:v1:')).toBe(true);
    expect(rows[0].kwargs).not.toContain(SECRET);
    expect(rows[0].kwargs).not.toContain('secret');
    expect(codec.open(rows[0].kwargs)).toEqual({ gate: 'secret', token: SECRET });
    // The raw dedup hash is an HMAC under the key, not a plain digest of the kwargs.
    expect(codec.hash('test.GateTrigger', { gate: 'secret', token: SECRET }))
      .not.toBe(new KwargsCodec(null).hash('test.GateTrigger', { gate: 'secret', token: SECRET }));

    openGate('secret');
    expect(await stack.finished(runPk)).toBe('success');
    // The triggerer decrypted the token: the event reports its length.
    expect(await stack.xcom(runPk, 'secret')).toEqual({ gate: 'secret', tokenChars: SECRET.length });
    expect(await stack.ti(runPk, 'secret')).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 1 });
  });

  it('fails the task clearly when the triggerer lacks the key the kwargs were sealed with', async () => {
    const stack = await suite.open({ worker: { codec: new KwargsCodec('old-key') }, triggerer: { codec: new KwargsCodec('other-key') } });
    const { runPk } = await stack.trigger('defer_secret');
    expect(await stack.finished(runPk)).toBe('failed');
    const ti = await stack.ti(runPk, 'secret');
    expect(ti).toMatchObject({ state: TaskState.FAILED, tryNumber: 1 });
    expect(ti.error).toMatch(/^TaskFailedNoRetry: SecretKeyError: trigger kwargs: sealed with key [0-9a-f]{8}, which is neither/);
    expect(ti.error).not.toContain(SECRET);
    expect(counter('gate.secret.runs')).toBe(0);
  });

  it('re-seals with a new key while the old one opens old rows, and rejects an unknown key', () => {
    const kwargs = { gate: 'g', token: SECRET };
    const oldCodec = new KwargsCodec('key-2024');
    const sealed = oldCodec.seal(kwargs);
    expect(sealed).toMatch(/^enc:v1:[0-9a-f]{8}:/);
    expect(sealed).not.toContain(SECRET);
    // Sealing is randomized (fresh IV), opening is exact.
    expect(oldCodec.seal(kwargs)).not.toBe(sealed);

    const rotated = new KwargsCodec('key-2025', ['key-2024']);
    expect(rotated.isCurrent(sealed)).toBe(false);
    expect(rotated.open(sealed)).toEqual(kwargs);
    const resealed = rotated.seal(rotated.open(sealed));
    expect(rotated.isCurrent(resealed)).toBe(true);
    expect(resealed.split(':')[2]).not.toBe(sealed.split(':')[2]);
    expect(new KwargsCodec('key-2025').open(resealed)).toEqual(kwargs);

    // Without the old key in the previous list, the old row cannot be opened.
    const newOnly = new KwargsCodec('key-2025');
    expect(() => newOnly.open(sealed)).toThrow(SecretKeyError);
    expect(() => newOnly.open(sealed)).toThrow(KEY_MESSAGE);
    expect(() => new KwargsCodec(null).open(sealed)).toThrow(KEY_MESSAGE);
    // Nor can a tampered row: GCM authenticates the ciphertext.
    const parts = sealed.split(':');
    const ct = Buffer.from(parts[5], 'base64');
    ct[0] ^= 1;
    expect(() => oldCodec.open([...parts.slice(0, 5), ct.toString('base64')].join(':'))).toThrow();

    expect(() => oldCodec.open('enc:v9:abcd:x:y:z')).toThrow(new SecretKeyError('trigger kwargs: unknown encryption format "v9"'));
    // Plain JSON rows (written before a key was set) still open.
    expect(rotated.open(new KwargsCodec(null).seal(kwargs))).toEqual(kwargs);
  });
});
