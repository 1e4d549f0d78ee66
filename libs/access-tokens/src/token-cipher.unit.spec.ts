import { randomBytes } from 'node:crypto';
import { TokenCipher, TokenDecryptError } from './token-cipher';

const TOKEN = 'access-sandbox-00000000-0000-4000-8000-000000000001';

describe('TokenCipher', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const cipher = new TokenCipher(new Map([['k1', k1]]), 'k1');

  it('round-trips a token and never stores it in clear', () => {
    const sealed = cipher.seal('item-1', TOKEN);
    expect(sealed.keyId).toBe('k1');
    expect(sealed.ciphertext.toString('utf8')).not.toContain('access-sandbox');
    expect(cipher.open('item-1', sealed)).toBe(TOKEN);
  });

  it('uses a fresh IV each time', () => {
    expect(cipher.seal('item-1', TOKEN).iv.equals(cipher.seal('item-1', TOKEN).iv)).toBe(false);
  });

  it('refuses a ciphertext moved to another Item or tampered with', () => {
    const sealed = cipher.seal('item-1', TOKEN);
    expect(() => cipher.open('item-2', sealed)).toThrow(TokenDecryptError);
    const flipped = Buffer.from(sealed.ciphertext);
    // Flip the first byte's bits: setting it to a value could leave it unchanged.
    flipped[0] = flipped[0]! ^ 0xff;
    const tampered = { ...sealed, ciphertext: flipped };
    expect(() => cipher.open('item-1', tampered)).toThrow(/does not decrypt with key k1/);
  });

  it('refuses an auth tag shorter than 16 bytes, even one that is a prefix of the true tag', () => {
    const sealed = cipher.seal('item-1', TOKEN);
    for (const length of [4, 8, 12, 15]) {
      const short = { ...sealed, authTag: sealed.authTag.subarray(0, length) };
      expect(() => cipher.open('item-1', short)).toThrow(TokenDecryptError);
    }
    expect(cipher.open('item-1', sealed)).toBe(TOKEN);
  });

  it('decrypts with an older key after rotation and encrypts with the current one', () => {
    const old = cipher.seal('item-1', TOKEN);
    const rotated = new TokenCipher(
      new Map([
        ['k1', k1],
        ['k2', k2],
      ]),
      'k2',
    );
    expect(rotated.open('item-1', old)).toBe(TOKEN);
    expect(rotated.seal('item-1', TOKEN).keyId).toBe('k2');
    const withoutOld = new TokenCipher(new Map([['k2', k2]]), 'k2');
    expect(() => withoutOld.open('item-1', old)).toThrow(
      'no encryption key with id k1 is configured',
    );
  });

  it('rejects keys that are not 32 bytes', () => {
    expect(() => new TokenCipher(new Map([['short', randomBytes(16)]]), 'short')).toThrow(
      'must be 32 bytes',
    );
  });
});
