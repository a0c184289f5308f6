// Worker threads do not inherit the main thread's TypeScript loader: register it, then run the applier.
import { register } from 'tsx/esm/api';

register();
await import('./journal-applier.ts');
