// Every store's migrations, registered by importing the store modules. A process that migrates (a node,
// the backup command) must know all of them: Kysely refuses a database holding a step it does not know.

import './auth-store.js';
import './gc-schema.js';
import './gc-store.js';
import './management-store.js';
import './metadata-schema.js';
import './session-store.js';
import './webhook-store.js';

export { migrate } from './migrations.js';
