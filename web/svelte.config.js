// Svelte compiler settings for the panel: runes everywhere (Svelte 5), no legacy component syntax.
export default {
  compilerOptions: { runes: true },
};
