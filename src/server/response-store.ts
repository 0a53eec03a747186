// The Responses API's stored responses (`store: true`, the default), kept in memory so that a later
// request can continue the conversation with `previous_response_id` and GET /v1/responses/{id}
// can return it. Bounded twice, by count and by bytes (the JSON size of what is kept); past either
// bound the least recently used entries go first. An entry larger than the whole byte bound is
// not kept. Nothing survives a restart (OpenAI keeps responses for 30 days; a client that needs
// more sends the whole conversation as `input`).

/** Defaults: `--responses-store N` and `--responses-store-mb MB` of wf_server. */
export const DEFAULT_STORE_COUNT = 1000;
export const DEFAULT_STORE_BYTES = 64 << 20;

export interface StoredResponse {
  /** the response object, as it was returned */
  response: Record<string, unknown>;
  /** the whole conversation up to and including this response's output, as chat messages (no instructions) */
  history: Record<string, unknown>[];
}

interface Entry {
  value: StoredResponse;
  bytes: number;
}

export class ResponseStore {
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Entry>();
  private used = 0;
  private readonly encoder = new TextEncoder();

  constructor(
    readonly maxCount = DEFAULT_STORE_COUNT,
    readonly maxBytes = DEFAULT_STORE_BYTES,
  ) {
    if (!Number.isInteger(maxCount) || maxCount < 0) throw new Error(`the response store's count must be a non-negative integer, got ${maxCount}`);
    if (!Number.isFinite(maxBytes) || maxBytes < 0) throw new Error(`the response store's byte bound must be a non-negative number, got ${maxBytes}`);
  }

  /** Keeps a response (evicting the least recently used as needed); false when it cannot be kept. */
  put(id: string, value: StoredResponse): boolean {
    this.delete(id);
    const bytes = this.encoder.encode(JSON.stringify(value)).length;
    if (this.maxCount === 0 || bytes > this.maxBytes) return false;
    this.entries.set(id, { value, bytes });
    this.used += bytes;
    for (const [oldest, e] of this.entries) {
      if (this.entries.size <= this.maxCount && this.used <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.used -= e.bytes;
    }
    return true;
  }

  /** The stored response (now the most recently used), or undefined. */
  get(id: string): StoredResponse | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    this.entries.delete(id);
    this.entries.set(id, e);
    return e.value;
  }

  delete(id: string): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    this.entries.delete(id);
    this.used -= e.bytes;
    return true;
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.used;
  }
}
