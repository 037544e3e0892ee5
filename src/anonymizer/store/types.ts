/**
 * The rules store as the workers and the API see it: the rules file in use, its accepted
 * versions, validation, preview and coverage. The store knows nothing of HTTP: a refused
 * text carries {@link RulesProblemItem}s, which the API maps to its own problem shape. The
 * store reaches the rules engine only through the RulesEngine adapter, so tests can give it
 * a small engine of their own.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Anonymizer, DeidOutcome, DeidReport } from '../types.ts';
import type { AppError } from '../../shared/errors/index.ts';

/** One accepted version of the rules file. */
export interface RulesVersionInfo {
  /** SHA-256 (hex) of the file text: the version id of the file. */
  readonly version: string;
  /**
   * The engine's version of the compiled rules (the short hash stamped into meta.tag of
   * every de-identified resource); a comment-only edit changes `version` but not this.
   */
  readonly rulesVersion: string;
  /** Token subject of whoever saved it; `filesystem` for a file found changed on disk. */
  readonly author: string;
  /** ISO instant it was saved (proposed, or accepted at once in one-step mode). */
  readonly at: string;
  readonly bytes: number;
  /**
   * Four-eyes state: `proposed` waits for a second compliance user; `approved` was put in use
   * (every version of one-step mode, and of the file found on disk); `rejected` never will be.
   */
  readonly status?: VersionStatus;
  readonly approvedBy?: string;
  readonly approvedAt?: string;
  readonly rejectedBy?: string;
  readonly rejectedAt?: string;
}

export const VersionStatus = { proposed: 'proposed', approved: 'approved', rejected: 'rejected' } as const;
export type VersionStatus = (typeof VersionStatus)[keyof typeof VersionStatus];

/** How a saved version is put in use: at once, or after a second compliance user approves it. */
export const ApprovalMode = { oneStep: 'one-step', twoStep: 'two-step' } as const;
export type ApprovalMode = (typeof ApprovalMode)[keyof typeof ApprovalMode];

/** The rules in use: text, parsed form and version. */
export interface RulesSnapshot<R = unknown> extends RulesVersionInfo {
  readonly text: string;
  readonly rules: R;
}

/**
 * One problem of a refused rules text, in the store's own terms. API_ERR_RULES_INVALID
 * carries a list of them in `details.items` (the engine's code stays in `details.engineCode`).
 */
export interface RulesProblemItem {
  /** What is wrong (the engine's message, or its code when it gave no message). */
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
  /** Where inside the text or its source the engine placed it, e.g. `rules[3].select.path`. */
  readonly path?: string;
  /** JSON pointer, when the engine gave one. */
  readonly pointer?: string;
  /** The engine's code for this one problem. */
  readonly code?: string;
}

/** Result of checking a rules text without saving it. */
export type RulesCheck =
  | { readonly ok: true; readonly version: string; readonly rulesVersion: string }
  | { readonly ok: false; readonly error: AppError };

/** Result of de-identifying sample resources (nothing written anywhere). */
export interface PreviewResult {
  /** Engine version of the rules used (the draft's when a draft was given). */
  readonly rulesVersion: string;
  readonly outcomes: readonly DeidOutcome[];
  readonly report: DeidReport;
}

/** Called with the new rules after a version is accepted. */
export type RulesListener<R> = (snapshot: RulesSnapshot<R>) => void;

/**
 * Everything the store needs from the rules engine. `load` throws a coded AppError whose
 * details list every problem with line and column.
 */
export interface RulesEngine<R> {
  load(text: string, source: string): R;
  /** The engine's version of compiled rules (what it stamps into meta.tag). */
  versionOf(rules: R): string;
  /** An anonymizer for previews (its own key and instance id: previews never match real pseudonyms). */
  previewAnonymizer(rules: R): Anonymizer;
  coverage(rules: R): unknown;
}

/** The rules store. */
export interface RulesStore<R = unknown> {
  /** The rules in use now. */
  current(): RulesSnapshot<R>;
  /** Accepted versions, newest first. */
  history(): Promise<readonly RulesVersionInfo[]>;
  /** The text of an accepted version, or undefined when not kept. */
  versionText(version: string): Promise<string | undefined>;
  /** Validates a rules text; writes nothing. */
  check(text: string): RulesCheck;
  /** How saved versions are put in use. */
  readonly approval: ApprovalMode;
  /**
   * Validates and, only if valid, records the version; in one-step mode it also atomically
   * replaces the rules file (status `approved`), in two-step mode it is `proposed` and the file
   * stays. Throws API_ERR_RULES_INVALID (422) or API_ERR_RULES_VERSION_CONFLICT (412).
   */
  replace(
    text: string,
    meta: { readonly author: string; readonly ifMatch?: string },
  ): Promise<RulesVersionInfo & { readonly changed: boolean }>;
  /**
   * Puts a proposed version in use. The approver must not be its author
   * (API_ERR_RULES_SELF_APPROVAL, 403); only a proposed version can be approved
   * (API_ERR_RULES_NOT_PROPOSED, 409).
   */
  approve(version: string, by: string): Promise<RulesVersionInfo>;
  /** Marks a proposed version rejected (API_ERR_RULES_NOT_PROPOSED otherwise). */
  reject(version: string, by: string): Promise<RulesVersionInfo>;
  /** De-identifies sample resources with the rules in use or with a draft; writes nothing. */
  preview(resources: readonly Resource[], draft?: string): PreviewResult;
  /** What the rules in use cover (engine-defined report, computed once per version). */
  coverage(): unknown;
  /** Subscribes to accepted versions; returns the unsubscribe function. */
  onRulesChanged(listener: RulesListener<R>): () => void;
  /** Stops watching the file. */
  close(): void;
}
