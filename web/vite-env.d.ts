// Vite's client types for the panel (import.meta.glob, asset imports).
/// <reference types="vite/client" />
