// Tandem's database files hold sealed tokens, API key hashes and people's contacts: whoever else
// can log in to the machine must not read them, even in a folder Tandem did not create (QA).
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { databaseFiles, migrate, openDatabase } from '../../db/client.ts';
import { openStagedInbox } from '../../db/staged-inbox.ts';
import { Emulator } from '../../emulator/emulator.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-db-files-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const modeOf = (path: string) => statSync(path).mode & 0o777;

it('creates the database and its -wal and -shm files readable by their owner alone', () => {
  // A folder the operator made, open to everyone to list: its files must not be.
  const folder = join(dir, 'shared');
  mkdirSync(folder, { mode: 0o755 });
  chmodSync(folder, 0o755);
  const path = join(folder, 'tandem.db');
  const database = openDatabase(path);
  try {
    migrate(database);
    // All three exist while the connection is open (WAL mode).
    expect(databaseFiles(path).map(modeOf)).toEqual([0o600, 0o600, 0o600]);
  } finally {
    database.close();
  }
});

it('leaves the mode of an existing database file as its operator set it', () => {
  const path = join(dir, 'tandem.db');
  writeFileSync(path, '');
  chmodSync(path, 0o640);
  const database = openDatabase(path);
  try {
    migrate(database);
    expect(modeOf(path)).toBe(0o640);
  } finally {
    database.close();
  }
});

it('creates the staged inbox, with its -wal and -shm, readable by its owner alone: it holds webhook bodies', () => {
  const folder = join(dir, 'shared');
  mkdirSync(folder, { mode: 0o755 });
  const path = join(folder, 'tandem.inbox.db');
  const inbox = openStagedInbox(path);
  try {
    expect(databaseFiles(path).map(modeOf)).toEqual([0o600, 0o600, 0o600]);
  } finally {
    inbox.close();
  }
});

it('saves the sandbox emulator’s world (its secrets and tokens) readable by its owner alone', () => {
  const path = join(dir, 'emulator.json');
  const emu = new Emulator({ persistPath: path });
  try {
    emu.save();
    expect(modeOf(path)).toBe(0o600);
  } finally {
    emu.close();
  }
});
