export { migrateDatabase } from './migrate-database';
