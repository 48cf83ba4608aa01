import { createHash } from 'node:crypto';
import { ExperimentSpecSchema, type ExperimentSpecInput } from './spec';

/**
 * JSON with object keys sorted at every level and undefined members dropped, so two objects that
 * mean the same thing serialise to the same bytes whatever order their keys were written in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      if (member !== undefined) out[key] = sortKeys(member);
    }
    return out;
  }
  return value;
}

/**
 * The identity of an experiment in the result store: sha256 of the canonical JSON of the spec with
 * defaults applied (so leaving a default out or spelling it out hashes the same), first 16 hex chars
 * (64 bits: collisions are out of reach for any grid we will run).
 */
export function specHash(spec: ExperimentSpecInput): string {
  const full = ExperimentSpecSchema.parse(spec);
  return createHash('sha256').update(canonicalJson(full)).digest('hex').slice(0, 16);
}
