// Which entries of the recent changes to settings are the settings in force
// (web/lib/SettingsHistory.svelte): the newest change of each setting, when it still holds.
import { describe, expect, it } from 'vitest';
import type { SettingsChangeView } from '../../server/routes/panel-sync.ts';
import * as settingsHistory from '../../web/lib/SettingsHistory.svelte';

// The component's module script exports it; TypeScript alone sees a .svelte file as its component.
const { changesInForce } = settingsHistory as unknown as {
  changesInForce: (history: readonly SettingsChangeView[], settings: { creationDirection: string; updateDirection: string; paused: boolean }) => Set<number>;
};

let nextId = 100;
const change = (setting: string, oldValue: string | null, newValue: string): SettingsChangeView => ({
  id: nextId--,
  setting,
  oldValue,
  newValue,
  userId: 'u1',
  userName: 'Maya Chen',
  at: '2026-12-07T14:06:00.000Z',
});

describe('the settings in force among the recent changes', () => {
  it('marks the newest change of each setting, not the older ones nor only the newest entry', () => {
    const history = [
      change('creationDirection', 'inbound', 'bidirectional'),
      change('paused', 'false', 'true'),
      change('creationDirection', 'bidirectional', 'inbound'),
      change('updateDirection', 'inbound', 'bidirectional'),
      change('paused', 'true', 'false'),
    ];
    const marked = changesInForce(history, { creationDirection: 'bidirectional', updateDirection: 'bidirectional', paused: true });
    expect(history.filter((c) => marked.has(c.id)).map((c) => `${c.setting}=${c.newValue}`)).toEqual([
      'creationDirection=bidirectional',
      'paused=true',
      'updateDirection=bidirectional',
    ]);
  });

  it('marks none for a setting whose newest listed change no longer holds', () => {
    const history = [change('updateDirection', 'inbound', 'bidirectional')];
    expect(changesInForce(history, { creationDirection: 'bidirectional', updateDirection: 'inbound', paused: false }).size).toBe(0);
  });
});
