export { migrateDatabase } from './migrate-database';
export { rehearseMigration } from './rehearse-migration';
