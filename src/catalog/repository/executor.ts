import type { Transaction } from 'kysely';
import type { Database, Db } from '../../db/index.js';

/** The database or an open transaction: every repository function takes either. */
export type Executor = Db | Transaction<Database>;
