import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, openSync, readFileSync, writeSync } from 'node:fs';

const PREFIX = 'enc:v1:';
const KEY_BYTES = 32;

/**
 * Encrypts secrets that must be shown again later (the admin user's passwords, signing keys) with
 * AES-256-GCM under a key kept in a file of its own (mode 0600), so the database alone never holds
 * them in the clear. Every node of a deployment shares the key file.
 */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** Opens the key file, creating it (0600, 256 random bits) when it does not exist. */
  static open(path: string): SecretBox {
    let key: Buffer;
    try {
      const fd = openSync(path, 'wx', 0o600);
      key = randomBytes(KEY_BYTES);
      try {
        writeSync(fd, key.toString('base64') + '\n');
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
      if (key.length !== KEY_BYTES) throw new Error(`key file ${path} does not hold a 256-bit key`);
    }
    chmodSync(path, 0o600);
    return new SecretBox(key);
  }

  /** A box with a given key (tests). */
  static withKey(key: Buffer): SecretBox {
    return new SecretBox(key);
  }

  /** `enc:v1:<iv>.<tag>.<ciphertext>`, base64url parts. */
  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${PREFIX}${iv.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}.${data.toString('base64url')}`;
  }

  /** Decrypts a sealed value; throws when it was altered or sealed under another key. */
  open(sealed: string): string {
    if (!SecretBox.isSealed(sealed)) throw new Error('value is not sealed');
    const [iv, tag, data] = sealed.slice(PREFIX.length).split('.');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv ?? '', 'base64url'));
    decipher.setAuthTag(Buffer.from(tag ?? '', 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data ?? '', 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }

  /** Whether a stored value is sealed (older records kept admin passwords in the clear). */
  static isSealed(value: string): boolean {
    return value.startsWith(PREFIX);
  }
}
