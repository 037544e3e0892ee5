/**
 * File-backed rules store. The rules in use live in one YAML file (config/anonymization.yaml);
 * every accepted version is kept, content-addressed, in a versions directory
 * (data/rules-versions/ by default: `<sha256>.yaml` plus an append-only `index.jsonl` of
 * version, author, time and size; the directory carries its own `.gitignore`).
 *
 * A new text is validated by the rules engine first; only a valid one is written, by
 * write-to-temp + rename in the same directory, so a reader (or a crash) sees the old file
 * or the new one, never half of either. Replacements run one at a time.
 *
 * With `watchIntervalMs`, the store also notices the file changed on disk (a hand edit, or
 * another process of a scaled-out deployment saving through its API) and, when the new
 * text is valid, switches to it; an invalid text on disk is reported and ignored, so the
 * last valid rules stay in use.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import { atomicWrite } from '../../shared/atomic-write.ts';
import type { Anonymizer } from '../types.ts';
import {
  API_ERR_RULES_INVALID,
  API_ERR_RULES_NOT_PROPOSED,
  API_ERR_RULES_SELF_APPROVAL,
  API_ERR_RULES_STORE_IO,
  API_ERR_RULES_VERSION_CONFLICT,
  API_ERR_RULES_VERSION_NOT_FOUND,
  AppError,
} from '../../shared/errors/index.ts';
import { refusalItems } from './problems.ts';
import { ApprovalMode, VersionStatus } from './types.ts';
import type {
  PreviewResult,
  RulesCheck,
  RulesEngine,
  RulesListener,
  RulesSnapshot,
  RulesStore,
  RulesVersionInfo,
} from './types.ts';

/** Instance id used for previews: pseudonyms it yields never collide with a real instance's. */
export const PREVIEW_INSTANCE_ID = 'preview';

/** Author recorded for a version found on disk rather than saved through the API. */
export const FILESYSTEM_AUTHOR = 'filesystem';

/** Options of the file rules store. */
export interface FileRulesStoreOptions<R> {
  /** The rules file in use (e.g. config/anonymization.yaml). */
  readonly file: string;
  /** Where accepted versions are kept (e.g. data/rules-versions). */
  readonly versionsDir: string;
  readonly engine: RulesEngine<R>;
  /** Poll the file for outside changes every this many ms; 0 = never. @defaultValue 0 */
  readonly watchIntervalMs?: number;
  /**
   * Record versions found on disk in the history (the API role does; pure workers only read).
   * @defaultValue true
   */
  readonly recordExternalChanges?: boolean;
  /**
   * One-step: a valid save is in use at once. Two-step (four-eyes): a save is proposed, and the
   * file changes when a second compliance user approves it.
   * @defaultValue one-step
   */
  readonly approval?: ApprovalMode;
  /** Told about an invalid file found on disk or a failing listener. */
  readonly onError?: (err: unknown) => void;
  readonly now?: () => Date;
}

const INDEX = 'index.jsonl';
const VERSION_ID = /^[0-9a-f]{64}$/;

/**
 * SHA-256 (hex) of a rules text: its version id.
 * @param text - the rules file text.
 * @returns 64 hex digits.
 */
export function rulesVersionOf(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Opens the store: reads and validates the rules file (an invalid file fails the boot with
 * the engine's error), prepares the versions directory and records the file's version if
 * the history does not end with it.
 * @param opts - file locations, engine and watching.
 * @returns the store.
 */
export async function createFileRulesStore<R>(opts: FileRulesStoreOptions<R>): Promise<RulesStore<R>> {
  const store = new FileRulesStore(opts);
  await store.open();
  return store;
}

class FileRulesStore<R> implements RulesStore<R> {
  readonly #opts: FileRulesStoreOptions<R>;
  readonly #listeners = new Set<RulesListener<R>>();
  #snapshot: RulesSnapshot<R> | undefined;
  #preview: PreviewEngine | undefined;
  #coverage: { version: string; report: unknown } | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #lastStat = '';
  #lastBadVersion = '';

  constructor(opts: FileRulesStoreOptions<R>) {
    this.#opts = opts;
  }

  async open(): Promise<void> {
    const text = await this.#io('read', this.#opts.file, () => readFile(this.#opts.file, 'utf8'));
    const rules = this.#opts.engine.load(text, this.#opts.file);
    await this.#io('prepare', this.#opts.versionsDir, () => this.#prepareDir());
    const version = rulesVersionOf(text);
    // The newest version that was in use (proposals and rejections never were).
    const latest = (await this.history()).find((v) => v.status === VersionStatus.approved);
    const info =
      latest?.version === version
        ? { ...latest, rulesVersion: this.#opts.engine.versionOf(rules) }
        : await this.#record(text, rules, FILESYSTEM_AUTHOR);
    this.#snapshot = Object.freeze({ ...info, text, rules });
    this.#lastStat = await this.#statKey();
    const every = this.#opts.watchIntervalMs ?? 0;
    if (every > 0) {
      this.#timer = setInterval(() => void this.#serial(() => this.#poll()), every);
      this.#timer.unref();
    }
  }

  get approval(): ApprovalMode {
    return this.#opts.approval ?? ApprovalMode.oneStep;
  }

  current(): RulesSnapshot<R> {
    if (!this.#snapshot) {
      throw new Error('rules store used before open()');
    }
    return this.#snapshot;
  }

  async history(): Promise<readonly RulesVersionInfo[]> {
    const path = join(this.#opts.versionsDir, INDEX);
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        return '';
      }
      throw API_ERR_RULES_STORE_IO.createWith({ location: path }, ['read', INDEX], { cause: err });
    });
    return foldIndex(text.split('\n')).reverse();
  }

  async versionText(version: string): Promise<string | undefined> {
    if (!VERSION_ID.test(version)) {
      return undefined;
    }
    return readFile(join(this.#opts.versionsDir, `${version}.yaml`), 'utf8').catch(() => undefined);
  }

  check(text: string): RulesCheck {
    try {
      const rules = this.#load(text, 'draft');
      return { ok: true, version: rulesVersionOf(text), rulesVersion: this.#opts.engine.versionOf(rules) };
    } catch (err) {
      if (err instanceof AppError) {
        return { ok: false, error: err };
      }
      throw err;
    }
  }

  replace(text: string, meta: { author: string; ifMatch?: string }): Promise<RulesVersionInfo & { changed: boolean }> {
    return this.#serial(async () => {
      const before = this.current();
      if (meta.ifMatch !== undefined && meta.ifMatch !== before.version) {
        throw API_ERR_RULES_VERSION_CONFLICT.create(before.version);
      }
      const rules = this.#load(text, basename(this.#opts.file));
      if (rulesVersionOf(text) === before.version) {
        return { ...stripSnapshot(before), changed: false };
      }
      await this.#saveVersion(text);
      if (this.approval === ApprovalMode.twoStep) {
        const proposed = await this.#appendIndex(text, rules, meta.author, VersionStatus.proposed);
        return { ...proposed, changed: true };
      }
      await this.#io('write', this.#opts.file, () => atomicWrite(this.#opts.file, text, 0o644));
      const info = await this.#appendIndex(text, rules, meta.author);
      this.#lastStat = await this.#statKey();
      this.#switchTo(Object.freeze({ ...info, text, rules }));
      return { ...info, changed: true };
    });
  }

  approve(version: string, by: string): Promise<RulesVersionInfo> {
    return this.#serial(async () => {
      const entry = await this.#proposed(version);
      if (entry.author === by) {
        throw API_ERR_RULES_SELF_APPROVAL.create(version.slice(0, 12));
      }
      const text = await this.versionText(version);
      if (text === undefined) {
        throw API_ERR_RULES_VERSION_NOT_FOUND.create(version.slice(0, 12));
      }
      const rules = this.#load(text, basename(this.#opts.file));
      await this.#io('write', this.#opts.file, () => atomicWrite(this.#opts.file, text, 0o644));
      const at = this.#now();
      await this.#appendEvent({ event: 'approve', version, by, at });
      this.#lastStat = await this.#statKey();
      const info: RulesVersionInfo = {
        ...stripSnapshot(entry),
        rulesVersion: this.#opts.engine.versionOf(rules),
        status: VersionStatus.approved,
        approvedBy: by,
        approvedAt: at,
      };
      this.#switchTo(Object.freeze({ ...info, text, rules }));
      return info;
    });
  }

  reject(version: string, by: string): Promise<RulesVersionInfo> {
    return this.#serial(async () => {
      const entry = await this.#proposed(version);
      const at = this.#now();
      await this.#appendEvent({ event: 'reject', version, by, at });
      return { ...stripSnapshot(entry), status: VersionStatus.rejected, rejectedBy: by, rejectedAt: at };
    });
  }

  /** The newest proposal of a version, or the coded reason it cannot be decided. */
  async #proposed(version: string): Promise<RulesVersionInfo> {
    const entry = (await this.history()).find((v) => v.version === version);
    if (entry === undefined) {
      throw API_ERR_RULES_VERSION_NOT_FOUND.create(version.slice(0, 12));
    }
    if (entry.status !== VersionStatus.proposed) {
      throw API_ERR_RULES_NOT_PROPOSED.create(version.slice(0, 12), entry.status ?? VersionStatus.approved);
    }
    return entry;
  }

  async #appendEvent(event: IndexEvent): Promise<void> {
    const path = join(this.#opts.versionsDir, INDEX);
    await this.#io('append', path, () => appendFile(path, `${JSON.stringify(event)}\n`, 'utf8'));
  }

  preview(resources: readonly Resource[], draft?: string): PreviewResult {
    const anonymizer = draft === undefined ? this.#currentPreviewAnonymizer() : this.#draftAnonymizer(draft);
    const { outcomes, report } = anonymizer.anonymizer.deidentify(resources, { instanceId: PREVIEW_INSTANCE_ID });
    return { rulesVersion: anonymizer.rulesVersion, outcomes, report };
  }

  coverage(): unknown {
    const snap = this.current();
    if (this.#coverage?.version !== snap.version) {
      this.#coverage = { version: snap.version, report: this.#opts.engine.coverage(snap.rules) };
    }
    return this.#coverage.report;
  }

  onRulesChanged(listener: RulesListener<R>): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  close(): void {
    if (this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Loads with the engine; a refusal becomes API_ERR_RULES_INVALID carrying every problem. */
  #load(text: string, source: string): R {
    try {
      return this.#opts.engine.load(text, source);
    } catch (err) {
      if (err instanceof AppError) {
        const list = refusalItems(err);
        throw API_ERR_RULES_INVALID.createWith({ location: source, items: list, engineCode: err.code }, [list.length], {
          cause: err,
        });
      }
      throw err;
    }
  }

  #currentPreviewAnonymizer(): PreviewEngine {
    const snap = this.current();
    if (this.#preview?.version !== snap.version) {
      this.#preview = {
        version: snap.version,
        rulesVersion: snap.rulesVersion,
        anonymizer: this.#opts.engine.previewAnonymizer(snap.rules),
      };
    }
    return this.#preview;
  }

  #draftAnonymizer(draft: string): PreviewEngine {
    const rules = this.#load(draft, 'draft');
    return {
      version: rulesVersionOf(draft),
      rulesVersion: this.#opts.engine.versionOf(rules),
      anonymizer: this.#opts.engine.previewAnonymizer(rules),
    };
  }

  #switchTo(snapshot: RulesSnapshot<R>): void {
    this.#snapshot = snapshot;
    for (const listener of this.#listeners) {
      try {
        listener(snapshot);
      } catch (err) {
        this.#opts.onError?.(err);
      }
    }
  }

  /** One poll of the file: switch to a valid new text, report an invalid one once. */
  async #poll(): Promise<void> {
    const key = await this.#statKey();
    if (key === this.#lastStat) {
      return;
    }
    this.#lastStat = key;
    const text = await readFile(this.#opts.file, 'utf8').catch(() => undefined);
    const version = text === undefined ? '' : rulesVersionOf(text);
    if (text === undefined || version === this.current().version || version === this.#lastBadVersion) {
      return;
    }
    try {
      const rules = this.#load(text, this.#opts.file);
      const info =
        this.#opts.recordExternalChanges === false
          ? this.#info(text, rules, FILESYSTEM_AUTHOR)
          : await this.#record(text, rules, FILESYSTEM_AUTHOR);
      this.#switchTo(Object.freeze({ ...info, text, rules }));
    } catch (err) {
      this.#lastBadVersion = version;
      this.#opts.onError?.(err);
    }
  }

  async #statKey(): Promise<string> {
    const s = await stat(this.#opts.file).catch(() => undefined);
    return s ? `${s.mtimeMs}:${s.size}:${s.ino}` : 'missing';
  }

  async #record(text: string, rules: R, author: string): Promise<RulesVersionInfo> {
    await this.#saveVersion(text);
    return this.#appendIndex(text, rules, author);
  }

  #info(text: string, rules: R, author: string): RulesVersionInfo {
    return {
      version: rulesVersionOf(text),
      rulesVersion: this.#opts.engine.versionOf(rules),
      author,
      at: this.#now(),
      bytes: Buffer.byteLength(text),
    };
  }

  async #saveVersion(text: string): Promise<void> {
    const path = join(this.#opts.versionsDir, `${rulesVersionOf(text)}.yaml`);
    await this.#io('write', path, () => atomicWrite(path, text, 0o644));
  }

  async #appendIndex(
    text: string,
    rules: R,
    author: string,
    status: VersionStatus = VersionStatus.approved,
  ): Promise<RulesVersionInfo> {
    const info = { ...this.#info(text, rules, author), status };
    const path = join(this.#opts.versionsDir, INDEX);
    await this.#io('append', path, () => appendFile(path, `${JSON.stringify(info)}\n`, 'utf8'));
    return info;
  }

  async #prepareDir(): Promise<void> {
    await mkdir(this.#opts.versionsDir, { recursive: true });
    // Versions are runtime data, never committed.
    await writeFile(join(this.#opts.versionsDir, '.gitignore'), '*\n', { flag: 'wx' }).catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') {
          throw err;
        }
      },
    );
  }

  #now(): string {
    return (this.#opts.now?.() ?? new Date()).toISOString();
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #io<T>(what: string, path: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw API_ERR_RULES_STORE_IO.createWith({ location: path }, [what, path], { cause: err });
    }
  }
}

function stripSnapshot(s: RulesVersionInfo): RulesVersionInfo {
  const { version, rulesVersion, author, at, bytes, status, approvedBy, approvedAt, rejectedBy, rejectedAt } = s;
  return Object.fromEntries(
    Object.entries({
      version,
      rulesVersion,
      author,
      at,
      bytes,
      status,
      approvedBy,
      approvedAt,
      rejectedBy,
      rejectedAt,
    }).filter(([, v]) => v !== undefined),
  ) as unknown as RulesVersionInfo;
}

/** A decision on a proposed version, appended to the index (the index is never rewritten). */
interface IndexEvent {
  readonly event: 'approve' | 'reject';
  readonly version: string;
  readonly by: string;
  readonly at: string;
}

/**
 * The index lines folded into versions, oldest first: version lines in order, each decision
 * applied to the newest proposal of its version. Lines from before four-eyes carry no status:
 * they were in use, so `approved`.
 */
function foldIndex(lines: readonly string[]): RulesVersionInfo[] {
  const out: RulesVersionInfo[] = [];
  for (const line of lines) {
    const event = parseEventLine(line);
    if (event !== undefined) {
      const i = out.findLastIndex((v) => v.version === event.version && v.status === VersionStatus.proposed);
      if (i >= 0) {
        out[i] =
          event.event === 'approve'
            ? { ...out[i]!, status: VersionStatus.approved, approvedBy: event.by, approvedAt: event.at }
            : { ...out[i]!, status: VersionStatus.rejected, rejectedBy: event.by, rejectedAt: event.at };
      }
      continue;
    }
    const v = parseIndexLine(line);
    if (v !== undefined) {
      out.push(v);
    }
  }
  return out;
}

function parseEventLine(line: string): IndexEvent | undefined {
  if (!line.startsWith('{"event"')) {
    return undefined;
  }
  try {
    const e = JSON.parse(line) as Partial<IndexEvent>;
    return (e.event === 'approve' || e.event === 'reject') &&
      typeof e.version === 'string' &&
      typeof e.by === 'string' &&
      typeof e.at === 'string'
      ? (e as IndexEvent)
      : undefined;
  } catch {
    return undefined; // a torn last line
  }
}

/** An anonymizer for previews, with the versions of the rules it was built from. */
interface PreviewEngine {
  readonly version: string;
  readonly rulesVersion: string;
  readonly anonymizer: Anonymizer;
}

function parseIndexLine(line: string): RulesVersionInfo | undefined {
  if (line.trim() === '') {
    return undefined;
  }
  try {
    const v = JSON.parse(line) as Partial<RulesVersionInfo>;
    if (typeof v.version === 'string' && typeof v.author === 'string' && typeof v.at === 'string') {
      return {
        version: v.version,
        rulesVersion: typeof v.rulesVersion === 'string' ? v.rulesVersion : '',
        author: v.author,
        at: v.at,
        bytes: typeof v.bytes === 'number' ? v.bytes : 0,
        status: v.status === VersionStatus.proposed ? VersionStatus.proposed : VersionStatus.approved,
      };
    }
  } catch {
    // A torn last line (crash during append) is skipped; the file it names is intact.
  }
  return undefined;
}
