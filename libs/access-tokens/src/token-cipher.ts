import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  randomBytes,
  type KeyObject,
} from 'node:crypto';

/** An access token as stored: AES-256-GCM ciphertext with its key id, IV and tag. */
export interface SealedToken {
  readonly keyId: string;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly authTag: Buffer;
}

export class TokenDecryptError extends Error {}

/**
 * GCM's full tag. Decryption is told this length: otherwise node:crypto accepts any tag from 4
 * bytes up, and a tag cut short (by a bug, or by someone who can write the table) is checked only
 * as far as it goes.
 */
const AUTH_TAG_BYTES = 16;

/**
 * Encrypts access tokens with AES-256-GCM (node:crypto): a fresh 96-bit IV per token and the
 * item_id as associated data, so a ciphertext copied onto another Item fails to decrypt. New
 * tokens use the current key; any configured key decrypts, which is what rotation needs.
 */
export class TokenCipher {
  /** The keys as KeyObjects, made once: from raw bytes node:crypto would make one per call. */
  private readonly keys: ReadonlyMap<string, KeyObject>;

  constructor(
    keys: ReadonlyMap<string, Buffer>,
    readonly currentKeyId: string,
  ) {
    if (!keys.has(currentKeyId)) throw new Error(`no encryption key with id ${currentKeyId}`);
    for (const [id, key] of keys) {
      if (key.length !== 32) throw new Error(`encryption key ${id} must be 32 bytes`);
    }
    this.keys = new Map([...keys].map(([id, key]) => [id, createSecretKey(key)]));
  }

  seal(itemId: string, token: string): SealedToken {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, iv, {
      authTagLength: AUTH_TAG_BYTES,
    });
    cipher.setAAD(Buffer.from(itemId, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
    return { keyId: this.currentKeyId, iv, ciphertext, authTag: cipher.getAuthTag() };
  }

  open(itemId: string, sealed: SealedToken): string {
    const key = this.keys.get(sealed.keyId);
    if (!key)
      throw new TokenDecryptError(`no encryption key with id ${sealed.keyId} is configured`);
    if (sealed.authTag.length !== AUTH_TAG_BYTES) {
      throw new TokenDecryptError(
        `the stored token of item ${itemId} has a ${sealed.authTag.length}-byte auth tag, not ${AUTH_TAG_BYTES}: it was cut short or written by something else`,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv, {
        authTagLength: AUTH_TAG_BYTES,
      });
      decipher.setAAD(Buffer.from(itemId, 'utf8'));
      decipher.setAuthTag(sealed.authTag);
      return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
    } catch {
      // Never echo the ciphertext or the key; say which Item and key failed.
      throw new TokenDecryptError(
        `the stored token of item ${itemId} does not decrypt with key ${sealed.keyId}`,
      );
    }
  }
}
