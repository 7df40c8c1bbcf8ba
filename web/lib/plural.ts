// Counts in words: "1 contact", "3 contacts", "1 change from HighLevel". Every count the panel shows
// goes through here, so no text falls back to "contact(s)".

/** `n` with the singular or plural noun (regular plural unless `many` is given), en-US digits. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** The verb agreeing with a count: `verb(1, 'changes', 'change')` → "changes". */
export function verb(n: number, singular: string, pluralForm: string): string {
  return n === 1 ? singular : pluralForm;
}
