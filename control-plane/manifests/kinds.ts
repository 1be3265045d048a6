/**
 * What a desired-state file is: its path, its kind, how it is loaded and checked, the Cedar
 * resource a change to it is authorized as, and whether its changes must be signed. One table,
 * read by change validation, authorization, history verification and the loaders.
 */
import {EVIDENCE_DIR} from './models.js'

/** Folders whose every change must be a commit signed by a trusted evidence key (besides docs/evidence/). */
export const SIGNED_FOLDERS = ['manifests', 'bundles', 'policies'] as const

/** Folders that must be folders: a symbolic link there would send reads and writes outside the repository. */
export const LAYOUT_FOLDERS = ['manifests', 'manifests/images', 'bundles', 'policies', 'docs', EVIDENCE_DIR] as const
