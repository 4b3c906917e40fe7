import { createDatabase } from '../../src/db/index.js';
import { summaryRows } from '../../src/exports/repository.js';
const h = await createDatabase({ databaseUrl: process.env.DATABASE_URL, poolMax: 1 });
const q = summaryRows(h.db, { fund: process.argv[2] || null }).compile();
let text = q.sql; q.parameters.forEach((p, i) => { text = text.replace(new RegExp('\\$' + (i + 1) + '\\b'), `'${p}'`); });
console.log(text + ';');
await h.close();
