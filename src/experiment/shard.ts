/**
 * `--shard auto`: which slice of a grid a job-array task runs, read from the scheduler's variables,
 * so one script serves every task. Shards are numbered as in `--shard i/n` (1-based i), so a task's
 * slice can be rerun by hand with the same numbers.
 */
import { UserError } from '../errors';
import { parseShard } from './grid';

/** The variables `--shard auto` reads (docs/cluster/ uses them; test/cluster.test.ts checks both agree). */
export const SLURM_ARRAY_VARS = {
  id: 'SLURM_ARRAY_TASK_ID',
  min: 'SLURM_ARRAY_TASK_MIN',
  max: 'SLURM_ARRAY_TASK_MAX',
  count: 'SLURM_ARRAY_TASK_COUNT',
  step: 'SLURM_ARRAY_TASK_STEP',
} as const;
/** Set by Kubernetes in each pod of an Indexed Job (0-based); the job's size is not exposed to the pod. */
export const K8S_INDEX_VAR = 'JOB_COMPLETION_INDEX';
/** The shard count where the scheduler does not give one (Kubernetes): set it to the Job's `completions`. */
export const SHARD_COUNT_VAR = 'HEALING_SHARD_COUNT';

export interface Shard {
  /** 1-based, as in --shard i/n. */
  index: number;
  count: number;
  /** Where the numbers came from, for the log line (e.g. "SLURM_ARRAY_TASK_ID=5 - SLURM_ARRAY_TASK_MIN=4 of SLURM_ARRAY_TASK_COUNT=4"). */
  source: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function value(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function integer(env: Env, name: string, what: string): number {
  const text = value(env, name);
  if (text === undefined) throw new UserError(`--shard auto: ${name} is not set (${what})`);
  if (!/^\d+$/.test(text)) throw new UserError(`--shard auto: ${name}=${JSON.stringify(text)} is not a non-negative integer`);
  return Number(text);
}

function countFrom(text: string, name: string): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1) throw new UserError(`--shard auto: ${name} ${JSON.stringify(text)} is not a positive integer`);
  return Number(text);
}

/**
 * The shard `--shard TEXT` selects: `i/n`, or `auto` from Slurm (SLURM_ARRAY_TASK_ID - MIN of
 * COUNT: arrays need not start at 0) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX of
 * --shard-count or HEALING_SHARD_COUNT). Every inconsistency is an error naming the variable: a
 * guessed partition would silently run some specs twice and others never.
 */
export function resolveShard(text: string, options: { env: Env; shardCount?: string }): Shard {
  if (text.trim().toLowerCase() !== 'auto') {
    if (options.shardCount !== undefined) throw new UserError('--shard-count goes with --shard auto (--shard i/n gives its count itself)');
    const { index, count } = parseShard(text);
    return { index, count, source: `--shard ${text.trim()}` };
  }
  const { env, shardCount } = options;
  const slurm = value(env, SLURM_ARRAY_VARS.id) !== undefined;
  const k8s = value(env, K8S_INDEX_VAR) !== undefined;
  if (slurm && k8s) {
    throw new UserError(`--shard auto: both ${SLURM_ARRAY_VARS.id} and ${K8S_INDEX_VAR} are set, so which scheduler numbers this task is ambiguous; give --shard i/n`);
  }
  if (slurm) return slurmShard(env, shardCount);
  if (k8s) return kubernetesShard(env, shardCount);
  if (value(env, 'SLURM_JOB_ID') !== undefined) {
    throw new UserError(
      `--shard auto: this Slurm job is not a job array (${SLURM_ARRAY_VARS.id} is not set): submit it with sbatch --array=0-N (see docs/cluster/), or give --shard i/n`,
    );
  }
  throw new UserError(
    `--shard auto: neither ${SLURM_ARRAY_VARS.id} (a Slurm job array) nor ${K8S_INDEX_VAR} (a Kubernetes Indexed Job) is set; give --shard i/n outside a job array`,
  );
}

function slurmShard(env: Env, shardCount: string | undefined): Shard {
  const V = SLURM_ARRAY_VARS;
  const id = integer(env, V.id, 'the task ID');
  const step = value(env, V.step);
  if (step !== undefined && step !== '1') {
    throw new UserError(
      `--shard auto: ${V.step}=${step}: an array with a stride (e.g. --array=0-12:4) has task IDs that are not consecutive, ` +
        `so ${V.id} - ${V.min} does not number the shards 0..${V.count}-1; submit a consecutive range (--array=0-3, ` +
        'a "%" limit is fine), or give --shard i/n',
    );
  }
  const min = integer(env, V.min, `Slurm sets it in array tasks; without it ${V.id} cannot be turned into a shard number`);
  const count = integer(env, V.count, 'Slurm sets it in array tasks: the number of shards');
  if (count < 1) throw new UserError(`--shard auto: ${V.count}=${count}: expected at least 1`);
  const maxText = value(env, V.max);
  if (maxText !== undefined) {
    const max = integer(env, V.max, 'the last task ID');
    if (max - min + 1 !== count) {
      throw new UserError(
        `--shard auto: ${V.min}=${min}, ${V.max}=${max} but ${V.count}=${count}: the array's IDs are not one consecutive range ` +
          `(e.g. --array=1,3,7), so ${V.id} - ${V.min} does not number the shards; submit --array=${min}-${min + count - 1}, or give --shard i/n`,
      );
    }
  }
  if (id < min || id > min + count - 1) {
    throw new UserError(`--shard auto: ${V.id}=${id} is outside ${V.min}..${V.min}+${V.count}-1 (${min}..${min + count - 1})`);
  }
  if (shardCount !== undefined && countFrom(shardCount, '--shard-count') !== count) {
    throw new UserError(`--shard auto: --shard-count ${shardCount.trim()} disagrees with ${V.count}=${count} (leave --shard-count out under Slurm)`);
  }
  return { index: id - min + 1, count, source: `${V.id}=${id} - ${V.min}=${min} of ${V.count}=${count}` };
}

function kubernetesShard(env: Env, shardCount: string | undefined): Shard {
  const index = integer(env, K8S_INDEX_VAR, 'the pod index');
  const fromEnv = value(env, SHARD_COUNT_VAR);
  if (shardCount === undefined && fromEnv === undefined) {
    throw new UserError(
      `--shard auto: ${K8S_INDEX_VAR}=${index} but no shard count: Kubernetes does not tell a pod how many completions its Job has; ` +
        `set ${SHARD_COUNT_VAR} to the Job's completions (see docs/cluster/k8s-indexed-job.yaml) or pass --shard-count N`,
    );
  }
  const flag = shardCount === undefined ? undefined : countFrom(shardCount, '--shard-count');
  const variable = fromEnv === undefined ? undefined : countFrom(fromEnv, SHARD_COUNT_VAR);
  if (flag !== undefined && variable !== undefined && flag !== variable) {
    throw new UserError(`--shard auto: --shard-count ${flag} disagrees with ${SHARD_COUNT_VAR}=${variable}`);
  }
  const count = (flag ?? variable)!;
  const countSource = flag !== undefined ? `--shard-count ${flag}` : `${SHARD_COUNT_VAR}=${variable}`;
  if (index >= count) {
    throw new UserError(`--shard auto: ${K8S_INDEX_VAR}=${index} is outside 0..${count - 1} (${countSource}); is the count the Job's completions?`);
  }
  return { index: index + 1, count, source: `${K8S_INDEX_VAR}=${index} of ${countSource}` };
}

/**
 * The store a shard writes when --results is left at its default: `<name>.shard-<i>-of-<n>.jsonl`
 * beside it, so array tasks never append to one file (appends from several NFS clients can
 * interleave) and a finished array merges with `healing results --merge`.
 */
export function shardResultsFile(file: string, shard: Pick<Shard, 'index' | 'count'>): string {
  const suffix = `.shard-${shard.index}-of-${shard.count}`;
  return file.endsWith('.jsonl') ? `${file.slice(0, -'.jsonl'.length)}${suffix}.jsonl` : `${file}${suffix}`;
}
