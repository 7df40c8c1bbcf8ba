// Makes a file or folder read-only for this process, and back. Permission bits do not stop root, so
// as root it sets the immutable flag (chattr +i), which stops root too; `supported` says whether
// this machine can do either (not every file system takes the flag).
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = process.getuid?.() === 0;

/** Makes `path` read-only; returns what makes it writable again. */
function make(path: string): () => void {
  if (root) {
    execFileSync('chattr', ['+i', path], { stdio: 'ignore' });
    return () => execFileSync('chattr', ['-i', path], { stdio: 'ignore' });
  }
  const mode = statSync(path).mode & 0o777;
  chmodSync(path, mode & ~0o222);
  return () => chmodSync(path, mode);
}

function probe(): boolean {
  if (process.platform === 'win32') return false;
  const dir = mkdtempSync(join(tmpdir(), 'tandem-read-only-'));
  const file = join(dir, 'probe');
  writeFileSync(file, '');
  let undo: (() => void) | undefined;
  try {
    undo = make(file);
    accessSync(file, constants.W_OK);
    return false;
  } catch {
    return undo !== undefined;
  } finally {
    try {
      undo?.();
    } catch {
      // nothing to undo
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export const readOnlyFiles = { supported: probe(), make };
