import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';

const PREFIX = 'enc:v1:';
const KEY_BYTES = 32;

/**
 * Encrypts secrets that must be shown again later (the admin user's passwords, signing keys) with
 * AES-256-GCM under a key kept in a file of its own (mode 0600), so the database alone never holds
 * them in the clear. Every node of a deployment shares the key file.
 */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /**
   * Opens the key file, creating it (0600, 256 random bits) when it does not exist. The new key is
   * written to a file of its own and then linked into place, so nodes sharing the file that start at
   * the same moment never read it half-written: exactly one link wins and every node reads that key.
   */
  static open(path: string): SecretBox {
    // An existing key (possibly on a read-only mount every node shares) is only read.
    if (!existsSync(path)) SecretBox.create(path);
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (key.length !== KEY_BYTES) throw new Error(`key file ${path} does not hold a 256-bit key`);
    try {
      chmodSync(path, 0o600);
    } catch {
      // Not ours to change (a read-only mount): its mode is the operator's.
    }
    return new SecretBox(key);
  }

  private static create(path: string): void {
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fd = openSync(temporary, 'wx', 0o600);
    try {
      writeSync(fd, randomBytes(KEY_BYTES).toString('base64') + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      unlinkSync(temporary);
    }
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
