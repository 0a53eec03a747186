// Runs one shader of src/gpu on given inputs and reads its outputs back: the tests' harness for
// checking a WGSL op against its CPU reference on the same inputs.
import type { GpuContext } from '../../src/gpu/context.js';
import { storageBuffer, uniformBuffer, uploadBuffer } from '../../src/gpu/context.js';
import { bindGroup, pipeline } from '../../src/gpu/pipelines.js';

export type Binding = { uniform: (number | { f: number })[] } | { data: ArrayBufferView } | { out: number };

/** The step table of common.ts for `rows` rows (positions, pool starts, logits rows). */
export function stepTable(maxRows: number, n: number, m: number, pos: number[] = [], start: number[] = [], outRows: number[] = []): Uint32Array {
  const t = new Uint32Array(4 + 3 * maxRows);
  t[0] = n;
  t[1] = m;
  pos.forEach((p, r) => (t[4 + r] = p));
  start.forEach((s, r) => (t[4 + maxRows + r] = s));
  outRows.forEach((o, i) => (t[4 + 2 * maxRows + i] = o));
  return t;
}

/** Dispatches `code` once over `grid` with the bindings in order; returns the bytes of every `out` binding. */
export async function runShader(ctx: GpuContext, code: string, maxRows: number, bindings: Binding[], grid: [number, number]): Promise<Uint8Array[]> {
  const p = pipeline(ctx, code, maxRows);
  const outs: { buf: GPUBuffer; bytes: number }[] = [];
  const bufs = bindings.map((b) => {
    if ('uniform' in b) return uniformBuffer(ctx, b.uniform);
    if ('data' in b) return uploadBuffer(ctx, b.data);
    const buf = storageBuffer(ctx, b.out);
    outs.push({ buf, bytes: b.out });
    return buf;
  });
  const dev = ctx.device;
  dev.pushErrorScope('validation');
  const enc = dev.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(p);
  pass.setBindGroup(0, bindGroup(ctx, p, bufs));
  pass.dispatchWorkgroups(grid[0], grid[1]);
  pass.end();
  const reads = outs.map((o) => {
    const rb = dev.createBuffer({ size: Math.ceil(o.bytes / 4) * 4, usage: 0x1 | 0x8 });
    enc.copyBufferToBuffer(o.buf, 0, rb, 0, rb.size);
    return rb;
  });
  dev.queue.submit([enc.finish()]);
  const err = await dev.popErrorScope();
  if (err) throw new Error(err.message);
  const result: Uint8Array[] = [];
  for (const [i, rb] of reads.entries()) {
    await rb.mapAsync(1);
    result.push(new Uint8Array(rb.getMappedRange().slice(0, outs[i]!.bytes)));
    rb.unmap();
    rb.destroy();
  }
  for (const b of bufs) b.destroy();
  return result;
}
