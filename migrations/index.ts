import { ConsumerCheckpoints1764000000000 } from './1764000000000-consumer-checkpoints';

/** Every migration, oldest first. TypeORM runs those not yet recorded in `migrations`. */
export const MIGRATIONS = [ConsumerCheckpoints1764000000000];
