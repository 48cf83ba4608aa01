/**
 * Claims: how several `healing run` processes on one result store split the work instead of each
 * running everything. Before a run is dispatched, its process claims the run's identity hash by
 * creating `<results>.claims/<hash>` with O_EXCL (exactly one creator wins, on a local disk and on
 * NFS alike); the file holds who owns it (pid, hostname, start time, lease) and its mtime is the
 * owner's heartbeat, refreshed every `heartbeatMs` while the run is in flight. The claim is removed
 * once the run's row is appended or the run has failed for good.
 *
 * A claim whose owner is gone expires: on the owner's own host, at once when its pid no longer
 * exists; anywhere, when its heartbeat is older than the lease its owner promised (the lease is
 * written into the file, so a process with a shorter --claim-lease does not steal from a slower
 * heartbeat). Comparing mtimes across hosts assumes clocks agree to well within the lease.
 * Hostnames are taken to name pid namespaces: two containers sharing a hostname but not their pids
 * would see each other's live claims as dead (the store check before appending still keeps a row
 * from being stored twice).
 */
import { closeSync, mkdirSync, openSync, readdirSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { errorCode as code, ownerStaleness, OwnerSchema, pidAlive, ownerRecord, readOwnerFile as inspect, type FoundOwner, type Owner, type Staleness } from '../io/ownership';

/** Default lease: a run's owner may miss heartbeats (a stalled NFS, a suspended laptop) this long. */
export const DEFAULT_LEASE_MS = 5 * 60_000;
/** Heartbeats per lease: the owner refreshes ten times within it, so a few misses never expire it. */
const BEATS_PER_LEASE = 10;
/** Tokens of the claims every Claims of this process holds: a claim with our pid is ours only if listed here. */
const heldHere = new Set<string>();

export { pidAlive, type Staleness };
/** A claim's content: who owns the run (src/io/ownership.ts's owner record). */
export const ClaimSchema = OwnerSchema;
export type Claim = Owner;
export type FoundClaim = FoundOwner;
/** Whether a found claim's owner is gone (the rule lives in src/io/ownership.ts). */
export const claimStaleness = ownerStaleness;

/** The directory of claims beside a store. */
export function claimsDir(resultsFile: string): string {
  return `${resultsFile}.claims`;
}

function removeIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if (code(error) !== 'ENOENT') throw error;
  }
}

export type ClaimOutcome =
  | { ok: true; tookOver?: string }
  | { ok: false; holder: FoundClaim | undefined; reason: string };

export interface ClaimsOptions {
  leaseMs?: number;
  /** Default: a tenth of the lease. */
  heartbeatMs?: number;
  /** Told when a heartbeat finds a claim of ours gone or replaced (we stalled past the lease and it was taken over). */
  onLost?: (hash: string) => void;
}

/** The claims one process holds on one store, with the heartbeat that keeps them alive. */
export class Claims {
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  private readonly host = hostname();
  private readonly held = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly options: ClaimsOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    if (!(this.leaseMs > 0)) throw new Error(`claim lease must be positive, got ${this.leaseMs}`);
    this.heartbeatMs = options.heartbeatMs ?? this.leaseMs / BEATS_PER_LEASE;
  }

  holds(hash: string): boolean {
    return this.held.has(hash);
  }

  /** Who holds `hash` now and whether that claim is stale (for --dry-run and messages). */
  status(hash: string): { found: FoundClaim; staleness: Staleness } | undefined {
    const found = inspect(join(this.dir, hash));
    return found && { found, staleness: this.staleness(found) };
  }

  /**
   * Claims `hash` for this process: creates its claim, or takes over a stale one. Fails when another
   * live process holds it.
   */
  tryClaim(hash: string): ClaimOutcome {
    if (this.held.has(hash)) return { ok: true };
    const path = join(this.dir, hash);
    // A claim released between our create and our look is gone: try again, a few times at most.
    for (let attempt = 0; attempt < 3; attempt++) {
      const token = this.create(path);
      if (token) {
        this.hold(hash, token);
        return { ok: true };
      }
      const found = inspect(path);
      if (!found) continue;
      const staleness = this.staleness(found);
      if (!staleness.stale) return { ok: false, holder: found, reason: staleness.reason };
      const taken = this.takeOver(path, found);
      if (taken) {
        this.hold(hash, taken);
        return { ok: true, tookOver: staleness.reason };
      }
      return { ok: false, holder: found, reason: 'another process is taking over its stale claim' };
    }
    return { ok: false, holder: undefined, reason: 'claimed and released repeatedly by others' };
  }

  /** Gives up a claim of ours (after the row is appended, or the run failed for good). */
  release(hash: string): void {
    const token = this.held.get(hash);
    if (token === undefined) return;
    this.held.delete(hash);
    heldHere.delete(token);
    const path = join(this.dir, hash);
    // Only our own: after a takeover the file is someone else's.
    if (inspect(path)?.claim?.token === token) removeIfExists(path);
    if (this.held.size === 0) this.stopHeartbeat();
  }

  releaseAll(): void {
    for (const hash of [...this.held.keys()]) this.release(hash);
  }

  /**
   * Removes stale claims (and takeover locks) on runs already stored: left by a process killed
   * between appending a row and releasing its claim. Nobody would ever visit them again, since a
   * stored run is never claimed. Returns how many went.
   */
  sweep(stored: ReadonlySet<string>): number {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if (code(error) === 'ENOENT') return 0;
      throw error;
    }
    let removed = 0;
    for (const name of names) {
      if (!stored.has(name.replace(/\.takeover$/, ''))) continue;
      const path = join(this.dir, name);
      const found = inspect(path);
      if (found && this.staleness(found).stale) {
        removeIfExists(path);
        removed++;
      }
    }
    return removed;
  }

  private staleness(found: FoundClaim): Staleness {
    return claimStaleness(found, {
      host: this.host,
      now: Date.now(),
      leaseMs: this.leaseMs,
      alive: pidAlive,
      ownTokens: heldHere,
    });
  }

  /** O_EXCL create; the token of the new claim, or undefined when the file exists. */
  private create(path: string): string | undefined {
    mkdirSync(this.dir, { recursive: true });
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (error) {
      if (code(error) === 'EEXIST') return undefined;
      throw error;
    }
    const claim: Claim = ownerRecord(this.leaseMs);
    try {
      writeSync(fd, `${JSON.stringify(claim)}\n`);
    } finally {
      closeSync(fd);
    }
    return claim.token;
  }

  /**
   * Replaces a stale claim with ours. Takeovers of one hash go one at a time through
   * `<hash>.takeover` (itself an O_EXCL claim, which expires by the same rules should a process die
   * holding it), and the claim is removed only if it is still the stale one we judged: so two
   * processes finding the same dead claim do not both win, and a fresh claim made meanwhile is kept.
   */
  private takeOver(path: string, judged: FoundClaim): string | undefined {
    const mutex = `${path}.takeover`;
    let mine = this.create(mutex);
    if (!mine) {
      const other = inspect(mutex);
      if (other && !this.staleness(other).stale) return undefined;
      removeIfExists(mutex);
      mine = this.create(mutex);
      if (!mine) return undefined;
    }
    heldHere.add(mine);
    try {
      const now = inspect(path);
      if (now) {
        const same = now.claim?.token === judged.claim?.token && (judged.claim !== undefined || now.heartbeatMs === judged.heartbeatMs);
        if (!same || !this.staleness(now).stale) return undefined;
        removeIfExists(path);
      }
      return this.create(path);
    } finally {
      heldHere.delete(mine);
      if (inspect(mutex)?.claim?.token === mine) removeIfExists(mutex);
    }
  }

  private hold(hash: string, token: string): void {
    this.held.set(hash, token);
    heldHere.add(token);
    if (!this.timer) {
      this.timer = setInterval(() => this.beat(), this.heartbeatMs);
      // The heartbeat never keeps a finished process alive.
      this.timer.unref();
    }
  }

  private beat(): void {
    for (const [hash, token] of [...this.held]) {
      const path = join(this.dir, hash);
      try {
        if (inspect(path)?.claim?.token === token) {
          const now = new Date();
          utimesSync(path, now, now);
          continue;
        }
      } catch {
        // An unreadable claims directory for one beat is not a lost claim; the next beat tries again.
        continue;
      }
      this.held.delete(hash);
      heldHere.delete(token);
      this.options.onLost?.(hash);
    }
    if (this.held.size === 0) this.stopHeartbeat();
  }

  private stopHeartbeat(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
