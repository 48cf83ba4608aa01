/**
 * Who owns a lock-like file, and whether that owner is gone: the one rule behind run claims
 * (src/experiment/claims.ts) and the dataset fetch lock (src/data/availability.ts). An owner record
 * names its pid, host, start time, a token and the lease it promises; the file's mtime is its
 * heartbeat. On the owner's own host a dead pid frees it at once; anywhere, a heartbeat older than
 * the owner's lease does.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';

export const OwnerSchema = z.looseObject({
  pid: z.number().int().positive(),
  host: z.string().min(1),
  startedAt: z.string(),
  /** Distinguishes this claim from a later one by the same pid (pid reuse, a takeover). */
  token: z.string().min(1),
  leaseMs: z.number().positive(),
});
export type Owner = z.infer<typeof OwnerSchema>;

/** An owner file as found: its parsed content (undefined while it is being written, or garbled) and heartbeat. */
export interface FoundOwner {
  claim: Owner | undefined;
  heartbeatMs: number;
}

export interface Staleness {
  stale: boolean;
  reason: string;
}

/**
 * Whether a found owner file's owner is gone. Pure (the clock, the host and the pid probe are passed in)
 * so each rule is testable without a second machine.
 */
export function ownerStaleness(
  found: FoundOwner,
  here: { host: string; now: number; leaseMs: number; alive: (pid: number) => boolean; ownTokens?: ReadonlySet<string> },
): Staleness {
  const { claim } = found;
  const age = here.now - found.heartbeatMs;
  const lease = claim?.leaseMs ?? here.leaseMs;
  if (claim && claim.host === here.host) {
    if (!here.alive(claim.pid)) return { stale: true, reason: `pid ${claim.pid} on ${claim.host} is not running` };
    // Our own pid but not a claim we hold: left by an earlier process that had the same pid.
    if (claim.pid === process.pid && here.ownTokens && !here.ownTokens.has(claim.token)) {
      return { stale: true, reason: `left by an earlier process with this pid (${claim.pid})` };
    }
  }
  if (age > lease) {
    const who = claim ? `pid ${claim.pid} on ${claim.host}` : 'an unreadable claim';
    return { stale: true, reason: `${who}: no heartbeat for ${Math.round(age / 1000)} s (lease ${Math.round(lease / 1000)} s)` };
  }
  return { stale: false, reason: claim ? `held by pid ${claim.pid} on ${claim.host} since ${claim.startedAt}` : 'being claimed' };
}

/** process.kill(pid, 0): ESRCH means no such process; EPERM means one exists that we may not signal. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** An owner file's content and mtime, or undefined when there is none. */
export function readOwnerFile(path: string): FoundOwner | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    const heartbeatMs = statSync(path).mtimeMs;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const parsed = OwnerSchema.safeParse(json);
    return { claim: parsed.success ? parsed.data : undefined, heartbeatMs };
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** A new owner record for this process, promising `leaseMs`. */
export function ownerRecord(leaseMs: number): Owner {
  return { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), token: randomUUID(), leaseMs };
}
