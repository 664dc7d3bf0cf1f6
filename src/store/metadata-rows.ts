import type { MetadataTables } from './sql/metadata-schema.js';
import type { RegistryRecord, UploadSession } from './types.js';

/**
 * Rows of the metadata tables as records, shared by the SQLite and the PostgreSQL store: both keep the
 * same columns and encodings (times as epoch milliseconds, properties as JSON text).
 */
export function registryFromRow(row: MetadataTables['registries']): RegistryRecord {
  return {
    name: row.name,
    createdAt: new Date(row.created_at),
    properties: JSON.parse(row.properties) as Record<string, unknown>,
    version: row.version,
  };
}

/** An `uploads` row as an upload session. */
export function uploadFromRow(row: MetadataTables['uploads']): UploadSession {
  return {
    registry: row.registry,
    id: row.id,
    repository: row.repository,
    offset: row.offset,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    ...(row.committing ? { committing: row.committing } : {}),
  };
}
