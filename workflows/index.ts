export { migrateDatabase } from './migrate-database';
export { rehearseMigration } from './rehearse-migration';
export { migrateFleet } from './migrate-fleet';
