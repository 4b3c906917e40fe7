import { createDatabase } from '../../src/db/index.js';
import { summaryRows } from '../../src/exports/repository.js';
import { sql } from 'kysely';
const h = await createDatabase({ databaseUrl: process.env.DATABASE_URL, poolMax: 1 });
const q = summaryRows(h.db, { fund: process.argv[2] || null }).compile();
let text = q.sql; q.parameters.forEach((p, i) => { text = text.replace(new RegExp('\\$' + (i + 1) + '\\b'), `'${p}'`); });
await h.db.transaction().execute(async (trx) => {
  await sql`set local jit = off`.execute(trx);
  await sql`set local work_mem = '64MB'`.execute(trx);
  const r = await sql.raw(`explain (analyze, buffers) ${text}`).execute(trx);
  for (const row of r.rows as any[]) console.log(row['QUERY PLAN']);
});
await h.close();
