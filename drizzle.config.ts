// drizzle-kit settings: `npm run db:generate -- --name <change>` writes a migration from db/schema.ts.
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './db/schema.ts',
  out: './db/migrations',
});
