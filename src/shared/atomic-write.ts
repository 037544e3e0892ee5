/**
 * Atomic file replacement for the files the service edits in place (rules, instance
 * registry): readers see the old content or the new, never a mix, even after a crash.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file through a temp file in the same directory (same filesystem, so the rename
 * is atomic), fsync, then rename over the target. The temp file is removed on failure.
 * @param path - target file.
 * @param text - new content.
 * @param mode - permissions of the new file.
 */
export async function atomicWrite(path: string, text: string, mode = 0o640): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode);
  try {
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    // A failed write (disk full, bad input) or rename leaves no temp file behind.
    await rm(tmp, { force: true });
    throw err;
  }
}
