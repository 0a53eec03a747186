// `wf convert`: a Hugging Face BitNet checkpoint directory -> one GGUF file.
//
// Order of work: read config.json, open the safetensors (headers only), plan every output tensor and
// check every shape / dtype / block-size constraint, read the tokenizer; only then write. The GGUF
// header (metadata + tensor infos) is laid out first (buildGGUFHeader), then each tensor is read from
// the checkpoint, ternarized / converted, packed and written at its offset, one tensor at a time, so peak
// memory is about one tensor. Output goes to `<outfile>.tmp-<pid>` and is renamed over <outfile> only
// when complete (and validated, with --validate); on any failure the temp file is removed and
// <outfile> is left as it was.

import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { buildGGUFHeader } from '../gguf/writer.js';
import { metaF32, metaString, metaU32, type GGUFMetaValue } from '../gguf/meta.js';
import { Checkpoint, readJsonFile } from './checkpoint.js';
import { ConvertError } from './errors.js';
import { parseHFConfig, type GGUFArch, type ModelHParams } from './hf-config.js';
import { convertTokenizer } from './hf-tokenizer.js';
import { planTensors } from './tensor-map.js';
import {
  buildJob, encodeJob, prefetch, EMBED_TYPES, FILE_TYPE, OUT_TYPES, type EmbedType, type OutType, type TensorJob,
} from './tensor-jobs.js';
import { validateOutput } from './validate.js';

export interface ConvertProgress {
  phase: 'convert' | 'validate';
  /** tensors finished in this phase, and the total */
  index: number;
  total: number;
  tensor: string;
  /** checkpoint bytes read so far in this phase, and the total */
  bytesRead: number;
  bytesTotal: number;
  /** time since this phase started */
  elapsedMs: number;
}

export interface ConvertOptions {
  checkpointDir: string;
  outfile: string;
  outtype?: OutType;
  embedType?: EmbedType;
  /** GGUF architecture override (`--arch bitnet`) */
  arch?: GGUFArch;
  validate?: boolean;
  onProgress?: (p: ConvertProgress) => void;
}

export interface ConvertResult {
  outfile: string;
  arch: GGUFArch;
  outtype: OutType;
  tensors: number;
  bytesRead: number;
  bytesWritten: number;
  seconds: number;
  validated: boolean;
  /** where the file will not load (other engines' limits), for the user */
  notes: string[];
}

/** Which engines can load the result, as far as we know (checked with llama.cpp via node-llama-cpp 3.21.1). */
function compatibilityNotes(arch: GGUFArch, outtype: OutType, untied: boolean): string[] {
  const notes: string[] = [];
  if (arch === 'bitnet-b1.58') {
    notes.push("arch 'bitnet-b1.58' loads in bitnet.cpp and WrinkleFree; mainline llama.cpp does not know it (use --arch bitnet --outtype tq2_0 for llama.cpp)");
  } else if (outtype === 'i2_s') {
    notes.push('I2_S (type 36) loads only in the bitnet.cpp fork and WrinkleFree, not in mainline llama.cpp (use --outtype tq2_0 or tq1_0)');
  }
  if (arch === 'bitnet' && untied) {
    notes.push("output.weight (untied lm_head) is written; mainline llama.cpp's bitnet graph always uses token_embd as the lm_head and refuses a file with output.weight");
  }
  return notes;
}

/** Paths of temp files being written, so a CLI signal handler can remove them. */
export const pendingTempFiles = new Set<string>();

export function tempPathFor(outfile: string): string {
  return `${outfile}.tmp-${process.pid}`;
}

function metadataFor(hp: ModelHParams, name: string, outtype: OutType, embedType: EmbedType, tokenizer: [string, GGUFMetaValue][]): [string, GGUFMetaValue][] {
  const a = hp.arch;
  const m: [string, GGUFMetaValue][] = [
    ['general.architecture', metaString(a)],
    ['general.name', metaString(name)],
    ['general.file_type', metaU32(FILE_TYPE[outtype])],
  ];
  if (outtype === 'i2_s' || outtype === 'tq1_0' || outtype === 'tq2_0' || embedType === 'q8_0') {
    m.push(['general.quantization_version', metaU32(2)]);
  }
  m.push(
    ['general.alignment', metaU32(32)],
    [`${a}.context_length`, metaU32(hp.contextLength)],
    [`${a}.embedding_length`, metaU32(hp.hidden)],
    [`${a}.block_count`, metaU32(hp.layers)],
    [`${a}.feed_forward_length`, metaU32(hp.ffn)],
    [`${a}.attention.head_count`, metaU32(hp.heads)],
    [`${a}.attention.head_count_kv`, metaU32(hp.kvHeads)],
    [`${a}.attention.layer_norm_rms_epsilon`, metaF32(hp.rmsEps)],
    [`${a}.rope.freq_base`, metaF32(hp.ropeTheta)],
    [`${a}.rope.dimension_count`, metaU32(hp.headDim)],
    // as llama.cpp's BitnetModel writes: plain (factor 1) RoPE
    [`${a}.rope.scaling.type`, metaString('linear')],
    [`${a}.rope.scaling.factor`, metaF32(1)],
    [`${a}.vocab_size`, metaU32(hp.vocabSize)],
  );
  // 'bitnet' means SiLU to llama.cpp; a relu2 model written under that name says so (our loader and the
  // patched llama.cpp used for the oracle read this key; mainline llama.cpp ignores it).
  if (a === 'bitnet' && hp.activation === 'relu2') m.push(['bitnet.hidden_activation', metaString('relu2')]);
  m.push(...tokenizer);
  return m;
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten === 0) throw new ConvertError('write returned 0 bytes (disk full?)');
    done += bytesWritten;
  }
}

/** Converts a checkpoint directory to a GGUF file (see the top of this file). */
export async function convertCheckpoint(opts: ConvertOptions): Promise<ConvertResult> {
  const t0 = Date.now();
  const outtype = opts.outtype ?? 'i2_s';
  const embedType = opts.embedType ?? 'f16';
  if (!OUT_TYPES.includes(outtype)) throw new ConvertError(`unknown outtype '${outtype}' (expected ${OUT_TYPES.join(', ')})`);
  if (!EMBED_TYPES.includes(embedType)) throw new ConvertError(`unknown embed type '${embedType}' (expected ${EMBED_TYPES.join(', ')})`);
  const dir = resolve(opts.checkpointDir);
  const outfile = resolve(opts.outfile);
  const dirStat = await stat(dir).catch(() => undefined);
  if (!dirStat?.isDirectory()) throw new ConvertError(`${opts.checkpointDir} is not a directory (expected a Hugging Face checkpoint folder)`);
  const outDir = await stat(dirname(outfile)).catch(() => undefined);
  if (!outDir?.isDirectory()) throw new ConvertError(`cannot write ${opts.outfile}: folder ${dirname(outfile)} does not exist`);
  if ((await stat(outfile).catch(() => undefined))?.isDirectory()) throw new ConvertError(`${opts.outfile} is a directory`);

  const cfgPath = join(dir, 'config.json');
  const hp = parseHFConfig(await readJsonFile(cfgPath, true), cfgPath, opts.arch);

  const ckpt = await Checkpoint.open(dir);
  const tmp = tempPathFor(outfile);
  let fh: FileHandle | undefined;
  try {
    const plans = planTensors(hp, new Set(ckpt.tensors.keys()), hp.weightForm !== 'latent');
    const jobs: TensorJob[] = plans.map((p) =>
      buildJob(p, ckpt.get(p.hf)!, p.scaleName ? ckpt.get(p.scaleName) : undefined, hp.weightForm, outtype, embedType),
    );
    const tok = await convertTokenizer(dir, hp.vocabSize, hp);
    const metadata = metadataFor(hp, basename(dir), outtype, embedType, tok.entries);
    const layout = buildGGUFHeader({ metadata, tensors: jobs.map((j) => ({ name: j.plan.gguf, type: j.type, dims: j.dims })) });

    pendingTempFiles.add(tmp);
    fh = await open(tmp, 'w');
    await writeAll(fh, layout.header, 0);
    const bytesTotal = jobs.reduce((s, j) => s + j.sourceBytes, 0);
    let bytesRead = 0;
    // Pipelined: the next ternary tensor is read while this one is encoded, and each write completes
    // while the next piece is computed (one write in flight). Memory stays at about two tensors.
    let pending: Promise<void> = Promise.resolve();
    const write = async (bytes: Uint8Array, pos: number) => {
      await pending;
      pending = writeAll(fh!, bytes, pos);
      pending.catch(() => {}); // surfaced by the next await of `pending`
    };
    let fetched = prefetch(jobs[0]!);
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]!;
      const mine = fetched;
      fetched = i + 1 < jobs.length ? prefetch(jobs[i + 1]!) : undefined;
      let pos = layout.dataOffset + layout.tensorOffsets[i]!;
      const end = pos + layout.tensorSizes[i]!;
      for await (const piece of encodeJob(job, hp.weightForm, mine)) {
        if (pos + piece.length > end) throw new ConvertError(`internal: tensor ${job.plan.gguf} encodes to more than its ${layout.tensorSizes[i]} bytes`);
        await write(piece, pos);
        pos += piece.length;
      }
      if (pos !== end) throw new ConvertError(`internal: tensor ${job.plan.gguf} encoded to ${pos - (end - layout.tensorSizes[i]!)} bytes, expected ${layout.tensorSizes[i]}`);
      // zero padding up to the next tensor / the end of the file
      const next = i + 1 < jobs.length ? layout.dataOffset + layout.tensorOffsets[i + 1]! : layout.totalSize;
      if (next > end) await write(new Uint8Array(next - end), end);
      bytesRead += job.sourceBytes;
      opts.onProgress?.({ phase: 'convert', index: i + 1, total: jobs.length, tensor: job.plan.gguf, bytesRead, bytesTotal, elapsedMs: Date.now() - t0 });
    }
    await pending;
    await fh.sync();
    await fh.close();
    fh = undefined;
    const size = (await stat(tmp)).size;
    if (size !== layout.totalSize) throw new ConvertError(`internal: wrote ${size} bytes, expected ${layout.totalSize}`);
    if (opts.validate) {
      const tv = Date.now();
      await validateOutput(tmp, jobs, hp.weightForm, metadata, (index, tensor, read) =>
        opts.onProgress?.({ phase: 'validate', index, total: jobs.length, tensor, bytesRead: read, bytesTotal, elapsedMs: Date.now() - tv }),
      );
    }
    await rename(tmp, outfile);
    pendingTempFiles.delete(tmp);
    return {
      outfile, arch: hp.arch, outtype, tensors: jobs.length, bytesRead: bytesTotal, bytesWritten: layout.totalSize,
      seconds: (Date.now() - t0) / 1000, validated: opts.validate === true,
      notes: compatibilityNotes(hp.arch, outtype, jobs.some((j) => j.plan.gguf === 'output.weight')),
    };
  } catch (e) {
    if (fh) await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    pendingTempFiles.delete(tmp);
    throw e;
  } finally {
    await ckpt.close();
  }
}
