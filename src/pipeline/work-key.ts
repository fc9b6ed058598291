import { sourceHash } from '../jobs/source-binding.js';

/** Bump when the pipeline's output for the same input changes, to retire old cache entries. */
const PIPELINE_VERSION = 1;

/**
 * Names a job's work by what determines its result: the source's bytes and the settings.
 * Same key, same PNG: so the result cache and checkpoints can never mix up two pictures.
 */
export function workKey(source: Buffer, upscaleFactor: number): string {
  return workKeyOf(sourceHash(source), upscaleFactor);
}

/** The work key of a source whose SHA-256 (hex) is known already. */
export function workKeyOf(sha256: string, upscaleFactor: number): string {
  return `${sha256}-x${upscaleFactor}-v${PIPELINE_VERSION}`;
}

/** A cached result is already a finished PNG; read its size from the IHDR chunk. */
export function pngOf(png: Buffer): { data: Buffer; size: { width: number; height: number } } {
  return { data: png, size: { width: png.readUInt32BE(16), height: png.readUInt32BE(20) } };
}
