/** Structured logs for the worker and CLI. Never pass connection URLs here: describeUrl() them first. */
import pino from 'pino';

export const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: undefined });
